"""End to end: the tiny size sweep (tests/configs/tiny-size.yaml) through Snakemake."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import REPO, run_snakemake
from vae_novelty.size_splits import check_size_splits
from vae_novelty.splits import load_split

pytestmark = pytest.mark.slow
TINY_SIZE = REPO / "tests" / "configs" / "tiny-size.yaml"


@pytest.fixture(scope="module")
def size_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tiny-size-run")
    run_snakemake(workdir, "--cores", "2", configfile=TINY_SIZE)
    return workdir


def test_the_size_stage_runs_alone_and_writes_every_output(size_run):
    size = size_run / "results" / "size"
    table = pd.read_csv(size / "table.csv")
    # 2 architectures x 2 sizes x 2 halves x 2 seeds
    assert len(table) == 16 and table.model_id.is_unique
    assert set(table.arch) == {"h64", "h64-32-16"} and set(table.n_train) == {100, 300}
    assert (table.steps == 6).all()
    assert table.set_index("n_train").epochs.groupby(level=0).first().to_dict() == {100: 3, 300: 1}
    for column in ("frac_closer_to_mu", "copy_fraction", "agreement"):
        assert table[column].between(0, 1).all()
    assert (
        np.isfinite(table[["train_neg_elbo", "test_neg_elbo", "elbo_gap", "median_perplexity"]])
        .all()
        .all()
    )
    # C_T of every model (cells on its own subset): a finite z-score, or NaN where no cell
    # holds enough samples; a barely trained model's blurry samples are far from every image
    assert not np.isinf(table.c_t).any() and table.c_t.notna().any()
    # both halves of a pair carry the pair's agreement
    pairs = table.groupby(["arch", "n_train", "seed"]).agreement.nunique()
    assert (pairs == 1).all()
    transitions = pd.read_csv(size / "transitions.csv")
    assert len(transitions) == 4
    assert (size / "figure.png").stat().st_size > 10000
    agree = pd.read_csv(size / "agreement" / "h64.csv")
    assert len(agree) == 2 * 2 * 50  # (N, seed) pairs x test images
    splits = {p.stem: load_split(p, expect_name=p.stem) for p in (size / "splits").glob("*.npz")}
    assert sorted(splits) == ["A100", "A300", "B100", "B300"]
    check_size_splits(splits)
    # the paper's stages are not the default target here
    assert not (size_run / "results" / "models" / "h64").exists()
    assert (size_run / "results" / "run_record.yaml").exists()


def test_nothing_left_to_do_after_the_size_run(size_run):
    proc = run_snakemake(size_run, "--cores", "1", "--dry-run", configfile=TINY_SIZE)
    assert "Nothing to be done" in proc.stdout + proc.stderr
