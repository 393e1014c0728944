# Helpers shared by several stages: the validated config, the model grid and path builders.

import functools
import re
import sys

from snakemake.exceptions import WorkflowError

from vae_novelty import config as vcfg
from vae_novelty.codegraph import closure, code_digest
from vae_novelty.recorded import SETTINGS_SUFFIX, settings_mismatches, settings_of
from vae_novelty.results_lock import ResultsLocked
from vae_novelty.results_lock import acquire as acquire_results_lock
from vae_novelty.results_lock import holder_note as results_holder_note

try:
    CFG = vcfg.load_config(config)
except vcfg.ConfigError as exc:
    raise WorkflowError(str(exc))
# --config 'model={architectures: ...}' adds to the configured architectures (model.only runs
# a subset): say so rather than train more than was asked for without a word
_merge_note = vcfg.merged_architectures_note(workflow.config_settings.config, CFG)
if _merge_note:
    print(f"warning: {_merge_note}", file=sys.stderr)

# Every rule's default target is appended here by its stage's .smk file.
TARGETS = []


def report_requested():
    """Whether this is ``snakemake --report`` building a report of existing results (the
    report checks the run record first); not with --report-after-run, which runs the jobs
    first, unless it is a dry run (which reports without running)."""
    args = PREFLIGHT["cli_args"]()
    runs_first = getattr(args, "report_after_run", False) and not getattr(args, "dryrun", False)
    return bool(getattr(args, "report", None)) and not runs_first


# Where every output goes (results_dir: "results" by default; e.g. one folder per dataset).
RESULTS = CFG["results_dir"].rstrip("/")


def res(path):
    """``path`` below the results folder."""
    return f"{RESULTS}/{path}"


SWEEP_ARCHS = list(CFG["model"]["architectures"])
SWEEP_SPLITS = vcfg.sweep_splits(CFG)
SEEDS = CFG["training"]["seeds"]
MODELS = vcfg.model_grid(CFG)

# Config sections, named once here for every .smk file.
TRAIN = CFG["training"]
T1 = CFG["theorem1"]
ELBO = CFG["elbo"]
SEEDS_CI = CFG["seeds_ci"]
FIG = CFG["figures"]


wildcard_constraints:
    arch="|".join(re.escape(a) for a in SWEEP_ARCHS + ["mini"]),
    split="full|mini|no[0-9]",
    seed=r"\d+",
    digit=r"[0-9]",


def model_paths(pattern, specs=None):
    """``pattern`` formatted with arch/split/seed for every model (default: the whole grid)."""
    specs = MODELS if specs is None else specs
    return [pattern.format(arch=m.arch, split=m.split, seed=m.seed) for m in specs]


def arch_splits(arch):
    """Training splits of an architecture's models: every sweep split, or mini."""
    return ["mini"] if arch == "mini" else SWEEP_SPLITS


def arch_models(arch):
    """The ModelSpecs of one architecture, in (split, seed) order."""
    return [m for m in MODELS if m.arch == arch]


def arch_model_paths(pattern, arch):
    """``pattern`` below the results folder for every model of ``arch``."""
    return model_paths(res(pattern), arch_models(arch))


def arch_outputs(stage, ext, grid):
    """Per-model outputs of a per-architecture rule: {stage}/{arch}/{split}_s{seed}.{ext} for
    every (split, seed) of ``grid``, {arch} left a wildcard."""
    return [res(f"{stage}/{{arch}}/{split}_s{seed}.{ext}") for split, seed in grid]


def grid_groups():
    """The sweep architectures grouped by their (split, seed) grid (training.extra_seeds can
    give some architectures more seeds): one train and one evaluate rule per group, since a
    rule's outputs are one pattern list for every value of {arch}. Returns (rule name suffix,
    architectures, grid) per group; the first group's suffix is empty, so a configuration
    without extra_seeds has the rules train_sweep and evaluate, the next ones
    train_sweep_2, evaluate_2, ..."""
    groups = {}
    for arch in SWEEP_ARCHS:
        groups.setdefault(tuple(vcfg.arch_grid(CFG, arch)), []).append(arch)
    return [
        ("" if i == 0 else f"_{i + 1}", archs, list(grid))
        for i, (grid, archs) in enumerate(groups.items())
    ]


GRID_GROUPS = grid_groups()
MINI_GRID = vcfg.arch_grid(CFG, "mini")


def arch_regex(archs):
    return "|".join(re.escape(a) for a in archs)


@functools.lru_cache(maxsize=None)
def code_version(script):
    """A digest of the code behind one script, passed as a ``params`` value. It covers the
    script (below workflow/scripts/), _bootstrap.py and every package module the script can
    import (its import closure, :func:`vae_novelty.codegraph.closure`, imports inside
    functions included). Editing a module reruns exactly the stages that import it, and what follows; a
    new modification time alone (a git checkout, a copy) reruns nothing. profiles/default
    switches off Snakemake's own code trigger, which compares script modification times."""
    scripts = REPO / "workflow" / "scripts"
    path = scripts / script
    return code_digest(
        [path, scripts / "_bootstrap.py", *closure(path, REPO / "src" / "vae_novelty")], REPO
    )


def gpu_count(device):
    """GPUs a job asks the scheduler for: none when its device setting is 'cpu'."""
    return 0 if device == "cpu" else 1


def gpu_job_threads(device):
    """Threads of a job that claims a GPU slot (training, evaluation). On one machine the
    slots (--resources gpu=N; 1 in profiles/default) let N such jobs run at a time, on a GPU
    or, without one, on the CPU, so each gets its share of the cores rather than one core of
    an otherwise idle machine. One thread with a cluster executor (a job asks its node for
    what it uses) or with device 'cpu' (no slot: jobs run side by side). Threads change speed,
    not results: the quick configuration gives identical tables and figures with 1 and 2."""
    executor = getattr(PREFLIGHT["cli_args"](), "executor", None) or "local"
    if gpu_count(device) == 0 or executor not in ("local", "dryrun", "touch"):
        return 1
    cores = workflow.global_resources["_cores"].value or 1
    slots = getattr(workflow.global_resources.get("gpu"), "value", None) or 1
    return max(1, cores // slots)


# --------------------------------------------------------------------------- one run per results folder


def runs_jobs():
    """Whether this process is the head of a run that executes jobs: not a job (Snakemake
    starts local jobs with --mode subprocess, cluster jobs with --mode remote; both parse this
    file again), not a dry run, not a command that only inspects the workflow (--report,
    --lint, --unlock, ...: workflow/slurm_preflight.py), not --nolock, not the Python API."""
    args = PREFLIGHT["cli_args"]()
    if not workflow.is_main_process or args is None:
        return False
    inspect_only = [o for o in PREFLIGHT["INSPECTION_OPTIONS"] if getattr(args, o, None)]
    if getattr(args, "report_after_run", False) and inspect_only == ["report"]:
        inspect_only = []  # --report --report-after-run: runs the jobs first
    return not (inspect_only or getattr(args, "dryrun", False) or getattr(args, "nolock", False))


# Two runs sharing one results folder (two checkouts with one absolute results_dir) would
# each run every job and resume each other's live snapshots: the head takes
# {results_dir}/.run.lock (checkout, host, pid) before any stage changes anything there (the
# stage files are parsed after this one) and releases it at exit; another live run's lock
# stops this one, naming it; a stale one (its process on this host has ended) is taken over
# with a warning (src/vae_novelty/results_lock.py).
if runs_jobs():
    try:
        RESULTS_LOCK = acquire_results_lock(
            RESULTS, REPO, warn=lambda line: print(line, file=sys.stderr)
        )
    except ResultsLocked as exc:
        raise WorkflowError(str(exc))
elif getattr(PREFLIGHT["cli_args"](), "dryrun", False) and workflow.is_main_process:
    _holder = results_holder_note(RESULTS)
    if _holder:
        print(f"warning: {_holder}", file=sys.stderr)


# --------------------------------------------------------------------------- figures

# (naming imports no plotting library: nothing heavy is imported while the workflow is parsed)
from vae_novelty.figures.naming import output_paths

FIG_SEED = SEEDS[0]  # image figures show the models of the first seed
FIG_DIGIT = FIG["figure1"]["digit"]


def figure_files(name):
    """{results_dir}/figures/{name}.png, then every other configured format."""
    return output_paths(res(f"figures/{name}"), FIG["formats"])


def first_seed_files(stage, models, ext):
    """{results_dir}/{stage}/{arch}/{split}_s{FIG_SEED}.{ext} of ``models`` (dicts with arch and
    split): the per-model files the image figures read."""
    return [res(f"{stage}/{m['arch']}/{m['split']}_s{FIG_SEED}.{ext}") for m in models]


# Every figure and table rule records the settings it made its files with (its params but the
# code digest) in {folder}/{rule}.settings.json, one of its outputs (vae_novelty.recorded);
# report.smk compares them with this configuration. Rule name -> settings file.
SETTINGS_FILES = {}


def settings_file(rule_name, folder):
    """{results_dir}/{folder}/{rule_name}.settings.json, registered in SETTINGS_FILES."""
    SETTINGS_FILES[rule_name] = res(f"{folder}/{rule_name}{SETTINGS_SUFFIX}")
    return SETTINGS_FILES[rule_name]


def settings_problems():
    """One line per figure or table whose settings file disagrees with this configuration
    (EXPECTED_SETTINGS: report.smk, once every rule is defined)."""
    return [
        line
        for rule_name, path in SETTINGS_FILES.items()
        for line in settings_mismatches(path, rule_name, EXPECTED_SETTINGS[rule_name], CFG)
    ]
