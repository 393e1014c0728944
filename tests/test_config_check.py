"""The configuration file check (`python -m vae_novelty.config check`, config/check.py and
config/cli.py): problems named by file, line and key."""

from __future__ import annotations

import pytest
import yaml

from conftest import REPO
from test_config import edit, load
from vae_novelty.config.cli import main as config_main


# --------------------------------------------------------------- python -m vae_novelty.config check

BAD_INDENT = "training:\n  epochs: 3\n   batch_size: 4\n"


def check(capsys, *paths):
    """``main(['check', ...])``: its exit status and its output lines."""
    status = config_main(["check", *map(str, paths)])
    return status, capsys.readouterr().out.splitlines()


def test_check_names_file_and_line_of_a_syntax_error(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_INDENT)
    assert check(capsys, path) == (1, [f"{path}:3:14: mapping values are not allowed here"])


def test_check_names_line_and_context_of_a_tab(tmp_path, capsys):
    path = tmp_path / "tab.yaml"
    path.write_text("# comment\ntraining:\n\tepochs: 3\n")
    status, lines = check(capsys, path)
    assert status == 1 and lines[0].startswith(f"{path}:3:1: found character '\\t'"), lines


def tiny_text_with(path, value):
    """tests/configs/tiny.yaml with the key at ``path`` set to ``value``, dumped as YAML."""
    return yaml.safe_dump(edit(load("tests/configs/tiny.yaml"), path, value), sort_keys=False)


def line_of(text, prefix):
    """The 1-based number of the line of ``text`` that starts with ``prefix``."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith(prefix))


@pytest.mark.parametrize(
    "path, value, written, message",
    [
        (
            ("training", "epochs"),
            0,
            "  epochs: 0",
            "config key training.epochs: 0 is less than the minimum of 1",
        ),
        (("training", "epochz"), 3, "  epochz: 3", "unknown config key training.epochz (allowed"),
        (
            ("figures", "figure1"),
            {"digit": 5},
            "    digit: 5",
            "config key figures.figure1.digit: 5 must be one of splits.heldout_digits",
        ),
    ],
)
def test_check_names_key_and_line_of_a_schema_error(
    tmp_path, capsys, path, value, written, message
):
    text = tiny_text_with(path, value)
    file = tmp_path / "bad.yaml"
    file.write_text(text)
    status, lines = check(capsys, file)
    assert status == 1 and len(lines) == 1, lines
    column = len(written) - len(written.lstrip()) + 1
    assert lines[0].startswith(f"{file}:{line_of(text, written)}:{column}: {message}"), lines


def test_check_points_a_key_missing_from_the_file_to_its_section(tmp_path, capsys):
    cfg = load("tests/configs/tiny.yaml")
    del cfg["training"]["epochs"]
    text = yaml.safe_dump(cfg, sort_keys=False)
    file = tmp_path / "missing.yaml"
    file.write_text(text)
    assert check(capsys, file) == (
        1,
        [
            f"{file}:{line_of(text, 'training:')}:1: config key "
            f"training: 'epochs' is a required property"
        ],
    )


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "a config file must be a mapping of keys at the top level"),
        ("- 1\n", "a config file must be a mapping of keys at the top level"),
    ],
)
def test_check_refuses_a_file_that_is_not_a_mapping(tmp_path, capsys, text, message):
    file = tmp_path / "c.yaml"
    file.write_text(text)
    assert check(capsys, file) == (1, [f"{file}: {message}"])


def test_check_names_a_missing_file(tmp_path, capsys):
    assert check(capsys, tmp_path / "nope.yaml") == (1, [f"{tmp_path / 'nope.yaml'}: no such file"])


def test_check_passes_every_shipped_config(capsys):
    files = sorted(REPO.glob("config/*.yaml")) + sorted(REPO.glob("tests/configs/*.yaml"))
    assert len(files) >= 6
    assert check(capsys, *files) == (0, [f"{f}: ok" for f in files])


def test_check_entry_point_exit_status(tmp_path):
    import os
    import subprocess
    import sys

    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_INDENT)
    cmd = [sys.executable, "-m", "vae_novelty.config", "check"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    clean = subprocess.run(
        [*cmd, "config/quick.yaml"], cwd=REPO, capture_output=True, text=True, timeout=60, env=env
    )
    assert (clean.returncode, clean.stdout) == (0, "config/quick.yaml: ok\n"), clean.stderr
    broken = subprocess.run(
        [*cmd, str(bad), "config/quick.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert broken.returncode == 1, broken.stderr
    assert broken.stdout.splitlines() == [
        f"{bad}:3:14: mapping values are not allowed here",
        "config/quick.yaml: ok",
    ]


@pytest.mark.parametrize("argv", [[], ["--markdown", "check", "config/quick.yaml"], ["check"]])
def test_entry_point_needs_markdown_or_check_files(argv):
    with pytest.raises(SystemExit) as exc:
        config_main(argv)
    assert exc.value.code == 2
