"""Theorem 1 (Shu et al. 2018) quantities of a trained VAE, per evaluation test image.

For a test image x with posterior mean z and the model's training posteriors
q(z|x_i) = N(m_i, diag(exp(v_i))), i = 1..N:

    L_i   = log q(z|x_i)                               (diagonal Gaussian log density)
    w_i   = softmax_i(L_i)                             (normalised with a logsumexp)
    mu    = sum_i w_i x_i                              (x_i: training pixels x/255)
    H     = -sum_i w_i log w_i (nats), perplexity = exp(H), w_max = max_i w_i
    top-k training rows by weight.

Engine
------
The (test x train) log densities are never held at once, and no (test x train x latent)
tensor is formed. Test rows are processed in chunks of ``Tc`` and, within a test chunk,
training rows in chunks of ``Nc`` with a streaming logsumexp. Per test row the state is the
running maximum ``m``, ``s = sum exp(L - m)``, ``t = sum exp(L - m) (L - m)``, the numerator
``sum exp(L - m) x_i`` of mu and the running top-k. When the maximum grows from ``m`` to
``m'``: ``s' = exp(m - m') s``, ``t' = exp(m - m') (t + (m - m') s)``, numerator scaled by
``exp(m - m')``. At the end ``log_norm = m + log s``, ``H = log s - t / s``,
``w_max = 1 / s`` (the maximum contributes exp(0) = 1 to ``s``), ``mu = numerator / s``.

The log densities of a chunk are one matrix product: with ``a = exp(-v)`` and coordinates
*centred* by a per-dimension centre ``c`` (default: the mean of the training means),

    L_i = [z^2, z, 1] . [-a_i / 2, a_i m_i, -sum_k a_ik m_ik^2 / 2 - (D log 2 pi + sum_k v_ik) / 2]

in float64. Centring matters: the three terms of the expanded square are each of size
``a |z|^2`` and cancel; for sharp posteriors (sigma = 1e-4, a = 1e8) and means far from the
origin (|m| ~ 1e3) the uncentred form loses every digit (see tests/test_theorem1.py).
After centring, the rounding error of L_i is about 1e-16 * sum_k a_k (z_k - c_k)^2, e.g. weight
errors ~1e-7 for D = 50, sigma = 1e-4 and means spread ~1 around the centre.

Memory: besides the inputs themselves (training features ``N x (2D+1)`` float64 and the
training images in their given dtype, held once on the device), the working set of one
(test chunk, training chunk) step is at most ``chunk_mb`` MiB (see :func:`working_bytes`).

Top-k ties: candidates are ordered by log density, descending; exactly equal log densities
are ordered by position in the training arrays, lower first (for the pipeline: lower MNIST
training-file row, since the posterior files list training rows in increasing order). This
holds across chunk boundaries. Duplicate training posteriors usually give bitwise-equal log
densities, but a BLAS kernel may round two equal rows differently in the last bit; such
near-ties are ordered by their (rounded) values. With fewer than k training rows, the
top-k lists have N entries.

Everything runs on the torch device given (CUDA when present with ``device='auto'``), with the
same code path; all log densities, weights and mu are float64 (TF32 cannot apply to float64
matrix products; it is also switched off while the engine runs).

The chunk iteration, the streaming top-k and the retry with smaller chunks on GPU
out-of-memory (:func:`~vae_novelty.chunks.shrink_on_oom`) are :mod:`vae_novelty.chunks`, shared
with the memorisation measures computed alongside (:mod:`vae_novelty.neighbours`) and the exact
pixel search (:mod:`vae_novelty.pixel_nn`); this module holds the engine's memory model
(:func:`chunk_sizes`). The decoder-side quantities are in :mod:`vae_novelty.decoder`; one
model's table and files in :mod:`vae_novelty.theorem1_table`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from .chunks import MIB, MIN_CHUNK_MB, ChunkPlan, RunningTopK, shrink_on_oom, staged
from .tensors import F64, array_shape, as_f64, no_tf32, resolve_device, to_tensor

LOG_2PI = math.log(2.0 * math.pi)
MAX_TEST_CHUNK = 4096


# --------------------------------------------------------------------------- chunking


def working_bytes(test_chunk: int, train_chunk: int, dim: int, n_pixels: int) -> int:
    """Upper estimate of the engine's working memory for one (test chunk, training chunk) step.

    Per step: the features of the test chunk (Tc x (2D+1)); two reused Tc x Nc float64
    buffers (log densities, their exponentials); at most Tc/4 x Nc rows of a stable sort
    (copy, values, indices: 24 bytes each) when the top-k has ties beyond the k-th value;
    the training images of the chunk as float64 (Nc x P); the running mu numerator (Tc x P);
    small per-row state. Counted as 32 bytes per Tc x Nc element.
    """
    tc, nc = int(test_chunk), int(train_chunk)
    return 8 * (tc * (2 * dim + 1) + 4 * tc * nc + nc * n_pixels + tc * n_pixels) + 64 * tc


def chunk_sizes(
    n_test: int,
    n_train: int,
    dim: int,
    n_pixels: int,
    chunk_mb: float,
    max_test_chunk: int = MAX_TEST_CHUNK,
) -> tuple[int, int]:
    """``(test_chunk, train_chunk)`` whose :func:`working_bytes` fit in ``chunk_mb`` MiB.

    Starts from the largest test chunk and halves it until a training chunk at least as large
    (or all training rows) fits. If even 1 x 1 does not fit, returns (1, 1).
    """
    if chunk_mb <= 0:
        raise ValueError(f"chunk_mb must be positive, got {chunk_mb}")
    budget = int(chunk_mb * MIB)
    n_test, n_train = max(int(n_test), 1), max(int(n_train), 1)
    tc = min(n_test, int(max_test_chunk))
    while True:
        fixed = working_bytes(tc, 0, dim, n_pixels)
        per_row = working_bytes(tc, 1, dim, n_pixels) - fixed
        nc = (budget - fixed) // per_row
        if nc >= min(n_train, tc) or tc == 1:
            break
        tc = max(1, tc // 2)
    return tc, int(max(1, min(nc, n_train)))


# --------------------------------------------------------------------------- engine


@dataclass
class WeightStats:
    """Per test point: Theorem 1 weight statistics (numpy, float64)."""

    log_norm: np.ndarray  # (T,) logsumexp_i log q(z|x_i)
    entropy: np.ndarray  # (T,) nats
    w_max: np.ndarray  # (T,)
    topk_pos: np.ndarray  # (T, k') int64 positions in the training arrays, best first
    topk_weight: np.ndarray  # (T, k') float64
    mu: np.ndarray | None  # (T, P) float64, or None when no training images were given
    #                           (a torch tensor on the engine's device with mu_on_device=True)
    chunks: tuple[int, int] = field(default=(0, 0))  # (test_chunk, train_chunk) used

    @property
    def perplexity(self) -> np.ndarray:
        return np.exp(self.entropy)


def _train_features(
    train_mean: np.ndarray, train_logvar: np.ndarray, centre: np.ndarray, device: torch.device
) -> torch.Tensor:
    """H (N, 2D+1) with log q(z|x_i) = [z^2, z, 1] @ H_i for centred z."""
    m = torch.as_tensor(train_mean - centre, dtype=F64, device=device)
    v = torch.as_tensor(train_logvar, dtype=F64, device=device)
    a = torch.exp(-v)
    dim = m.shape[1]
    const = -0.5 * ((a * m * m).sum(1) + dim * LOG_2PI + v.sum(1))
    return torch.cat([-0.5 * a, a * m, const[:, None]], dim=1)


def _test_features(z: np.ndarray, centre: np.ndarray, device: torch.device) -> torch.Tensor:
    zc = torch.as_tensor(z - centre, dtype=F64, device=device)
    return torch.cat([zc * zc, zc, torch.ones_like(zc[:, :1])], dim=1)


def _stream_chunk(
    feats: torch.Tensor,
    HT: torch.Tensor,
    X: torch.Tensor | None,
    top_k: int,
    plan: ChunkPlan,
    buf: dict,
):
    """Streaming pass over all training rows (the blocks of ``plan``) for one chunk of test
    points. ``HT`` (2D+1, N): the training features, transposed; ``X`` (N, P) or None;
    ``buf``: the reused buffers of the log densities, their exponentials and, for images not
    in float64, a training chunk in float64 (:meth:`ChunkPlan.buffer`).
    """
    tc = feats.shape[0]
    dev = feats.device
    m = s = t = None
    num = torch.zeros(tc, X.shape[1], dtype=F64, device=dev) if X is not None else None
    top = RunningTopK(tc, top_k, F64, dev)
    for cols, logq in plan.blocks(tc, buf["logq"]):
        torch.mm(feats, HT[:, cols], out=logq)  # log q(z|x_i)
        top.add(logq, cols.start)
        m_new = logq.amax(1)
        if m is not None:
            m_new = torch.maximum(m, m_new)
            delta = m - m_new  # <= 0
            alpha = torch.exp(delta)
        logq.sub_(m_new[:, None])  # L - m'  (<= 0)
        e = torch.exp(logq, out=buf["e"][: logq.numel()].view(logq.shape))
        s_c = e.sum(1)
        t_c = torch.einsum("ij,ij->i", e, logq)
        if m is None:
            s, t = s_c, t_c
        else:
            t = alpha * (t + delta * s) + t_c
            s = alpha * s + s_c
        if num is not None:
            if m is not None:
                num.mul_(alpha[:, None])
            xc = X[cols]
            if "x" in buf:
                xc = staged(buf["x"], xc)
            num.addmm_(e, xc)
        m = m_new
    return m, s, t, num, top.values, top.index


def weight_stats(
    z,
    train_mean,
    train_logvar,
    train_x=None,
    *,
    top_k: int = 3,
    chunk_mb: float = 1024.0,
    device="cpu",
    centre=None,
    test_chunk: int | None = None,
    train_chunk: int | None = None,
    mu_on_device: bool = False,
) -> WeightStats:
    """Theorem 1 weights of test points ``z`` (T, D) under training posteriors (N, D).

    ``train_x`` (N, P), optional: the training images (any real dtype; pixels x/255 for the
    pipeline); mu is returned when it is given. ``device``: a torch device or 'auto' / 'cpu' /
    'cuda'. ``centre`` (D,): the coordinate centre (default: mean of the training means).
    ``test_chunk`` / ``train_chunk`` override the sizes derived from ``chunk_mb``.
    ``train_x`` may be a torch tensor already on the device (uploaded once by the caller).
    ``mu_on_device``: return mu as a float64 tensor on the device (no copy to the host).
    """
    dev = resolve_device(device)
    z = as_f64("z", z)
    train_mean = as_f64("train_mean", train_mean)
    train_logvar = as_f64("train_logvar", train_logvar)
    n, dim = train_mean.shape
    if train_logvar.shape != (n, dim) or z.shape[1] != dim:
        raise ValueError(
            f"shapes disagree: z {z.shape}, train_mean {train_mean.shape}, "
            f"train_logvar {train_logvar.shape}"
        )
    if n == 0:
        raise ValueError("no training posteriors")
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    n_pix = 0
    if train_x is not None:
        if len(array_shape(train_x)) != 2 or array_shape(train_x)[0] != n:
            raise ValueError(f"train_x must be ({n}, P), got {array_shape(train_x)}")
        n_pix = int(array_shape(train_x)[1])
    centre = (
        train_mean.mean(0)
        if centre is None
        else as_f64("centre", np.reshape(centre, (dim,)), ndim=1)
    )
    T = len(z)
    plan = ChunkPlan.fit(T, n, chunk_sizes(T, n, dim, n_pix, chunk_mb), test_chunk, train_chunk)
    k = min(top_k, n)
    out = {
        "m": np.empty(T),
        "s": np.empty(T),
        "t": np.empty(T),
        "top_v": np.empty((T, k)),
        "top_i": np.empty((T, k), np.int64),
    }
    mu = None
    if train_x is not None:
        mu = (
            torch.empty((T, n_pix), dtype=F64, device=dev) if mu_on_device else np.empty((T, n_pix))
        )
    with torch.inference_mode(), no_tf32():
        HT = _train_features(train_mean, train_logvar, centre, dev).T.contiguous()
        X = None
        if train_x is not None:
            X = to_tensor(train_x, dev)
            if not X.dtype.is_floating_point:
                X = X.to(F64)
        buf = {"logq": plan.buffer(F64, dev), "e": plan.buffer(F64, dev)}
        if X is not None and n_pix and X.dtype != F64:
            buf["x"] = plan.buffer(F64, dev, width=n_pix)
        for sl in plan.test_spans():
            feats = _test_features(z[sl], centre, dev)
            m, s, t, num, top_v, top_i = _stream_chunk(feats, HT, X, k, plan, buf)
            out["m"][sl], out["s"][sl], out["t"][sl] = (
                m.cpu().numpy(),
                s.cpu().numpy(),
                t.cpu().numpy(),
            )
            out["top_v"][sl], out["top_i"][sl] = top_v.cpu().numpy(), top_i.cpu().numpy()
            if mu_on_device and mu is not None:
                mu[sl] = num / s[:, None]
            elif mu is not None:
                mu[sl] = (num / s[:, None]).cpu().numpy()
    m, s, t = out["m"], out["s"], out["t"]
    log_norm = m + np.log(s)
    if not (np.isfinite(log_norm).all() and np.isfinite(t).all()):
        raise FloatingPointError("non-finite log densities (posterior variances too extreme?)")
    return WeightStats(
        log_norm=log_norm,
        entropy=np.log(s) - t / s,
        w_max=1.0 / s,
        topk_pos=out["top_i"],
        topk_weight=np.exp(out["top_v"] - m[:, None]) / s[:, None],
        mu=mu,
        chunks=plan.sizes,
    )


def max_weight_grid(
    train_mean,
    train_logvar,
    points,
    *,
    chunk_mb: float = 1024.0,
    device="cpu",
    centre=None,
    test_chunk: int | None = None,
    train_chunk: int | None = None,
) -> np.ndarray:
    """``max_i w_i(z)`` for every point ``z`` of ``points`` (G, D) (Figure 3 uses D = 2)."""
    stats = weight_stats(
        points,
        train_mean,
        train_logvar,
        None,
        top_k=1,
        chunk_mb=chunk_mb,
        device=device,
        centre=centre,
        test_chunk=test_chunk,
        train_chunk=train_chunk,
    )
    return stats.w_max


def weight_stats_shrinking(
    z,
    train_mean,
    train_logvar,
    train_x,
    *,
    top_k: int,
    chunk_mb: float,
    device,
    min_chunk_mb: float = MIN_CHUNK_MB,
    mu_on_device: bool = False,
) -> tuple[WeightStats, float]:
    """:func:`weight_stats`, retried with half the chunk budget when the GPU runs out of memory
    (:func:`~vae_novelty.chunks.shrink_on_oom`). Returns the statistics and the ``chunk_mb``
    that worked."""
    return shrink_on_oom(
        lambda budget: weight_stats(
            z,
            train_mean,
            train_logvar,
            train_x,
            top_k=top_k,
            chunk_mb=budget,
            device=device,
            mu_on_device=mu_on_device,
        ),
        chunk_mb,
        "the Theorem 1 engine",
        min_chunk_mb,
    )
