"""Tests of the Theorem 1 engine against a slow, obviously-correct float64 reference.

Tolerances (targets of issue #3):
- weights: 1e-6 absolute, every weight of every test point (the full weight vector is read
  through the engine by passing the identity matrix as training "images": then mu = w);
- mu: 1e-5 relative in the Euclidean norm of each test point's mu vector;
- perplexity: 1e-5 relative.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vae_novelty import chunks
from vae_novelty import neighbours as nb
from vae_novelty import theorem1 as t1

# --------------------------------------------------------------------------- reference


def ref_log_q(z, mean, logvar):
    """log N(z_t | m_i, diag exp(v_i)) for every (t, i): per-dimension densities, summed."""
    z, mean, logvar = (np.asarray(a, np.float64) for a in (z, mean, logvar))
    var = np.exp(logvar)
    diff = z[:, None, :] - mean[None, :, :]
    per_dim = -0.5 * (math.log(2 * math.pi) + logvar[None] + diff * diff / var[None])
    return per_dim.sum(-1)


def ref_logsumexp(L):
    m = L.max(1, keepdims=True)
    return m[:, 0] + np.log(np.exp(L - m).sum(1))


def ref_stats(z, mean, logvar, x=None, k=3):
    L = ref_log_q(z, mean, logvar)
    log_norm = ref_logsumexp(L)
    logw = L - log_norm[:, None]
    w = np.exp(logw)
    entropy = -(w * logw).sum(1)
    top = np.array(
        [sorted(range(L.shape[1]), key=lambda i: (-L[t, i], i))[:k] for t in range(len(L))],
        dtype=np.int64,
    ).reshape(len(L), -1)
    return {
        "L": L,
        "w": w,
        "log_norm": log_norm,
        "entropy": entropy,
        "perplexity": np.exp(entropy),
        "w_max": w.max(1),
        "top": top,
        "top_w": np.take_along_axis(w, top, 1),
        "mu": None if x is None else w @ np.asarray(x, np.float64),
    }


def engine_weights(z, mean, logvar, **kw):
    """Every weight through the engine: identity 'images' make mu equal to w."""
    stats = t1.weight_stats(z, mean, logvar, np.eye(len(mean)), **kw)
    return stats, stats.mu


def rel_norm_err(a, b):
    return np.linalg.norm(a - b, axis=1) / np.linalg.norm(b, axis=1)


def check_against_reference(z, mean, logvar, x, k=3, **kw):
    ref = ref_stats(z, mean, logvar, x, k)
    stats = t1.weight_stats(z, mean, logvar, x, top_k=k, **kw)
    _, w = engine_weights(z, mean, logvar, top_k=k, **kw)
    assert np.abs(w - ref["w"]).max() <= 1e-6
    assert rel_norm_err(stats.mu, ref["mu"]).max() <= 1e-5
    np.testing.assert_allclose(stats.perplexity, ref["perplexity"], rtol=1e-5)
    np.testing.assert_allclose(stats.w_max, ref["w_max"], atol=1e-6)
    np.testing.assert_allclose(stats.log_norm, ref["log_norm"], rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(stats.topk_weight, ref["top_w"], atol=1e-6)
    return stats, ref


def random_posteriors(rng, n, d, t, *, spread=1.0, offset=0.0, log_sigma=(-1.5, 0.0)):
    mean = offset + spread * rng.normal(size=(n, d))
    logvar = 2 * rng.uniform(*log_sigma, size=(n, d))
    z = mean[rng.integers(0, n, t)] + 0.5 * spread * rng.normal(size=(t, d))
    return z, mean, logvar


# --------------------------------------------------------------------------- golden numbers


def test_golden_numbers_by_hand():
    # dim(z) = 1; three training posteriors; one test point z = 1.
    #   i=0: m=0, var=1: (1-0)^2/1 = 1, log var = 0      -> log q = c - 1/2
    #   i=1: m=1, var=1: (1-1)^2/1 = 0                   -> log q = c
    #   i=2: m=3, var=4: (1-3)^2/4 = 1, log var = log 4  -> log q = c - log 2 - 1/2
    # with c = -log(2 pi)/2 = -0.918938533204673.
    # Unnormalised weights exp(log q - c): e^-1/2 = 0.606530659712633, 1,
    #   e^-1/2 / 2 = 0.303265329856317; sum S = 1 + 1.5 * 0.606530659712633 = 1.909795989568950,
    #   log S = 0.646996424609753.
    # w = (0.606530659712633, 1, 0.303265329856317) / 1.909795989568950
    #   = (0.317589241482034, 0.523616137776949, 0.158794620741017)
    # log_norm = c + log S = -0.918938533204673 + 0.646996424609753 = -0.271942108594920
    # log w = (-1/2 - log S, -log S, -1/2 - log 2 - log S)
    #       = (-1.146996424609753, -0.646996424609753, -1.840143605169698)
    # H = -sum w log w = 0.317589241482034 * 1.146996424609753     (= 0.364273724474416)
    #                  + 0.523616137776949 * 0.646996424609753     (= 0.338777769009654)
    #                  + 0.158794620741017 * 1.840143605169698     (= 0.292204905891930)
    #   = 0.995256399376000;  perplexity = e^H = 2.705417919825562
    # Images (2 pixels): x_0 = (0, 1), x_1 = (1, 0), x_2 = (1, 1):
    #   mu = (w_1 + w_2, w_0 + w_2) = (0.682410758517966, 0.476383862223051)
    # top-3 = (1, 0, 2); w_max = w_1.
    mean = np.array([[0.0], [1.0], [3.0]])
    logvar = np.array([[0.0], [0.0], [math.log(4.0)]])
    x = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    for chunk in (1, 2, 3):
        s = t1.weight_stats(np.array([[1.0]]), mean, logvar, x, top_k=3, train_chunk=chunk)
        assert s.topk_pos.tolist() == [[1, 0, 2]]
        np.testing.assert_allclose(
            s.topk_weight[0], [0.523616137776949, 0.317589241482034, 0.158794620741017], atol=1e-14
        )
        assert s.w_max[0] == pytest.approx(0.523616137776949, abs=1e-14)
        assert s.log_norm[0] == pytest.approx(-0.271942108594920, abs=1e-14)
        assert s.entropy[0] == pytest.approx(0.995256399376000, abs=1e-14)
        assert s.perplexity[0] == pytest.approx(2.705417919825562, abs=1e-13)
        np.testing.assert_allclose(s.mu[0], [0.682410758517966, 0.476383862223051], atol=1e-14)


# --------------------------------------------------------------------------- reference checks


@pytest.mark.parametrize("d", [2, 50])
def test_random_matches_reference(d):
    rng = np.random.default_rng(d)
    z, mean, logvar = random_posteriors(rng, 120, d, 9)
    x = rng.random((120, 20))
    check_against_reference(z, mean, logvar, x)


@pytest.mark.parametrize("tc,nc", [(1, 1), (2, 7), (4, 13), (9, 119), (9, 120), (3, 500)])
def test_chunk_size_does_not_matter(tc, nc):
    rng = np.random.default_rng(1)
    z, mean, logvar = random_posteriors(rng, 120, 5, 9, log_sigma=(-3, -1))
    x = rng.random((120, 11))
    whole = t1.weight_stats(z, mean, logvar, x, test_chunk=9, train_chunk=120)
    part = t1.weight_stats(z, mean, logvar, x, test_chunk=tc, train_chunk=nc)
    assert part.chunks == (tc, min(nc, 120))
    for name in ("log_norm", "entropy", "w_max", "topk_weight", "mu"):
        np.testing.assert_allclose(
            getattr(part, name), getattr(whole, name), rtol=1e-11, atol=1e-13, err_msg=name
        )
    np.testing.assert_array_equal(part.topk_pos, whole.topk_pos)
    check_against_reference(z, mean, logvar, x, test_chunk=tc, train_chunk=nc)


def test_chunk_mb_setting_gives_same_result():
    rng = np.random.default_rng(2)
    z, mean, logvar = random_posteriors(rng, 300, 4, 40)
    x = rng.random((300, 30))
    small = t1.weight_stats(z, mean, logvar, x, chunk_mb=0.02)
    large = t1.weight_stats(z, mean, logvar, x, chunk_mb=64)
    assert small.chunks[0] * small.chunks[1] < 40 * 300  # really chunked
    assert large.chunks == (40, 300)
    np.testing.assert_allclose(small.mu, large.mu, rtol=1e-11)
    np.testing.assert_allclose(small.entropy, large.entropy, rtol=1e-10, atol=1e-13)
    np.testing.assert_array_equal(small.topk_pos, large.topk_pos)


@pytest.mark.parametrize(
    "n_test,n_train,d,p,mb",
    [
        (1000, 60000, 50, 784, 1024),
        (1000, 60000, 50, 784, 1),
        (12, 300, 8, 784, 1),
        (360000, 100, 2, 0, 1),
        (5, 7, 3, 784, 1024),
        (2000, 60000, 50, 784, 16),
    ],
)
def test_chunk_sizes_fit_budget(n_test, n_train, d, p, mb):
    tc, nc = t1.chunk_sizes(n_test, n_train, d, p, mb)
    assert 1 <= tc <= n_test and 1 <= nc <= n_train
    assert t1.working_bytes(tc, nc, d, p) <= mb * 2**20
    # the budget is used, not wasted on small chunks (unless everything fits at once)
    used = t1.working_bytes(tc, nc, d, p)
    assert (tc, nc) == (n_test, n_train) or used >= 0.5 * mb * 2**20 or tc == 1


# --------------------------------------------------------------------------- hard cases


def sharp_far_pairs(rng, d, t, offset, sigma=1e-4):
    """Training means in close pairs (distance ~ sigma) far from the origin; test points
    between the two means of a pair, so that weights are far from 0 and 1."""
    base = offset + rng.normal(size=(t, d))
    step = sigma * rng.normal(size=(t, d)) / math.sqrt(d)
    mean = np.concatenate([base, base + step, offset + rng.normal(size=(30, d))])
    logvar = np.full_like(mean, 2 * math.log(sigma))
    z = base + step * rng.uniform(0.3, 0.7, size=(t, 1))
    return z, mean, logvar


@pytest.mark.parametrize("d", [2, 50])
def test_sharp_posteriors_far_from_origin(d):
    rng = np.random.default_rng(10 + d)
    z, mean, logvar = sharp_far_pairs(rng, d, 6, offset=1e3)
    x = rng.random((len(mean), 16))
    stats, ref = check_against_reference(z, mean, logvar, x, train_chunk=5)
    # the pairs really share the weight (not a trivially one-hot case)
    assert (ref["w_max"] < 0.99).all()
    assert (stats.perplexity > 1.01).all()


def test_centring_is_what_makes_it_exact():
    # Same data without centring (centre = 0): the expanded square cancels catastrophically
    # (terms a z^2 ~ 1e8 * 1e6 = 1e14, ulp ~ 0.02), so the weights are wrong by far more than
    # 1e-6 -- while the centred engine is within 1e-6 (see the test above).
    rng = np.random.default_rng(3)
    z, mean, logvar = sharp_far_pairs(rng, 2, 6, offset=1e3)
    ref = ref_stats(z, mean, logvar)
    _, w_centred = engine_weights(z, mean, logvar)
    _, w_raw = engine_weights(z, mean, logvar, centre=np.zeros(2))
    assert np.abs(w_centred - ref["w"]).max() <= 1e-6
    assert np.abs(w_raw - ref["w"]).max() > 1e-3


def test_duplicate_training_rows_get_equal_weights():
    rng = np.random.default_rng(4)
    z, mean, logvar = random_posteriors(rng, 40, 3, 5)
    # rows 7 and 33 (different chunks of 10) and 8 (same chunk) duplicate row 2, which is
    # made sharp (sigma 0.05) so that it is the best match of test point 0 at its mean
    logvar[2] = 2 * math.log(0.05)
    for j in (7, 8, 33):
        mean[j], logvar[j] = mean[2], logvar[2]
    z[0] = mean[2]  # the duplicates are the best match of test point 0
    for nc in (10, 40):
        stats, w = engine_weights(z, mean, logvar, top_k=4, train_chunk=nc)
        for j in (7, 8, 33):
            np.testing.assert_allclose(w[:, j], w[:, 2], rtol=1e-12, atol=0)
        assert stats.topk_pos[0].tolist() == [2, 7, 8, 33]
        np.testing.assert_allclose(stats.topk_weight[0], stats.topk_weight[0, 0], rtol=1e-12)
    check_against_reference(z, mean, logvar, rng.random((40, 6)), train_chunk=10)


def test_one_hot_weights_perplexity_one():
    # means 10 apart in every dimension, sigma 1e-2: second-best log q is ~ -5e5 below the
    # best, so w = (1, 0, ..., 0) to the last bit.
    rng = np.random.default_rng(5)
    mean = 10.0 * np.arange(20)[:, None] * np.ones((1, 3))
    logvar = np.full_like(mean, 2 * math.log(1e-2))
    pick = rng.integers(0, 20, 4)
    z = mean[pick] + 1e-3 * rng.normal(size=(4, 3))
    x = rng.random((20, 8))
    stats = t1.weight_stats(z, mean, logvar, x, train_chunk=6)
    np.testing.assert_array_equal(stats.topk_pos[:, 0], pick)
    assert stats.perplexity.tolist() == [1.0] * 4
    assert stats.w_max.tolist() == [1.0] * 4
    np.testing.assert_array_equal(stats.topk_weight[:, 1:], 0.0)
    np.testing.assert_allclose(stats.mu, x[pick], rtol=1e-15)


def test_uniform_weights_perplexity_n():
    # all training posteriors identical: w_i = 1/N, perplexity N, top-k = first k rows
    n = 37
    mean = np.tile([[0.3, -2.0]], (n, 1))
    logvar = np.tile([[-1.0, 0.5]], (n, 1))
    z = np.array([[0.0, 0.0], [5.0, -5.0]])
    x = np.random.default_rng(6).random((n, 5))
    for nc in (1, 10, 37):
        stats, w = engine_weights(z, mean, logvar, train_chunk=nc)
        np.testing.assert_allclose(w, 1.0 / n, rtol=1e-12)
        np.testing.assert_allclose(stats.perplexity, n, rtol=1e-12)
        np.testing.assert_allclose(stats.w_max, 1.0 / n, rtol=1e-12)
        assert stats.topk_pos.tolist() == [[0, 1, 2], [0, 1, 2]]
        mu = t1.weight_stats(z, mean, logvar, x, train_chunk=nc).mu
        np.testing.assert_allclose(mu, np.tile(x.mean(0), (2, 1)), rtol=1e-12)


def test_sixty_thousand_training_rows():
    # Full MNIST-size training set; few test points, small D and few 'pixels' keep the
    # (T, N, D) reference at 4 x 60000 x 3 and the run at a second or so. The weights are
    # read for 16 training rows (the reference's top 3 of each test point and random rows)
    # through indicator columns appended to the 8 random pixels.
    rng = np.random.default_rng(7)
    n = 60_000
    z, mean, logvar = random_posteriors(rng, n, 3, 4, log_sigma=(-4, -1))
    ref = ref_stats(z, mean, logvar)
    rows = np.unique(np.concatenate([ref["top"].ravel(), rng.integers(0, n, 16)]))[:16]
    x = np.concatenate([rng.random((n, 8)), np.zeros((n, len(rows)))], 1)
    x[rows, 8 + np.arange(len(rows))] = 1.0
    ref = ref_stats(z, mean, logvar, x)
    stats = t1.weight_stats(z, mean, logvar, x, train_chunk=7001)
    assert np.abs(stats.mu[:, 8:] - ref["w"][:, rows]).max() <= 1e-6
    assert ref["w"][:, rows].max() > 0.1  # the checked weights include large ones
    assert rel_norm_err(stats.mu, ref["mu"]).max() <= 1e-5
    np.testing.assert_allclose(stats.perplexity, ref["perplexity"], rtol=1e-5)
    np.testing.assert_allclose(stats.topk_weight, ref["top_w"], atol=1e-6)
    np.testing.assert_array_equal(stats.topk_pos, ref["top"])


def test_fewer_training_rows_than_k():
    mean = np.array([[0.0], [1.0]])
    logvar = np.zeros((2, 1))
    stats = t1.weight_stats(np.array([[0.9]]), mean, logvar, top_k=3)
    assert stats.topk_pos.tolist() == [[1, 0]]
    assert stats.topk_weight.sum() == pytest.approx(1.0, abs=1e-15)


def test_no_test_points():
    stats = t1.weight_stats(np.zeros((0, 2)), np.zeros((4, 2)), np.zeros((4, 2)), np.ones((4, 5)))
    assert stats.log_norm.shape == (0,) and stats.mu.shape == (0, 5)
    assert stats.topk_pos.shape == (0, 3)


def test_invalid_inputs_raise():
    mean, logvar = np.zeros((3, 2)), np.zeros((3, 2))
    with pytest.raises(ValueError, match="NaN"):
        t1.weight_stats(np.array([[np.nan, 0.0]]), mean, logvar)
    with pytest.raises(ValueError, match="shapes"):
        t1.weight_stats(np.zeros((1, 3)), mean, logvar)
    with pytest.raises(ValueError, match="train_x"):
        t1.weight_stats(np.zeros((1, 2)), mean, logvar, np.zeros((4, 5)))
    with pytest.raises(ValueError, match="chunk_mb"):
        t1.chunk_sizes(1, 1, 1, 1, 0)


# --------------------------------------------------------------------------- Figure 3 grid


def test_max_weight_grid_matches_reference():
    rng = np.random.default_rng(8)
    mean = rng.normal(size=(100, 2)) * 2
    logvar = 2 * rng.uniform(-4, -1, size=(100, 2))
    g = np.linspace(-5, 5, 23)
    points = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    ref = ref_stats(points, mean, logvar)["w_max"]
    for tc, nc in ((None, None), (50, 7), (1, 100)):
        got = t1.max_weight_grid(mean, logvar, points, test_chunk=tc, train_chunk=nc)
        np.testing.assert_allclose(got, ref, atol=1e-9)
    assert ref.min() < 0.9 and ref.max() > 0.999  # the grid covers both regimes


# --------------------------------------------------------------------------- CPU vs GPU


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_equals_cpu():
    rng = np.random.default_rng(13)
    z, mean, logvar = random_posteriors(rng, 5000, 50, 64, log_sigma=(-4, -1))
    x = rng.random((5000, 784)).astype(np.float32)
    cpu = t1.weight_stats(z, mean, logvar, x, chunk_mb=4, device="cpu")
    gpu = t1.weight_stats(z, mean, logvar, x, chunk_mb=4, device="cuda")
    for name in ("log_norm", "entropy", "w_max", "topk_weight", "mu"):
        np.testing.assert_allclose(
            getattr(gpu, name), getattr(cpu, name), rtol=1e-9, atol=1e-12, err_msg=name
        )
    np.testing.assert_array_equal(gpu.topk_pos, cpu.topk_pos)
    grid = np.random.default_rng(14).uniform(-3, 3, (1000, 50))
    np.testing.assert_allclose(
        t1.max_weight_grid(mean, logvar, grid, device="cuda"),
        t1.max_weight_grid(mean, logvar, grid, device="cpu"),
        atol=1e-9,
    )
    # memorisation measures
    pos_c, dist_c = nb.latent_neighbours(z, mean, chunk_mb=4, device="cpu")
    pos_g, dist_g = nb.latent_neighbours(z, mean, chunk_mb=4, device="cuda")
    np.testing.assert_array_equal(pos_g, pos_c)
    np.testing.assert_allclose(dist_g, dist_c, rtol=1e-10)
    logits = 3 * rng.normal(size=(64, 784))
    xpos_c, xbce_c = nb.xhat_neighbours(logits, x, chunk_mb=4, device="cpu")
    xpos_g, xbce_g = nb.xhat_neighbours(logits, x, chunk_mb=4, device="cuda")
    np.testing.assert_array_equal(xpos_g, xpos_c)
    np.testing.assert_allclose(xbce_g, xbce_c, rtol=1e-10)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_equals_cpu_where_many_training_images_share_the_weight():
    """A realistic case, like a trained VAE's: most test points share their weight among a
    few training images (median perplexity near 3), some sit on one (w_max = 1)."""
    rng = np.random.default_rng(17)
    z, mean, logvar = random_posteriors(rng, 6000, 6, 300, log_sigma=(-2.0, -1.0))
    x = rng.random((6000, 784)).astype(np.float32)
    cpu = t1.weight_stats(z, mean, logvar, x, chunk_mb=8, device="cpu")
    assert np.median(cpu.entropy) > 0.5 and np.mean(cpu.w_max > 0.99) < 0.5  # realistic
    x_dev = torch.from_numpy(x).cuda()  # uploaded once
    gpu = t1.weight_stats(z, mean, logvar, x_dev, chunk_mb=8, device="cuda")
    for name in ("log_norm", "entropy", "w_max", "topk_weight", "mu"):
        np.testing.assert_allclose(
            getattr(gpu, name), getattr(cpu, name), rtol=1e-9, atol=1e-12, err_msg=name
        )
    np.testing.assert_array_equal(gpu.topk_pos, cpu.topk_pos)
    on_dev = t1.weight_stats(z, mean, logvar, x_dev, chunk_mb=8, device="cuda", mu_on_device=True)
    assert on_dev.mu.is_cuda
    np.testing.assert_allclose(on_dev.mu.cpu().numpy(), cpu.mu, rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------- out of memory


def test_out_of_memory_retries_with_smaller_chunks(monkeypatch):
    """A (simulated) CUDA OOM halves the chunk budget until it fits; results are unchanged."""
    rng = np.random.default_rng(3)
    mean, logvar = rng.normal(size=(50, 4)), rng.normal(size=(50, 4)) - 1
    z, x = rng.normal(size=(6, 4)), rng.random((50, 784))
    real = t1.weight_stats
    tried = []

    def oom_above_64(*args, chunk_mb, **kwargs):
        tried.append(chunk_mb)
        if chunk_mb > 64:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(*args, chunk_mb=chunk_mb, **kwargs)

    monkeypatch.setattr(t1, "weight_stats", oom_above_64)
    stats, used = t1.weight_stats_shrinking(z, mean, logvar, x, top_k=3, chunk_mb=512, device="cpu")
    assert tried == [512, 256, 128, 64] and used == 64
    direct = real(z, mean, logvar, x, top_k=3, chunk_mb=512, device="cpu")
    np.testing.assert_allclose(stats.mu, direct.mu, rtol=1e-12)
    np.testing.assert_array_equal(stats.topk_pos, direct.topk_pos)


def test_out_of_memory_at_the_smallest_chunk_names_the_setting(monkeypatch):
    def always_oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(t1, "weight_stats", always_oom)
    with pytest.raises(RuntimeError, match=r"theorem1\.chunk_mb = 32.*theorem1\.device: cpu"):
        t1.weight_stats_shrinking(
            np.zeros((1, 2)),
            np.zeros((3, 2)),
            np.zeros((3, 2)),
            None,
            top_k=3,
            chunk_mb=32,
            device="cpu",
        )


def test_out_of_memory_retry_releases_the_failed_attempt_first(monkeypatch):
    """The CUDA cache is emptied only once the failed attempt's tensors are unreferenced."""
    import weakref

    class Chunk:  # stands for a tensor of the failed attempt
        pass

    attempts, alive_at_empty = [], []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(
        torch.cuda,
        "empty_cache",
        lambda: alive_at_empty.append([r() is not None for r in attempts]),
    )

    def run(budget):
        chunk = Chunk()
        attempts.append(weakref.ref(chunk))
        if budget > 16:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return budget

    assert chunks.shrink_on_oom(run, 64, "a test") == (16, 16)
    assert alive_at_empty == [[False], [False, False]]
