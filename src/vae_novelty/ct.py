"""C_T, the data-copying statistic of Meehan, Chaudhuri & Dasgupta (AISTATS 2020).

Does a generative model's sample lie closer to its training set than fresh data from the
training distribution does? Per model:

- *Distances.* For each generated sample x_hat, ``a = `` its pixel-space (Euclidean, pixels in
  [0, 1]) distance to the nearest training image of the model (the samples table's
  ``nn1_dist``); for each held-out image y, ``b = `` its distance to the nearest training
  image (exact, :func:`vae_novelty.pixel_nn.nearest_images`).
- *Held-out images.* They must come from the model's *training distribution*, not from the
  held-out digit: the MNIST test images of the digits of the model's training split
  (all ten for ``full`` and ``mini``, the nine others for ``noD``), the first
  ``splits.max_test_per_digit`` of each digit in reduced runs (as the evaluation set is
  chosen). Not MNIST_D^te: a model trained without 9s would look "novel" against 9s.
- *Cells.* k-means with ``ct_cells`` centres on the model's training images after a PCA to
  ``ct_pca_dims`` dimensions (float64, fitted on those training images; k-means++
  initialisation from ``SeedSequence([seed, crc32(split)])``, Lloyd iterations until no
  assignment changes or 100 iterations). Every sample and held-out image goes to the cell of
  its nearest centre (in the same PCA space; equal distances to the lower cell number).
  The cells depend on the training split only, not on the model.
- *Per cell* pi: the Mann-Whitney U statistic of the samples' distances against the held-out
  images' distances, ``U = #{(i, j): a_i > b_j} + 1/2 #{(i, j): a_i = b_j}``, and its z-score
  ``Z = (U - m n / 2) / sigma`` with ``sigma^2 = m n / 12 ((N + 1) - sum_t (t^3 - t) / (N (N - 1)))``
  (m samples, n held-out, N = m + n, t the sizes of groups of tied values: the usual tie
  correction). Z << 0: the cell's samples are closer to the training set than new data is
  (copying); Z >> 0: farther (underfitting).
- *C_T* = the weighted mean of Z over the cells with at least ``ct_min_per_cell`` samples and
  at least one held-out image, weighted by each cell's share of the held-out images
  (renormalised over those cells, so the weights sum to one; with every cell kept this is
  sum_pi (held-out share) x Z). NaN when no cell qualifies.

Meehan et al. use an embedding for MNIST; here cells live in PCA space and the distances in
pixel space, so values compare with theirs in sign and rough size, not exactly.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

KMEANS_MAX_ITER = 100


# --------------------------------------------------------------------------- cells


@dataclass
class Cells:
    """PCA (``mean``, ``components`` (dims, P)) and k-means ``centres`` (k, dims)."""

    mean: np.ndarray
    components: np.ndarray
    centres: np.ndarray
    iterations: int = 0

    def project(self, x) -> np.ndarray:
        return (np.asarray(x, np.float64) - self.mean) @ self.components.T

    def assign(self, x, chunk: int = 8192) -> np.ndarray:
        """Cell of each row of ``x`` (images): the nearest centre, ties to the lower cell."""
        x = np.asarray(x)
        out = np.empty(len(x), np.int64)
        for i0 in range(0, len(x), chunk):
            out[i0 : i0 + chunk] = nearest_centre(self.project(x[i0 : i0 + chunk]), self.centres)
        return out

    def describe(self) -> dict:
        return {
            "cells": int(len(self.centres)),
            "pca_dims": int(len(self.components)),
            "kmeans_iterations": int(self.iterations),
        }


def pca(x, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, components)``: the top ``dims`` principal axes of the rows of ``x`` (float64
    covariance eigenvectors, largest variance first, each signed so that its largest-magnitude
    entry is positive)."""
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"PCA needs at least two rows of a 2-D array, got shape {x.shape}")
    dims = int(min(dims, x.shape[1]))
    mean = x.mean(0)
    cov = np.zeros((x.shape[1], x.shape[1]))
    for i0 in range(0, len(x), 8192):
        xc = x[i0 : i0 + 8192] - mean
        cov += xc.T @ xc
    vals, vecs = np.linalg.eigh(cov / (len(x) - 1))
    comps = vecs[:, ::-1][:, :dims].T.copy()
    sign = np.sign(comps[np.arange(dims), np.abs(comps).argmax(1)])
    return mean, comps * sign[:, None]


def nearest_centre(points, centres) -> np.ndarray:
    """Index of the nearest centre for each point (squared Euclidean; ties to the lower)."""
    p, c = np.asarray(points, np.float64), np.asarray(centres, np.float64)
    d = (p * p).sum(1)[:, None] - 2.0 * p @ c.T + (c * c).sum(1)[None, :]
    return d.argmin(1)


def kmeans(
    points, k: int, rng: np.random.Generator, max_iter: int = KMEANS_MAX_ITER
) -> tuple[np.ndarray, int]:
    """``(centres, iterations)``: k-means++ initialisation, then Lloyd iterations until the
    assignment stops changing (or ``max_iter``). An empty cell keeps its centre."""
    p = np.asarray(points, np.float64)
    n = len(p)
    if not 1 <= k <= n:
        raise ValueError(f"k-means with {k} cells needs at least {k} points, got {n}")
    centres = np.empty((k, p.shape[1]))
    centres[0] = p[rng.integers(n)]
    d2 = ((p - centres[0]) ** 2).sum(1)
    for c in range(1, k):
        total = d2.sum()
        i = int(rng.choice(n, p=d2 / total)) if total > 0 else int(rng.integers(n))
        centres[c] = p[i]
        d2 = np.minimum(d2, ((p - centres[c]) ** 2).sum(1))
    assign = nearest_centre(p, centres)
    it = 0
    for it in range(1, max_iter + 1):
        for c in range(k):
            members = p[assign == c]
            if len(members):
                centres[c] = members.mean(0)
        new = nearest_centre(p, centres)
        if np.array_equal(new, assign):
            break
        assign = new
    return centres, it


def fit_cells(train_x, *, cells: int, pca_dims: int, seed: int, split: str) -> Cells:
    """The cells of a training split (module docstring)."""
    mean, comps = pca(train_x, pca_dims)
    proj = (np.asarray(train_x, np.float64) - mean) @ comps.T
    rng = np.random.Generator(
        np.random.PCG64(np.random.SeedSequence([int(seed), zlib.crc32(split.encode())]))
    )
    centres, iterations = kmeans(proj, min(int(cells), len(proj)), rng)
    return Cells(mean, comps, centres, iterations)


# --------------------------------------------------------------------------- statistic


def mann_whitney_z(a, b) -> float:
    """z-score of the Mann-Whitney U of ``a`` against ``b`` (U counts pairs with a > b, ties
    one half), with the tie-corrected variance; NaN when either is empty or all values tie."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    m, n = len(a), len(b)
    if m == 0 or n == 0:
        return float("nan")
    pooled = np.concatenate([a, b])
    N = m + n
    order = np.argsort(pooled, kind="stable")
    values = pooled[order]
    ranks = np.empty(N)
    # average ranks (1-based) of groups of equal values
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    ends = np.r_[starts[1:], N]
    avg = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(avg, ends - starts)
    U = ranks[:m].sum() - m * (m + 1) / 2.0
    t = (ends - starts).astype(np.float64)
    ties = (t**3 - t).sum() / (N * (N - 1)) if N > 1 else 0.0
    var = m * n / 12.0 * ((N + 1) - ties)
    if var <= 0:
        return float("nan")
    return float((U - m * n / 2.0) / np.sqrt(var))


def c_t(
    sample_dist, sample_cell, heldout_dist, heldout_cell, n_cells: int, min_per_cell: int
) -> dict:
    """C_T and its per-cell parts (module docstring). Returns ``{"ct", "cells": [...]}``, one
    entry per cell: samples, held-out images, z (NaN where undefined) and whether it counts."""
    sample_dist = np.asarray(sample_dist, np.float64)
    heldout_dist = np.asarray(heldout_dist, np.float64)
    sample_cell, heldout_cell = np.asarray(sample_cell), np.asarray(heldout_cell)
    if len(sample_dist) != len(sample_cell) or len(heldout_dist) != len(heldout_cell):
        raise ValueError("distances and cells must have the same lengths")
    if len(heldout_dist) == 0:
        raise ValueError("C_T needs held-out images")
    parts, num, den = [], 0.0, 0.0
    for c in range(int(n_cells)):
        a, b = sample_dist[sample_cell == c], heldout_dist[heldout_cell == c]
        z = mann_whitney_z(a, b)
        kept = len(a) >= min_per_cell and len(b) > 0 and np.isfinite(z)
        share = len(b) / len(heldout_dist)
        if kept:
            num += share * z
            den += share
        parts.append(
            {
                "cell": c,
                "samples": int(len(a)),
                "heldout": int(len(b)),
                "z": None if not np.isfinite(z) else float(z),
                "kept": bool(kept),
            }
        )
    return {"ct": float(num / den) if den > 0 else float("nan"), "cells": parts}


def heldout_rows(test_labels, digits, max_per_digit: int | None) -> np.ndarray:
    """MNIST test-file rows of ``digits`` (the training split's digits), the first
    ``max_per_digit`` of each (None: all), in increasing order."""
    labels = np.asarray(test_labels)
    parts = []
    for d in sorted(set(int(x) for x in digits)):
        rows = np.flatnonzero(labels == d).astype(np.int64)
        parts.append(rows[:max_per_digit] if max_per_digit else rows)
    return np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64)
