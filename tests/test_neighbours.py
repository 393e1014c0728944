"""Tests of the nearest-neighbour searches (latent codes, decoder outputs) against loop
references."""

from __future__ import annotations

import numpy as np
import pytest

from test_theorem1 import random_posteriors
from vae_novelty import neighbours as nb
import warnings

# --------------------------------------------------------------------------- memorisation


def ref_latent_neighbours(z, mean):
    """Euclidean distances by a loop over training rows; nearest two, ties to lower row."""
    z, mean = np.asarray(z, np.float64), np.asarray(mean, np.float64)
    d = np.empty((len(z), len(mean)))
    for i in range(len(mean)):
        d[:, i] = np.sqrt(((z - mean[i]) ** 2).sum(1))
    order = np.array(
        [sorted(range(len(mean)), key=lambda i: (d[t, i], i))[:2] for t in range(len(z))],
        dtype=np.int64,
    ).reshape(len(z), -1)
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
    assert np.isnan(nb.nn_ratio(np.array([[0.5]]))).all()  # one training row: no d2


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
    train_x = (rng.random((25, 16)) < 0.4).astype(np.float64)  # binary images
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


# --------------------------------------------------------------------------- found by mutation testing
# (bench/mutation.sh neighbours; docs/benchmarks/mutation.md)


def _record_chunks(monkeypatch):
    """Record (rows, first training position, training rows) of every chunk searched."""
    seen, real = [], nb.RunningTopK.add

    def recording(self, block, offset):
        seen.append((block.shape[0], offset, block.shape[1]))
        return real(self, block, offset)

    monkeypatch.setattr(nb.RunningTopK, "add", recording)
    return seen


def _brute(z, mean):
    d = [[float(np.sqrt(sum((a - b) ** 2 for a, b in zip(zi, mi)))) for mi in mean] for zi in z]
    return [sorted(range(len(mean)), key=lambda i: (row[i], i)) for row in d], d


def test_chunk_overrides_visit_every_pair_once_without_warnings(monkeypatch):
    # T = 5 test points in chunks of 2, N = 7 training rows in chunks of 3: the last chunks are
    # short (1 test point, 1 training row); the nearest is training row 0 for test point 0
    rng = np.random.default_rng(3)
    mean = rng.normal(size=(7, 2))
    z = mean[[0, 3, 6, 1, 5]] + 0.01
    seen = _record_chunks(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pos, dist = nb.latent_neighbours(z, mean, k=2, test_chunk=2, train_chunk=3)
    chunks = [(2, 0, 3), (2, 3, 3), (2, 6, 1)]
    assert seen == chunks + chunks + [(1, 0, 3), (1, 3, 3), (1, 6, 1)]
    order, d = _brute(z, mean)
    assert pos.tolist() == [o[:2] for o in order]
    np.testing.assert_allclose(
        dist, [[d[t][i] for i in o[:2]] for t, o in enumerate(order)], rtol=1e-10
    )

    seen.clear()
    logits = rng.normal(0, 2, (5, 4))
    train_x = rng.random((7, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        xpos, _ = nb.xhat_neighbours(logits, train_x, test_chunk=2, train_chunk=3)
    assert seen == chunks + chunks + [(1, 0, 3), (1, 3, 3), (1, 6, 1)]
    x_hat = 1 / (1 + np.exp(-logits))
    assert xpos.tolist() == [int(np.argmin(((train_x - xh) ** 2).sum(1))) for xh in x_hat]


def test_latent_neighbours_refuse_bad_inputs_by_name():
    mean = np.zeros((4, 3))
    with pytest.raises(ValueError, match="^z contains NaN"):
        nb.latent_neighbours(np.full((1, 3), np.nan), mean)
    with pytest.raises(ValueError, match="^train_mean must be 2-D"):
        nb.latent_neighbours(np.zeros((1, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="^centre contains NaN"):
        nb.latent_neighbours(np.zeros((1, 3)), mean, centre=[np.nan, 0, 0])
    with pytest.raises(ValueError, match=r"^shapes disagree: z \(1, 2\), train_mean \(4, 3\)$"):
        nb.latent_neighbours(np.zeros((1, 2)), mean)
    with pytest.raises(ValueError, match="^no training means$"):
        nb.latent_neighbours(np.zeros((1, 3)), np.zeros((0, 3)))
    with pytest.raises(ValueError, match="^k must be >= 1, got 0$"):
        nb.latent_neighbours(np.zeros((1, 3)), mean, k=0)


def test_latent_neighbours_one_neighbour_one_training_row_and_a_2d_centre():
    mean = np.array([[0.0, 0.0], [3.0, 4.0], [1.0, 0.0]])
    z = np.array([[0.9, 0.1], [3.0, 3.0]])
    pos, dist = nb.latent_neighbours(z, mean, k=1)
    assert pos.tolist() == [[2], [1]]
    np.testing.assert_allclose(dist, [[np.sqrt(0.02)], [1.0]], rtol=1e-12)
    pos, dist = nb.latent_neighbours(z, mean[1:2])  # k = 2, one training row
    assert pos.tolist() == [[0], [0]]
    np.testing.assert_allclose(dist[:, 0], [np.hypot(2.1, 3.9), 1.0], rtol=1e-12)
    pos, dist = nb.latent_neighbours(z, mean, k=1, centre=[[1.0, 1.0]])  # (1, D): reshaped
    assert pos.tolist() == [[2], [1]]


def test_exact_copies_far_from_the_origin_read_zero_not_nan():
    # uncentred (centre 0) codes near 1e4: |z|^2 - 2 z.m + |m|^2 for z = m rounds to values of
    # either sign around 0; positive ones are clamped to 0, never passed to the square root
    rng = np.random.default_rng(8)
    mean = 1e4 + rng.normal(size=(40, 3))
    _, dist = nb.latent_neighbours(mean, mean, k=1, centre=np.zeros(3))
    assert np.isfinite(dist).all() and (dist >= 0).all() and dist.max() < 1e-2


def test_nn_ratio_of_integer_distances_and_its_message():
    np.testing.assert_array_equal(nb.nn_ratio([[1, 2], [3, 0], [0, 0]]), [0.5, 1.0, 1.0])
    with pytest.raises(ValueError, match=r"^dist must be 2-D, got shape \(2,\)$"):
        nb.nn_ratio([1.0, 2.0])


def test_xhat_neighbours_refuse_bad_inputs_by_name_and_take_one_image():
    logits = np.zeros((2, 3))
    with pytest.raises(ValueError, match="^logits contains NaN"):
        nb.xhat_neighbours(np.full((2, 3), np.nan), np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"^train_x must be \(N, 3\), got \(4, 2\)$"):
        nb.xhat_neighbours(logits, np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"^train_x must be \(N, 3\), got \(3,\)$"):
        nb.xhat_neighbours(logits, np.zeros(3))
    with pytest.raises(ValueError, match="^no training images$"):
        nb.xhat_neighbours(logits, np.zeros((0, 3)))
    pos, bce = nb.xhat_neighbours(logits, np.ones((1, 3)))
    assert pos.tolist() == [0, 0]
    np.testing.assert_allclose(bce, [3 * np.log(2)] * 2, rtol=1e-12)
