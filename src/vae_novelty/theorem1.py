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

Memorisation measures (alongside the engine, same chunking, float64, never a
(test x train x latent) or (test x train x pixel) tensor):

- :func:`latent_neighbours`: the two training posterior means nearest to z in Euclidean
  distance, from ``||z - m||^2 = |z|^2 - 2 z.m + |m|^2`` in the same centred coordinates as the
  engine (tiny negative values from rounding clamped to 0). ``nn_ratio = d1 / d2`` (nearest over
  second-nearest distance; 1 when ``d2 = 0``, i.e. two training codes on top of z; NaN with a
  single training row). A code on top of one training code has a small ratio: a near-copy.
  After centring the rounding error of a squared distance is about
  1e-16 (|z - c|^2 + |m - c|^2), so an exact copy reads as d1 <= ~1e-8 |z - c|, not always 0.
- :func:`xhat_neighbours`: the training image nearest to the decoder output x_hat = sigmoid(l)
  in pixel space (Euclidean distance; one matrix product per chunk, from the float64 decoder
  logits l), and its ``BCE(x_nn, x_hat)``. (Not the training image of smallest BCE: BCE with
  continuous targets is linear in the target, so its minimum favours whichever image has the
  most ink where the logits are positive, not the most similar one.)

Ties (exactly equal distances or BCEs) go to the lower position in the training arrays, as for
the top-k above (with the same caveat: duplicate rows may differ in the last bit).
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

LOG_2PI = math.log(2.0 * math.pi)
F64 = torch.float64
MIB = 2**20
TABLE_FORMAT = "vae-novelty-theorem1/2"
META_KEY = b"vae_novelty"
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
    return (8 * (tc * (2 * dim + 1) + 4 * tc * nc + nc * n_pixels + tc * n_pixels)
            + 64 * tc)


def chunk_sizes(n_test: int, n_train: int, dim: int, n_pixels: int, chunk_mb: float,
                max_test_chunk: int = MAX_TEST_CHUNK) -> tuple[int, int]:
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

    log_norm: np.ndarray      # (T,) logsumexp_i log q(z|x_i)
    entropy: np.ndarray       # (T,) nats
    w_max: np.ndarray         # (T,)
    topk_pos: np.ndarray      # (T, k') int64 positions in the training arrays, best first
    topk_weight: np.ndarray   # (T, k') float64
    mu: np.ndarray | None     # (T, P) float64, or None when no training images were given
    #                           (a torch tensor on the engine's device with mu_on_device=True)
    chunks: tuple[int, int] = field(default=(0, 0))  # (test_chunk, train_chunk) used

    @property
    def perplexity(self) -> np.ndarray:
        return np.exp(self.entropy)


@contextlib.contextmanager
def _no_tf32() -> Iterator[None]:
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old


def _device(device) -> torch.device:
    if isinstance(device, torch.device):
        return device
    from .io import select_device

    return select_device(device)


def _tensor(arr, device: torch.device, dtype=None) -> torch.Tensor:
    """A torch tensor of a numpy array (copied when the array is read-only); a tensor already
    on ``device`` (and of ``dtype``) is used as it is, so that callers can upload an input once
    and pass it to every pass of the engine."""
    if isinstance(arr, torch.Tensor):
        return arr.to(device=device, dtype=dtype or arr.dtype)
    arr = np.asarray(arr)
    if not arr.flags.writeable:
        arr = arr.copy()
    return torch.as_tensor(arr, dtype=dtype, device=device)


def _as_f64(name: str, arr, ndim: int = 2) -> np.ndarray:
    out = np.asarray(arr, dtype=np.float64)
    if out.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {out.shape}")
    if not np.isfinite(out).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return out


def _train_features(train_mean: np.ndarray, train_logvar: np.ndarray, centre: np.ndarray,
                    device: torch.device) -> torch.Tensor:
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


def _sort_pairs(values: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Order each row by value descending, equal values by index ascending."""
    order = torch.argsort(index, dim=1, stable=True)
    values, index = values.gather(1, order), index.gather(1, order)
    order = torch.sort(values, dim=1, descending=True, stable=True).indices
    return values.gather(1, order), index.gather(1, order)


def _chunk_topk(logq: torch.Tensor, k: int, offset: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k of each row (values, global positions), ties toward the lower position."""
    nc = logq.shape[1]
    kk = min(k, nc)
    values, index = torch.topk(logq, min(k + 1, nc), dim=1, largest=True, sorted=True)
    if nc > k:
        # torch.topk picks arbitrarily among values tied with the k-th: a (k+1)-th value equal
        # to the k-th flags such a row; those rows are redone with a stable sort.
        tied = values[:, k] == values[:, k - 1]
        values, index = values[:, :k].contiguous(), index[:, :k].contiguous()
        if bool(tied.any()):
            rows = tied.nonzero().squeeze(1)
            step = max(1, len(logq) // 4)       # bounds the sort's temporaries
            for r0 in range(0, len(rows), step):
                r = rows[r0:r0 + step]
                sv, si = torch.sort(logq[r], dim=1, descending=True, stable=True)
                values[r], index[r] = sv[:, :kk], si[:, :kk]
                del sv, si
    return _sort_pairs(values, index + offset)


def _merge_topk(v_old: torch.Tensor, i_old: torch.Tensor, v_new: torch.Tensor,
                i_new: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    values, index = _sort_pairs(torch.cat([v_old, v_new], 1), torch.cat([i_old, i_new], 1))
    return values[:, :k], index[:, :k]


def _buffers(tc: int, nc: int, n_pix: int, x_dtype, device: torch.device) -> dict:
    """Work buffers reused by every chunk (fresh large allocations cost page faults on CPU)."""
    buf = {"logq": torch.empty(tc * nc, dtype=F64, device=device),
           "e": torch.empty(tc * nc, dtype=F64, device=device)}
    if n_pix and x_dtype != F64:
        buf["x"] = torch.empty(nc * n_pix, dtype=F64, device=device)
    return buf


def _stream_chunk(feats: torch.Tensor, HT: torch.Tensor, X: torch.Tensor | None, top_k: int,
                  train_chunk: int, buf: dict):
    """Streaming pass over all training rows for one chunk of test points.

    ``HT`` (2D+1, N): the training features, transposed; ``X`` (N, P) or None.
    """
    tc, n = feats.shape[0], HT.shape[1]
    dev = feats.device
    m = s = t = None
    num = torch.zeros(tc, X.shape[1], dtype=F64, device=dev) if X is not None else None
    top_v = torch.empty(tc, 0, dtype=F64, device=dev)
    top_i = torch.empty(tc, 0, dtype=torch.int64, device=dev)
    for j0 in range(0, n, train_chunk):
        nc = min(train_chunk, n - j0)
        logq = buf["logq"][:tc * nc].view(tc, nc)
        torch.mm(feats, HT[:, j0:j0 + nc], out=logq)            # log q(z|x_i)
        if top_k:
            v, i = _chunk_topk(logq, top_k, j0)
            top_v, top_i = _merge_topk(top_v, top_i, v, i, top_k)
        m_new = logq.amax(1)
        if m is not None:
            m_new = torch.maximum(m, m_new)
            delta = m - m_new                                   # <= 0
            alpha = torch.exp(delta)
        logq.sub_(m_new[:, None])                               # L - m'  (<= 0)
        e = torch.exp(logq, out=buf["e"][:tc * nc].view(tc, nc))
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
            xc = X[j0:j0 + nc]
            if "x" in buf:
                xc = buf["x"][:nc * xc.shape[1]].view(nc, -1).copy_(xc)
            num.addmm_(e, xc)
        m = m_new
    return m, s, t, num, top_v, top_i


def _shape(arr) -> tuple[int, ...]:
    """Shape of a numpy array, array-like or torch tensor (on any device)."""
    return tuple(arr.shape) if isinstance(arr, torch.Tensor) else np.shape(arr)


def weight_stats(z, train_mean, train_logvar, train_x=None, *, top_k: int = 3,
                 chunk_mb: float = 1024.0, device="cpu", centre=None,
                 test_chunk: int | None = None, train_chunk: int | None = None,
                 mu_on_device: bool = False) -> WeightStats:
    """Theorem 1 weights of test points ``z`` (T, D) under training posteriors (N, D).

    ``train_x`` (N, P), optional: the training images (any real dtype; pixels x/255 for the
    pipeline); mu is returned when it is given. ``device``: a torch device or 'auto' / 'cpu' /
    'cuda'. ``centre`` (D,): the coordinate centre (default: mean of the training means).
    ``test_chunk`` / ``train_chunk`` override the sizes derived from ``chunk_mb``.
    ``train_x`` may be a torch tensor already on the device (uploaded once by the caller).
    ``mu_on_device``: return mu as a float64 tensor on the device (no copy to the host).
    """
    dev = _device(device)
    z = _as_f64("z", z)
    train_mean = _as_f64("train_mean", train_mean)
    train_logvar = _as_f64("train_logvar", train_logvar)
    n, dim = train_mean.shape
    if train_logvar.shape != (n, dim) or z.shape[1] != dim:
        raise ValueError(f"shapes disagree: z {z.shape}, train_mean {train_mean.shape}, "
                         f"train_logvar {train_logvar.shape}")
    if n == 0:
        raise ValueError("no training posteriors")
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    n_pix = 0
    if train_x is not None:
        if len(_shape(train_x)) != 2 or _shape(train_x)[0] != n:
            raise ValueError(f"train_x must be ({n}, P), got {_shape(train_x)}")
        n_pix = int(_shape(train_x)[1])
    centre = (train_mean.mean(0) if centre is None
              else _as_f64("centre", np.reshape(centre, (dim,)), ndim=1))
    tc, nc = chunk_sizes(len(z), n, dim, n_pix, chunk_mb)
    tc, nc = int(test_chunk or tc), int(min(train_chunk or nc, n))
    k = min(top_k, n)
    T = len(z)
    out = {"m": np.empty(T), "s": np.empty(T), "t": np.empty(T),
           "top_v": np.empty((T, k)), "top_i": np.empty((T, k), np.int64)}
    mu = None
    if train_x is not None:
        mu = (torch.empty((T, n_pix), dtype=F64, device=dev) if mu_on_device
              else np.empty((T, n_pix)))
    with torch.inference_mode(), _no_tf32():
        HT = _train_features(train_mean, train_logvar, centre, dev).T.contiguous()
        X = None
        if train_x is not None:
            X = _tensor(train_x, dev)
            if not X.dtype.is_floating_point:
                X = X.to(F64)
        buf = _buffers(min(tc, max(T, 1)), nc, n_pix, None if X is None else X.dtype, dev)
        for i0 in range(0, T, tc):
            feats = _test_features(z[i0:i0 + tc], centre, dev)
            m, s, t, num, top_v, top_i = _stream_chunk(feats, HT, X, k, nc, buf)
            sl = slice(i0, i0 + len(feats))
            out["m"][sl], out["s"][sl], out["t"][sl] = (m.cpu().numpy(), s.cpu().numpy(),
                                                       t.cpu().numpy())
            out["top_v"][sl], out["top_i"][sl] = top_v.cpu().numpy(), top_i.cpu().numpy()
            if mu_on_device and mu is not None:
                mu[sl] = num / s[:, None]
            elif mu is not None:
                mu[sl] = (num / s[:, None]).cpu().numpy()
    m, s, t = out["m"], out["s"], out["t"]
    log_norm = m + np.log(s)
    if not (np.isfinite(log_norm).all() and np.isfinite(t).all()):
        raise FloatingPointError("non-finite log densities (posterior variances too extreme?)")
    return WeightStats(log_norm=log_norm, entropy=np.log(s) - t / s, w_max=1.0 / s,
                       topk_pos=out["top_i"],
                       topk_weight=np.exp(out["top_v"] - m[:, None]) / s[:, None],
                       mu=mu, chunks=(tc, nc))


def max_weight_grid(train_mean, train_logvar, points, *, chunk_mb: float = 1024.0,
                    device="cpu", centre=None, test_chunk: int | None = None,
                    train_chunk: int | None = None) -> np.ndarray:
    """``max_i w_i(z)`` for every point ``z`` of ``points`` (G, D) (Figure 3 uses D = 2)."""
    stats = weight_stats(points, train_mean, train_logvar, None, top_k=1, chunk_mb=chunk_mb,
                         device=device, centre=centre, test_chunk=test_chunk,
                         train_chunk=train_chunk)
    return stats.w_max


# --------------------------------------------------------------------------- memorisation

def _override_chunks(tc: int, nc: int, test_chunk, train_chunk, n: int) -> tuple[int, int]:
    return int(test_chunk or tc), int(min(train_chunk or nc, n))


def latent_neighbours(z, train_mean, *, k: int = 2, chunk_mb: float = 1024.0, device="cpu",
                      centre=None, test_chunk: int | None = None,
                      train_chunk: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` training means nearest to each test point: ``(positions, distances)``.

    ``z`` (T, D), ``train_mean`` (N, D). Returns int64 positions in the training arrays and
    float64 Euclidean distances, both (T, min(k, N)), nearest first; equal distances in order
    of position. Squared distances are ``|z|^2 - 2 z.m + |m|^2`` in coordinates centred by
    ``centre`` (default: the mean of the training means), clamped at 0.
    """
    dev = _device(device)
    z = _as_f64("z", z)
    train_mean = _as_f64("train_mean", train_mean)
    n, dim = train_mean.shape
    if z.shape[1] != dim:
        raise ValueError(f"shapes disagree: z {z.shape}, train_mean {train_mean.shape}")
    if n == 0:
        raise ValueError("no training means")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    centre = (train_mean.mean(0) if centre is None
              else _as_f64("centre", np.reshape(centre, (dim,)), ndim=1))
    tc, nc = _override_chunks(*chunk_sizes(len(z), n, dim, 0, chunk_mb), test_chunk, train_chunk, n)
    kk, T = min(k, n), len(z)
    pos, dist = np.empty((T, kk), np.int64), np.empty((T, kk))
    with torch.inference_mode(), _no_tf32():
        mc = torch.as_tensor(train_mean - centre, dtype=F64, device=dev)
        # -||z - m||^2 = [z, 1] . [2 m, -|m|^2] - |z|^2
        BT = torch.cat([2.0 * mc, -(mc * mc).sum(1, keepdim=True)], 1).T.contiguous()
        buf = torch.empty(min(tc, max(T, 1)) * nc, dtype=F64, device=dev)
        for i0 in range(0, T, tc):
            zc = torch.as_tensor(z[i0:i0 + tc] - centre, dtype=F64, device=dev)
            A = torch.cat([zc, torch.ones_like(zc[:, :1])], 1)
            z2 = (zc * zc).sum(1, keepdim=True)
            t = len(zc)
            top_v = torch.empty(t, 0, dtype=F64, device=dev)
            top_i = torch.empty(t, 0, dtype=torch.int64, device=dev)
            for j0 in range(0, n, nc):
                ncj = min(nc, n - j0)
                neg = buf[:t * ncj].view(t, ncj)
                torch.mm(A, BT[:, j0:j0 + ncj], out=neg)
                neg.sub_(z2).clamp_(max=0.0)              # -||z - m||^2, rounding clamped
                v, i = _chunk_topk(neg, kk, j0)
                top_v, top_i = _merge_topk(top_v, top_i, v, i, kk)
            sl = slice(i0, i0 + t)
            pos[sl] = top_i.cpu().numpy()
            dist[sl] = torch.sqrt(-top_v).cpu().numpy()
    return pos, dist


def nn_ratio(dist: np.ndarray) -> np.ndarray:
    """``d1 / d2`` from the distances of :func:`latent_neighbours` (T, >= 2), nearest first.

    1 where ``d2 == 0`` (at least two training codes on top of z: not one nearest); NaN when
    there is no second neighbour (a single training row).
    """
    dist = np.asarray(dist, np.float64)
    if dist.ndim != 2:
        raise ValueError(f"dist must be 2-D, got shape {dist.shape}")
    if dist.shape[1] < 2:
        return np.full(len(dist), np.nan)
    d1, d2 = dist[:, 0], dist[:, 1]
    return np.divide(d1, d2, out=np.ones_like(d1), where=d2 > 0)


def xhat_neighbours(logits, train_x, *, chunk_mb: float = 1024.0, device="cpu",
                    test_chunk: int | None = None,
                    train_chunk: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The training image nearest to each decoder output, and its BCE: ``(position, BCE)``.

    ``logits`` (T, P): decoder logits l, x_hat = sigmoid(l); ``train_x`` (N, P): the training
    images (any real dtype). Nearest = smallest Euclidean pixel distance |x_i - x_hat|, found
    as the largest ``2 x_i . x_hat - |x_i|^2`` (one matrix product per chunk; |x_hat|^2 is the
    same for every i); equal distances in order of position. The BCE reported is
    ``BCE(x_nn, x_hat) = sum_j softplus(l_j) - x_nn . l`` (summed binary cross-entropy of
    target x_nn under Bernoulli means x_hat), to compare with BCE(x, x_hat): a decoder output
    that is closer to a training image than to its own input is a near-copy. float64
    throughout; the BCE cancels terms of size sum_j |l_j|, so it is exact to about
    1e-16 sum_j |l_j| absolute.
    """
    dev = _device(device)
    logits = _as_f64("logits", logits)
    T, n_pix = logits.shape
    if len(_shape(train_x)) != 2 or _shape(train_x)[1] != n_pix:
        raise ValueError(f"train_x must be (N, {n_pix}), got {_shape(train_x)}")
    n = _shape(train_x)[0]
    if n == 0:
        raise ValueError("no training images")
    tc, nc = _override_chunks(*chunk_sizes(T, n, 0, n_pix, chunk_mb), test_chunk, train_chunk, n)
    pos, bce = np.empty(T, np.int64), np.empty(T)
    with torch.inference_mode(), _no_tf32():
        X = _tensor(train_x, dev)
        if X.dtype != F64:
            xbuf = torch.empty(nc * n_pix, dtype=F64, device=dev)
        buf = torch.empty(min(tc, max(T, 1)) * nc, dtype=F64, device=dev)
        for i0 in range(0, T, tc):
            lg = _tensor(logits[i0:i0 + tc], dev, F64)
            xhat2 = 2.0 * torch.sigmoid(lg)
            t = len(lg)
            top_v = torch.empty(t, 0, dtype=F64, device=dev)
            top_i = torch.empty(t, 0, dtype=torch.int64, device=dev)
            for j0 in range(0, n, nc):
                ncj = min(nc, n - j0)
                xc = X[j0:j0 + ncj]
                if X.dtype != F64:
                    xc = xbuf[:ncj * n_pix].view(ncj, n_pix).copy_(xc)
                score = buf[:t * ncj].view(t, ncj)
                torch.mm(xhat2, xc.T, out=score)             # 2 x_i . x_hat
                score.sub_((xc * xc).sum(1))                 # - |x_i|^2: larger = nearer
                v, i = _chunk_topk(score, 1, j0)
                top_v, top_i = _merge_topk(top_v, top_i, v, i, 1)
            sl = slice(i0, i0 + t)
            nearest = X[top_i[:, 0]].to(F64)
            pos[sl] = top_i[:, 0].cpu().numpy()
            bce[sl] = (torch.nn.functional.softplus(lg).sum(1)
                       - (nearest * lg).sum(1)).cpu().numpy()
    return pos, bce


# --------------------------------------------------------------------------- decoder, BCE

@torch.inference_mode()
def decode_bce(model, z, x, mu, device="cpu",
               batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x_hat, BCE(x, x_hat), BCE(mu, x_hat))`` for posterior means ``z`` (T, D).

    The decoder runs in float64 (:func:`decoder_logits`) and both BCEs are summed over pixels
    from the decoder logits (:func:`bce_from_logits`). ``x_hat`` is returned as float32.
    """
    return bce_from_logits(decoder_logits(model, z, device, batch_size), x, mu, device,
                           batch_size)


def bce_from_logits(logits, x, mu, device="cpu",
                    batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x_hat, BCE(x, x_hat), BCE(mu, x_hat))`` from float64 decoder logits (T, P), with
    :func:`vae_novelty.model.bce_per_image` in float64; ``x_hat`` as float32."""
    from .model import bce_per_image

    dev = _device(device)
    T = len(logits)
    x_hat = np.empty(np.shape(logits), np.float32)
    bce_x, bce_mu = np.empty(T), np.empty(T)
    with torch.inference_mode():
        for i0 in range(0, T, batch_size):
            sl = slice(i0, i0 + batch_size)
            lg = _tensor(logits[sl], dev, F64)
            x_hat[sl] = torch.sigmoid(lg).float().cpu().numpy()
            bce_x[sl] = bce_per_image(lg, _tensor(x[sl], dev, F64)).cpu().numpy()
            bce_mu[sl] = bce_per_image(lg, _tensor(mu[sl], dev, F64)).cpu().numpy()
    return x_hat, bce_x, bce_mu


def float64_model(model, device: torch.device):
    """A float64 copy of ``model`` on ``device``, in eval mode (the original is untouched)."""
    return copy.deepcopy(model).to(device=device, dtype=F64).eval()


@torch.inference_mode()
def decoder_logits(model, z, device="cpu", batch_size: int = 1024) -> np.ndarray:
    """Decoder logits (float64, (T, P)) at latent points ``z`` (T, D), from a float64 copy of
    ``model``."""
    dev = _device(device)
    m64 = float64_model(model, dev)
    z = np.asarray(z)
    out = np.empty((len(z), m64.x_dim))
    with _no_tf32():
        for i0 in range(0, len(z), batch_size):
            out[i0:i0 + batch_size] = m64.decode_logits(
                _tensor(z[i0:i0 + batch_size], dev, F64)).cpu().numpy()
    return out


# --------------------------------------------------------------------------- per-model files

def table_schema():
    """Arrow schema of ``results/theorem1/{arch}/{split}_s{seed}.parquet``."""
    import pyarrow as pa

    return pa.schema([
        ("model_id", pa.string()), ("arch", pa.string()), ("hidden", pa.string()),
        ("n_hidden_layers", pa.int64()), ("z_dim", pa.int64()), ("split", pa.string()),
        ("heldout_digit", pa.int64()), ("seed", pa.int64()), ("decoder_params", pa.int64()),
        ("mnist_index", pa.int64()), ("label", pa.int64()),
        ("bce_x_xhat", pa.float64()), ("bce_mu_xhat", pa.float64()),
        ("perplexity", pa.float64()), ("entropy", pa.float64()), ("w_max", pa.float64()),
        ("log_norm", pa.float64()),
        ("topk_index", pa.list_(pa.int64())), ("topk_weight", pa.list_(pa.float64())),
        # memorisation measures (see the module docstring)
        ("nn_index", pa.int64()), ("nn_dist", pa.float64()), ("nn_ratio", pa.float64()),
        ("xhat_nn_index", pa.int64()), ("xhat_nn_bce", pa.float64()),
    ])


NEIGHBOUR_COLUMNS = ("nn_index", "nn_dist", "nn_ratio", "xhat_nn_index", "xhat_nn_bce")


MODEL_COLUMNS = ("model_id", "arch", "hidden", "n_hidden_layers", "z_dim", "split",
                 "heldout_digit", "seed", "decoder_params")


def model_info(spec) -> dict:
    """The per-model columns of a :class:`vae_novelty.config.ModelSpec`."""
    from .model import decoder_param_count

    held = spec.heldout_digit
    return {"model_id": spec.model_id, "arch": spec.arch,
            "hidden": "-".join(str(h) for h in spec.hidden),
            "n_hidden_layers": len(spec.hidden), "z_dim": int(spec.z_dim), "split": spec.split,
            "heldout_digit": -1 if held is None else int(held), "seed": int(spec.seed),
            "decoder_params": int(decoder_param_count(spec.hidden, spec.z_dim))}


@dataclass
class Theorem1Result:
    """One model's results: the Parquet table and the images for the figures."""

    table: "pa.Table"  # noqa: F821
    mnist_index: np.ndarray   # (T,) int64, MNIST test-file rows
    x: np.ndarray             # (T, 784) input images
    mu: np.ndarray            # (T, 784) weighted averages
    x_hat: np.ndarray         # (T, 784) decoder outputs
    meta: dict = field(default_factory=dict)  # the table's ``vae_novelty`` metadata


def build_table(info: dict, mnist_index, label, bce_x, bce_mu, stats: WeightStats,
                topk_index, meta: dict, neighbours: dict | None = None):
    """The per-model Parquet table (schema :func:`table_schema`, metadata ``vae_novelty``).

    ``neighbours``: arrays (T,) for :data:`NEIGHBOUR_COLUMNS` (``nn_index`` and
    ``xhat_nn_index`` as MNIST training-file rows); left out, those columns are null.
    """
    import pyarrow as pa

    T = len(mnist_index)
    schema = table_schema()
    cols = {k: pa.array([info[k]] * T, table_schema().field(k).type) for k in MODEL_COLUMNS}
    cols.update({
        "mnist_index": pa.array(np.asarray(mnist_index, np.int64)),
        "label": pa.array(np.asarray(label, np.int64)),
        "bce_x_xhat": pa.array(np.asarray(bce_x, np.float64)),
        "bce_mu_xhat": pa.array(np.asarray(bce_mu, np.float64)),
        "perplexity": pa.array(stats.perplexity.astype(np.float64)),
        "entropy": pa.array(stats.entropy.astype(np.float64)),
        "w_max": pa.array(stats.w_max.astype(np.float64)),
        "log_norm": pa.array(stats.log_norm.astype(np.float64)),
        "topk_index": pa.array([list(map(int, r)) for r in np.asarray(topk_index)],
                               pa.list_(pa.int64())),
        "topk_weight": pa.array([list(map(float, r)) for r in stats.topk_weight],
                                pa.list_(pa.float64())),
    })
    for name in NEIGHBOUR_COLUMNS:
        typ = schema.field(name).type
        if neighbours is None:
            cols[name] = pa.nulls(T, typ)
        else:
            values = np.asarray(neighbours[name])
            if values.shape != (T,):
                raise ValueError(f"neighbours[{name!r}] has shape {values.shape}, expected ({T},)")
            cols[name] = pa.array(values.astype(typ.to_pandas_dtype()), typ)
    table = pa.table(cols, schema=schema)
    return table.replace_schema_metadata(
        {META_KEY: json.dumps(meta, sort_keys=True, default=str).encode()})


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
                f"fit; set theorem1.device: cpu, or free the GPU ({failure})")
        log.warning("out of GPU memory in %s with chunks of %g MiB; retrying with %g MiB "
                    "(lower theorem1.chunk_mb to avoid this)", what, budget, budget / 2)
        budget /= 2


def weight_stats_shrinking(z, train_mean, train_logvar, train_x, *, top_k: int, chunk_mb: float,
                           device, min_chunk_mb: float = MIN_CHUNK_MB,
                           mu_on_device: bool = False) -> tuple[WeightStats, float]:
    """:func:`weight_stats`, retried with half the chunk budget when the GPU runs out of memory
    (:func:`shrink_on_oom`). Returns the statistics and the ``chunk_mb`` that worked."""
    return shrink_on_oom(
        lambda budget: weight_stats(z, train_mean, train_logvar, train_x, top_k=top_k,
                                    chunk_mb=budget, device=device,
                                    mu_on_device=mu_on_device),
        chunk_mb, "the Theorem 1 engine", min_chunk_mb)


@dataclass
class ModelInputs:
    """What every per-model evaluation reads, checked against each other: the posterior dicts
    of :func:`~vae_novelty.posterior.read_posteriors` (``train``, ``test``), the files'
    metadata, the model, and the test and training images as float pixels in the posterior
    file's row order (``x_train`` may be a tensor uploaded once to the evaluation device)."""

    train: dict
    test: dict
    posterior_meta: dict
    model: "torch.nn.Module"
    model_meta: dict
    x: np.ndarray
    x_train: "np.ndarray | torch.Tensor"


def model_inputs(posteriors, mnist, model, model_meta, spec,
                 posterior_path="posteriors") -> ModelInputs:
    """:class:`ModelInputs` from a posterior file's contents (``posteriors``: the
    ``(train, test, meta)`` of :func:`~vae_novelty.posterior.read_posteriors`), the MNIST
    arrays and the loaded model, checked to belong together."""
    from .data import to_float

    train, test, post_meta = posteriors
    if len(train["mnist_index"]) == 0:
        raise ValueError(f"{posterior_path}: no training rows (role == 'train')")
    if post_meta.get("model_id") not in (None, spec.model_id):
        raise ValueError(f"{posterior_path}: posteriors of model {post_meta.get('model_id')!r}, "
                         f"expected {spec.model_id!r}")
    test_labels = mnist.test_labels[test["mnist_index"]]
    if not np.array_equal(test_labels.astype(np.int64), test["label"].astype(np.int64)):
        raise ValueError(f"{posterior_path}: test labels disagree with the MNIST arrays "
                         f"(posteriors from another MNIST file?)")
    x = to_float(mnist.test_images[test["mnist_index"]])
    x_train = to_float(mnist.train_images[train["mnist_index"]])
    return ModelInputs(train, test, post_meta, model, model_meta, x, x_train)


def load_model_inputs(posterior_path, model_path, mnist_path, spec) -> ModelInputs:
    """:class:`ModelInputs` read from the files of one model (``spec``: a ModelSpec)."""
    from .data import load_mnist
    from .model import load_model
    from .posterior import read_posteriors

    posteriors = read_posteriors(posterior_path, expect_z_dim=spec.z_dim)
    model, model_meta = load_model(model_path, expect_hidden=list(spec.hidden),
                                   expect_z_dim=spec.z_dim)
    return model_inputs(posteriors, load_mnist(Path(mnist_path)), model, model_meta, spec,
                        posterior_path)


def evaluate_model(posterior_path, model_path, mnist_path, spec, *, top_k: int = 3,
                   chunk_mb: float = 1024.0, device="cpu") -> Theorem1Result:
    """All Theorem 1 quantities of one model (``spec``: a ModelSpec) on its evaluation images."""
    return evaluate_inputs(load_model_inputs(posterior_path, model_path, mnist_path, spec), spec,
                           top_k=top_k, chunk_mb=chunk_mb, device=device)


def evaluate_inputs(inputs: ModelInputs, spec, *, top_k: int = 3, chunk_mb: float = 1024.0,
                    device="cpu") -> Theorem1Result:
    """:func:`evaluate_model` on inputs already in memory. Every pass over the training set
    (weights, latent and pixel neighbours) is retried with smaller chunks on GPU
    out-of-memory (:func:`shrink_on_oom`)."""
    from .io import describe_device, provenance

    dev = _device(device)
    train, test, x = inputs.train, inputs.test, inputs.x
    x_train = _tensor(inputs.x_train, dev)          # uploaded once for every pass below
    stats, chunk_mb = weight_stats_shrinking(test["z_mean"], train["z_mean"], train["z_logvar"],
                                             x_train, top_k=top_k, chunk_mb=chunk_mb, device=dev)
    logits = decoder_logits(inputs.model, test["z_mean"], dev)
    x_hat, bce_x, bce_mu = bce_from_logits(logits, x, stats.mu, dev)
    train_rows = train["mnist_index"].astype(np.int64)
    (nn_pos, nn_dist), chunk_mb = shrink_on_oom(
        lambda b: latent_neighbours(test["z_mean"], train["z_mean"], k=2, chunk_mb=b, device=dev),
        chunk_mb, "the latent neighbour search")
    (xnn_pos, xnn_bce), chunk_mb = shrink_on_oom(
        lambda b: xhat_neighbours(logits, x_train, chunk_mb=b, device=dev),
        chunk_mb, "the pixel neighbour search")
    neighbours = {"nn_index": train_rows[nn_pos[:, 0]], "nn_dist": nn_dist[:, 0],
                  "nn_ratio": nn_ratio(nn_dist), "xhat_nn_index": train_rows[xnn_pos],
                  "xhat_nn_bce": xnn_bce}
    info = model_info(spec)
    meta = {**info, "schema": TABLE_FORMAT, "top_k": int(top_k), "chunk_mb": chunk_mb,
            "chunks": list(stats.chunks), "device": describe_device(dev),
            "n_train": int(len(train["mnist_index"])), "n_test": int(len(x)),
            "posterior_code_version": inputs.posterior_meta.get("code_version"),
            "model_code_version": inputs.model_meta.get("code_version"), **provenance()}
    topk_index = train_rows[stats.topk_pos]
    table = build_table(info, test["mnist_index"], test["label"], bce_x, bce_mu, stats,
                        topk_index, meta, neighbours)
    return Theorem1Result(table, test["mnist_index"].astype(np.int64), x, stats.mu, x_hat, meta)


def write_result(result: Theorem1Result, parquet_path, npz_path) -> None:
    """Write the table (Parquet) and the images (npz, float16) atomically."""
    import pyarrow.parquet as pq

    from .io import atomic_path

    with atomic_path(parquet_path) as tmp:
        pq.write_table(result.table, tmp)
    with atomic_path(npz_path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, mnist_index=result.mnist_index.astype(np.int64),
                                x=result.x.astype(np.float16), mu=result.mu.astype(np.float16),
                                x_hat=result.x_hat.astype(np.float16))
