"""The README's commands, run as written (planned with --dry-run where a full run would take
hours) in a checkout-like folder: every file of the repository linked in, results of its own."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

README = REPO / "README.md"


def bash_blocks(text: str) -> list[str]:
    """The command lines of the README's ```bash blocks, comments removed."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            command = line.split("  #")[0].strip()
            if command and not command.startswith("#"):
                lines.append(command)
    return lines


SNAKEMAKE_COMMANDS = [c for c in bash_blocks(README.read_text()) if c.startswith("snakemake")]


def test_the_readme_shows_the_commands_this_file_runs():
    assert len(SNAKEMAKE_COMMANDS) >= 6
    assert "python -m pytest -q" in bash_blocks(README.read_text())  # .ci/run runs it as written


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """A folder that looks like a fresh checkout: the repository's files linked, no results."""
    root = tmp_path_factory.mktemp("checkout")
    for entry in REPO.iterdir():
        if entry.name not in {"results", ".snakemake", ".git"} and not entry.name.startswith(
            ".venv"
        ):
            (root / entry.name).symlink_to(entry)
    return root


# Where conda is not installed (CI), a stand-in answers the three questions Snakemake asks
# before planning a --use-conda run (creating the environments needs conda and the internet).
FAKE_CONDA = """#!/bin/sh
case "$*" in
  "info --json") echo '{"conda_prefix": "%s", "platform": "linux-64"}';;
  "--version") echo "conda 24.7.1";;
  "config --get channel_priority --json") echo '{"get": {"channel_priority": "strict"}}';;
  *) echo "stand-in conda: $* is not supported" >&2; exit 3;;
esac
"""


def run_as_written(
    command: str, cwd: Path, *extra: str, path_prefix: Path | None = None
) -> subprocess.CompletedProcess:
    args = shlex.split(command)
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    if path_prefix is not None:
        env["PATH"] = f"{path_prefix}{os.pathsep}{env['PATH']}"
    return subprocess.run(
        [sys.executable, "-m", *args, *extra],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.parametrize("command", SNAKEMAKE_COMMANDS)
def test_each_readme_snakemake_command_plans_its_run(command, checkout, tmp_path):
    bin_dir = None
    if "--use-conda" in command and shutil.which("conda") is None:
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        (bin_dir / "conda").write_text(FAKE_CONDA % (tmp_path / "conda"))
        (bin_dir / "conda").chmod(0o755)
    proc = run_as_written(command, checkout, "--dry-run", path_prefix=bin_dir)
    out = proc.stdout + proc.stderr
    if "--report" in command:  # before the run: refused, naming what is missing
        assert proc.returncode != 0
        assert (
            "results/run_record.yaml does not exist: the run of this configuration "
            "has not completed" in out
        )
        assert not (checkout / "report.html").exists()
        return
    assert proc.returncode == 0, out[-3000:]
    assert "This was a dry-run" in out
    planned = re.search(r"^total\s+(\d+)$", out, flags=re.M)
    assert planned and int(planned.group(1)) > 10, out[-2000:]
