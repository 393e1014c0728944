"""The paper's data splits (``full``, ``noD``, ``mini``) and their files.

Splits are stored as row indices into the original MNIST files, so every result can be traced
back to a row of ``train-images-idx3-ubyte`` or ``t10k-images-idx3-ubyte``; each split file
records the data fingerprint (:func:`vae_novelty.data.data_fingerprint`) it was made from.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data import DataError, Mnist, check_fingerprint, read_npz


@dataclass
class Split:
    """A training split and its evaluation set, as indices into the original files."""

    name: str
    train_idx: np.ndarray  # rows of the MNIST training file
    test_idx: np.ndarray  # rows of the MNIST test file used for evaluation
    heldout_digit: int  # -1 when no digit is held out
    data: str = ""  # fingerprint of the MNIST arrays it was made from ("" = unknown)


def _subsample(idx: np.ndarray, n: int | None, rng: np.random.Generator) -> np.ndarray:
    if n is None or n >= len(idx):
        return idx
    return np.sort(rng.choice(idx, size=n, replace=False))


def make_split(
    name: str,
    train_labels: np.ndarray,
    test_labels: np.ndarray,
    eval_digits: list[int],
    *,
    max_train: int | None = None,
    max_test_per_digit: int | None = None,
    subsample_seed: int = 0,
    mini_per_digit: int = 10,
    mini_seed: int = 0,
    data: str = "",
) -> Split:
    """Build one split.

    ``full``: all of MNIST^tr. ``noD``: MNIST^tr without digit D. ``mini``: ``mini_per_digit``
    images of each digit, drawn uniformly at random with ``mini_seed``. The evaluation set is
    the test images whose label is in ``eval_digits`` (MNIST_D^te for ``noD``), optionally the
    first ``max_test_per_digit`` of each digit.
    """
    all_train = np.arange(len(train_labels), dtype=np.int64)
    heldout = -1
    if name == "full":
        train_idx = all_train
    elif len(name) == 3 and name.startswith("no") and name[2].isdigit():
        heldout = int(name[2])
        train_idx = all_train[train_labels != heldout]
    elif name == "mini":
        rng = np.random.default_rng(mini_seed)
        parts = []
        for d in range(10):
            of_d = all_train[train_labels == d]
            if len(of_d) < mini_per_digit:
                raise DataError(
                    f"mini-MNIST needs {mini_per_digit} images of digit {d}, the "
                    f"training file has {len(of_d)}"
                )
            parts.append(rng.choice(of_d, size=mini_per_digit, replace=False))
        train_idx = np.sort(np.concatenate(parts))
    else:
        raise ValueError(f"unknown split {name!r} (full, mini or no0..no9)")
    if name != "mini":
        rng = np.random.default_rng([subsample_seed, heldout + 1])
        train_idx = _subsample(train_idx, max_train, rng)
    test_parts = []
    for d in sorted(eval_digits):
        of_d = np.flatnonzero(test_labels == d).astype(np.int64)
        if len(of_d) == 0:
            # stop when splits are made, not after training: such a model cannot be evaluated
            raise DataError(
                f"split {name}: the test file has no images of digit {d}, so the "
                f"models of this split cannot be evaluated (check "
                f"splits.heldout_digits and the data)"
            )
        test_parts.append(of_d[:max_test_per_digit] if max_test_per_digit else of_d)
    if len(train_idx) == 0:
        raise DataError(f"split {name}: no training images")
    test_idx = np.sort(np.concatenate(test_parts)) if test_parts else np.zeros(0, np.int64)
    return Split(name, train_idx.astype(np.int64), test_idx, heldout, data)


def save_split(split: Split, path: Path) -> None:
    """Write a split file atomically; it must record the data it was made from."""
    from .io import atomic_path

    if not split.data:
        raise ValueError(
            f"split {split.name!r} has no data fingerprint: make it with "
            f"make_split(..., data=mnist.fingerprint) before saving it to {path}"
        )
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(
                fh,
                name=np.array(split.name),
                train_idx=split.train_idx,
                test_idx=split.test_idx,
                heldout_digit=np.array(split.heldout_digit),
                data=np.array(split.data),
            )


SPLIT_KEYS = ("name", "train_idx", "test_idx", "heldout_digit", "data")


def load_split(path: Path, expect_name: str | None = None) -> Split:
    """A split file (:func:`save_split`), checked: a :class:`DataError` naming the file when it
    cannot be read, is not a split file (arrays, dtypes), or holds another split than
    ``expect_name`` (when given; the pipeline's split files are named ``{name}.npz``). The
    rows are checked against MNIST by :func:`check_split`."""
    arrays = read_npz(path, "split", SPLIT_KEYS)
    name, held = arrays["name"], arrays["heldout_digit"]
    if name.shape != () or name.dtype.kind != "U":
        raise DataError(f"{path}: name is {name.dtype} {name.shape}, expected one string")
    for key in ("train_idx", "test_idx"):
        idx = arrays[key]
        if idx.ndim != 1:
            raise DataError(f"{path}: {key} has shape {idx.shape}, expected one dimension")
        if not np.issubdtype(idx.dtype, np.integer):
            raise DataError(f"{path}: {key} has dtype {idx.dtype}, expected integers")
    if held.shape != () or not np.issubdtype(held.dtype, np.integer) or not -1 <= held <= 9:
        raise DataError(f"{path}: heldout_digit is {held!r}, expected a digit or -1")
    data = arrays["data"]
    if data.shape != () or data.dtype.kind != "U":
        raise DataError(f"{path}: data is {data.dtype} {data.shape}, expected one string")
    if not str(data):
        raise DataError(f"{path}: records no data fingerprint (not written by save_split?)")
    split = Split(
        str(name),
        arrays["train_idx"].astype(np.int64),
        arrays["test_idx"].astype(np.int64),
        int(held),
        str(data),
    )
    if expect_name is not None and split.name != expect_name:
        raise DataError(
            f"{path}: holds split {split.name!r}, expected {expect_name!r} (a split "
            f"file renamed or copied from elsewhere?)"
        )
    return split


def check_split(split: Split, mnist: Mnist, path: Path | str | None = None) -> None:
    """Refuse a split that does not fit ``mnist``: rows outside the training or test file,
    repeated rows, a held-out digit among its training rows, or another data fingerprint (a
    split made from another MNIST file). ``path`` (the split's file) is named in the message
    when given. A split made in memory without a fingerprint (``data == ""``) is checked by
    its rows only; a split *file* always records one (:func:`load_split`)."""
    where = f"{path}: split {split.name!r}" if path is not None else f"split {split.name!r}"
    if split.data:
        check_fingerprint(split.data, mnist.fingerprint, where)
    for key, n, what in (
        ("train_idx", len(mnist.train_labels), "training"),
        ("test_idx", len(mnist.test_labels), "test"),
    ):
        idx = np.asarray(getattr(split, key))
        outside = idx[(idx < 0) | (idx >= n)]
        if len(outside):
            raise DataError(
                f"{where}: {key} has rows outside 0..{n - 1} (MNIST has {n} {what} "
                f"images): {outside[:5].tolist()}{' ...' if len(outside) > 5 else ''}"
                f" (a split made from another MNIST file?)"
            )
        values, counts = np.unique(idx, return_counts=True)
        if (counts > 1).any():
            raise DataError(f"{where}: {key} repeats rows {values[counts > 1][:5].tolist()}")
    if split.heldout_digit >= 0:
        n_held = int(np.count_nonzero(mnist.train_labels[split.train_idx] == split.heldout_digit))
        if n_held:
            raise DataError(
                f"{where} holds out digit {split.heldout_digit} but {n_held} of its "
                f"training rows are {split.heldout_digit}s (a split made from "
                f"another MNIST file?)"
            )


def load_checked_splits(paths, mnist: Mnist) -> dict[str, Split]:
    """The pipeline's split files ``paths`` (one path or several, each named ``{split}.npz``)
    by split name, each loaded with :func:`load_split` (its name checked against its file
    name) and checked against ``mnist`` with :func:`check_split`."""
    splits = {}
    for path in [paths] if isinstance(paths, (str, Path)) else paths:
        split = load_split(Path(path), expect_name=Path(path).stem)
        check_split(split, mnist, path=path)
        splits[split.name] = split
    return splits


def rows_digest(rows) -> str:
    """SHA-256 of training-row indices (a numpy array or tensor) as little-endian int64 bytes."""
    torch = sys.modules.get("torch")  # a tensor implies torch is loaded; this module needs none
    if torch is not None and isinstance(rows, torch.Tensor):
        rows = rows.detach().cpu().numpy()
    arr = np.ascontiguousarray(np.asarray(rows), dtype="<i8")
    return "rows-sha256:" + hashlib.sha256(arr.tobytes()).hexdigest()
