# Stage 7: the run record, which the report shows and checks (src/vae_novelty/run_record.py).
# It is made last, from every other target, so it describes a completed run; its params are the
# configuration without the speed-only keys, so any change that reruns something rewrites it.
import mimetypes

from vae_novelty.run_record import record_problem, report_problem, results_config

# The configuration as the run record keeps it: without the keys that change no result.
RESULTS_CONFIG = results_config(CFG, vcfg.read_schema())

# Every figure and table rule's settings file is a target (a deleted one is remade) and an
# input of the record, which copies and checks them.
# (only those of rules whose files are targets: size_sweep.only leaves out the others)
_targets = set(map(str, TARGETS))
SETTINGS_FILES = {
    r: p
    for r, p in SETTINGS_FILES.items()
    if any(str(f) in _targets for f in workflow.get_rule(r).output)
}
TARGETS += [p for p in SETTINGS_FILES.values() if p not in _targets]
# What each of those rules' files must record under this configuration: its params, as
# recorded (vae_novelty.recorded.settings_of).
EXPECTED_SETTINGS = {r: settings_of(workflow.get_rule(r).params) for r in SETTINGS_FILES}


rule run_record:
    """The configuration, data fingerprint and code versions these results were made with."""
    input:
        targets=list(TARGETS),
        mnist=res("data/mnist.npz"),
        settings=list(SETTINGS_FILES.values()),
    output:
        report(
            res("run_record.yaml"),
            caption="../report/run_record.rst",
            category="Run record",
            labels={"file": "run_record.yaml"},
        ),
    log:
        res("logs/run_record.log"),
    conda:
        "../../envs/vae.yaml"
    params:
        code=code_version("run_record.py"),
        config=RESULTS_CONFIG,
        # rule -> settings its figures or tables must record (in the order of input.settings)
        settings=EXPECTED_SETTINGS,
    script:
        "../scripts/run_record.py"


TARGETS += [res("run_record.yaml")]

# snakemake --report: refuse to describe results made with another configuration.
mimetypes.add_type("text/plain", ".yaml")  # the report shows the record as text
if report_requested():
    _report_problem = report_problem(res("run_record.yaml"), RESULTS_CONFIG)
    if _report_problem:
        raise WorkflowError(_report_problem)
    # the files themselves must hold what the configuration (and so the record) says
    if STALE_MODELS:
        raise WorkflowError(
            "the model files do not hold the models this configuration requests, so the "
            "report would describe other results:\n  "
            + "\n  ".join(l for lines in STALE_MODELS.values() for l in lines)
        )
    # and every figure and table must have been made with this configuration's settings (a
    # single-target run with another option remakes one without touching the record)
    _settings_problems = settings_problems()
    if _settings_problems:
        raise WorkflowError(
            "figures or tables were made with other settings than this configuration's, so "
            "the report would describe other results:\n  "
            + "\n  ".join(_settings_problems)
            + "\nrun the workflow with this configuration first (it remakes them), or pass "
            "the configuration they were made with"
        )
else:
    # A figure or table made with other settings (whether or not Snakemake's metadata knows):
    # its settings file is dated 1970, older than the rule's inputs, so the rule reruns (a
    # dry run only names it). A missing settings file makes its rule rerun anyway. Only the
    # head does this: jobs (--mode subprocess/remote) parse this file too.
    for _path, _rule in {v: k for k, v in SETTINGS_FILES.items()}.items():
        if not Path(_path).exists() or not workflow.is_main_process:
            continue
        for _line in settings_mismatches(_path, _rule, EXPECTED_SETTINGS[_rule], CFG):
            verb = "a real run remakes" if DRY_RUN else "remaking"
            print(f"warning: {verb} the files of {_rule}, {_line}", file=sys.stderr)
            if not DRY_RUN:
                os.utime(_path, (1, 1))
    # A damaged record (Snakemake checks no content) is removed, so this run rebuilds it.
    _record_problem = record_problem(res("run_record.yaml"))
    if _record_problem and not getattr(PREFLIGHT["cli_args"](), "dryrun", False):
        Path(res("run_record.yaml")).unlink()
        print(f"warning: {_record_problem}: removed, this run rebuilds it", file=sys.stderr)
    elif _record_problem:
        print(f"warning: {_record_problem} (a run rebuilds it)", file=sys.stderr)
