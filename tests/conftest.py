"""Shared fixtures: the repository paths and one completed run of the tiny workflow."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "configs" / "tiny.yaml"
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def run_snakemake(
    workdir: Path,
    *args: str,
    configfile: Path = TINY,
    snakefile: Path | None = None,
    check: bool = True,
    timeout: int = 900,
) -> subprocess.CompletedProcess:
    """Run the workflow with ``workdir`` as working directory; return the finished process."""
    cmd = [
        *SNAKEMAKE,
        "-s",
        str(snakefile or REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(configfile),
        *args,
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
        )
    return proc


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A working directory in which the whole tiny workflow has completed."""
    workdir = tmp_path_factory.mktemp("tiny-run")
    run_snakemake(workdir, "--cores", "2")
    return workdir


@pytest.fixture
def mnist_dir() -> Path:
    return REPO / "resources" / "mnist"


@pytest.fixture(scope="session")
def mnist():
    """The bundled MNIST (checked against its checksums), read once (test_data, test_splits)."""
    from vae_novelty.data import load_idx_folder

    folder = REPO / "resources" / "mnist"
    return load_idx_folder(folder, folder / "SHA256SUMS")


@pytest.fixture
def mnist_copy(tmp_path, mnist_dir) -> Path:
    """A writable copy of the bundled MNIST folder (to corrupt in tests)."""
    dest = tmp_path / "mnist"
    shutil.copytree(mnist_dir, dest)
    for f in dest.iterdir():
        f.chmod(0o644)
    return dest
