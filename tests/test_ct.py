"""C_T (vae_novelty.ct): the Mann-Whitney z against a pair-counting reference, the cells, and
the statistic on synthetic data where the answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from vae_novelty import ct
from vae_novelty import pixel_nn as pn


def naive_z(a, b):
    """U by counting every pair (a > b: 1, equal: 1/2), the tie-corrected variance from the
    tie groups counted with a dict."""
    m, n = len(a), len(b)
    U = sum(1.0 if x > y else 0.5 if x == y else 0.0 for x in a for y in b)
    counts = {}
    for v in list(a) + list(b):
        counts[v] = counts.get(v, 0) + 1
    N = m + n
    ties = sum(t**3 - t for t in counts.values()) / (N * (N - 1))
    return (U - m * n / 2) / np.sqrt(m * n / 12 * ((N + 1) - ties))


@pytest.mark.parametrize("seed", range(4))
def test_mann_whitney_z_matches_pair_counting_with_ties(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 6, size=17).astype(float)  # many ties, within and across
    b = rng.integers(2, 9, size=23).astype(float)
    assert ct.mann_whitney_z(a, b) == pytest.approx(naive_z(a, b), rel=1e-12)
    a, b = rng.random(30), rng.random(11)
    assert ct.mann_whitney_z(a, b) == pytest.approx(naive_z(a, b), rel=1e-12)


def test_mann_whitney_z_sign_and_degenerate_cases():
    assert ct.mann_whitney_z([0.1, 0.2, 0.3], [1.0, 2.0, 3.0]) < 0  # samples closer: negative
    assert ct.mann_whitney_z([5.0, 6.0], [1.0, 2.0]) > 0
    assert np.isnan(ct.mann_whitney_z([], [1.0]))
    assert np.isnan(ct.mann_whitney_z([1.0, 1.0], [1.0]))  # all tied: no variance


def test_pca_matches_svd():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 12)) @ rng.normal(size=(12, 12))
    mean, comps = ct.pca(x, 4)
    _, _, vt = np.linalg.svd(x - x.mean(0), full_matrices=False)
    for i in range(4):
        assert abs(abs(comps[i] @ vt[i]) - 1) < 1e-9


def test_kmeans_finds_separated_clusters_and_is_seeded():
    rng = np.random.default_rng(1)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    labels = rng.integers(0, 3, 300)
    pts = centres[labels] + rng.normal(0, 0.5, (300, 2))
    found, _ = ct.kmeans(pts, 3, np.random.default_rng(5))
    assign = ct.nearest_centre(pts, found)
    # one found cell per true cluster
    for c in range(3):
        assert len(set(assign[labels == c])) == 1
    again, _ = ct.kmeans(pts, 3, np.random.default_rng(5))
    np.testing.assert_array_equal(found, again)
    # the assignment is the nearest centre, ties to the lower cell
    assert ct.nearest_centre([[5.0, 0.0]], [[0.0, 0.0], [10.0, 0.0]])[0] == 0


def _statistic(train, samples, heldout, cells=5, min_per_cell=10):
    model = ct.fit_cells(train, cells=cells, pca_dims=4, seed=0, split="full")
    a = pn.nearest_images(samples, train, k=1)[1][:, 0]
    b = pn.nearest_images(heldout, train, k=1)[1][:, 0]
    return ct.c_t(a, model.assign(samples), b, model.assign(heldout), cells, min_per_cell)


def _mixture(rng, n, dim=8):
    means = np.eye(dim)[:4] * 3
    return means[rng.integers(0, 4, n)] + rng.normal(0, 1, (n, dim))


def test_samples_copied_from_the_training_set_are_strongly_negative():
    rng = np.random.default_rng(2)
    train, heldout = _mixture(rng, 1000), _mixture(rng, 400)
    copies = train[rng.integers(0, 1000, 400)] + rng.normal(0, 0.01, (400, 8))
    out = _statistic(train, copies, heldout)
    assert out["ct"] < -10
    assert sum(p["kept"] for p in out["cells"]) == 5


@pytest.mark.parametrize("seed", range(3))
def test_samples_from_the_test_distribution_are_near_zero(seed):
    rng = np.random.default_rng(10 + seed)
    train, heldout, fresh = _mixture(rng, 1000), _mixture(rng, 400), _mixture(rng, 400)
    assert abs(_statistic(train, fresh, heldout)["ct"]) < 2.5


def test_underfitting_samples_are_positive():
    rng = np.random.default_rng(3)
    train, heldout = _mixture(rng, 1000), _mixture(rng, 400)
    blurred = _mixture(rng, 400) * 1.0 + rng.normal(0, 1.5, (400, 8))
    assert _statistic(train, blurred, heldout)["ct"] > 5


def test_c_t_weights_cells_by_heldout_share_and_skips_small_cells():
    # cell 0: 3 samples (below min 5: skipped), cell 1: z from its own data, cell 2: no samples
    sa = np.array([0.1, 0.2, 0.3] + [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    sc = np.array([0, 0, 0] + [1] * 6)
    hb = np.array([5.0, 6.0, 2.5, 3.5, 4.5, 9.0])
    hc = np.array([0, 0, 1, 1, 1, 2])
    out = ct.c_t(sa, sc, hb, hc, 3, 5)
    z1 = naive_z(sa[3:], hb[2:5])
    assert out["ct"] == pytest.approx(z1)  # the only kept cell: weight 1
    assert [p["kept"] for p in out["cells"]] == [False, True, False]
    out = ct.c_t(sa, sc, hb, hc, 3, 3)  # now cell 0 counts too: weights 2/5, 3/5
    z0 = naive_z(sa[:3], hb[:2])
    assert out["ct"] == pytest.approx((2 * z0 + 3 * z1) / 5)
    assert np.isnan(ct.c_t(sa, sc, hb, hc, 3, 100)["ct"])


def test_heldout_rows_are_the_training_digits():
    labels = np.array([9, 1, 9, 2, 1, 1, 2])
    np.testing.assert_array_equal(ct.heldout_rows(labels, [1, 2], None), [1, 3, 4, 5, 6])
    np.testing.assert_array_equal(ct.heldout_rows(labels, [1, 2], 1), [1, 3])


# found by mutation testing (bench/mutation.sh ct; docs/benchmarks/mutation.md)


def test_mann_whitney_z_of_one_against_two_and_an_all_tied_pair():
    import math
    import warnings

    from vae_novelty.ct import mann_whitney_z

    # U counts the pairs with a > b (no ties): 2 of 2; variance m n (N + 1) / 12 = 2 / 3
    assert mann_whitney_z([3.0], [1.0, 2.0]) == pytest.approx((2 - 1) / math.sqrt(2 / 3), rel=1e-14)
    assert mann_whitney_z([1.0, 2.0], [3.0]) == pytest.approx((0 - 1) / math.sqrt(2 / 3), rel=1e-14)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NaN by the rule, not by 0 / 0
        assert math.isnan(mann_whitney_z([1.0], [1.0]))
        assert math.isnan(mann_whitney_z([], [1.0, 2.0]))


def test_c_t_by_hand_with_its_cells():
    from vae_novelty.ct import c_t

    # cell 0: samples 1, 2 vs held-out 1.5: U = 1 of 2, z = 0; cell 1: samples 5, 7 vs 4:
    # U = 2 of 2, z = 1 / sqrt(2/3); cell 2: no samples, z undefined, not kept; each cell holds
    # a third of the held-out images, so C_T = (0 + z1) / 2
    got = c_t(
        [1.0, 2.0, 5.0, 7.0], [0, 0, 1, 1], [1.5, 4.0, 6.0], [0, 1, 2], n_cells=3, min_per_cell=2
    )
    z1 = 1 / np.sqrt(2 / 3)
    assert got["ct"] == pytest.approx(z1 / 2, rel=1e-14)
    assert got["cells"] == [
        {"cell": 0, "samples": 2, "heldout": 1, "z": 0.0, "kept": True},
        {"cell": 1, "samples": 2, "heldout": 1, "z": pytest.approx(z1, rel=1e-14), "kept": True},
        {"cell": 2, "samples": 0, "heldout": 1, "z": None, "kept": False},
    ]
    one = c_t([1.0, 2.0], [0, 0], [1.5], [0], n_cells=1, min_per_cell=1)  # one held-out image
    assert one["ct"] == 0.0
    with pytest.raises(ValueError, match="^distances and cells must have the same lengths$"):
        c_t([1.0], [0], [1.0, 2.0], [0], n_cells=1, min_per_cell=1)
    with pytest.raises(ValueError, match="^C_T needs held-out images$"):
        c_t([1.0], [0], [], [], n_cells=1, min_per_cell=1)


def test_nearest_centre_and_heldout_rows_by_hand():
    from vae_novelty.ct import heldout_rows, nearest_centre

    centres = [[0.0, 0.0], [1.0, 0.0], [-1.0, 0.0]]
    assert nearest_centre([[0.9, 0.0], [-0.6, 0.0], [0.0, 0.2]], centres).tolist() == [1, 2, 0]
    empty = heldout_rows([3, 1, 3], [], None)
    assert empty.shape == (0,) and empty.dtype == np.int64
    assert heldout_rows([3, 1, 3, 1, 3], [3, 1], 2).tolist() == [0, 1, 2, 3]


def test_cells_project_assign_and_describe_by_hand():
    from vae_novelty.ct import Cells

    cells = Cells(
        np.array([1.0, 1.0]), np.array([[1.0, 0.0]]), np.array([[-5.0], [0.0], [5.0]]), iterations=4
    )
    np.testing.assert_array_equal(cells.project([[3.0, 5.0], [0.0, 9.0]]), [[2.0], [-1.0]])
    x = np.array([[6.0, 0.0], [7.0, 2.0], [-4.0, 0.0], [1.0, 3.0], [-9.0, 1.0]])
    got = cells.assign(x, chunk=2)  # chunks of 2, 2 and 1 rows
    assert got.tolist() == [2, 2, 0, 1, 0] and got.dtype == np.int64
    assert cells.describe() == {"cells": 3, "pca_dims": 1, "kmeans_iterations": 4}


def test_pca_on_two_rows_on_many_rows_and_its_message():
    from vae_novelty.ct import pca

    mean, comps = pca([[0.0, 0.0], [2.0, 1.0]], 1)  # two rows: the line through them
    np.testing.assert_allclose(mean, [1.0, 0.5], rtol=1e-15)
    np.testing.assert_allclose(comps, [[2 / np.sqrt(5), 1 / np.sqrt(5)]], rtol=1e-12)
    rng = np.random.default_rng(40)
    x = rng.normal(size=(8300, 3)) * [1.0, 3.0, 0.2]  # more rows than one chunk of 8192
    x[:100] += [0.0, 0.0, 40.0]  # the first chunk sets the third axis
    vals, vecs = np.linalg.eigh(np.cov(x, rowvar=False))
    _, comps = pca(x, 3)
    for k in range(3):
        ref = vecs[:, ::-1][:, k]
        assert abs(abs(comps[k] @ ref) - 1) < 1e-9
    with pytest.raises(
        ValueError,
        match=r"^PCA needs at least two rows of a 2-D array, got "
        r"shape \(5,\)$",
    ):
        pca(np.zeros(5), 1)


def test_fit_cells_is_seeded_and_its_cells_hold_the_clusters():
    from vae_novelty.ct import fit_cells

    rng = np.random.default_rng(41)
    # two tight clusters far from the origin: the centres live in the projected coordinates
    x = np.concatenate(
        [
            [10.0, 10.0] + 0.1 * rng.normal(size=(20, 2)),
            [10.0, 12.0] + 0.1 * rng.normal(size=(20, 2)),
        ]
    )
    a = fit_cells(x, cells=2, pca_dims=2, seed=3, split="full")
    b = fit_cells(x, cells=2, pca_dims=2, seed=3, split="full")
    np.testing.assert_array_equal(a.centres, b.centres)
    got = a.assign(x)
    assert len(set(got[:20])) == 1 and len(set(got[20:])) == 1 and got[0] != got[20]
    assert a.describe()["kmeans_iterations"] >= 1
    # uniform points, where the k-means++ start decides the cells: the same seed and split
    # give the same cells
    u = rng.random((200, 3))
    first = fit_cells(u, cells=7, pca_dims=3, seed=5, split="no9").centres
    np.testing.assert_array_equal(
        first, fit_cells(u, cells=7, pca_dims=3, seed=5, split="no9").centres
    )


def _ref_kmeans(points, k, rng, max_iter):
    """k-means++ then Lloyd, with plain loops over Python lists and the same draws."""
    p = [[float(v) for v in row] for row in points]
    n = len(p)

    def sq(a, b):
        return sum((x - y) ** 2 for x, y in zip(a, b))

    centres = [p[int(rng.integers(n))]]
    d2 = [sq(q, centres[0]) for q in p]
    for _ in range(1, k):
        total = sum(d2)
        i = int(rng.choice(n, p=np.array(d2) / total)) if total > 0 else int(rng.integers(n))
        centres.append(p[i])
        d2 = [min(d, sq(q, p[i])) for d, q in zip(d2, p)]

    def nearest(q):
        return min(range(k), key=lambda c: (sq(q, centres[c]), c))

    assign, it = [nearest(q) for q in p], 0
    for it in range(1, max_iter + 1):
        for c in range(k):
            members = [q for q, a in zip(p, assign) if a == c]
            if members:
                centres[c] = [sum(col) / len(members) for col in zip(*members)]
        new = [nearest(q) for q in p]
        if new == assign:
            break
        assign = new
    return np.array(centres), it


@pytest.mark.parametrize(
    "scale, k, max_iter",
    [(1.0, 4, 50), (0.01, 3, 50), (1.0, 5, 1), (1.0, 5, 2), (1.0, 1, 50), (1.0, 30, 50)],
)
def test_kmeans_against_a_loop_reference(scale, k, max_iter):
    from vae_novelty.ct import kmeans

    pts = scale * np.random.default_rng(42).random((30, 2))
    got, it = kmeans(pts, k, np.random.default_rng(7), max_iter=max_iter)
    ref, ref_it = _ref_kmeans(pts, k, np.random.default_rng(7), max_iter)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-15)
    assert it == ref_it


def test_kmeans_of_identical_points_and_its_message():
    from vae_novelty.ct import kmeans

    got, it = kmeans(np.ones((4, 2)), 2, np.random.default_rng(0))
    np.testing.assert_array_equal(got, np.ones((2, 2)))
    assert it == 1
    for k in (0, 5):
        with pytest.raises(
            ValueError, match=f"^k-means with {k} cells needs at least {k} points, got 4$"
        ):
            kmeans(np.ones((4, 2)), k, np.random.default_rng(0))
