"""Exact pixel nearest neighbours (vae_novelty.pixel_nn) against a float64 brute force.

Tie rule: equal distances go to the lower reference position.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vae_novelty import pixel_nn as pn


def brute_force(queries, refs, k):
    """Every float64 distance by a loop over queries, then a stable sort by distance (equal
    distances keep position order)."""
    q = np.asarray(queries, np.float64)
    r = np.asarray(refs, np.float64)
    pos, dist = [], []
    for t in range(len(q)):
        sq = [float(((r[i] - q[t]) ** 2).sum()) for i in range(len(r))]
        order = sorted(range(len(r)), key=lambda i: (sq[i], i))[:k]
        pos.append(order)
        dist.append([np.sqrt(sq[i]) for i in order])
    return np.array(pos, np.int64), np.array(dist)


def check(queries, refs, k=2, **kw):
    pos, dist = pn.nearest_images(queries, refs, k=k, **kw)
    ref_pos, ref_dist = brute_force(queries, refs, k)
    np.testing.assert_array_equal(pos, ref_pos)
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-12, atol=1e-12)
    return pos, dist


def images(rng, n, p=64):
    return (rng.integers(0, 256, size=(n, p)) / 255.0).astype(np.float32)


def test_random_images_match_brute_force():
    rng = np.random.default_rng(0)
    refs, queries = images(rng, 300), rng.random((40, 64))
    check(queries, refs, k=2)
    check(queries, refs, k=1)
    check(queries, refs, k=5, candidates=5)


def test_near_copies_of_float32_images_match_brute_force():
    # the size sweep's case (was agreement.nearest_distances): near-copies of training images
    rng = np.random.default_rng(0)
    refs = rng.random((57, 30)).astype(np.float32)
    queries = np.concatenate([rng.random((9, 30)), refs[[3, 40]] + 1e-3])
    pos, _ = check(queries, refs, k=2, chunk_mb=0.01)
    assert pos[-2:, 0].tolist() == [3, 40]


@pytest.mark.parametrize("query_chunk, ref_chunk", [(7, 13), (1, 1), (40, 300), (3, 299)])
def test_chunking_does_not_change_the_result(query_chunk, ref_chunk):
    rng = np.random.default_rng(1)
    refs, queries = images(rng, 300), rng.random((40, 64))
    check(queries, refs, k=2, query_chunk=query_chunk, ref_chunk=ref_chunk)


def test_exact_ties_go_to_the_lower_position():
    rng = np.random.default_rng(2)
    base = images(rng, 50)
    # every reference three times: rows i, i + 50, i + 100 are bitwise equal
    refs = np.concatenate([base, base, base])
    queries = np.concatenate([rng.random((10, 64)), base[:5]])  # and queries equal to refs
    pos, dist = check(queries, refs, k=2, ref_chunk=17)
    # a query equal to a reference: distance 0 at the lowest copy, then the next copy
    np.testing.assert_array_equal(pos[10:, 0], np.arange(5))
    np.testing.assert_array_equal(pos[10:, 1], np.arange(5) + 50)
    assert (dist[10:] == 0).all()
    # the nearest pair of a random query is two copies of one image: lower first
    assert (pos[:10, 1] - pos[:10, 0] == 50).all()


def test_many_duplicates_beyond_the_shortlist_are_found():
    """More tied references than the float32 shortlist holds: the second pass must find the
    lowest positions."""
    rng = np.random.default_rng(3)
    far = images(rng, 100) * 0.2 + 0.8
    near = np.full((1, 64), 0.5, np.float32)
    refs = np.concatenate([far[:60], np.repeat(near, 30, 0), far[60:]])  # copies at 60..89
    queries = np.full((3, 64), 0.51)
    pos, _ = check(queries, refs, k=2, candidates=3, ref_chunk=11)
    np.testing.assert_array_equal(pos, [[60, 61]] * 3)


def test_near_ties_below_float32_resolution():
    """Reference images that differ by 1e-9 (float64 inputs): float32 cannot order them, the
    exact stage must."""
    rng = np.random.default_rng(4)
    base = rng.random(64)
    refs = np.repeat(base[None], 40, 0) + rng.normal(0, 1e-9, (40, 64))
    refs = np.concatenate([rng.random((20, 64)), refs])
    queries = base[None] + rng.normal(0, 1e-3, (6, 64))
    check(queries, refs, k=2, candidates=2)
    check(queries, refs, k=3, candidates=4, ref_chunk=9)


def test_fewer_references_than_k():
    rng = np.random.default_rng(5)
    refs, queries = images(rng, 1), rng.random((4, 64))
    pos, dist = pn.nearest_images(queries, refs, k=2)
    assert pos.shape == (4, 1) and (pos == 0).all()
    np.testing.assert_allclose(dist[:, 0], np.sqrt(((queries - refs[0]) ** 2).sum(1)), rtol=1e-12)


def test_mnist_scale_pixels(mnist):
    """Real MNIST images (784 pixels, many near-duplicates of shape), against brute force."""
    refs = mnist.train_images[:2000].astype(np.float32) / 255
    rng = np.random.default_rng(6)
    queries = np.clip(
        mnist.test_images[:30].astype(np.float64) / 255 + rng.normal(0, 0.05, (30, 784)), 0, 1
    )
    queries = np.concatenate([queries, refs[[5, 1999]].astype(np.float64)])
    check(queries, refs, k=2, chunk_mb=4)


def test_the_bound_covers_float32_error():
    """The documented bound is at least the float32 error seen on adversarial-size norms."""
    rng = np.random.default_rng(7)
    q = rng.random((50, 784))
    r = rng.random((200, 784)).astype(np.float32)
    exact = ((q[:, None, :] - r[None].astype(np.float64)) ** 2).sum(-1)
    q32 = torch.as_tensor(q, dtype=torch.float32)
    r32 = torch.as_tensor(r)
    approx = (-2 * q32 @ r32.T + (r32.double() ** 2).sum(1).float()).double().numpy()
    approx = approx + (q**2).sum(1)[:, None]
    err = np.abs(approx - exact)
    delta = pn.error_bound(
        torch.as_tensor((q**2).sum(1)), float((r.astype(np.float64) ** 2).sum(1).max()), 784
    ).numpy()
    assert (err <= delta[:, None]).all()
    assert err.max() > 0  # float32 does round here: the test can fail


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="NaN"):
        pn.nearest_images(np.full((1, 4), np.nan), np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"\(T, P\)"):
        pn.nearest_images(np.zeros((1, 4)), np.zeros((3, 5)))
    with pytest.raises(ValueError, match="no reference"):
        pn.nearest_images(np.zeros((1, 4)), np.zeros((0, 4)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_equals_cpu():
    rng = np.random.default_rng(8)
    refs, queries = images(rng, 3000, 784), rng.random((500, 784))
    cpu = pn.nearest_images(queries, refs, device="cpu")
    gpu = pn.nearest_images(queries, refs, device="cuda")
    np.testing.assert_array_equal(cpu[0], gpu[0])
    np.testing.assert_allclose(cpu[1], gpu[1], rtol=1e-12)


# found by mutation testing (bench/mutation.sh pixel_nn; docs/benchmarks/mutation.md)


def test_error_bound_is_the_documented_formula():
    # delta = (P + 16) 2^-23 (|q|^2 + max_r |r|^2), by hand for P = 8
    got = pn.error_bound(torch.tensor([1.0, 0.0], dtype=torch.float64), 3.0, 8)
    assert got.tolist() == [24 * 4 / 2**23, 24 * 3 / 2**23]


def test_chunks_take_everything_that_fits_and_at_most_4096_queries():
    assert pn._chunks(10, 50, 4, 2, 256.0) == (10, 50)
    assert pn._chunks(5000, 50, 4, 2, 256.0) == (4096, 50)
    qc, rc = pn._chunks(100, 1000, 784, 16, 1.0)  # 1 MiB: the budget limits both
    assert qc == 2**20 // (32 * 16 * 784 + 1) == 2
    assert rc == (2**20 - 12 * qc * 784) // (12 * qc + 8 * 784)
    # two queries need 2 * 32 * 16 * 784 = 802816 bytes: one byte less takes one query
    assert pn._chunks(100, 1000, 784, 16, 802815 / 2**20)[0] == 1


def test_default_k_integer_images_and_messages():
    refs = np.array([[0, 0, 0], [9, 9, 9], [1, 0, 0], [0, 2, 0]], np.uint8)  # integer images
    pos, dist = pn.nearest_images(np.array([[0.9, 0.0, 0.0]]), refs)  # k = 2
    assert pos.tolist() == [[2, 0]] and pos.dtype == np.int64
    np.testing.assert_allclose(dist, [[0.1, 0.9]], rtol=1e-12)
    with pytest.raises(ValueError, match=r"^queries and refs must be \(T, P\) and \(N, P\)"):
        pn.nearest_images(np.zeros(3), refs)  # queries 1-D
    with pytest.raises(ValueError, match="^k must be >= 1, got 0$"):
        pn.nearest_images(np.zeros((1, 3)), refs, k=0)
    with pytest.raises(ValueError, match="^no reference images$"):
        pn.nearest_images(np.zeros((1, 3)), np.zeros((0, 3)))
    with pytest.raises(ValueError, match="^refs contain NaN or infinite values$"):
        pn.nearest_images(np.zeros((1, 3)), np.full((2, 3), np.inf))
    with pytest.raises(ValueError, match="^queries contain NaN or infinite values$"):
        pn.nearest_images(np.full((1, 3), np.nan), refs)


def test_query_chunks_that_do_not_divide_the_queries():
    rng = np.random.default_rng(11)
    refs = images(rng, 30, 8)
    queries = rng.random((5, 8))
    check(queries, refs, k=2, query_chunk=2)
    check(torch.as_tensor(queries), refs, k=2, query_chunk=2)  # a tensor, sliced as one


def test_second_pass_starts_at_the_first_reference_and_takes_blank_images():
    # 40 blank references and a blank query: every float32 score and the bound are 0 (delta = 0),
    # the shortlist of 2 is not enough: the second pass must take all with score <= bound
    pos, dist = pn.nearest_images(np.zeros((1, 6)), np.zeros((40, 6)), k=2, candidates=2)
    assert pos.tolist() == [[0, 1]] and dist.tolist() == [[0.0, 0.0]]
    # duplicates at positions 0..29 (the first chunks) with q.r < 0 (signed pixels), far ones
    # after them
    rng = np.random.default_rng(12)
    q = np.zeros((1, 6))
    q[0, 0] = 1.0
    dup = np.zeros((30, 6))
    dup[:, 0] = -0.5
    far = np.zeros((10, 6))
    far[:, 0] = -3.0
    refs = np.concatenate([dup, far + 0.1 * rng.normal(size=(10, 6))])
    pos, _ = check(q, refs, k=2, candidates=3, ref_chunk=7)
    assert pos.tolist() == [[0, 1]]


def test_a_near_tie_behind_a_clear_nearest_is_rechecked():
    # k = 2 with a shortlist of 2: the nearest reference is clear (distance 1); behind it 30
    # references tie in float32 (they differ by ~1e-9), the truly second nearest is the last
    rng = np.random.default_rng(13)
    q = np.zeros((1, 16))
    far = np.full(16, 0.5)  # |far - q|^2 = 4
    ties = np.repeat(far[None], 30, 0) + np.abs(rng.normal(0, 1e-9, (30, 16)))
    ties[-1] = far  # exactly 4: the nearest of them
    near = np.zeros(16)
    near[0] = 1.0
    refs = np.concatenate([ties, near[None]])
    pos, _ = check(q, refs, k=2, candidates=2)
    assert pos.tolist() == [[30, 29]]
