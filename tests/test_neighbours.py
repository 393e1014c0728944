"""Tests of vae_novelty.neighbours found by mutation testing (bench/mutation.sh neighbours;
docs/benchmarks/mutation.md). The references and the main tests are in tests/test_theorem1.py."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from vae_novelty import neighbours as nb


def _record_chunks(monkeypatch):
    """Record (rows, first training position, training rows) of every chunk searched."""
    seen, real = [], nb.chunk_topk

    def recording(scores, k, offset):
        seen.append((scores.shape[0], offset, scores.shape[1]))
        return real(scores, k, offset)

    monkeypatch.setattr(nb, "chunk_topk", recording)
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
    np.testing.assert_allclose(dist, [[d[t][i] for i in o[:2]] for t, o in enumerate(order)],
                               rtol=1e-10)

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
    pos, dist = nb.latent_neighbours(z, mean[1:2])               # k = 2, one training row
    assert pos.tolist() == [[0], [0]]
    np.testing.assert_allclose(dist[:, 0], [np.hypot(2.1, 3.9), 1.0], rtol=1e-12)
    pos, dist = nb.latent_neighbours(z, mean, k=1, centre=[[1.0, 1.0]])   # (1, D): reshaped
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
