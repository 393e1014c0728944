"""Exact nearest images in pixel space (Euclidean distance), fast enough for 10k x 60k x 784.

:func:`nearest_images` returns, for every query image, the ``k`` reference images nearest in
Euclidean pixel distance, *exactly* as the slow definition gives them: distances are
``sqrt(sum_j (q_j - r_j)^2)`` computed directly in float64, and equal distances go to the
lower reference position (the tie rule; for the pipeline, the lower MNIST row, since the
reference arrays list rows in increasing order).

How (two stages, the same code on the CPU and on CUDA):

1. *Candidates in float32.* Approximate squared distances
   ``d~ = |q|^2 + |r|^2 - 2 q.r`` (one float32 matrix product per chunk; TF32 switched off),
   streamed over reference chunks with a running top-``M`` per query
   (``M = candidates``, at least ``k``).
2. *Exact re-ranking in float64.* For each query, the exact float64 distance to each of its
   ``M`` candidates, sorted by (distance, position); the first ``k`` are the answer.

Why this is exact. Let ``delta`` bound the error ``|d~ - d|`` of a float32 squared distance
(``d`` the exact one). Rounding analysis of the float32 computation (inputs cast to float32,
a dot product of ``P`` terms, three additions) gives
``|d~ - d| <= (P + 10) u (|q|^2 + |r|^2)`` with ``u = 2^-24``; we use twice that,
``delta = (P + 16) 2^-23 (|q|^2 + max_r |r|^2)`` per query. If ``tau`` is the ``k``-th smallest
``d~`` of a query, every one of the true ``k`` nearest has ``d <= tau + delta`` and so
``d~ <= tau + 2 delta``. Hence when the ``M``-th smallest ``d~`` is *above*
``tau + 2 delta``, every true neighbour is among the ``M`` candidates and the float64 re-ranking
is exact. Queries where this check fails (many references within ``2 delta`` of the ``k``-th,
e.g. duplicated training images) are redone with every reference whose ``d~`` is within the
bound (a second float32 pass that collects them all), so the result is exact for every query.
The tests compare against a float64 brute force on data with exact ties, duplicates and
near-ties below float32 resolution.

Memory: the float32 references are held once on the device; one step's work is a
``(query chunk x reference chunk)`` float32 score block plus ``query chunk x M x P`` float64 for
the re-ranking, bounded by ``chunk_mb``.
"""

from __future__ import annotations

import numpy as np
import torch

from .chunks import MIB, ChunkPlan
from .tensors import F32, F64, array_shape, no_tf32, resolve_device, to_tensor

DEFAULT_CANDIDATES = 16


def error_bound(q2: torch.Tensor, r2_max: float, n_pixels: int) -> torch.Tensor:
    """``delta`` per query (see the module docstring): a bound, with a factor 2 to spare, on
    the error of a float32 squared distance for query norms ``q2`` (float64)."""
    return (n_pixels + 16) * 2.0**-23 * (q2 + r2_max)


def _chunks(n_query: int, n_ref: int, n_pix: int, m: int, chunk_mb: float) -> tuple[int, int]:
    """(query chunk, reference chunk) whose working set fits ``chunk_mb`` MiB."""
    budget = max(int(chunk_mb * MIB), 1)
    # re-ranking: qc x m x P float64 (differences) + the query chunk in float64/32
    qc = max(1, min(n_query, 4096, budget // (4 * 8 * max(m, 1) * n_pix + 1)))
    # scores qc x rc float32 (+ topk temporaries, counted twice) and the reference chunk as f64
    rc = max(1, min(n_ref, (budget - 12 * qc * n_pix) // max(12 * qc + 8 * n_pix, 1)))
    return int(qc), int(rc)


def _exact_sq(q64: torch.Tensor, refs: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Exact float64 squared distances of each query (qc, P) to its candidates ``pos`` (qc, M)."""
    cand = refs[pos.reshape(-1)].to(F64).reshape(pos.shape[0], pos.shape[1], -1)
    diff = cand - q64[:, None, :]
    return (diff * diff).sum(-1)


def _best_k(sq: torch.Tensor, pos: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` smallest of each row of ``sq``, equal values in order of ``pos``."""
    order = torch.argsort(pos, dim=1, stable=True)
    sq, pos = sq.gather(1, order), pos.gather(1, order)
    order = torch.argsort(sq, dim=1, stable=True)
    return sq.gather(1, order)[:, :k], pos.gather(1, order)[:, :k]


def nearest_images(
    queries,
    refs,
    *,
    k: int = 2,
    chunk_mb: float = 256.0,
    device="cpu",
    candidates: int = DEFAULT_CANDIDATES,
    query_chunk: int | None = None,
    ref_chunk: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` references nearest to each query in Euclidean pixel distance, exactly.

    ``queries`` (T, P) and ``refs`` (N, P): images (any real dtype; ``refs`` may be a tensor
    already on the device). Returns ``(positions, distances)``, int64 and float64, both
    (T, min(k, N)), nearest first; distances are float64 ``sqrt(sum (q - r)^2)``; equal
    distances in order of position. ``candidates``: the float32 stage's shortlist per query
    (a speed setting; any value >= k gives the same result). ``query_chunk`` / ``ref_chunk``
    override the chunk sizes derived from ``chunk_mb``.
    """
    dev = resolve_device(device)
    q_shape, r_shape = array_shape(queries), array_shape(refs)
    if len(q_shape) != 2 or len(r_shape) != 2 or q_shape[1] != r_shape[1]:
        raise ValueError(f"queries and refs must be (T, P) and (N, P), got {q_shape} and {r_shape}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    T, n_pix = q_shape
    n = r_shape[0]
    if n == 0:
        raise ValueError("no reference images")
    kk = min(k, n)
    m = min(max(int(candidates), kk), n)
    plan = ChunkPlan.fit(T, n, _chunks(T, n, n_pix, m, chunk_mb), query_chunk, ref_chunk)
    pos_out, dist_out = np.empty((T, kk), np.int64), np.empty((T, kk))
    with torch.inference_mode(), no_tf32():
        R = to_tensor(refs, dev)
        if not R.dtype.is_floating_point:
            R = R.to(F64)
        if not torch.isfinite(R).all():
            raise ValueError("refs contain NaN or infinite values")
        R32 = R.to(F32)
        r2 = (R.to(F64) ** 2).sum(1)
        r2_32 = r2.to(F32)
        r2_max = float(r2.max())
        buf = plan.buffer(F32, dev)
        for sl in plan.test_spans():
            q64 = to_tensor(
                np.asarray(queries[sl]) if not isinstance(queries, torch.Tensor) else queries[sl],
                dev,
                F64,
            )
            if not torch.isfinite(q64).all():
                raise ValueError("queries contain NaN or infinite values")
            q32 = q64.to(F32)
            q2 = (q64 * q64).sum(1)
            t = len(q64)
            top_v = torch.empty(t, 0, dtype=F32, device=dev)
            top_i = torch.empty(t, 0, dtype=torch.int64, device=dev)
            for cols, score in plan.blocks(t, buf):
                torch.mm(q32, R32[cols].T, out=score).mul_(-2.0).add_(r2_32[cols])
                mm = min(m, score.shape[1])
                v, i = torch.topk(score, mm, dim=1, largest=False, sorted=False)
                top_v = torch.cat([top_v, v], 1)
                top_i = torch.cat([top_i, i + cols.start], 1)
                if top_v.shape[1] > m:
                    v, sel = torch.topk(top_v, m, dim=1, largest=False, sorted=False)
                    top_v, top_i = v, top_i.gather(1, sel)
            # top_v + |q|^2 approximates the squared distance (the |q|^2 term is common)
            approx = top_v.to(F64)
            srt = torch.sort(approx, dim=1).values
            delta = error_bound(q2, r2_max, n_pix)
            bound = srt[:, kk - 1] + 2.0 * delta
            sq = _exact_sq(q64, R, top_i)
            best_sq, best_pos = _best_k(sq, top_i, kk)
            # exact unless a reference outside the shortlist could be within the bound
            unsure = (srt[:, -1] <= bound) & (top_v.shape[1] < n)
            for r in unsure.nonzero().flatten().tolist():
                best_sq[r], best_pos[r] = _all_within(
                    q64[r], q32[r], R, R32, r2_32, float(bound[r]), plan, kk
                )
            pos_out[sl] = best_pos.cpu().numpy()
            dist_out[sl] = torch.sqrt(best_sq).cpu().numpy()
    return pos_out, dist_out


def _all_within(
    q64, q32, R, R32, r2_32, bound: float, plan: ChunkPlan, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """One query's exact ``k`` nearest among every reference whose float32 squared distance is
    within ``bound`` (in the units of the scores: ``d~ - |q|^2``; a superset of the true ``k``
    nearest, see the module docstring), the references in the chunks of ``plan``."""
    found = []
    for cols in plan.train_spans():
        approx = (torch.mv(R32[cols], q32).mul_(-2.0).add_(r2_32[cols])).to(F64)
        found.append((approx <= bound).nonzero().flatten() + cols.start)
    pos = torch.cat(found)[None, :]
    sq = _exact_sq(q64[None, :], R, pos)
    best_sq, best_pos = _best_k(sq, pos, k)
    return best_sq[0], best_pos[0]
