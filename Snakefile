# vae-novelty: reproduce "Can VAEs Generate Novel Examples?" (Bozkurt et al., 2018) from raw MNIST.
#
#   snakemake --cores all                                   # full paper configuration
#   snakemake --cores all --configfile config/quick.yaml    # reduced run, minutes on a CPU
#
# A --configfile replaces config/config.yaml (keys it leaves out take the schema defaults);
# config/README.md lists every key. Nested overrides: --config 'training={epochs: 3}'.

import runpy
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

min_version("9.0")

REPO = Path(workflow.basedir)
sys.path.insert(0, str(REPO / "src"))
from vae_novelty.config.check import ConfigFileError, read_config_file

# With the SLURM executor (profiles/slurm): stop at once, before any job is planned, where no
# job could be submitted (no SLURM here, a CHANGE-ME account or partition); see the module.
PREFLIGHT = runpy.run_path(str(REPO / "workflow" / "slurm_preflight.py"))
PREFLIGHT["check"](workflow)

# Without --configfile, config/config.yaml. Snakemake's own message for a YAML syntax error
# names neither the file nor the line, so the file is read here first: such an error stops the
# run as FILE:LINE:COL: problem. (A --configfile is read by Snakemake before this file runs:
# `python -m vae_novelty.config check FILE` names its line.)
if not workflow.overwrite_configfiles:
    try:
        read_config_file(REPO / "config" / "config.yaml")
    except ConfigFileError as exc:
        raise WorkflowError(f"cannot read the config file: {exc}")

    configfile: str(REPO / "config" / "config.yaml")


# The report's front page (snakemake --report report.html).
report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/samples.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/seeds.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/figures_samples.smk"


# The size sweep (issue 20), only when the configuration enables it.
if CFG["size_sweep"]["enabled"]:

    include: "workflow/rules/size.smk"


include: "workflow/rules/report.smk"


rule all:
    """Every figure and table of the configuration."""
    default_target: True
    input:
        TARGETS,
