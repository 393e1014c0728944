"""Issue 23: results that vouch only for themselves. Every deliverable is a target, damaged or
foreign files are refused by name, the run record and the report are read from the artefacts,
a model trained with other settings is never used silently, finished models survive a
sibling's failure."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import REPO, TINY, run_snakemake


def _copy_run(tiny_run: Path, tmp_path: Path) -> Path:
    work = tmp_path / "work"
    shutil.copytree(tiny_run, work, symlinks=True)  # copy2: modification times kept
    return work


@pytest.mark.slow
def test_every_deleted_deliverable_is_remade(tiny_run, tmp_path):
    """A posterior file, a Theorem 1 image array, a training history and a samples image array
    deleted after a complete run are remade by a plain run (before: "Nothing to be done")."""
    work = _copy_run(tiny_run, tmp_path)
    res = work / "results"
    deleted = [
        res / "posteriors" / "h64" / "no9_s0.parquet",
        res / "theorem1" / "h64-32-16" / "full_s0.npz",
        res / "models" / "mini" / "mini_s0.history.csv",
        res / "samples" / "h64" / "full_s0.npz",
    ]
    for path in deleted:
        assert path.exists()
        path.unlink()
    dry = run_snakemake(work, "--dry-run")
    assert "Nothing to be done" not in dry.stdout + dry.stderr
    run_snakemake(work, "--cores", "2")
    assert all(p.exists() for p in deleted)
    dry = run_snakemake(work, "--dry-run")
    assert "Nothing to be done" in dry.stdout + dry.stderr


# --------------------------------------------------------------------------- damaged inputs


def _figure_files(tmp_path):
    from test_figures import theorem1_table, write_model_files

    return write_model_files(
        theorem1_table("m0.no9.s0", "m0", "4", "no9", (9,), per_label=4), tmp_path / "m0"
    )


def test_theorem1_columns_of_the_figures_equal_the_table_schema():
    from vae_novelty.figures.loaders import THEOREM1_COLUMNS
    from vae_novelty.theorem1_table import table_schema

    assert THEOREM1_COLUMNS == tuple(table_schema().names)


@pytest.mark.parametrize("change", ["missing", "extra"])
def test_a_table_with_a_missing_or_extra_column_is_refused_by_name(tmp_path, change):
    """Read by the figures (and by the tables rule): a Theorem 1 table with a column too few or
    too many is refused naming the file and the column (before: a KeyError naming neither)."""
    import pyarrow.parquet as pq

    from vae_novelty.figures.loaders import read_table
    from vae_novelty.tables import read_theorem1

    table, _ = _figure_files(tmp_path)
    arrow = pq.read_table(table)
    meta = arrow.schema.metadata
    if change == "missing":
        arrow = arrow.drop_columns(["perplexity"])
        want = r"m0\.parquet: missing column\(s\) \['perplexity'\], unexpected column\(s\) \[\]"
    else:
        arrow = arrow.append_column("perplexity_2", arrow["perplexity"])
        want = r"m0\.parquet: missing column\(s\) \[\], unexpected column\(s\) \['perplexity_2'\]"
    pq.write_table(arrow.replace_schema_metadata(meta), table)
    with pytest.raises(ValueError, match=want):
        read_table(table, "m0.no9.s0")
    with pytest.raises(ValueError, match=want):
        read_theorem1(table, "m0.no9.s0")


def test_a_truncated_table_or_image_array_is_refused_by_name(tmp_path):
    from vae_novelty.data import DataError
    from vae_novelty.elbo import read_elbo
    from vae_novelty.figures.loaders import read_arrays, read_table

    table, arrays = _figure_files(tmp_path)
    read_table(table, "m0.no9.s0")
    read_arrays(arrays, "m0.no9.s0")
    for path in (table, arrays):
        data = Path(path).read_bytes()
        Path(path).write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"m0\.parquet: cannot read the table \(truncated"):
        read_table(table, "m0.no9.s0")
    with pytest.raises(ValueError, match=r"m0\.parquet: cannot read the table"):
        read_elbo(table)
    with pytest.raises(DataError, match=r"m0\.npz: cannot read the Theorem 1 image arrays"):
        read_arrays(arrays, "m0.no9.s0")


# --------------------------------------------------------------------------- parse time


def test_a_missing_checksums_file_is_refused_naming_the_key(tmp_path):
    from vae_novelty.data import checksums_problem

    assert checksums_problem(None) is None
    assert checksums_problem(REPO / "resources" / "mnist" / "SHA256SUMS") is None
    problem = checksums_problem(tmp_path / "SUMS")
    assert problem.startswith("config key data.checksums: ") and "SUMS does not exist" in problem
    assert "is a folder" in checksums_problem(tmp_path)


@pytest.mark.slow  # snakemake --dry-run
def test_a_missing_checksums_file_stops_the_run_at_parse_time(tmp_path):
    cfg = yaml.safe_load(TINY.read_text())
    cfg["data"]["checksums"] = "resources/mnist/NO-SUCH-SUMS"
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = run_snakemake(tmp_path, "--dry-run", configfile=path, check=False, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "config key data.checksums: " in out and "NO-SUCH-SUMS does not exist" in out
    assert "FileNotFoundError" not in out
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("value", [0.5, 0, -1])
def test_chunk_mb_below_one_is_refused_by_the_schema(value):
    """Before: 0.5 passed the schema and failed as "chunk_mb must be positive, got 0.0" after
    the evaluate job had deleted that architecture's files (the resource is an integer)."""
    from vae_novelty import config as vcfg

    cfg = yaml.safe_load(TINY.read_text())
    cfg["theorem1"]["chunk_mb"] = value
    with pytest.raises(
        vcfg.ConfigError,
        match=rf"theorem1\.chunk_mb: {value}\S* is less than "
        r"the minimum of 1",
    ):
        vcfg.load_config(cfg)
    cfg["theorem1"]["chunk_mb"] = 1
    assert vcfg.load_config(cfg)["theorem1"]["chunk_mb"] == 1


# --------------------------------------------------------------------------- seed summary


@pytest.mark.parametrize("column", ["frac_closer_to_mu", "perplexity_median"])
def test_nan_in_a_statistic_that_is_never_nan_is_refused(column):
    """A NaN in frac_closer_to_mu or perplexity_median for every seed of a configuration (before:
    an empty mean in summary_by_config.csv) is refused naming the file, column and models."""
    from test_seeds import summary_frame
    from vae_novelty.seeds import pool_heldout, summarise_seeds

    df = summary_frame()
    summarise_seeds(df, 50, 0.95, 0, source="s.csv")
    df.loc[df.model_id.str.startswith("h3.no9."), column] = np.nan
    want = (
        rf"s\.csv: column {column} is NaN for h3\.no9\.s0, h3\.no9\.s1, h3\.no9\.s2; it is "
        r"never NaN"
    )
    with pytest.raises(ValueError, match=want):
        summarise_seeds(df, 50, 0.95, 0, source="s.csv")
    with pytest.raises(ValueError, match=rf"column {column} is NaN for h3\.no9\.s0"):
        pool_heldout(df, source="s.csv")


# --------------------------------------------------------------------------- architectures


def _tiny():
    return yaml.safe_load(TINY.read_text())


def test_the_order_of_the_architectures_changes_nothing():
    """model.architectures in another order: the same loaded config (same order of models,
    same run record), so nothing reruns (before: tables and figures reran)."""
    from vae_novelty import config as vcfg

    base = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    loaded = vcfg.load_config(base)
    assert list(loaded["model"]["architectures"]) == list(base["model"]["architectures"])
    shuffled = dict(reversed(list(base["model"]["architectures"].items())))
    other = vcfg.load_config({**base, "model": {**base["model"], "architectures": shuffled}})
    assert list(other["model"]["architectures"]) == list(loaded["model"]["architectures"])
    assert other == loaded and vcfg.model_grid(other) == vcfg.model_grid(loaded)
    # the canonical order: depth, then widths, then name
    cfg = _tiny()
    cfg["model"]["architectures"] = {"b": [8, 4], "z": [9], "a": [8], "c": [4, 8]}
    cfg["model"].update(shallow="z", deep="b")
    assert list(vcfg.load_config(cfg)["model"]["architectures"]) == ["a", "z", "c", "b"]


def test_model_only_runs_a_subset_and_names_what_is_wrong():
    from vae_novelty import config as vcfg

    cfg = _tiny()
    cfg["model"]["architectures"]["h8"] = [8]
    cfg["model"].update(only=["h8"], shallow="h8", deep="h8")
    out = vcfg.load_config(cfg)
    assert out["model"]["architectures"] == {"h8": [8]}
    assert {m.arch for m in vcfg.model_grid(out)} == {"h8", "mini"}
    cfg["model"].update(only=["h8", "h9"], deep="h64-32-16")
    with pytest.raises(vcfg.ConfigError) as err:
        vcfg.load_config(cfg)
    assert "config key model.only.1: 'h9' is not one of model.architectures" in str(err.value)
    assert "config key model.deep: 'h64-32-16' is not among model.only (h8, h9)" in str(err.value)


def test_a_merged_architectures_override_is_named():
    from vae_novelty import config as vcfg

    cfg = _tiny()
    cfg["model"]["architectures"]["h8"] = [8]
    loaded = vcfg.load_config(cfg)
    note = vcfg.merged_architectures_note({"model": {"architectures": {"h8": [8]}}}, loaded)
    assert "this run has h8 and also h64, h64-32-16" in note
    assert "--config 'model={only: [h8]}'" in note
    assert vcfg.merged_architectures_note({"training": {"epochs": 3}}, loaded) is None
    assert vcfg.merged_architectures_note({}, loaded) is None


@pytest.mark.slow  # two snakemake --dry-run
def test_subset_and_merge_warning_through_snakemake(tmp_path):
    proc = run_snakemake(
        tmp_path, "--dry-run", "--config", "model={only: [h64], deep: h64}", timeout=900
    )
    out = proc.stdout + proc.stderr
    assert "train_sweep          1" in out and "h64-32-16" not in out
    proc = run_snakemake(
        tmp_path, "--dry-run", "--config", "model={architectures: {h8: [8]}}", timeout=900
    )
    assert (
        "warning: --config model.architectures is merged into the configured architectures"
        in proc.stderr
    )
    assert "train_sweep          3" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_architectures_in_another_order_rerun_nothing(tiny_run, tmp_path):
    cfg = _tiny()
    cfg["model"]["architectures"] = dict(reversed(list(cfg["model"]["architectures"].items())))
    path = tmp_path / "reordered.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    dry = run_snakemake(tiny_run, "--dry-run", configfile=path)
    assert "Nothing to be done" in dry.stdout + dry.stderr


# --------------------------------------------------------------------------- run record


@pytest.mark.parametrize(
    "text",
    ["format: [unclosed\n", "just text\n", "", "format: vae-novelty-run-record/1\nconfig: 3\n"],
)
def test_a_damaged_run_record_is_named(tmp_path, text):
    from vae_novelty.run_record import RecordError, read_record, record_problem, report_problem

    path = tmp_path / "run_record.yaml"
    assert record_problem(path) is None  # absent: nothing to rebuild
    path.write_text(text)
    with pytest.raises(
        RecordError,
        match=r"run_record\.yaml: (damaged run record|not a run "
        r"record).*a plain run rebuilds it",
    ):
        read_record(path)
    assert "run_record.yaml: " in record_problem(path)
    problem = report_problem(path, {})
    assert "run_record.yaml: " in problem and "run the workflow with this configuration" in problem


@pytest.mark.slow
def test_a_damaged_run_record_is_refused_by_the_report_and_rebuilt_by_a_run(tiny_run, tmp_path):
    work = _copy_run(tiny_run, tmp_path)
    record = work / "results" / "run_record.yaml"
    good = record.read_text()
    record.write_text(good[: len(good) // 3] + "\n  - [unclosed")
    report = tmp_path / "r.html"
    proc = run_snakemake(work, "--report", str(report), check=False)
    assert proc.returncode != 0 and not report.exists()
    assert "run_record.yaml: damaged run record" in proc.stdout + proc.stderr
    assert "KeyError" not in proc.stdout + proc.stderr
    proc = run_snakemake(work, "--cores", "2")
    assert "run_record.yaml: damaged run record" in proc.stderr
    rebuilt = yaml.safe_load(record.read_text())
    assert rebuilt["config"] == yaml.safe_load(good)["config"]
    run_snakemake(work, "--report", str(report))
    assert report.exists()


# --------------------------------------------------------------------------- recorded settings


def _model_file(path, epochs=2, trainer="ensemble", model_id="h16.no9.s0", lr=0.001):
    from vae_novelty.model import VAE, save_model

    save_model(
        VAE([16], 8),
        path,
        model_id=model_id,
        arch="h16",
        split="no9",
        seed=0,
        train_config={
            "hidden": [16],
            "z_dim": 8,
            "epochs": epochs,
            "batch_size": 64,
            "learning_rate": lr,
            "seed": 0,
        },
        trainer=trainer,
        data="0123456789abcdef",
    )
    return path


def _cfg_h16(epochs=2):
    from vae_novelty import config as vcfg

    cfg = _tiny()
    cfg["model"]["architectures"] = {"h16": [16], "h16-8": [16, 8]}
    cfg["model"].update(shallow="h16", deep="h16-8")
    cfg["training"]["epochs"] = epochs
    return vcfg.load_config(cfg)


def test_the_record_of_a_model_file_is_read_without_torch_and_equals_torch_load(tmp_path):
    from vae_novelty.model import load_model
    from vae_novelty.recorded import read_model_meta

    path = _model_file(tmp_path / "m.pt")
    record = read_model_meta(path)
    assert record["meta"] == load_model(path)[1]
    assert record["hidden"] == [16] and record["z_dim"] == 8


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_an_unreadable_model_file_is_named(tmp_path, damage):
    from vae_novelty.recorded import RecordedError, model_mismatches, read_model_meta

    path = _model_file(tmp_path / "m.pt")
    data = path.read_bytes()
    path.write_bytes(
        {"truncated": data[: len(data) // 2], "garbage": b"x" * 500, "empty": b""}[damage]
    )
    with pytest.raises(RecordedError, match=r"m\.pt: cannot read the model file's record"):
        read_model_meta(path)
    [line] = model_mismatches(path, "h16.no9.s0", {})
    assert "m.pt: cannot read" in line


def test_a_model_trained_with_other_settings_is_named_with_key_and_both_values(tmp_path):
    from vae_novelty.recorded import model_mismatches, requested_training

    path = _model_file(tmp_path / "m.pt", epochs=2)
    assert model_mismatches(path, "h16.no9.s0", requested_training("h16", _cfg_h16(2))) == []
    assert model_mismatches(path, "h16.no9.s0", requested_training("h16", _cfg_h16(3))) == [
        f"{path} (h16.no9.s0): training.epochs is 2 in the file, 3 requested"
    ]
    lines = model_mismatches(
        _model_file(tmp_path / "s.pt", trainer="sequential", lr=0.01),
        "h16.no9.s0",
        requested_training("h16", _cfg_h16(2)),
    )
    assert lines == [
        f"{tmp_path / 's.pt'} (h16.no9.s0): training.learning_rate is 0.01 in the "
        f"file, 0.001 requested",
        f"{tmp_path / 's.pt'} (h16.no9.s0): training.ensemble is 'sequential' in "
        f"the file, 'ensemble' requested",
    ]
    assert model_mismatches(path, "h16.no9.s0", {}, data="fedcba9876543210") == [
        f"{path} (h16.no9.s0): trained on data 0123456789abcdef, this run's data is "
        f"fedcba9876543210"
    ]
    assert model_mismatches(path, "h16.no8.s0", {}) == [
        f"{path} (h16.no8.s0): holds model 'h16.no9.s0'"
    ]
    # the mini model's keys
    mini = requested_training("mini", _cfg_h16())
    assert mini["epochs"][0] == "training.mini_epochs" and mini["hidden"][0] == "model.mini.hidden"


def test_stale_models_names_only_existing_files_of_other_settings(tmp_path):
    """The workflow's check before planning (train.smk): missing files are not stale, a file
    of the requested settings is not, one of other settings is, with its differences."""
    from vae_novelty.config import ModelSpec
    from vae_novelty.recorded import stale_models

    spec = ModelSpec("h16", (16,), 8, "no9", 0)
    good, bad = _model_file(tmp_path / "good.pt"), _model_file(tmp_path / "bad.pt", epochs=5)
    files = {str(good): spec, str(tmp_path / "missing.pt"): spec, str(bad): spec}
    assert stale_models(files, _cfg_h16(2)) == {
        str(bad): [f"{bad} (h16.no9.s0): training.epochs is 5 in the file, 2 requested"]
    }
    assert list(stale_models(files, _cfg_h16(5))) == [str(good)]
    assert stale_models({}, _cfg_h16(2)) == {}


@pytest.mark.slow
def test_models_of_other_settings_are_retrained_even_without_snakemake_metadata(tiny_run, tmp_path):
    """Delete .snakemake/ (as people do to clear a lock), change training.epochs 2 -> 3: before,
    "Nothing to be done" and the 2-epoch models stood for a 3-epoch request. Now the training
    jobs rerun, named in a warning; --report with the new setting refuses before that."""
    work = _copy_run(tiny_run, tmp_path)
    shutil.rmtree(work / ".snakemake")
    # a record that claims 3 epochs (e.g. rewritten by a run over another run's files): the
    # report reads the model files and refuses
    record_path = work / "results" / "run_record.yaml"
    record = yaml.safe_load(record_path.read_text())
    record["config"]["training"]["epochs"] = 3
    record_path.write_text(yaml.safe_dump(record, sort_keys=False))
    report = tmp_path / "r.html"
    proc = run_snakemake(
        work, "--report", str(report), "--config", "training={epochs: 3}", check=False
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and not report.exists()
    assert "the model files do not hold the models this configuration requests" in out
    assert (
        "results/models/h64/no9_s0.pt (h64.no9.s0): training.epochs is 2 in the file, 3 requested"
    ) in out
    model = work / "results" / "models" / "h64" / "no9_s0.pt"
    before = model.stat().st_mtime
    dry = run_snakemake(work, "--dry-run", "--config", "training={epochs: 3}")
    assert (
        "warning: a real run retrains, results/models/h64/no9_s0.pt (h64.no9.s0): "
        "training.epochs is 2 in the file, 3 requested"
    ) in dry.stderr
    assert model.stat().st_mtime == before  # a preview changes nothing
    real = run_snakemake(work, "--cores", "2", "--config", "training={epochs: 3}")
    assert (
        "warning: retraining, results/models/h64/no9_s0.pt (h64.no9.s0): training.epochs "
        "is 2 in the file, 3 requested"
    ) in real.stderr
    assert "train_sweep          2" in real.stdout + real.stderr


# --------------------------------------------------------------------------- sibling failure


def test_a_diverging_model_is_named_by_the_sequential_trainer():
    """Before: 'training diverged: training negative ELBO is nan at epoch 1' named no model."""
    import torch

    from vae_novelty.hyperparams import TrainSettings
    from vae_novelty.train import TrainingDiverged, train_vae

    x = torch.rand(40, 784)
    x[3, 5] = float("nan")
    with pytest.raises(
        TrainingDiverged,
        match=r"^h64\.no9\.s0: training diverged: training "
        r"negative ELBO is nan at epoch 1",
    ):
        train_vae(
            x, torch.rand(8, 784), TrainSettings([8], 2, 1, 16, 1e-3), seed=0, tag="h64.no9.s0"
        )


def test_a_finished_model_survives_its_siblings_failure(tmp_path, monkeypatch, caplog):
    """Sequential trainer: h16.full.s0 finishes, h16.no9.s0 fails. The error names no9; the
    finished model's completed snapshot stays, so after Snakemake deletes the job's outputs the
    rerun trains no epoch of it and writes the same model (before: retrained from epoch 1)."""
    import logging

    import torch
    from test_ensemble import _jobs, _splits

    from vae_novelty import training_jobs as tj
    from vae_novelty.data import Mnist
    from vae_novelty.hyperparams import TrainSettings
    from vae_novelty.model import load_model

    rng = np.random.default_rng(0)
    labels = (np.arange(300) % 10).astype(np.uint8)
    images = (rng.random((300, 784)) * 255).astype(np.uint8)
    mnist = Mnist(images, labels, images[:40].copy(), labels[:40].copy())
    settings = TrainSettings((16,), 2, epochs=3, batch_size=64, learning_rate=1e-3)
    jobs = _jobs(tmp_path / "models", ["full", "no9"])
    (tmp_path / "models").mkdir()
    snaps = tmp_path / "snapshots"
    cpu = torch.device("cpu")
    real = tj.train_vae

    def failing(*args, tag="", **kwargs):
        if tag.endswith("no9.s0"):
            raise RuntimeError("out of memory (simulated)")
        return real(*args, tag=tag, **kwargs)

    monkeypatch.setattr(tj, "train_vae", failing)
    with (
        caplog.at_level(logging.INFO, logger="vae_novelty"),
        pytest.raises(RuntimeError, match="out of memory") as err,
    ):
        tj.train_jobs(
            mnist,
            _splits(mnist),
            jobs,
            settings,
            arch="h16",
            device=cpu,
            snapshot_dir=snaps,
            snapshot_every=0,
        )
    assert "while training model h16.no9.s0" in err.value.__notes__
    assert "h16.no9.s0: training failed (RuntimeError: out of memory (simulated))" in caplog.text
    caplog.clear()
    first = jobs[0].model_path.read_bytes()
    assert (snaps / "full_s0.pt").exists()  # the completed snapshot
    for job in jobs:  # what Snakemake does
        for p in (job.model_path, job.history_path):
            p.unlink(missing_ok=True)
    monkeypatch.setattr(tj, "train_vae", real)
    with caplog.at_level(logging.INFO, logger="vae_novelty"):
        tj.train_jobs(
            mnist,
            _splits(mnist),
            jobs,
            settings,
            arch="h16",
            device=cpu,
            snapshot_dir=snaps,
            snapshot_every=0,
        )
    text = caplog.text
    assert "h16.full.s0 resumed from snapshot" in text and "at epoch 4" in text
    assert "h16.full.s0 epoch" not in text  # no epoch trained again
    assert "h16.no9.s0 epoch 3/3" in text
    a, _ = load_model(jobs[0].model_path)
    b_path = tmp_path / "first.pt"
    b_path.write_bytes(first)
    b, _ = load_model(b_path)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    assert not any(snaps.iterdir())  # removed once the job succeeded


def test_the_run_record_is_assembled_from_the_model_files(tmp_path):
    """The record's models section is what each model file records; a file that disagrees
    with the configuration or the data stops the record, naming file, model, key and values
    (before: the record was the command line's configuration, whatever the files held)."""
    from vae_novelty import config as vcfg
    from vae_novelty.run_record import build_record, model_records, results_config

    folder = tmp_path / "models" / "h16"
    folder.mkdir(parents=True)
    path = _model_file(folder / "no9_s0.pt", epochs=2)
    cfg = results_config(_cfg_h16(2), vcfg.read_schema())
    models = model_records([path], cfg, "0123456789abcdef")
    assert models == {
        "h16.no9.s0": {
            "hidden": [16],
            "z_dim": 8,
            "epochs": 2,
            "batch_size": 64,
            "learning_rate": 0.001,
            "trainer": "ensemble",
            "data": "0123456789abcdef",
        }
    }
    assert build_record(cfg, "0123456789abcdef", models)["models"] == models
    with pytest.raises(
        ValueError,
        match=r"disagree with the configuration of this run:\n  "
        r".*no9_s0\.pt \(h16\.no9\.s0\): training\.epochs is 2 "
        r"in the file, 3 requested",
    ):
        model_records([path], results_config(_cfg_h16(3), vcfg.read_schema()), "0123456789abcdef")
    with pytest.raises(
        ValueError,
        match=r"trained on data 0123456789abcdef, this run's data "
        r"is fedcba9876543210",
    ):
        model_records([path], cfg, "fedcba9876543210")


def test_a_finished_ensemble_member_survives_its_siblings_divergence(tmp_path, monkeypatch, caplog):
    """Ensemble trainer (the default): h16.no9.s0 diverges, h16.full.s0 trains to the end.
    The error names no9 only; full's model is written and kept (``full_s0.finished.pt``), so
    after Snakemake deletes the job's outputs the rerun trains no step of it and writes the
    same weights (before: the job failed at once, full's state was lost and the rerun trained
    it from epoch 1). A kept member of other settings is discarded and retrained."""
    import logging

    import torch
    from test_ensemble import _jobs, _splits

    from vae_novelty import ensemble as ens
    from vae_novelty import training_jobs as tj
    from vae_novelty.data import Mnist
    from vae_novelty.model import load_model
    from vae_novelty.train import TrainingDiverged

    rng = np.random.default_rng(0)
    labels = (np.arange(300) % 10).astype(np.uint8)
    images = (rng.random((300, 784)) * 255).astype(np.uint8)
    mnist = Mnist(images, labels, images[:40].copy(), labels[:40].copy())
    settings = tj.TrainSettings((16,), 2, epochs=3, batch_size=64, learning_rate=1e-3)
    jobs = _jobs(tmp_path / "models", ["full", "no9"])
    (tmp_path / "models").mkdir()
    snaps = tmp_path / "snapshots"
    cpu = torch.device("cpu")
    real_check = ens.check_finite

    def no9_diverges(value, epoch, what, tag=""):  # as a NaN loss of no9 would
        return real_check(float("nan") if tag.endswith("no9.s0") else value, epoch, what, tag)

    steps = []
    real_step = ens._EnsembleRun.step

    def counting(self, gidx, eps, weight, active):
        steps.append([m.tag for m in self.members])
        return real_step(self, gidx, eps, weight, active)

    monkeypatch.setattr(ens._EnsembleRun, "step", counting)
    monkeypatch.setattr(ens, "check_finite", no9_diverges)
    with (
        caplog.at_level(logging.INFO, logger="vae_novelty"),
        pytest.raises(TrainingDiverged) as err,
    ):
        tj.train_ensemble_jobs(
            mnist,
            _splits(mnist),
            jobs,
            settings,
            arch="h16",
            device=cpu,
            snapshot_dir=snaps,
            snapshot_every=1,
        )
    message = str(err.value)
    assert (
        message.startswith(
            "h16.no9.s0: training diverged: training negative ELBO is nan at epoch 1"
        )
        and "full" not in message
    )
    assert err.value.__notes__ == [
        "finished and kept for the rerun (not trained again): h16.full.s0"
    ]
    assert "h16.full.s0 epoch 3/3" in caplog.text  # full trained to the end
    assert (snaps / "full_s0.finished.pt").exists() and not (snaps / "no9_s0.finished.pt").exists()
    assert not (snaps / "ensemble.pt").exists()
    first, _ = load_model(jobs[0].model_path)
    assert not jobs[1].model_path.exists()
    for job in jobs:  # what Snakemake does
        for p in (job.model_path, job.history_path):
            p.unlink(missing_ok=True)

    monkeypatch.setattr(ens, "check_finite", real_check)
    steps.clear()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="vae_novelty"):
        tj.train_ensemble_jobs(
            mnist,
            _splits(mnist),
            jobs,
            settings,
            arch="h16",
            device=cpu,
            snapshot_dir=snaps,
            snapshot_every=1,
        )
    assert "h16.full.s0: finished by an earlier run of this job" in caplog.text
    assert "h16.full.s0 epoch" not in caplog.text  # no epoch of full trained again
    assert steps and all(tags == ["h16.no9.s0"] for tags in steps)  # not a step of full
    assert "h16.no9.s0 epoch 3/3" in caplog.text
    again, meta = load_model(jobs[0].model_path)
    assert meta["trainer"] == "ensemble" and meta["train_config"]["epochs"] == 3
    for p, q in zip(first.parameters(), again.parameters()):
        assert torch.equal(p, q)
    assert jobs[1].model_path.exists() and not any(snaps.iterdir())

    # a kept member of other settings is never used: discarded, and full trains again
    monkeypatch.setattr(ens, "check_finite", no9_diverges)
    with pytest.raises(TrainingDiverged):
        tj.train_ensemble_jobs(
            mnist,
            _splits(mnist),
            jobs,
            settings,
            arch="h16",
            device=cpu,
            snapshot_dir=snaps,
            snapshot_every=1,
        )
    monkeypatch.setattr(ens, "check_finite", real_check)
    longer = tj.TrainSettings((16,), 2, epochs=4, batch_size=64, learning_rate=1e-3)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="vae_novelty"):
        tj.train_ensemble_jobs(
            mnist,
            _splits(mnist),
            jobs,
            longer,
            arch="h16",
            device=cpu,
            snapshot_dir=snaps,
            snapshot_every=1,
        )
    assert "discarding snapshot" in caplog.text and "epochs differ" in caplog.text
    assert "h16.full.s0 epoch 4/4" in caplog.text


# --------------------------------------------------------------------------- figure settings


def test_figure_settings_are_compared_naming_file_key_and_both_values(tmp_path):
    """A settings file (what a figure or table rule made its files with) against the rule's
    params under a configuration: each difference names the file, the rule, the setting, its
    configuration key (when one can tell) and both values; the code digest is not a setting."""
    from vae_novelty.recorded import (
        RecordedError,
        read_settings,
        settings_mismatches,
        write_settings,
    )

    params = {
        "code": "abc",
        "grid_size": 40,
        "extent": 5.0,
        "hidden": (64, 32),
        "figures": {9: 4},
        "seed": 0,
    }
    cfg = {"figures": {"figure3": {"grid_size": 40}}, "elbo": {"seed": 0}, "seeds_ci": {"seed": 0}}
    path = tmp_path / "figure3.settings.json"
    write_settings(path, "figure3", params)
    assert read_settings(path)["settings"] == {
        "grid_size": 40,
        "extent": 5.0,
        "hidden": [64, 32],
        "figures": {"9": 4},
        "seed": 0,
    }
    assert settings_mismatches(path, "figure3", params, cfg) == []
    assert settings_mismatches(path, "figure3", {**params, "code": "other"}, cfg) == []
    cfg50 = {"figures": {"figure3": {"grid_size": 50}}}
    assert settings_mismatches(path, "figure3", {**params, "grid_size": 50}, cfg50) == [
        f"{path} (figure3): grid_size (config key figures.figure3.grid_size) is 40 in the "
        f"file, 50 in this configuration"
    ]
    # a key that cannot be told apart (two config keys named seed with that value): the
    # setting alone is named
    assert settings_mismatches(path, "figure3", {**params, "seed": 0, "extent": 6.0}, cfg) == [
        f"{path} (figure3): extent is 5.0 in the file, 6.0 in this configuration"
    ]
    assert settings_mismatches(
        path, "figure3", {**params, "seed": 1}, {"elbo": {"seed": 1}, "seeds_ci": {"seed": 1}}
    ) == [f"{path} (figure3): seed is 0 in the file, 1 in this configuration"]
    lines = settings_mismatches(
        path,
        "figure3",
        {
            "grid_size": 40,
            "extent": 5.0,
            "hidden": [64, 32],
            "figures": {"9": 4},
            "seed": 0,
            "cmap": "viridis",
        },
    )
    assert lines == [f"{path} (figure3): setting cmap not in the file, 'viridis' now"]
    assert settings_mismatches(path, "figure1", params) == [
        f"{path}: records the settings of rule 'figure3', not 'figure1'"
    ]
    missing = tmp_path / "none.settings.json"
    assert (
        "does not exist: the files of this rule record no settings"
        in settings_mismatches(missing, "figure3", params)[0]
    )
    path.write_text(path.read_text()[:20])
    with pytest.raises(RecordedError, match="figure3.settings.json: cannot read the settings"):
        read_settings(path)


@pytest.mark.slow
def test_a_figure_remade_with_another_option_is_refused_by_the_report(tiny_run, tmp_path):
    """A single-target run remakes Figure 3 with figures.figure3.grid_size 50; --report with
    the original configuration (grid 40) is refused, naming file, key and both values (before:
    the report was created, embedding the 50-point figure). A plain run remakes the figure
    (with Snakemake's metadata or without it), and then the report is created."""
    work = _copy_run(tiny_run, tmp_path)
    settings = work / "results" / "figures" / "figure3.settings.json"
    assert '"grid_size": 40' in settings.read_text()
    run_snakemake(
        work,
        "--cores",
        "1",
        "results/figures/figure3.png",
        "--config",
        "figures={figure3: {grid_size: 50}}",
    )
    assert '"grid_size": 50' in settings.read_text()
    report = tmp_path / "r.html"
    proc = run_snakemake(work, "--report", str(report), check=False)
    assert proc.returncode != 0 and not report.exists()
    assert (
        "results/figures/figure3.settings.json (figure3): grid_size (config key "
        "figures.figure3.grid_size) is 50 in the file, 40 in this configuration"
    ) in proc.stderr
    # the run record refuses to certify it too
    from vae_novelty.run_record import settings_records

    with pytest.raises(
        ValueError,
        match=r"figure3.settings.json \(figure3\): grid_size is 50 "
        r"in the file, 40 in this configuration",
    ):
        record = yaml.safe_load((work / "results" / "run_record.yaml").read_text())
        settings_records([settings], {"figure3": record["settings"]["figure3"]})
    shutil.rmtree(work / ".snakemake")  # without Snakemake's metadata
    proc = run_snakemake(work, "--cores", "2")
    assert "warning: remaking the files of figure3" in proc.stderr
    assert '"grid_size": 40' in settings.read_text()
    run_snakemake(work, "--report", str(report))
    assert report.exists()
