"""Pixel measures of the size sweep against brute force: nearest training images, the copy
fraction, the cross-half agreement."""

from __future__ import annotations

import numpy as np
import pytest

from vae_novelty.agreement import agreement, copy_fraction, copy_ratios


def brute_nearest(points, images, k):
    """Every distance by a loop, then the k smallest (ties: lower position)."""
    out_pos, out_dist = [], []
    for p in np.asarray(points, np.float64):
        d = [float(np.sqrt(np.sum((p - np.asarray(x, np.float64)) ** 2))) for x in images]
        order = sorted(range(len(d)), key=lambda i: (d[i], i))[:k]
        out_pos.append(order)
        out_dist.append([d[i] for i in order])
    return np.array(out_pos), np.array(out_dist)


def test_copy_fraction_against_brute_force():
    rng = np.random.default_rng(1)
    train = (rng.random((40, 20)) < 0.3).astype(np.float64)
    # 6 near-copies (a little noise on a training image), 14 blends of two images
    copies = train[:6] + 0.01 * rng.standard_normal((6, 20))
    blends = 0.5 * (train[6:20] + train[20:34])
    samples = np.concatenate([copies, blends])
    ratios = copy_ratios(samples, train, chunk_mb=0.01)
    _, ref = brute_nearest(samples, train, 2)
    ref_ratio = ref[:, 0] / ref[:, 1]
    np.testing.assert_allclose(ratios, ref_ratio, rtol=1e-9)
    assert copy_fraction(ratios) == np.mean(ref_ratio < 1 / 3)
    assert copy_fraction(ratios) == pytest.approx(6 / 20)
    assert copy_fraction(ratios, 1.001) == 1.0  # a blend of two is equally far from both
    with pytest.raises(ValueError):
        copy_fraction(np.zeros(0))


def test_agreement_against_a_direct_reference():
    rng = np.random.default_rng(2)
    T, P = 25, 16
    a, b = rng.random((T, P)), rng.random((T, P))
    b[:10] = a[:10] + 0.01 * rng.standard_normal((10, P))  # these ten agree
    own_a, own_b = rng.uniform(0.2, 2.0, T), rng.uniform(0.2, 2.0, T)
    own_b[3] = 1e-4  # B reproduces a training image at image 3: no agreement there
    result = agreement(a, b, own_a, own_b)
    ref_agree = []
    for t in range(T):
        d = 0.0
        for j in range(P):
            d += (a[t, j] - b[t, j]) ** 2
        d = d**0.5
        assert result.d_ab[t] == pytest.approx(d, rel=1e-12)
        ref_agree.append(d < own_a[t] and d < own_b[t])
    assert result.agree.tolist() == ref_agree
    assert result.fraction == pytest.approx(np.mean(ref_agree))
    assert not result.agree[3] and result.agree[:3].all()
    with pytest.raises(ValueError, match="shapes disagree"):
        agreement(a, b[:-1], own_a, own_b)


# found by mutation testing (bench/mutation.sh agreement; docs/benchmarks/mutation.md)


def test_copy_fraction_counts_only_ratios_strictly_below_the_threshold():
    assert copy_fraction([1 / 3, 0.1, 0.5, 1 / 3]) == 0.25
    assert copy_fraction([0.2, 0.2, 0.5], ratio=0.2) == 0.0
    with pytest.raises(ValueError, match="non-empty 1-D"):
        copy_fraction([])
    with pytest.raises(ValueError, match="non-empty 1-D"):
        copy_fraction([[0.1, 0.2]])


def test_agreement_checks_every_shape_and_takes_a_single_image():
    a, b = np.zeros((3, 4)), np.ones((3, 4))
    good = np.ones(3)
    with pytest.raises(ValueError, match="shapes disagree"):
        agreement(a, b, good, np.ones(2))  # only B's distances wrong
    with pytest.raises(ValueError, match="shapes disagree"):
        agreement(a, b, np.ones(2), good)  # only A's distances wrong
    with pytest.raises(ValueError, match="shapes disagree"):
        agreement(np.zeros(3), np.ones(3), good, good)  # 1-D reconstructions
    with pytest.raises(ValueError, match="^no test images$"):
        agreement(np.zeros((0, 4)), np.zeros((0, 4)), np.zeros(0), np.zeros(0))
    one = agreement([[0.0, 0.0]], [[3.0, 4.0]], [6.0], [5.5])
    assert one.d_ab.tolist() == [5.0] and one.agree.tolist() == [True]
