"""Reruns touch only what changed: on a completed tiny run, which jobs would a change start?

The workflow runs once per module in a temporary copy of the repository (so that scripts and
plotting modules can be edited without touching the real one); each test then asks
``snakemake --dry-run`` which jobs a changed config, script or module would run, and compares
the rule names of the dry run's job table with the expectation.
"""

from __future__ import annotations

import contextlib
import copy
import os
import time
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from conftest import REPO, TINY, run_snakemake

pytestmark = pytest.mark.slow

# Top-level entries of the repository that a run does not need (or that it writes itself).
NOT_COPIED = {
    ".git",
    ".venv",
    ".snakemake",
    ".pytest_cache",
    "results",
    "logs",
    "benchmarks",
    "docs",
    "report.html",
    ".whl",
}
FIGURE_RULES = {
    "figure1",
    "figure2",
    "figure3",
    "figure_sweep",
    "figure_quant",
    "figure14",
    "figure15",
}
# Figures 1-3, 14 and the sweep figures share figures/build.py, which imports every figure
# module: a stage's code digest covers its script's whole import closure
# (vae_novelty.codegraph.closure), so editing one of them reruns all five.
IMAGE_FIGURES = {"figure1", "figure2", "figure3", "figure_sweep", "figure14"}
# What every change reruns last: the run record (it records the configuration) and `all`.
LAST = {"run_record": 1, "all": 1}
FIGURE_FILES = {
    "figure1",
    "figure2",
    "figure3",
    "figure4",  # tiny config: held-out digit 9
    "figure_quant",
    "figure14",
    "figure15",
}


@dataclass
class Completed:
    repo: Path  # the copy of the repository (Snakefile, scripts, src)
    workdir: Path  # where the tiny workflow has completed
    config: dict  # the tiny configuration it ran with
    tmp: Path

    def plan(self, config: dict | None = None) -> dict[str, int]:
        """Jobs per rule that a dry run would start (empty: nothing to be done)."""
        path = self.tmp / "config.yaml"
        path.write_text(
            yaml.safe_dump(config if config is not None else self.config, sort_keys=False)
        )
        proc = run_snakemake(
            self.workdir,
            "--dry-run",
            "--cores",
            "2",
            configfile=path,
            snakefile=self.repo / "Snakefile",
        )
        return job_counts(proc.stdout + proc.stderr)


def job_counts(text: str) -> dict[str, int]:
    """Parse the ``Job stats:`` table of a (dry) run; ``{}`` when there is nothing to do."""
    if "Nothing to be done" in text and "Job stats:" not in text:
        return {}
    lines = text[text.index("Job stats:") :].splitlines()[1:]
    counts: dict[str, int] = {}
    for line in lines:
        m = re.fullmatch(r"\s*(\S+)\s+(\d+)\s*", line)
        if not m:
            if counts:  # past the table
                break
            continue
        if m.group(1) == "total":
            break
        counts[m.group(1)] = int(m.group(2))
    if not counts:
        raise AssertionError(f"no job table in the dry run's output:\n{text[-3000:]}")
    return counts


def test_job_counts_parses_the_table():
    text = (
        "Building DAG of jobs...\nJob stats:\njob        count\n-------  -------\n"
        "figure3        1\nall            1\ntotal          2\n\nReasons: ..."
    )
    assert job_counts(text) == {"figure3": 1, "all": 1}
    assert (
        job_counts(
            "Building DAG of jobs...\nNothing to be done (all requested files are "
            "present and up to date)."
        )
        == {}
    )


def _ignore_top_level(root: Path):
    def ignore(folder, names):
        return [n for n in names if Path(folder) == root and n in NOT_COPIED] + [
            n for n in names if n == "__pycache__"
        ]

    return ignore


@pytest.fixture(scope="module")
def completed(tmp_path_factory) -> Completed:
    tmp = tmp_path_factory.mktemp("reruns")
    repo = tmp / "repo"
    shutil.copytree(REPO, repo, ignore=_ignore_top_level(REPO))  # copy2 keeps mtimes
    run = Completed(repo, tmp / "work", yaml.safe_load(TINY.read_text()), tmp)
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(run.config, sort_keys=False))
    run_snakemake(run.workdir, "--cores", "2", configfile=path, snakefile=repo / "Snakefile")
    return run


def with_option(config: dict, dotted: str, value) -> dict:
    out = copy.deepcopy(config)
    *parents, key = dotted.split(".")
    node = out
    for p in parents:
        node = node[p]
    assert key in node, f"{dotted} is not in the tiny config"
    assert node[key] != value, f"{dotted} is already {value!r}"
    node[key] = value
    return out


def test_completed_run_is_up_to_date(completed):
    assert completed.plan() == {}
    for name in FIGURE_FILES:
        assert (completed.workdir / f"results/figures/{name}.png").stat().st_size > 0
    assert (completed.workdir / "results/report/summary.html").exists()
    assert (completed.workdir / "results/report/summary_by_config.html").exists()


@pytest.mark.parametrize(
    "option, value, rule",
    [
        ("figures.figure1.test_images", [1, 0], "figure1"),
        ("figures.figure1.hist_bins", 20, "figure1"),
        ("figures.figure2.bce_max", 300.0, "figure2"),
        ("figures.figure3.cmap", "magma", "figure3"),
        ("figures.figure3.grid_size", 30, "figure3"),
        ("figures.figure3.sample_seed", 1, "figure3"),
        ("figures.sweep.test_image", 1, "figure_sweep"),
        ("figures.figure14.n_samples", 3, "figure14"),
    ],
)
def test_a_figure_option_reruns_only_that_figure(completed, option, value, rule):
    plan = completed.plan(with_option(completed.config, option, value))
    assert plan == {rule: 1, **LAST}


@pytest.mark.parametrize(
    "option, value", [("seeds_ci.bootstrap", 500), ("seeds_ci.level", 0.9), ("seeds_ci.seed", 1)]
)
def test_a_seed_interval_option_reruns_the_seed_summary_and_its_figure(completed, option, value):
    plan = completed.plan(with_option(completed.config, option, value))
    assert plan == {"seed_summary": 1, "figure_quant": 1, "figure15": 1, **LAST}


def test_editing_the_seed_summary_module_reruns_its_table_and_figure(completed):
    with edited(completed.repo / "src" / "vae_novelty" / "seeds.py"):
        # and the image figures, whose plotting modules import seeds.py (figures/build.py)
        assert completed.plan() == {
            "seed_summary": 1,
            "figure_quant": 1,
            "figure15": 1,
            **{r: 1 for r in IMAGE_FIGURES},
            **LAST,
        }
    assert completed.plan() == {}


@contextlib.contextmanager
def edited(path: Path):
    """Append a comment to ``path``; afterwards restore its content and modification time."""
    before, stat = path.read_bytes(), path.stat()
    try:
        path.write_bytes(before + b"\n# edited by tests/test_reruns.py\n")
        later = time.time() + 3600  # surely newer than the outputs, however old the file is
        os.utime(path, (later, later))
        yield path
    finally:
        path.write_bytes(before)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


@pytest.mark.parametrize(
    "script, rule",
    [
        ("figure1.py", "figure1"),
        ("figure2.py", "figure2"),
        ("figure3.py", "figure3"),
        ("figure_sweep.py", "figure_sweep"),
        ("figure_quant.py", "figure_quant"),
        ("figure14.py", "figure14"),
        ("figure15.py", "figure15"),
    ],
)
def test_editing_a_figure_script_reruns_only_that_figure(completed, script, rule):
    with edited(completed.repo / "workflow" / "scripts" / script):
        assert completed.plan() == {rule: 1, **LAST}
    assert completed.plan() == {}


@pytest.mark.parametrize(
    "module, rules",
    [
        ("figure2.py", IMAGE_FIGURES),
        # their tick helpers and text wrapping: the image figures and the quantified ones
        ("sweep.py", IMAGE_FIGURES | {"figure_quant", "figure15"}),
        ("quant.py", IMAGE_FIGURES | {"figure_quant", "figure15"}),
        ("common.py", FIGURE_RULES | {"seed_summary", "summary_table"}),
    ],
)
def test_editing_a_plotting_module_reruns_the_figures_that_use_it(completed, module, rules):
    with edited(completed.repo / "src" / "vae_novelty" / "figures" / module):
        assert completed.plan() == {**{r: 1 for r in rules}, **LAST}
    assert completed.plan() == {}


AFTER_EVALUATE = {
    "tables": 1,
    "figure1": 1,
    "figure2": 1,
    "figure_sweep": 1,
    "figure14": 1,
    "summary_table": 1,
    "seed_summary": 1,
    "figure_quant": 1,
    "figure15": 1,
    **LAST,
}


def test_training_epochs_rerun_training_and_everything_downstream(completed):
    cfg = completed.config
    plan = completed.plan(with_option(cfg, "training.epochs", cfg["training"]["epochs"] + 1))
    n_archs = len(cfg["model"]["architectures"])
    # one training, evaluation and samples job per sweep architecture (all splits and seeds)
    assert plan == {
        "train_sweep": n_archs,
        "evaluate": n_archs,
        "samples": n_archs,
        **AFTER_EVALUATE,
    }
    # untouched: the data, the splits, the mini-MNIST model and its Figure 3


def test_extra_seeds_for_one_architecture_rerun_its_jobs_only(completed):
    """Seeds added for one architecture: its training and evaluation jobs (now the second
    grid group's rules) and the tables after them; the other architecture's models are kept."""
    cfg = completed.config
    arch = list(cfg["model"]["architectures"])[-1]
    extra = [{"seeds": [max(cfg["training"]["seeds"]) + 1], "architectures": [arch]}]
    plan = completed.plan(with_option(cfg, "training.extra_seeds", extra))
    # figure1/2 show the first seed: the sweep figure and Figures 1-2 still rerun, since
    # their inputs (this architecture's first-seed files) are remade by the job
    assert plan["train_sweep_2"] == 1 and plan["evaluate_2"] == 1
    assert "train_sweep" not in plan and "evaluate" not in plan and "train_mini" not in plan
    assert plan["tables"] == 1 and plan["seed_summary"] == 1


def test_mini_epochs_rerun_the_mini_model_and_figure3_only(completed):
    cfg = completed.config
    plan = completed.plan(
        with_option(cfg, "training.mini_epochs", cfg["training"]["mini_epochs"] + 1)
    )
    assert plan == {
        "train_mini": 1,
        "evaluate_mini": 1,
        "samples_mini": 1,
        "tables": 1,
        "figure3": 1,
        "summary_table": 1,
        "seed_summary": 1,
        "figure_quant": 1,
        "figure15": 1,
        **LAST,
    }


@pytest.mark.parametrize(
    "option, value", [("elbo.samples", 3), ("elbo.seed", 5), ("theorem1.top_k", 4)]
)
def test_an_evaluation_option_reruns_evaluation_and_after_never_training(completed, option, value):
    plan = completed.plan(with_option(completed.config, option, value))
    n_archs = len(completed.config["model"]["architectures"])
    assert plan == {
        "evaluate": n_archs,
        "evaluate_mini": 1,
        "figure3": 1,
        **AFTER_EVALUATE,
        **SAMPLES(n_archs),
    }


# What a samples setting reruns: the samples of every model and the tables after them.
AFTER_SAMPLES = {
    "figure14": 1,
    "tables": 1,
    "summary_table": 1,
    "seed_summary": 1,
    "figure_quant": 1,
    "figure15": 1,
    **LAST,
}


def SAMPLES(n_archs):  # noqa: N802 - reads as the constant it stands for
    return {"samples": n_archs, "samples_mini": 1}


@pytest.mark.parametrize(
    "option, value",
    [
        ("samples.n", 50),
        ("samples.seed", 4),
        ("samples.top_k", 2),
        ("samples.figure_images", 8),
        ("samples.ct_cells", 3),
        ("samples.ct_pca_dims", 6),
        ("samples.ct_min_per_cell", 4),
    ],
)
def test_a_samples_option_reruns_only_the_samples_and_the_tables(completed, option, value):
    plan = completed.plan(with_option(completed.config, option, value))
    n_archs = len(completed.config["model"]["architectures"])
    assert plan == {**SAMPLES(n_archs), **AFTER_SAMPLES}


def test_a_classifier_option_reruns_the_classifier_samples_and_tables(completed):
    cfg = completed.config
    plan = completed.plan(with_option(cfg, "samples.classifier.seed", 1))
    n_archs = len(cfg["model"]["architectures"])
    assert plan == {"classifier": 1, **SAMPLES(n_archs), **AFTER_SAMPLES}


@pytest.mark.parametrize(
    "option, value",
    [
        ("theorem1.chunk_mb", 64),
        ("theorem1.device", "auto"),
        ("training.device", "auto"),
        ("training.snapshot_every", 3),
        ("training.cuda_graphs", True),
    ],
)
def test_a_speed_only_setting_reruns_nothing(completed, option, value):
    assert completed.plan(with_option(completed.config, option, value)) == {}


@pytest.mark.parametrize(
    "module, expected",
    [
        # the model: training of every model and everything after (not the data)
        (
            "model.py",
            lambda n: {
                "train_sweep": n,
                "train_mini": 1,
                "evaluate": n,
                "evaluate_mini": 1,
                "figure3": 1,
                **AFTER_EVALUATE,
                **SAMPLES(n),
                "classifier": 1,
            },
        ),
        # (the figures import model.py and theorem1.py too: Figure 3 draws the weight map)
        # the Theorem 1 engine: evaluation and after (and Figure 3, which draws its weight map)
        (
            "theorem1.py",
            lambda n: {
                "evaluate": n,
                "evaluate_mini": 1,
                "figure3": 1,
                **AFTER_EVALUATE,
                **SAMPLES(n),
            },
        ),
        (
            "elbo.py",
            lambda n: {
                "evaluate": n,
                "evaluate_mini": 1,
                "figure3": 1,
                **AFTER_EVALUATE,
                **SAMPLES(n),
            },
        ),
        # the samples stage's own modules: the samples (and the classifier) and the tables
        ("samples.py", lambda n: {**SAMPLES(n), **AFTER_SAMPLES}),
        ("ct.py", lambda n: {**SAMPLES(n), **AFTER_SAMPLES}),
        ("pixel_nn.py", lambda n: {**SAMPLES(n), **AFTER_SAMPLES}),
        ("classifier.py", lambda n: {"classifier": 1, **SAMPLES(n), **AFTER_SAMPLES}),
        # the tables: the tables and what reads them
        (
            "tables.py",
            lambda n: {
                "tables": 1,
                "summary_table": 1,
                "seed_summary": 1,
                "figure_quant": 1,
                "figure15": 1,
                **LAST,
            },
        ),
    ],
)
def test_editing_a_stage_module_reruns_that_stage_and_what_follows(completed, module, expected):
    n_archs = len(completed.config["model"]["architectures"])
    with edited(completed.repo / "src" / "vae_novelty" / module):
        assert completed.plan() == expected(n_archs)
    assert completed.plan() == {}


def test_new_modification_times_alone_rerun_nothing(completed):
    """A git checkout or a copy that only changes mtimes: every module and script newer than
    every output, with the same content."""
    files = [
        p
        for d in ("src", "workflow", "resources")
        for p in (completed.repo / d).rglob("*")
        if p.is_file()
    ]
    stats = {p: p.stat() for p in files}
    later = time.time() + 3600
    try:
        for p in files:
            os.utime(p, (later, later))
        assert completed.plan() == {}
    finally:
        for p, st in stats.items():
            os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_a_moved_checkout_with_its_results_reruns_nothing(completed, tmp_path):
    moved = tmp_path / "elsewhere" / "checkout"
    shutil.copytree(
        completed.tmp, moved, symlinks=True, ignore=shutil.ignore_patterns("config.yaml")
    )  # copy2 keeps mtimes
    path = moved / "config.yaml"
    path.write_text(yaml.safe_dump(completed.config, sort_keys=False))
    proc = run_snakemake(
        moved / "work",
        "--dry-run",
        "--cores",
        "2",
        configfile=path,
        snakefile=moved / "repo" / "Snakefile",
    )
    assert job_counts(proc.stdout + proc.stderr) == {}


def test_new_content_of_an_mnist_file_reruns_the_data_stage(completed):
    with edited(completed.repo / "resources" / "mnist" / "SHA256SUMS"):
        plan = completed.plan()
    assert plan["prepare_mnist"] == 1 and plan["train_sweep"] >= 1
    assert completed.plan() == {}
