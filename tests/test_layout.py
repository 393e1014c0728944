"""The source tree's shape: no source file over 400 lines (a file that long holds more than one
thing; split it by what its parts do)."""

from __future__ import annotations

from conftest import REPO

MAX_LINES = 400
SOURCE_DIRS = ("src", "workflow", "bench")
SUFFIXES = {".py", ".sh", ".smk"}


def source_files():
    return sorted(
        p
        for d in SOURCE_DIRS
        for p in (REPO / d).rglob("*")
        if p.suffix in SUFFIXES and p.is_file() and "__pycache__" not in p.parts
    )


def long_files(limit: int = MAX_LINES) -> dict[str, int]:
    """{repository-relative path: lines} of every source file longer than ``limit`` lines."""
    out = {}
    for path in source_files():
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > limit:
            out[str(path.relative_to(REPO))] = n
    return out


def test_no_source_file_is_over_400_lines():
    assert long_files() == {}, f"source files over {MAX_LINES} lines: {long_files()}"


def test_the_check_sees_every_kind_of_source_file():
    files = {str(p.relative_to(REPO)) for p in source_files()}
    for name in (
        "src/vae_novelty/theorem1.py",
        "workflow/scripts/train.py",
        "workflow/rules/common.smk",
        "bench/claims.py",
        "bench/mutation.sh",
        "src/vae_novelty/config/validate.py",
    ):
        assert name in files, name
    # the limit is checked, not assumed: with a lower one the longest files are reported
    assert "src/vae_novelty/config/validate.py" in long_files(100)
    assert long_files(10**6) == {}
