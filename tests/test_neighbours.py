"""Tests of the nearest-neighbour searches (latent codes, decoder outputs) against loop
references."""

from __future__ import annotations

import numpy as np
import pytest

from test_theorem1 import random_posteriors
from vae_novelty import neighbours as nb

# --------------------------------------------------------------------------- memorisation


def ref_latent_neighbours(z, mean):
    """Euclidean distances by a loop over training rows; nearest two, ties to lower row."""
    z, mean = np.asarray(z, np.float64), np.asarray(mean, np.float64)
    d = np.empty((len(z), len(mean)))
    for i in range(len(mean)):
        d[:, i] = np.sqrt(((z - mean[i]) ** 2).sum(1))
    order = np.array([sorted(range(len(mean)), key=lambda i: (d[t, i], i))[:2]
                      for t in range(len(z))], dtype=np.int64).reshape(len(z), -1)
    return order, np.take_along_axis(d, order, 1)


def ref_bce_to_train(logits, train_x):
    """BCE(x_i, x_hat) for every (test, training row), by a loop over training rows."""
    logits = np.asarray(logits, np.float64)
    log_p, log_1mp = -np.logaddexp(0, -logits), -np.logaddexp(0, logits)
    out = np.empty((len(logits), len(train_x)))
    for i, xi in enumerate(np.asarray(train_x, np.float64)):
        out[:, i] = -(xi * log_p + (1 - xi) * log_1mp).sum(1)
    return out


def ref_xhat_neighbours(logits, train_x):
    """Slow reference: the pixel-space (Euclidean) nearest training image to x_hat, lower
    position on ties, and its BCE(x_nn, x_hat)."""
    x_hat = 0.5 * (1.0 + np.tanh(0.5 * np.asarray(logits, np.float64)))  # sigmoid
    train_x = np.asarray(train_x, np.float64)
    pos = np.empty(len(x_hat), np.int64)
    for t, xh in enumerate(x_hat):
        dists = [float(((xi - xh) ** 2).sum()) for xi in train_x]
        pos[t] = min(range(len(dists)), key=lambda i: (dists[i], i))
    bce = ref_bce_to_train(logits, train_x)
    return pos, bce[np.arange(len(bce)), pos]


@pytest.mark.parametrize("tc,nc", [(None, None), (1, 1), (3, 7), (20, 200)])
def test_latent_neighbours_match_reference(tc, nc):
    rng = np.random.default_rng(20)
    z, mean, _ = random_posteriors(rng, 50, 4, 11)
    pos, dist = nb.latent_neighbours(z, mean, k=2, test_chunk=tc, train_chunk=nc)
    ref_pos, ref_dist = ref_latent_neighbours(z, mean)
    np.testing.assert_array_equal(pos, ref_pos)
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-10)
    np.testing.assert_allclose(nb.nn_ratio(dist), ref_dist[:, 0] / ref_dist[:, 1], rtol=1e-10)
    assert pos.dtype == np.int64 and dist.dtype == np.float64


def test_latent_neighbours_ties_and_copies():
    rng = np.random.default_rng(21)
    mean = rng.normal(size=(30, 3))
    # rows 4, 11 and 25 (chunks of 8: three different chunks) share one mean; z[0] sits on it:
    # d1 = d2 = 0 (two training codes on top of z), ratio 1 by definition, lower rows first
    for j in (11, 25):
        mean[j] = mean[4]
    # z[1] is an exact copy of the (unique) training code 7: d1 = 0, ratio 0
    # z[2] is equidistant from rows 2 and 9 (mirror images through z): a tie at d > 0, ratio 1
    mid = np.array([5.0, 5.0, 5.0])
    mean[2], mean[9] = mid + [0.25, 0.0, 0.0], mid - [0.25, 0.0, 0.0]
    z = np.stack([mean[4], mean[7], mid])
    for nc in (8, 30):
        pos, dist = nb.latent_neighbours(z, mean, k=3, train_chunk=nc, centre=np.zeros(3))
        assert pos[0].tolist() == [4, 11, 25]
        assert dist[0].tolist() == [0.0, 0.0, 0.0]
        assert pos[1, 0] == 7 and dist[1, 0] <= 1e-7
        assert pos[2, :2].tolist() == [2, 9] and dist[2, 0] == dist[2, 1] == 0.25
        ratio = nb.nn_ratio(dist)
        assert ratio[0] == 1.0 and ratio[1] <= 1e-6 and ratio[2] == 1.0
        # the default centre (mean of the training means) gives the same neighbours
        pos_c, dist_c = nb.latent_neighbours(z, mean, k=3, train_chunk=nc)
        np.testing.assert_array_equal(pos_c[:, :2], pos[:, :2])
        np.testing.assert_allclose(dist_c, dist, atol=1e-7)
    ref_pos, ref_dist = ref_latent_neighbours(z, mean)
    np.testing.assert_array_equal(pos[:, :2], ref_pos)
    np.testing.assert_allclose(dist[:, :2], ref_dist, atol=1e-7)
    assert np.isnan(nb.nn_ratio(np.array([[0.5]]))).all()      # one training row: no d2


def test_latent_neighbours_far_from_origin_need_centring():
    # codes ~1e6 from the origin, neighbours ~1 apart: |z|^2 ~ 3e12 (ulp ~ 5e-4) -- the
    # uncentred expansion loses the distances, the centred one keeps them
    rng = np.random.default_rng(22)
    mean = 1e6 + rng.normal(size=(40, 3))
    z = 1e6 + rng.normal(size=(6, 3))
    ref_pos, ref_dist = ref_latent_neighbours(z, mean)
    pos, dist = nb.latent_neighbours(z, mean, train_chunk=9)
    np.testing.assert_array_equal(pos, ref_pos)
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-8)
    _, raw = nb.latent_neighbours(z, mean, centre=np.zeros(3))
    assert np.abs(raw - ref_dist).max() > 1e-6


@pytest.mark.parametrize("tc,nc", [(None, None), (1, 1), (4, 6), (9, 40)])
def test_xhat_neighbours_match_reference(tc, nc):
    rng = np.random.default_rng(23)
    logits = 3 * rng.normal(size=(9, 30))
    train_x = rng.random((40, 30)).astype(np.float32)
    pos, bce = nb.xhat_neighbours(logits, train_x, test_chunk=tc, train_chunk=nc)
    ref_pos, ref_bce = ref_xhat_neighbours(logits, train_x)
    np.testing.assert_array_equal(pos, ref_pos)
    np.testing.assert_allclose(bce, ref_bce, rtol=1e-12)


def test_xhat_nearest_is_by_distance_not_by_smallest_bce():
    """An all-ink training image has the smallest BCE under any x_hat with positive logits, but
    it is not the image nearest to x_hat: the reference picks the similar image."""
    similar = np.array([1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    inky = np.ones(8)
    # BCE(inky) - BCE(similar) = -(sum of the logits where they differ) = -(10 - 5) < 0, but
    # |inky - x_hat|^2 ~ 5 * 0.73^2 = 2.7 > |similar - x_hat|^2 ~ 1 + 5 * 0.27^2 = 1.4
    logits = np.array([[2.0, 2.0, 10.0, -1.0, -1.0, -1.0, -1.0, -1.0]])
    pos, bce = nb.xhat_neighbours(logits, np.stack([inky, similar]))
    assert pos.tolist() == [1]
    assert ref_bce_to_train(logits, inky[None])[0, 0] < bce[0]


def test_xhat_neighbours_ties_and_exact_copy():
    rng = np.random.default_rng(24)
    train_x = (rng.random((25, 16)) < 0.4).astype(np.float64)     # binary images
    # training rows 3, 12 and 20 (different chunks of 5) are copies of one test image; with
    # logits +-800 the decoder output sigmoid(l) is that binary image exactly (float64), so
    # every score 2 x_i . x_hat - |x_i|^2 is an exact integer and the copies tie exactly: the
    # tie goes to row 3, at the BCE of the image itself
    test_x = train_x[3].copy()
    train_x[12] = train_x[20] = test_x
    logits = np.stack([800.0 * (2 * test_x - 1), rng.integers(-3, 4, 16).astype(np.float64)])
    for nc in (5, 25):
        pos, bce = nb.xhat_neighbours(logits, train_x, train_chunk=nc)
        assert pos[0] == 3
        assert abs(bce[0]) <= 1e-16 * np.abs(logits[0]).sum() * 10
        ref_pos, ref_bce = ref_xhat_neighbours(logits, train_x)
        np.testing.assert_array_equal(pos, ref_pos)
        np.testing.assert_allclose(bce, ref_bce, rtol=1e-12, atol=1e-9)
    # all training images equal: every row ties, the first wins
    pos, _ = nb.xhat_neighbours(logits, np.tile(test_x, (7, 1)), train_chunk=3)
    assert pos.tolist() == [0, 0]
