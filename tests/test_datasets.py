"""Other MNIST-format datasets: any folder of IDX files, its own results folder, Fashion-MNIST."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO, TINY, run_snakemake
from vae_novelty import config as vcfg
from vae_novelty.data import load_idx_folder

FASHION = Path("/usr/share/datasets/fashion-mnist")


def write_idx_folder(
    folder: Path, n_train_per_class: int, n_test_per_class: int, seed: int = 0
) -> None:
    """A small MNIST-format dataset: class c is a noisy horizontal bar at row 2c + 4."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, per_class in (("train", n_train_per_class), ("t10k", n_test_per_class)):
        labels = np.repeat(np.arange(10, dtype=np.uint8), per_class)
        rng.shuffle(labels)
        images = (rng.random((len(labels), 28, 28)) * 60).astype(np.uint8)
        for i, c in enumerate(labels):
            images[i, 2 * c + 4 : 2 * c + 7, 3:25] = 255
        with gzip.open(folder / f"{prefix}-images-idx3-ubyte.gz", "wb") as fh:
            fh.write(struct.pack(">IIII", 0x803, len(labels), 28, 28) + images.tobytes())
        with gzip.open(folder / f"{prefix}-labels-idx1-ubyte.gz", "wb") as fh:
            fh.write(struct.pack(">II", 0x801, len(labels)) + labels.tobytes())


@pytest.mark.slow
def test_any_idx_folder_runs_end_to_end_into_its_own_results_folder(tmp_path):
    data = tmp_path / "other-dataset"
    write_idx_folder(data, n_train_per_class=40, n_test_per_class=15)
    cfg = yaml.safe_load(TINY.read_text())
    cfg["results_dir"] = "results/other"
    cfg["data"].update(source="folder", folder=str(data), checksums=None)
    cfg["training"]["seeds"] = [0, 1]  # also exercises the seed intervals end to end
    path = tmp_path / "other.yaml"
    path.write_text(yaml.safe_dump(cfg))
    workdir = tmp_path / "run"
    run_snakemake(workdir, "--cores", "2", configfile=path)
    out = workdir / "results" / "other"
    assert not (workdir / "results" / "data").exists(), "outputs must go to results_dir only"
    spec = vcfg.model_grid(vcfg.load_config(cfg))[0]
    for rel in (
        "data/mnist.npz",
        f"posteriors/{spec.stem}.parquet",
        "tables/summary.csv",
        "figures/figure1.png",
        "figures/figure3.png",
        "figures/figure4.png",
        "logs/data/prepare_mnist.log",
    ):
        assert (out / rel).exists(), rel
    log = (out / "logs/data/prepare_mnist.log").read_text()
    assert "NOT verified" in log and "400 training and 150 test images" in log
    by_config = pd.read_csv(out / "tables/summary_by_config.csv", dtype={"hidden": str})
    assert set(by_config.n_seeds) == {2}
    finite = by_config.perplexity_median_ci_lo.notna() & by_config.perplexity_median_ci_hi.notna()
    assert finite.all()
    assert (by_config.perplexity_median_ci_lo <= by_config.perplexity_median_mean).all()
    assert (by_config.perplexity_median_mean <= by_config.perplexity_median_ci_hi).all()
    assert (out / "figures/figure_quant.png").exists()


def test_fashion_checksums_are_the_debian_package_files():
    sums = (REPO / "resources/fashion-mnist/SHA256SUMS").read_text().split()
    assert len(sums) == 8
    if not FASHION.is_dir():
        if os.environ.get("VAE_NOVELTY_REQUIRE_FASHION"):
            pytest.fail(f"{FASHION} is missing (apt-get install dataset-fashion-mnist)")
        pytest.skip(f"{FASHION} not installed (apt-get install dataset-fashion-mnist)")
    data = load_idx_folder(FASHION, REPO / "resources/fashion-mnist/SHA256SUMS")
    assert data.train_images.shape == (60000, 784) and data.test_images.shape == (10000, 784)
    assert np.bincount(data.train_labels).tolist() == [6000] * 10
    assert np.bincount(data.test_labels).tolist() == [1000] * 10


def test_fashion_config_is_valid_and_separate():
    cfg = vcfg.load_config(yaml.safe_load((REPO / "config/fashion.yaml").read_text()))
    assert cfg["results_dir"] == "results/fashion-mnist"
    assert cfg["data"]["folder"] == str(FASHION)
    assert cfg["data"]["checksums"] == "resources/fashion-mnist/SHA256SUMS"
