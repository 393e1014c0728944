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
    for pattern in ("results/posteriors/**/*.parquet", "results/splits/*.npz",
                    "results/models/**/*.history.csv", "results/tables/*"):
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
    targets = ["results/models/h64/full_s0.pt", "results/models/h64/no9_s0.pt",
               "results/models/mini/mini_s0.pt"]
    # the finished models of another training job that must survive the kill
    run_snakemake(workdir, "--cores", "1", *targets[:2], configfile=config)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory",
           str(workdir), "--configfile", str(config), "--cores", "1", *targets]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
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
    rerun = run_snakemake(workdir, "--cores", "1", "--rerun-incomplete", *targets,
                          configfile=config)
    log = rerun.stdout + rerun.stderr
    assert "train_mini" in log and "train_sweep" not in log
    assert (workdir / targets[2]).exists()
    assert "resumed from snapshot" in mini_log.read_text()
    assert not list((workdir / "results/snapshots").rglob("*.pt")), "snapshot left behind"
    for t, mtime in finished.items():
        assert (workdir / t).stat().st_mtime_ns == mtime, f"{t} was redone"
