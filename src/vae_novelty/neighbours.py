"""Memorisation measures per test point, with the Theorem 1 engine's chunking and float64.

Never a (test x train x latent) or (test x train x pixel) tensor is formed:

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

import numpy as np
import torch

from .chunks import ChunkPlan, RunningTopK, staged
from .tensors import F64, array_shape, as_f64, no_tf32, resolve_device, to_tensor
from .theorem1 import chunk_sizes


def latent_neighbours(
    z,
    train_mean,
    *,
    k: int = 2,
    chunk_mb: float = 1024.0,
    device="cpu",
    centre=None,
    test_chunk: int | None = None,
    train_chunk: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` training means nearest to each test point: ``(positions, distances)``.

    ``z`` (T, D), ``train_mean`` (N, D). Returns int64 positions in the training arrays and
    float64 Euclidean distances, both (T, min(k, N)), nearest first; equal distances in order
    of position. Squared distances are ``|z|^2 - 2 z.m + |m|^2`` in coordinates centred by
    ``centre`` (default: the mean of the training means), clamped at 0.
    """
    dev = resolve_device(device)
    z = as_f64("z", z)
    train_mean = as_f64("train_mean", train_mean)
    n, dim = train_mean.shape
    if z.shape[1] != dim:
        raise ValueError(f"shapes disagree: z {z.shape}, train_mean {train_mean.shape}")
    if n == 0:
        raise ValueError("no training means")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    centre = (
        train_mean.mean(0)
        if centre is None
        else as_f64("centre", np.reshape(centre, (dim,)), ndim=1)
    )
    kk, T = min(k, n), len(z)
    plan = ChunkPlan.fit(T, n, chunk_sizes(T, n, dim, 0, chunk_mb), test_chunk, train_chunk)
    pos, dist = np.empty((T, kk), np.int64), np.empty((T, kk))
    with torch.inference_mode(), no_tf32():
        mc = torch.as_tensor(train_mean - centre, dtype=F64, device=dev)
        # -||z - m||^2 = [z, 1] . [2 m, -|m|^2] - |z|^2
        BT = torch.cat([2.0 * mc, -(mc * mc).sum(1, keepdim=True)], 1).T.contiguous()
        buf = plan.buffer(F64, dev)
        for sl in plan.test_spans():
            zc = torch.as_tensor(z[sl] - centre, dtype=F64, device=dev)
            A = torch.cat([zc, torch.ones_like(zc[:, :1])], 1)
            z2 = (zc * zc).sum(1, keepdim=True)
            top = RunningTopK(len(zc), kk, F64, dev)
            for cols, neg in plan.blocks(len(zc), buf):
                torch.mm(A, BT[:, cols], out=neg)
                neg.sub_(z2).clamp_(max=0.0)  # -||z - m||^2, rounding clamped
                top.add(neg, cols.start)
            pos[sl] = top.index.cpu().numpy()
            dist[sl] = torch.sqrt(-top.values).cpu().numpy()
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


def xhat_neighbours(
    logits,
    train_x,
    *,
    chunk_mb: float = 1024.0,
    device="cpu",
    test_chunk: int | None = None,
    train_chunk: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
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
    dev = resolve_device(device)
    logits = as_f64("logits", logits)
    T, n_pix = logits.shape
    if len(array_shape(train_x)) != 2 or array_shape(train_x)[1] != n_pix:
        raise ValueError(f"train_x must be (N, {n_pix}), got {array_shape(train_x)}")
    n = array_shape(train_x)[0]
    if n == 0:
        raise ValueError("no training images")
    plan = ChunkPlan.fit(T, n, chunk_sizes(T, n, 0, n_pix, chunk_mb), test_chunk, train_chunk)
    pos, bce = np.empty(T, np.int64), np.empty(T)
    with torch.inference_mode(), no_tf32():
        X = to_tensor(train_x, dev)
        if X.dtype != F64:
            xbuf = plan.buffer(F64, dev, width=n_pix)
        buf = plan.buffer(F64, dev)
        for sl in plan.test_spans():
            lg = to_tensor(logits[sl], dev, F64)
            xhat2 = 2.0 * torch.sigmoid(lg)
            top = RunningTopK(len(lg), 1, F64, dev)
            for cols, score in plan.blocks(len(lg), buf):
                xc = X[cols]
                if X.dtype != F64:
                    xc = staged(xbuf, xc)
                torch.mm(xhat2, xc.T, out=score)  # 2 x_i . x_hat
                score.sub_((xc * xc).sum(1))  # - |x_i|^2: larger = nearer
                top.add(score, cols.start)
            nearest = X[top.index[:, 0]].to(F64)
            pos[sl] = top.index[:, 0].cpu().numpy()
            bce[sl] = (
                (torch.nn.functional.softplus(lg).sum(1) - (nearest * lg).sum(1)).cpu().numpy()
            )
    return pos, bce
