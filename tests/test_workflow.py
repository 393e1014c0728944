"""End to end: the tiny configuration through Snakemake, and bad input stopping it early."""

from __future__ import annotations


import numpy as np
import pytest
import yaml

from conftest import TINY, run_snakemake
from vae_novelty import config as vcfg
from vae_novelty.splits import load_split
from vae_novelty.model import load_model
from vae_novelty.posterior import read_posteriors

pytestmark = pytest.mark.slow


def tiny_cfg():
    return vcfg.load_config(yaml.safe_load(TINY.read_text()))


def test_every_model_and_posterior_file_is_written(tiny_run):
    cfg = tiny_cfg()
    for spec in vcfg.model_grid(cfg):
        model, meta = load_model(
            tiny_run / f"results/models/{spec.stem}.pt",
            expect_hidden=spec.hidden,
            expect_z_dim=spec.z_dim,
        )
        assert meta["model_id"] == spec.model_id
        history = (tiny_run / f"results/models/{spec.stem}.history.csv").read_text().splitlines()
        epochs = (
            cfg["training"]["mini_epochs"] if spec.split == "mini" else cfg["training"]["epochs"]
        )
        assert history[0] == "epoch,train_neg_elbo,test_neg_elbo" and len(history) == epochs + 1
        split = load_split(tiny_run / f"results/splits/{spec.split}.npz")
        train, test, pmeta = read_posteriors(
            tiny_run / f"results/posteriors/{spec.stem}.parquet", expect_z_dim=spec.z_dim
        )
        assert np.array_equal(train["mnist_index"], split.train_idx)
        assert np.array_equal(test["mnist_index"], split.test_idx)
        assert pmeta["model_id"] == spec.model_id and pmeta["seed"] == spec.seed
        assert np.all(np.isfinite(train["z_mean"])) and np.all(np.isfinite(test["z_logvar"]))


def test_every_model_has_its_samples_and_the_summary_their_columns(tiny_run):
    import json

    import pandas as pd

    from vae_novelty.samples_table import read_samples
    from vae_novelty.tables import SAMPLE_COLUMNS

    cfg = tiny_cfg()
    n = cfg["samples"]["n"]
    for spec in vcfg.model_grid(cfg):
        table, meta = read_samples(
            tiny_run / f"results/samples/{spec.stem}.parquet", expect_model_id=spec.model_id
        )
        assert table.num_rows == n and meta["settings"]["n"] == n
        assert table.schema.field("z").type.list_size == spec.z_dim
        assert np.isfinite(meta["ct"]["ct"]) and meta["ct"]["cells"]
        with np.load(tiny_run / f"results/samples/{spec.stem}.npz") as npz:
            m = min(n, cfg["samples"]["figure_images"])
            assert npz["x_hat"].shape == (m, 784) and npz["mu"].shape == (m, 784)
    record = json.loads((tiny_run / "results/classifier/classifier.json").read_text())
    assert 0 < record["test_accuracy"] <= 1 and record["n_test"] == 10000
    assert (tiny_run / "results/report/classifier.html").exists()
    summary = pd.read_csv(tiny_run / "results/tables/summary.csv")
    assert set(SAMPLE_COLUMNS) <= set(summary.columns)
    held = summary[summary.split == "no9"]
    assert held.sample_heldout_frac.notna().all()
    assert summary[summary.split != "no9"].sample_heldout_frac.isna().all()
    assert summary.sample_copy_frac.between(0, 1).all() and summary.sample_ct.notna().all()
    digit_fracs = summary[[f"sample_digit_frac_{d}" for d in range(10)]].sum(1)
    np.testing.assert_allclose(digit_fracs, 1.0)
    by_config = pd.read_csv(tiny_run / "results/tables/summary_by_config.csv")
    assert "sample_copy_frac_mean" in by_config and "sample_ct_mean" in by_config


def test_logs_and_benchmarks_are_written(tiny_run):
    log = (tiny_run / "results/logs/train/mini.log").read_text()
    assert "on cpu" in log and "epoch 1/" in log
    assert (tiny_run / "results/benchmarks/train/mini.tsv").exists()
    assert (
        "verified: 60000 training and 10000 test images"
        in (tiny_run / "results/logs/data/prepare_mnist.log").read_text()
    )


def test_summary_fraction_closer_to_mu_is_recounted_from_the_theorem1_table(tiny_run):
    """The headline statistic of summary.csv, recounted image by image from the per-image
    Theorem 1 table (strictly closer: a tie does not count), and the evaluate log's value."""
    import re

    import pandas as pd

    res = tiny_run / "results"
    summary = pd.read_csv(res / "tables/summary.csv")
    per_image = pd.read_parquet(res / "tables/theorem1.parquet")
    assert len(summary) == len(vcfg.model_grid(tiny_cfg()))
    logged = {}
    for log in (res / "logs/evaluate").glob("*.log"):
        for mid, value in re.findall(
            r"(\S+): \d+ training, \d+ test images; .* closer to mu "
            r"([0-9.]+)",
            log.read_text(),
        ):
            logged[mid] = value
    for row in summary.itertuples():
        rows = per_image[per_image.model_id == row.model_id]
        assert len(rows) == row.n_test
        if not len(rows):
            assert np.isnan(row.frac_closer_to_mu)
            continue
        closer = sum(1 for m, x in zip(rows.bce_mu_xhat, rows.bce_x_xhat) if m < x)
        # (pandas' CSV reader may be one ulp off)
        assert row.frac_closer_to_mu == pytest.approx(closer / len(rows), rel=1e-12), row.model_id
        assert logged[row.model_id] == f"{closer / len(rows):.3f}", row.model_id


def test_nothing_left_to_do_after_a_complete_run(tiny_run):
    proc = run_snakemake(tiny_run, "--cores", "1", "--dry-run")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_config_typo_fails_at_parse_time(tmp_path):
    cfg = yaml.safe_load(TINY.read_text())
    cfg["training"]["epochz"] = 3
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = run_snakemake(
        tmp_path / "run", "--cores", "1", "--dry-run", configfile=path, check=False
    )
    assert proc.returncode != 0
    assert "unknown config key training.epochz" in proc.stdout + proc.stderr
    assert not (tmp_path / "run" / "results").exists()


def test_default_config_syntax_error_names_file_and_line(tmp_path):
    """Without --configfile the Snakefile reads config/config.yaml itself, so a YAML syntax
    error names the file and line (Snakemake's own message names neither)."""
    import shutil
    import subprocess

    from conftest import REPO, SNAKEMAKE

    copy = tmp_path / "repo"
    (copy / "config").mkdir(parents=True)
    shutil.copy(REPO / "Snakefile", copy)
    for name in ("src", "workflow", "profiles"):
        (copy / name).symlink_to(REPO / name)
    bad = copy / "config" / "config.yaml"
    bad.write_text("training:\n  epochs: 3\n   batch_size: 4\n")
    proc = subprocess.run(
        [
            *SNAKEMAKE,
            "-s",
            str(copy / "Snakefile"),
            "--directory",
            str(tmp_path / "run"),
            "--dry-run",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    assert f"{bad}:3:14: mapping values are not allowed here" in proc.stdout + proc.stderr


def test_corrupt_user_folder_writes_no_data(tmp_path, mnist_copy):
    target = mnist_copy / "train-labels-idx1-ubyte.gz"
    target.write_bytes(target.read_bytes()[:-100])
    cfg = yaml.safe_load(TINY.read_text())
    cfg["data"].update(source="folder", folder=str(mnist_copy))
    path = tmp_path / "folder.yaml"
    path.write_text(yaml.safe_dump(cfg))
    workdir = tmp_path / "run"
    proc = run_snakemake(
        workdir, "--cores", "1", "results/data/mnist.npz", configfile=path, check=False
    )
    assert proc.returncode != 0  # stopped while parsing: no job ran
    assert "data (folder): " in proc.stderr
    assert "train-labels-idx1-ubyte.gz: corrupt or truncated gzip" in proc.stderr
    assert not (workdir / "results/data/mnist.npz").exists()
    data_dir = workdir / "results/data"
    assert not data_dir.exists() or not any(data_dir.iterdir())


def test_the_report_describes_only_the_run_whose_results_it_embeds(tiny_run, tmp_path):
    record = yaml.safe_load((tiny_run / "results" / "run_record.yaml").read_text())
    assert record["config"]["training"]["epochs"] == 2 and len(record["data"]) == 16
    assert "device" not in record["config"]["training"]  # speed-only keys are left out
    report = tmp_path / "other.html"
    proc = run_snakemake(
        tiny_run, "--report", str(report), "--config", "training={epochs: 3}", check=False
    )
    assert proc.returncode != 0 and not report.exists()
    assert "made with another configuration than the one given now" in proc.stderr
    assert "training.epochs: 2 in the results, 3 now" in proc.stderr
    proc = run_snakemake(
        tiny_run,
        "--dry-run",
        "--report",
        str(report),
        "--report-after-run",
        "--config",
        "training={epochs: 3}",
        check=False,
    )  # reports, runs nothing
    assert proc.returncode != 0 and not report.exists()
    assert "training.epochs: 2 in the results, 3 now" in proc.stdout + proc.stderr
    proc = run_snakemake(
        tiny_run, "--report", str(report), "--config", "theorem1={chunk_mb: 64}"
    )  # speed only: the same run
    assert report.exists()


def test_report_holds_every_figure_and_table_with_captions(tiny_run):
    report = tiny_run / "report.html"
    run_snakemake(tiny_run, "--report", str(report))
    html = report.read_text(errors="replace")
    assert "run_record.yaml" in html and "Run record" in html
    assert len(html) > 100_000  # self-contained: the images are embedded
    for name in (
        "figure1.png",
        "figure2.png",
        "figure3.png",
        "figure4.png",
        "figure_quant.png",
        "summary.html",
        "summary_by_config.html",
        "classifier.html",
    ):
        assert name in html, name
    # captions are rendered with the rule's params (Figure 2's digit and bins)
    assert "is the decoder output closer to the input or to the weighted average" in html
