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

from .tensors import array_shape, as_f64, no_tf32, resolve_device, to_tensor
from .theorem1 import F64, chunk_sizes, chunk_topk, merge_topk


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
    centre = (train_mean.mean(0) if centre is None
              else as_f64("centre", np.reshape(centre, (dim,)), ndim=1))
    tc, nc = _override_chunks(*chunk_sizes(len(z), n, dim, 0, chunk_mb), test_chunk, train_chunk, n)
    kk, T = min(k, n), len(z)
    pos, dist = np.empty((T, kk), np.int64), np.empty((T, kk))
    with torch.inference_mode(), no_tf32():
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
                v, i = chunk_topk(neg, kk, j0)
                top_v, top_i = merge_topk(top_v, top_i, v, i, kk)
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
    dev = resolve_device(device)
    logits = as_f64("logits", logits)
    T, n_pix = logits.shape
    if len(array_shape(train_x)) != 2 or array_shape(train_x)[1] != n_pix:
        raise ValueError(f"train_x must be (N, {n_pix}), got {array_shape(train_x)}")
    n = array_shape(train_x)[0]
    if n == 0:
        raise ValueError("no training images")
    tc, nc = _override_chunks(*chunk_sizes(T, n, 0, n_pix, chunk_mb), test_chunk, train_chunk, n)
    pos, bce = np.empty(T, np.int64), np.empty(T)
    with torch.inference_mode(), no_tf32():
        X = to_tensor(train_x, dev)
        if X.dtype != F64:
            xbuf = torch.empty(nc * n_pix, dtype=F64, device=dev)
        buf = torch.empty(min(tc, max(T, 1)) * nc, dtype=F64, device=dev)
        for i0 in range(0, T, tc):
            lg = to_tensor(logits[i0:i0 + tc], dev, F64)
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
                v, i = chunk_topk(score, 1, j0)
                top_v, top_i = merge_topk(top_v, top_i, v, i, 1)
            sl = slice(i0, i0 + t)
            nearest = X[top_i[:, 0]].to(F64)
            pos[sl] = top_i[:, 0].cpu().numpy()
            bce[sl] = (torch.nn.functional.softplus(lg).sum(1)
                       - (nearest * lg).sum(1)).cpu().numpy()
    return pos, bce
