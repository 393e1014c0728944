# Stage 7: the run record, which the report shows and checks (src/vae_novelty/run_record.py).
# It is made last, from every other target, so it describes a completed run; its params are the
# configuration without the speed-only keys, so any change that reruns something rewrites it.
import mimetypes

from vae_novelty.run_record import record_problem, report_problem, results_config

# The configuration as the run record keeps it: without the keys that change no result.
RESULTS_CONFIG = results_config(CFG, vcfg.read_schema())


rule run_record:
    """The configuration, data fingerprint and code versions these results were made with."""
    input:
        targets=list(TARGETS),
        mnist=res("data/mnist.npz"),
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
else:
    # A damaged record (Snakemake checks no content) is removed, so this run rebuilds it.
    _record_problem = record_problem(res("run_record.yaml"))
    if _record_problem and not getattr(PREFLIGHT["cli_args"](), "dryrun", False):
        Path(res("run_record.yaml")).unlink()
        print(f"warning: {_record_problem}: removed, this run rebuilds it", file=sys.stderr)
    elif _record_problem:
        print(f"warning: {_record_problem} (a run rebuilds it)", file=sys.stderr)
