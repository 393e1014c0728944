"""Faults and reproducibility: killed jobs, atomic writes, byte-identical reruns, devices."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from conftest import REPO, TINY, run_snakemake
from vae_novelty.io import atomic_path, select_device


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.parquet"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half a file")
            raise RuntimeError("crash while writing")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"complete")
    assert target.read_bytes() == b"complete"
    assert target.stat().st_mode & 0o777 == 0o666 & ~_umask(), "outputs must not be private"
    assert list(tmp_path.iterdir()) == [target]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message when no GPU exists")
def test_cuda_requested_without_gpu_is_a_clear_error():
    with pytest.raises(RuntimeError, match="device 'cuda' was requested .* no CUDA GPU"):
        select_device("cuda")
    assert select_device("auto").type == "cpu"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_two_cpu_runs_are_byte_identical(tiny_run, tmp_path):
    second = tmp_path / "second"
    run_snakemake(second, "--cores", "2")
    checked = 0
    for pattern in (
        "results/posteriors/**/*.parquet",
        "results/splits/*.npz",
        "results/models/**/*.history.csv",
        "results/tables/*",
    ):
        for a in sorted(tiny_run.glob(pattern)):
            b = second / a.relative_to(tiny_run)
            assert b.exists(), f"{b} missing in the second run"
            assert _digest(a) == _digest(b), f"{a.relative_to(tiny_run)} differs between runs"
            checked += 1
    assert checked >= 10


@pytest.mark.slow
def test_sigkill_during_training_loses_no_finished_model(tmp_path):
    """Kill snakemake (and its job) with SIGKILL while the mini model trains, after its first
    snapshot; the rerun with --rerun-incomplete keeps the finished models, redoes only the
    killed job, and that job resumes from its snapshot."""
    cfg = yaml.safe_load(TINY.read_text())
    cfg["training"]["mini_epochs"] = 6000
    cfg["training"]["snapshot_every"] = 200
    config = tmp_path / "kill.yaml"
    config.write_text(yaml.safe_dump(cfg))
    workdir = tmp_path / "run"
    targets = [
        "results/models/h64/full_s0.pt",
        "results/models/h64/no9_s0.pt",
        "results/models/mini/mini_s0.pt",
    ]
    # the finished models of another training job that must survive the kill
    run_snakemake(workdir, "--cores", "1", *targets[:2], configfile=config)
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(config),
        "--cores",
        "1",
        *targets,
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    mini_log = workdir / "results/logs/train/mini.log"
    deadline = time.time() + 300
    try:
        while time.time() < deadline:
            if mini_log.exists() and "snapshot written" in mini_log.read_text():
                break
            assert proc.poll() is None, "snakemake ended before it could be killed"
            time.sleep(0.2)
        else:
            pytest.fail("training did not reach the point to kill it")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (workdir / targets[2]).exists()
    finished = {t: (workdir / t).stat().st_mtime_ns for t in targets[:2]}
    run_snakemake(workdir, "--unlock", configfile=config)
    rerun = run_snakemake(
        workdir, "--cores", "1", "--rerun-incomplete", *targets, configfile=config
    )
    log = rerun.stdout + rerun.stderr
    assert "train_mini" in log and "train_sweep" not in log
    assert (workdir / targets[2]).exists()
    assert "resumed from snapshot" in mini_log.read_text()
    assert not list((workdir / "results/snapshots").rglob("*.pt")), "snapshot left behind"
    for t, mtime in finished.items():
        assert (workdir / t).stat().st_mtime_ns == mtime, f"{t} was redone"


# --------------------------------------------------------------------------- errors in the log

_FAILING_SCRIPT = """
import sys
sys.path.insert(0, {src!r})
from vae_novelty.io import setup_logging
log = setup_logging({log!r})
log.info("job started")
def load():
    raise ValueError("results/splits/no9.npz: something is wrong with this file")
load()
"""


def test_uncaught_exception_traceback_goes_to_the_log_and_stderr(tmp_path):
    log = tmp_path / "logs" / "job.log"
    proc = subprocess.run(
        [sys.executable, "-c", _FAILING_SCRIPT.format(src=str(REPO / "src"), log=str(log))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    text = log.read_text()
    assert "job started" in text
    assert "Traceback (most recent call last)" in text and "in load" in text
    assert "ValueError: results/splits/no9.npz: something is wrong with this file" in text
    # still on stderr, once (Snakemake prints a failed job's stderr)
    assert proc.stderr.count("ValueError: results/splits/no9.npz: something is wrong") == 1


def test_uncaught_exception_of_a_rule_script_is_in_the_rule_log(tmp_path):
    """Through Snakemake: a rule whose script fails has the traceback in its ``log:`` file."""
    script = tmp_path / "fail.py"
    script.write_text(
        _FAILING_SCRIPT.format(src=str(REPO / "src"), log="unused").replace(
            "setup_logging('unused')", "setup_logging(snakemake.log[0])"
        )
    )
    (tmp_path / "Snakefile").write_text(
        'rule fail:\n    output: "out.txt"\n    log: "logs/fail.log"\n    script: "fail.py"\n'
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(tmp_path / "Snakefile"),
            "--directory",
            str(tmp_path),
            "--cores",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    text = (tmp_path / "logs" / "fail.log").read_text()
    assert "job started" in text and "Traceback (most recent call last)" in text
    assert "ValueError: results/splits/no9.npz: something is wrong with this file" in text


@pytest.mark.slow
def test_a_damaged_split_stops_the_run_before_finished_models_are_deleted(tiny_run, tmp_path):
    """A split file damaged after a complete run (newer than the models): the rerun stops in
    check_splits, and every finished model is still there, unchanged."""
    import shutil

    work = tmp_path / "work"
    shutil.copytree(tiny_run, work, symlinks=True)  # copy2: modification times kept
    models = sorted((work / "results" / "models").rglob("*.pt"))
    before = {p: p.read_bytes() for p in models}
    split = work / "results" / "splits" / "no9.npz"
    split.write_bytes(split.read_bytes()[:200])  # truncated
    proc = run_snakemake(work, "--cores", "2", check=False)
    assert proc.returncode != 0
    log = (work / "results" / "logs" / "splits" / "check_splits.log").read_text()
    assert "no9.npz" in log
    assert {p: p.read_bytes() for p in models if p.exists()} == before


@pytest.mark.slow
def test_bad_input_after_a_complete_run_deletes_and_retrains_nothing(
    tiny_run, tmp_path, mnist_copy
):
    """Failure modes met after a complete run: each stops before any job runs, every finished
    model is unchanged, and once the input is put right nothing is left to do (no model is
    retrained because an earlier failure deleted an upstream file)."""
    import shutil

    import yaml

    work = tmp_path / "work"
    shutil.copytree(tiny_run, work, symlinks=True)  # copy2: modification times kept
    models = sorted((work / "results" / "models").rglob("*.pt"))
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in models}
    bad_data = mnist_copy / "train-labels-idx1-ubyte.gz"
    bad_data.write_bytes(bad_data.read_bytes()[:-100])  # a corrupt data source
    cfg = yaml.safe_load(TINY.read_text())
    cfg["data"].update(source="folder", folder=str(mnist_copy))
    folder_cfg = tmp_path / "folder.yaml"
    folder_cfg.write_text(yaml.safe_dump(cfg))
    nan_cfg = tmp_path / "nan.yaml"
    cfg = yaml.safe_load(TINY.read_text())
    cfg["training"]["learning_rate"] = float("nan")
    nan_cfg.write_text(yaml.safe_dump(cfg))
    for args, configfile, message in [
        ([], nan_cfg, "training.learning_rate: nan is not a finite number"),
        (["--config", "training={epoch: 3}"], TINY, "unknown config key training.epoch"),
        ([], folder_cfg, "train-labels-idx1-ubyte.gz: corrupt or truncated gzip"),
    ]:
        proc = run_snakemake(work, "--cores", "2", *args, configfile=configfile, check=False)
        assert proc.returncode != 0 and message in proc.stderr, proc.stderr[-2000:]
        assert (work / "results" / "data" / "mnist.npz").exists()
        assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in models} == before
    dry = run_snakemake(work, "--dry-run")  # put right: nothing to do
    assert "Nothing to be done" in dry.stdout + dry.stderr
