# Stage 7: the run record, which the report shows and checks (src/vae_novelty/run_record.py).
# It is made last, from every other target, so it describes a completed run; its params are the
# configuration without the speed-only keys, so any change that reruns something rewrites it.
import mimetypes


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
