"""Chunked (test x training) passes: the one chunk iterator, and the streaming top-k over it.

The Theorem 1 engine (:func:`vae_novelty.theorem1.weight_stats`), the neighbour searches
(:func:`vae_novelty.neighbours.latent_neighbours`, :func:`~vae_novelty.neighbours.xhat_neighbours`)
and the exact pixel search (:func:`vae_novelty.pixel_nn.nearest_images`) each score every
(test row, training row) pair without holding the (test x training) matrix: test rows in
chunks of ``test_chunk``, and for each test chunk the training rows in chunks of
``train_chunk``, each block written into one buffer allocated once (fresh large allocations
cost page faults on the CPU). :class:`ChunkPlan` is that iteration (its chunk sizes come from
each caller's own memory model); :class:`RunningTopK` is the per-row top-k folded over the
blocks, with exactly equal scores ordered by position, lower first, across block boundaries.
:func:`shrink_on_oom` reruns such a pass with half the memory budget when the GPU runs out of
memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch

from .tensors import F64

MIB = 2**20


def spans(n: int, chunk: int) -> Iterator[slice]:
    """Consecutive slices of at most ``chunk`` positions covering ``0 .. n - 1``."""
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    for start in range(0, n, chunk):
        yield slice(start, min(start + chunk, n))


@dataclass(frozen=True)
class ChunkPlan:
    """How a pass over ``n_test`` x ``n_train`` pairs is cut: test rows in chunks of
    ``test_chunk``, training rows in chunks of ``train_chunk`` (at most ``n_train``)."""

    n_test: int
    n_train: int
    test_chunk: int
    train_chunk: int

    @classmethod
    def fit(
        cls,
        n_test: int,
        n_train: int,
        sizes: tuple[int, int],
        test_chunk: int | None = None,
        train_chunk: int | None = None,
    ) -> "ChunkPlan":
        """The plan with the chunk sizes ``sizes`` (from the caller's memory budget), each
        replaced by ``test_chunk`` / ``train_chunk`` when given (the callers' overrides)."""
        tc, nc = sizes
        return cls(
            int(n_test), int(n_train), int(test_chunk or tc), int(min(train_chunk or nc, n_train))
        )

    @property
    def sizes(self) -> tuple[int, int]:
        return self.test_chunk, self.train_chunk

    def test_spans(self) -> Iterator[slice]:
        """The test rows, chunk by chunk."""
        return spans(self.n_test, self.test_chunk)

    def train_spans(self) -> Iterator[slice]:
        """The training rows, chunk by chunk."""
        return spans(self.n_train, self.train_chunk)

    def buffer(self, dtype=F64, device="cpu", width: int | None = None) -> torch.Tensor:
        """A flat buffer for one block: (test chunk x training chunk) scores, or with
        ``width``, one training chunk of ``width`` columns (:func:`staged`)."""
        rows = min(self.test_chunk, max(self.n_test, 1)) if width is None else width
        return torch.empty(rows * self.train_chunk, dtype=dtype, device=device)

    def blocks(self, rows: int, buffer: torch.Tensor) -> Iterator[tuple[slice, torch.Tensor]]:
        """For one test chunk of ``rows`` rows: each training chunk (its slice) with a
        ``(rows, training chunk)`` view of ``buffer`` (:meth:`buffer`) for its scores. The
        view is reused: it holds one block at a time."""
        for cols in self.train_spans():
            width = cols.stop - cols.start
            yield cols, buffer[: rows * width].view(rows, width)


def staged(buffer: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``rows`` (r, P) copied into the front of ``buffer`` (converted to its dtype), as an
    (r, P) view: a chunk of training images in float64 without a fresh allocation."""
    return buffer[: rows.numel()].view(rows.shape).copy_(rows)


# --------------------------------------------------------------------------- streaming top-k


def sort_pairs(values: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Order each row by value descending, equal values by index ascending."""
    order = torch.argsort(index, dim=1, stable=True)
    values, index = values.gather(1, order), index.gather(1, order)
    order = torch.sort(values, dim=1, descending=True, stable=True).indices
    return values.gather(1, order), index.gather(1, order)


def chunk_topk(scores: torch.Tensor, k: int, offset: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k of each row (values, global positions ``offset + column``), ties toward the
    lower position."""
    nc = scores.shape[1]
    kk = min(k, nc)
    values, index = torch.topk(scores, min(k + 1, nc), dim=1, largest=True, sorted=True)
    if nc > k:
        # torch.topk picks arbitrarily among values tied with the k-th: a (k+1)-th value equal
        # to the k-th flags such a row; those rows are redone with a stable sort.
        tied = values[:, k] == values[:, k - 1]
        values, index = values[:, :k].contiguous(), index[:, :k].contiguous()
        if bool(tied.any()):
            rows = tied.nonzero().squeeze(1)
            step = max(1, len(scores) // 4)  # bounds the sort's temporaries
            for r0 in range(0, len(rows), step):
                r = rows[r0 : r0 + step]
                sv, si = torch.sort(scores[r], dim=1, descending=True, stable=True)
                values[r], index[r] = sv[:, :kk], si[:, :kk]
                del sv, si
    return sort_pairs(values, index + offset)


def merge_topk(
    v_old: torch.Tensor, i_old: torch.Tensor, v_new: torch.Tensor, i_new: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The top-k of two candidate lists (values, positions), ties toward the lower position."""
    values, index = sort_pairs(torch.cat([v_old, v_new], 1), torch.cat([i_old, i_new], 1))
    return values[:, :k], index[:, :k]


class RunningTopK:
    """The ``k`` largest scores of each of ``rows`` rows (``values``, best first, and their
    ``index``: positions in the training arrays), folded over the blocks of a pass with
    :meth:`add`; exactly equal scores in order of position."""

    def __init__(self, rows: int, k: int, dtype=F64, device="cpu"):
        self.k = k
        self.values = torch.empty(rows, 0, dtype=dtype, device=device)
        self.index = torch.empty(rows, 0, dtype=torch.int64, device=device)

    def add(self, block: torch.Tensor, offset: int) -> None:
        """Fold in ``block`` (rows x c), whose column 0 is training position ``offset``."""
        v, i = chunk_topk(block, self.k, offset)
        self.values, self.index = merge_topk(self.values, self.index, v, i, self.k)


# --------------------------------------------------------------------------- out of memory

MIN_CHUNK_MB = 8.0


def shrink_on_oom(run, chunk_mb: float, what: str, min_chunk_mb: float = MIN_CHUNK_MB):
    """``run(budget)`` with ``budget = chunk_mb``, retried with half the budget after a CUDA
    out-of-memory error. Returns ``(result, budget that worked)``.

    The failed attempt's tensors are released before the retry: the exception (and with it
    the traceback's frames, which reference them) is dropped first, then the garbage is
    collected and the CUDA cache emptied; calling ``empty_cache()`` inside the ``except``
    block would free nothing. Chunk sizes do not change results (beyond float64 rounding).
    Below ``min_chunk_mb`` the error names the setting.
    """
    import gc
    import logging

    log = logging.getLogger("vae_novelty")
    budget = float(chunk_mb)
    while True:
        failure = None
        try:
            return run(budget), budget
        except torch.OutOfMemoryError as exc:
            failure = str(exc).splitlines()[0] if str(exc) else "out of memory"
        # outside the except block: the exception and its frames are gone
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        if budget / 2 < min_chunk_mb:
            raise RuntimeError(
                f"out of GPU memory in {what} even with chunks of {budget:g} MiB (started "
                f"from theorem1.chunk_mb = {chunk_mb:g}): the training set itself does not "
                f"fit; set theorem1.device: cpu, or free the GPU ({failure})"
            )
        log.warning(
            "out of GPU memory in %s with chunks of %g MiB; retrying with %g MiB "
            "(lower theorem1.chunk_mb to avoid this)",
            what,
            budget,
            budget / 2,
        )
        budget /= 2
