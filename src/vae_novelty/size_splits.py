"""Splits of the training-set-size sweep (issue 20): two disjoint halves of MNIST^tr, nested
subsets of each, one fixed evaluation set.

- **Halves.** Every digit's training rows are shuffled (seeded) and dealt into half A and half
  B: ``c // 2`` rows each, and the odd row of a digit with an odd count alternately to A and
  B (digit by digit), so the halves differ in size by at most one image and in each digit's
  count by at most one.
- **Nested subsets.** Inside each half, the rows are put in one *round-robin* order: the first
  row of every digit (digits 0..9), then the second of every digit, and so on; a digit whose
  rows run out drops out of the rotation. The subset of size N is the first N rows of that
  order, so the N = 1,000 subset contains the N = 300 one, and every subset is balanced by
  digit as far as the half allows (per-digit counts differ by at most one until a digit runs
  out; N = 100 holds exactly ten of each digit, as mini-MNIST). The order within a digit is
  a second seeded shuffle, independent of the one that made the halves.
- **Evaluation set.** ``per_digit`` test images of every digit, drawn (seeded) from MNIST^te:
  the same images for every model of the sweep.

A subset is stored as an ordinary :class:`~vae_novelty.splits.Split` (``name`` ``A1000``,
``B300``, ...; rows of the MNIST files; the data fingerprint), so the split checks and
readers of the main pipeline apply to it. :func:`check_size_splits` adds the checks that
concern several subsets: disjoint halves, nesting, one evaluation set.
"""

from __future__ import annotations

import math
import re
from typing import Sequence

import numpy as np

from .data import DataError
from .splits import Split, check_split

HALVES = ("A", "B")
MIN_PER_DIGIT = 10
NAME_RE = re.compile(r"^([AB])([1-9][0-9]*)$")

# stream tags of the seeded generators (independent streams from one configured seed)
_HALVES_STREAM, _ORDER_STREAM, _EVAL_STREAM = 1, 2, 3


def size_split_name(half: str, n: int) -> str:
    """``A1000``: the subset of ``n`` images of half ``half``."""
    if half not in HALVES:
        raise ValueError(f"half must be one of {HALVES}, got {half!r}")
    return f"{half}{int(n)}"


def parse_size_split_name(name: str) -> tuple[str, int]:
    """``("A", 1000)`` from ``A1000``; ValueError for anything else."""
    m = NAME_RE.match(name)
    if not m:
        raise ValueError(f"{name!r} is not a size-sweep split name (A or B, then the size)")
    return m.group(1), int(m.group(2))


# --------------------------------------------------------------------------- counts only


def half_digit_counts(digit_counts: Sequence[int]) -> dict[str, list[int]]:
    """Per-digit image counts of halves A and B for a training file with ``digit_counts``
    (what :func:`split_halves` makes, computed from the counts alone)."""
    a, b, odd = [], [], 0
    for c in digit_counts:
        extra_a = extra_b = 0
        if c % 2:
            extra_a, extra_b = (1, 0) if odd % 2 == 0 else (0, 1)
            odd += 1
        a.append(c // 2 + extra_a)
        b.append(c // 2 + extra_b)
    return {"A": a, "B": b}


def round_robin_counts(n: int, digit_counts: Sequence[int]) -> list[int]:
    """Per-digit counts of the first ``n`` rows of the round-robin order of a half whose
    digits have ``digit_counts`` images (:func:`nested_order`)."""
    counts = list(digit_counts)
    if n > sum(counts):
        raise ValueError(f"{n} rows asked of a half of {sum(counts)}")
    taken = [0] * len(counts)
    left = n
    # whole rounds: every digit that still has rows gives one
    while left:
        active = [d for d, c in enumerate(counts) if taken[d] < c]
        if left >= len(active):
            depth = min(min(counts[d] - taken[d] for d in active), left // len(active))
            for d in active:
                taken[d] += depth
            left -= depth * len(active)
        else:
            for d in active[:left]:
                taken[d] += 1
            left = 0
    return taken


def size_problem(n: int, digit_counts: Sequence[int], half: str = "A") -> str | None:
    """Why a subset of ``n`` images cannot be drawn from a half with ``digit_counts`` (None if
    it can): larger than the half, or fewer than :data:`MIN_PER_DIGIT` images of a digit."""
    total = sum(digit_counts)
    if n > total:
        return f"N = {n} is larger than half {half} ({total} images: half of the training file)"
    counts = round_robin_counts(n, digit_counts)
    low = [d for d, c in enumerate(counts) if c < MIN_PER_DIGIT]
    if low:
        return (
            f"N = {n} gives fewer than {MIN_PER_DIGIT} images of digit(s) {low} "
            f"(per-digit counts {counts}); every digit needs at least {MIN_PER_DIGIT}"
        )
    return None


def epochs_for_steps(n: int, batch_size: int, steps: int) -> int:
    """Epochs of a model trained on ``n`` images with ``steps`` gradient steps of batches of
    ``batch_size`` (``ceil(n / batch_size)`` steps per epoch, the last batch possibly
    smaller). ``steps`` must be a whole number of epochs: ValueError naming the nearest
    budgets otherwise."""
    per_epoch = math.ceil(n / batch_size)
    if steps < per_epoch or steps % per_epoch:
        lower = max(per_epoch, steps // per_epoch * per_epoch)
        raise ValueError(
            f"{steps} steps is not a whole number of epochs for N = {n} "
            f"({per_epoch} steps of batch size {batch_size} per epoch; e.g. "
            f"{lower} or {lower + per_epoch})"
        )
    return steps // per_epoch


# --------------------------------------------------------------------------- rows


def _check_labels(labels: np.ndarray, what: str) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(
            f"{what} labels must be one integer array, got {labels.dtype} {labels.shape}"
        )
    bad = labels[(labels < 0) | (labels > 9)]
    if len(bad):
        raise DataError(f"{what} labels outside 0..9: {np.unique(bad)[:5].tolist()}")
    return labels.astype(np.int64)


def split_halves(train_labels: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Rows of halves A and B of the training file (sorted int64), stratified by digit:
    every digit's rows shuffled with ``seed`` and dealt as :func:`half_digit_counts` says."""
    labels = _check_labels(train_labels, "training")
    rng = np.random.default_rng([seed, _HALVES_STREAM])
    counts = [int(np.count_nonzero(labels == d)) for d in range(10)]
    sizes = half_digit_counts(counts)
    parts: dict[str, list[np.ndarray]] = {"A": [], "B": []}
    for d in range(10):
        rows = rng.permutation(np.flatnonzero(labels == d).astype(np.int64))
        parts["A"].append(rows[: sizes["A"][d]])
        parts["B"].append(rows[sizes["A"][d] :])
    return {h: np.sort(np.concatenate(parts[h])) for h in HALVES}


def nested_order(
    half_rows: np.ndarray, train_labels: np.ndarray, seed: int, half: str
) -> np.ndarray:
    """The round-robin order of one half's rows (see the module docstring): prefixes of it are
    the nested, digit-balanced subsets."""
    labels = _check_labels(train_labels, "training")
    rng = np.random.default_rng([seed, _ORDER_STREAM, HALVES.index(half)])
    rows = np.asarray(half_rows, np.int64)
    ranks = np.empty(len(rows), np.int64)
    digit = labels[rows]
    for d in range(10):
        of_d = np.flatnonzero(digit == d)
        ranks[rng.permutation(of_d)] = np.arange(len(of_d))
    # by rank, then digit (round robin over the digits)
    return rows[np.lexsort((digit, ranks))]


def eval_rows(test_labels: np.ndarray, per_digit: int, seed: int) -> np.ndarray:
    """``per_digit`` test-file rows of every digit (sorted int64), drawn with ``seed``."""
    labels = _check_labels(test_labels, "test")
    rng = np.random.default_rng([seed, _EVAL_STREAM])
    parts = []
    for d in range(10):
        of_d = np.flatnonzero(labels == d).astype(np.int64)
        if len(of_d) < per_digit:
            raise DataError(
                f"the evaluation set needs {per_digit} test images of digit {d}, "
                f"the test file has {len(of_d)}"
            )
        parts.append(rng.choice(of_d, size=per_digit, replace=False))
    return np.sort(np.concatenate(parts))


def make_size_splits(
    train_labels: np.ndarray,
    test_labels: np.ndarray,
    sizes: Sequence[int],
    *,
    seed: int,
    eval_per_digit: int,
    eval_seed: int,
    data: str = "",
) -> dict[str, Split]:
    """Every subset of the sweep (``sizes`` in each half) as a :class:`Split` by name.

    Refuses (DataError naming N) a size larger than a half or with fewer than
    :data:`MIN_PER_DIGIT` images of some digit."""
    labels = _check_labels(train_labels, "training")
    halves = split_halves(labels, seed)
    test_idx = eval_rows(test_labels, eval_per_digit, eval_seed)
    out = {}
    for half in HALVES:
        order = nested_order(halves[half], labels, seed, half)
        counts = [int(np.count_nonzero(labels[halves[half]] == d)) for d in range(10)]
        for n in sorted(set(int(s) for s in sizes)):
            problem = size_problem(n, counts, half)
            if problem:
                raise DataError(f"size sweep: {problem}")
            name = size_split_name(half, n)
            out[name] = Split(name, np.sort(order[:n]), test_idx.copy(), -1, data)
    return out


def check_size_splits(splits: dict[str, Split], mnist=None) -> None:
    """The checks across the subsets of a sweep (DataError naming the split): names as
    :func:`size_split_name`, as many rows as the name says, one evaluation set, nested subsets
    inside a half, disjoint halves; with ``mnist``, every split also passes
    :func:`~vae_novelty.splits.check_split`."""
    by_half: dict[str, list[tuple[int, Split]]] = {h: [] for h in HALVES}
    test_idx = None
    for key, split in splits.items():
        if split.name != key:
            raise DataError(f"split {key!r} holds split {split.name!r}")
        half, n = parse_size_split_name(split.name)
        if mnist is not None:
            check_split(split, mnist)
        if len(split.train_idx) != n:
            raise DataError(
                f"split {split.name!r} has {len(split.train_idx)} training rows, its name says {n}"
            )
        if test_idx is None:
            test_idx = split.test_idx
        elif not np.array_equal(test_idx, split.test_idx):
            raise DataError(
                f"split {split.name!r} has another evaluation set than the other size splits"
            )
        by_half[half].append((n, split))
    for half, items in by_half.items():
        items.sort(key=lambda t: t[0])
        for (_, small), (_, big) in zip(items, items[1:]):
            if not np.isin(small.train_idx, big.train_idx).all():
                raise DataError(
                    f"split {small.name!r} is not contained in {big.name!r} (the "
                    f"subsets of a half must be nested)"
                )
    if by_half["A"] and by_half["B"]:
        a, b = by_half["A"][-1][1], by_half["B"][-1][1]
        shared = np.intersect1d(a.train_idx, b.train_idx)
        if len(shared):
            raise DataError(
                f"halves A and B share {len(shared)} training rows (e.g. "
                f"{shared[:5].tolist()}): {a.name!r} and {b.name!r}"
            )
