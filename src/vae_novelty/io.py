"""Small I/O helpers shared by every stage: atomic writes, provenance, devices, logging."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

REPO_ROOT = Path(__file__).resolve().parents[2]
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it into place only on success.

    A crash or an exception leaves no partial file under the final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp's 0600 would make every output private
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text_atomic(path: Path | str, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def in_repo(path) -> Path | None:
    """A path of the config: absolute as given, else relative to the repository (None stays
    None). Rules pass such paths repository-relative, so that params name no absolute path."""
    return None if path is None else REPO_ROOT / path  # an absolute ``path`` stays itself


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """The git commit of the repository (with ``-dirty`` if it has uncommitted changes), asked
    once per process; ``unknown`` outside a git checkout (e.g. a copy without ``.git``)."""
    if not (REPO_ROOT / ".git").exists():
        return "unknown"
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_versions() -> dict[str, str]:
    """Versions of the packages this process has imported (importing none of them)."""
    versions = {"python": platform.python_version()}
    for name in ("torch", "numpy", "pandas", "pyarrow", "matplotlib", "snakemake"):
        module = sys.modules.get(name)
        if module is not None:
            versions[name] = str(getattr(module, "__version__", "unknown"))
    return versions


def provenance(**extra) -> dict:
    """What produced a result: code version, package versions and the given values."""
    return {"code_version": code_version(), "versions": package_versions(), **extra}


def to_json(obj) -> str:
    return json.dumps(obj, sort_keys=True, default=str)


def select_device(requested: str) -> "torch.device":  # noqa: F821
    """``auto``: CUDA when present, else CPU. ``cuda`` without a GPU is an error."""
    import torch

    if requested == "cpu":
        return torch.device("cpu")
    if requested == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(
                "device 'cuda' was requested (training.device or theorem1.device) "
                "but no CUDA GPU is available; set it to 'auto' or 'cpu'"
            )
        return torch.device("cuda")
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    raise ValueError(f"unknown device {requested!r} (auto, cpu or cuda)")


def describe_device(device) -> str:
    import torch

    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def setup_logging(log_path: Path | str | None) -> logging.Logger:
    """Log to the rule's ``log:`` file (and stderr).

    Also installs :func:`log_uncaught` as ``sys.excepthook``: an exception nobody catches
    ends the script with its traceback in the log file (where the user of a failed job looks)
    as well as on stderr.
    """
    logger = logging.getLogger("vae_novelty")
    logger.setLevel(logging.INFO)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    for handler in handlers:
        handler.setFormatter(fmt)
        logger.addHandler(handler)
    sys.excepthook = log_uncaught
    return logger


def log_uncaught(exc_type, exc, tb) -> None:
    """``sys.excepthook``: the traceback of an uncaught exception through the ``vae_novelty``
    logger, i.e. to the job's log file and to stderr (once). Python's own hook prints it
    instead when the logger has no handler or logging fails."""
    logger = logging.getLogger("vae_novelty")
    try:
        if not logger.handlers:
            raise RuntimeError("no log handler")
        logger.critical(
            "uncaught %s: the job fails", exc_type.__name__, exc_info=(exc_type, exc, tb)
        )
        for handler in logger.handlers:
            handler.flush()
    except Exception:
        sys.__excepthook__(exc_type, exc, tb)
