"""Issue 23: two runs (two checkouts) sharing one results folder. The workflow head takes
{results_dir}/.run.lock naming its checkout, host and pid; a second live run is refused
naming the first; a stale lock (its process ended) is taken over with a warning; jobs, dry
runs and --report take no lock."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, run_snakemake
from vae_novelty.results_lock import LOCK_NAME, ResultsLocked, acquire, holder_note, read_owner

HOLDER = """
import sys, time
sys.path.insert(0, {src!r})
from vae_novelty.results_lock import acquire
acquire({folder!r}, {checkout!r})
print("held", flush=True)
time.sleep(600)
"""


def _hold(folder: Path, checkout: str) -> subprocess.Popen:
    """Another live run's head: a process holding the lock of ``folder``."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            HOLDER.format(src=str(REPO / "src"), folder=str(folder), checkout=checkout),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_the_lock_names_its_owner_and_is_released(tmp_path):
    lock = acquire(tmp_path / "res", "/some/checkout", release_at_exit=False)
    owner = read_owner(tmp_path / "res" / LOCK_NAME)
    assert owner["checkout"] == "/some/checkout" and owner["pid"] == os.getpid()
    assert owner["host"] == socket.gethostname()
    lock.release()
    assert not (tmp_path / "res" / LOCK_NAME).exists()
    # a lock that is no longer ours (taken over meanwhile) is left alone
    lock = acquire(tmp_path / "res", "/some/checkout", release_at_exit=False)
    path = tmp_path / "res" / LOCK_NAME
    path.write_text(path.read_text().replace(lock.token, "someone-else"))
    lock.release()
    assert path.exists()


def test_a_live_owner_refuses_a_second_run_naming_its_checkout(tmp_path):
    holder = _hold(tmp_path / "res", "/work/checkout-a")
    try:
        with pytest.raises(
            ResultsLocked,
            match=r"results folder .*res is in use by the run of "
            r"checkout /work/checkout-a \(host .*, pid "
            rf"{holder.pid}, started .*\): two runs must "
            r"not share one results_dir",
        ):
            acquire(tmp_path / "res", "/work/checkout-b", release_at_exit=False)
        assert "checkout /work/checkout-a" in holder_note(tmp_path / "res")
    finally:
        holder.kill()
        holder.wait()
    # its process is gone (SIGKILL: no exit handler ran): the lock is stale, taken over
    warnings = []
    lock = acquire(
        tmp_path / "res", "/work/checkout-b", warn=warnings.append, release_at_exit=False
    )
    assert len(warnings) == 1 and "taking over the stale lock" in warnings[0]
    assert (
        f"checkout /work/checkout-a (host {socket.gethostname()}, pid {holder.pid}" in warnings[0]
        and "has ended without releasing it" in warnings[0]
    )
    assert read_owner(lock.path)["checkout"] == "/work/checkout-b"
    assert holder_note(tmp_path / "res") is None or "checkout-b" in holder_note(tmp_path / "res")
    lock.release()


def test_a_lock_of_another_host_or_a_damaged_one(tmp_path):
    folder = tmp_path / "res"
    folder.mkdir()
    path = folder / LOCK_NAME
    path.write_text(
        json.dumps(
            {
                "format": "vae-novelty-run-lock/1",
                "checkout": "/far/away",
                "host": "other-node",
                "pid": _dead_pid(),
                "started": "t",
                "token": "x",
            }
        )
    )
    with pytest.raises(
        ResultsLocked,
        match=rf"on another host: .* if that run is over, "
        rf"delete {path}",
    ):
        acquire(folder, "/here", release_at_exit=False)
    path.write_text(
        json.dumps(
            {
                "format": "vae-novelty-run-lock/1",
                "checkout": "/gone",
                "host": socket.gethostname(),
                "pid": _dead_pid(),
                "started": "t",
                "token": "x",
            }
        )
    )
    assert holder_note(folder) is None  # stale: nobody holds it
    warnings = []
    acquire(folder, "/here", warn=warnings.append, release_at_exit=False).release()
    assert "checkout /gone" in warnings[0]
    path.write_text("{truncated")
    warnings = []
    acquire(folder, "/here", warn=warnings.append, release_at_exit=False).release()
    assert "not a readable lock file" in warnings[0]
    assert not path.exists() and list(folder.iterdir()) == []


@pytest.mark.slow
def test_two_checkouts_sharing_one_results_dir(tiny_run, tmp_path):
    """Through snakemake, as a second checkout would: results_dir an absolute folder that a
    live run of another checkout holds. The real run is refused naming that checkout (nothing
    runs); a dry run and --report still work (they take no lock; the dry run names the
    holder). Once that run is gone (SIGKILL), the lock is taken over with a warning, the jobs
    run (they parse the workflow too, and take no lock), and the lock is released at exit."""
    shared = tmp_path / "shared-results"
    shutil.copytree(tiny_run / "results", shared, symlinks=True)
    (shared / "figures" / "figure3.png").unlink()  # one job to run
    work = tmp_path / "checkout-b"
    work.mkdir()
    config = ("--config", f"results_dir={shared}")
    holder = _hold(shared, "/work/checkout-a")
    try:
        proc = run_snakemake(work, "--cores", "2", *config, check=False)
        assert proc.returncode != 0
        assert (
            f"results folder {shared} is in use by the run of checkout /work/checkout-a "
            f"(host {socket.gethostname()}, pid {holder.pid}"
        ) in proc.stderr
        assert not (shared / "figures" / "figure3.png").exists()
        dry = run_snakemake(work, "--dry-run", *config)
        assert "a real run now would be refused" in dry.stderr and "figure3" in dry.stdout
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    time.sleep(0.1)
    proc = run_snakemake(work, "--cores", "2", *config)
    assert "warning: taking over the stale lock" in proc.stderr
    assert (shared / "figures" / "figure3.png").exists()
    assert not (shared / LOCK_NAME).exists()
