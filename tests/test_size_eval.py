"""The size sweep's per-model measures against slow references on a tiny VAE."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vae_novelty.model import VAE, init_parameters
from vae_novelty.size_eval import SizeEvalSettings, _seed, mean_neg_elbo, measure_model


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = VAE([6], 2, x_dim=12)
    init_parameters(model, torch.Generator().manual_seed(3))
    rng = np.random.default_rng(4)
    x_train = (rng.random((15, 12)) < 0.4).astype(np.float32)
    x_test = (rng.random((9, 12)) < 0.4).astype(np.float32)
    return model.eval(), x_train, x_test


def reference(model, x_train, x_test, settings, key):
    """Theorem 1 fraction and median perplexity, copy fraction, own-nearest distances by
    loops in float64."""
    m64 = VAE([6], 2, x_dim=12).double()
    m64.load_state_dict(model.state_dict())
    with torch.no_grad():
        tm, tlv = (t.numpy() for t in m64.encode(torch.from_numpy(x_train).double()))
        zm, _ = (t.numpy() for t in m64.encode(torch.from_numpy(x_test).double()))

        def decode(z):
            return torch.sigmoid(m64.decode_logits(torch.from_numpy(z))).detach().numpy()

    closer, perplexities = [], []
    for t in range(len(x_test)):
        logq = []
        for i in range(len(x_train)):
            s = 0.0
            for d in range(2):
                var = math.exp(tlv[i, d])
                s += -0.5 * (math.log(2 * math.pi * var) + (zm[t, d] - tm[i, d]) ** 2 / var)
            logq.append(s)
        top = max(logq)
        w = np.exp(np.array(logq) - top)
        w /= w.sum()
        mu = (w[:, None] * x_train.astype(np.float64)).sum(0)
        xhat = decode(zm[t : t + 1])[0]

        def bce(target):
            return -sum(
                target[j] * math.log(xhat[j]) + (1 - target[j]) * math.log(1 - xhat[j])
                for j in range(12)
            )

        closer.append(bce(mu) < bce(x_test[t].astype(np.float64)))
        perplexities.append(math.exp(-sum(v * math.log(v) for v in w if v > 0)))
    rng = np.random.default_rng(_seed(settings.sample_seed, key, "samples"))
    samples = decode(rng.standard_normal((settings.samples, 2)))
    copies = []
    for s in samples:
        d = sorted(math.dist(s, x) for x in x_train.astype(np.float64))
        copies.append(d[0] / d[1] < settings.copy_ratio)
    own = [min(math.dist(r, x) for x in x_train.astype(np.float64)) for r in decode(zm)]
    return np.mean(closer), np.median(perplexities), np.mean(copies), np.median(own)


def test_measures_against_loops(tiny):
    model, x_train, x_test = tiny
    settings = SizeEvalSettings(
        samples=40, copy_ratio=0.995, elbo_samples=2, sample_seed=5, chunk_mb=0.01
    )
    got = measure_model(model, x_train, x_test, settings, key="m", device="cpu")
    closer, perplexity, copies, own = reference(model, x_train, x_test, settings, "m")
    assert got.row["frac_closer_to_mu"] == closer and 0 < closer < 1
    assert got.row["median_perplexity"] == pytest.approx(perplexity, rel=1e-5)
    assert got.row["copy_fraction"] == copies and 0.2 < copies < 0.8  # ratios near 0.995
    assert got.row["median_own_nn_dist"] == pytest.approx(own, rel=1e-5)
    assert got.row["elbo_gap"] == pytest.approx(
        got.row["test_neg_elbo"] - got.row["train_neg_elbo"]
    )
    assert np.isnan(got.row["c_t"])
    again = measure_model(model, x_train, x_test, settings, key="m", device="cpu")
    assert again.row == pytest.approx(got.row, nan_ok=True)


def test_mean_neg_elbo_averages_one_sample_estimates(tiny):
    model, x_train, _ = tiny
    x = torch.from_numpy(x_train)
    gen = torch.Generator().manual_seed(7)
    draws = []
    with torch.no_grad():
        for _ in range(3):
            for xi in x:  # one image at a time, one draw each
                eps = torch.randn(1, 2, generator=gen)
                logits, mean, logvar = model(xi[None], eps)
                bce = torch.nn.functional.binary_cross_entropy_with_logits(
                    logits, xi[None], reduction="sum"
                )
                kl = -0.5 * torch.sum(1 + logvar - mean**2 - logvar.exp())
                draws.append(float(bce + kl))
    assert mean_neg_elbo(model, x_train, 3, 7, "cpu", batch_size=4) == pytest.approx(
        np.mean(draws), rel=1e-5
    )


def test_c_t_of_copied_samples_is_strongly_negative_and_of_fresh_draws_near_zero():
    """C_T as the size sweep computes it, on images drawn from a mixture: samples that copy
    training images (with a tiny jitter) against fresh draws of the same distribution."""
    from vae_novelty.pixel_nn import nearest_images
    from vae_novelty.size_eval import c_t_statistic

    rng = np.random.default_rng(0)
    centres = rng.uniform(0, 1, (5, 20))

    def draw(n):
        return np.clip(centres[rng.integers(0, 5, n)] + 0.15 * rng.standard_normal((n, 20)), 0, 1)

    train, test = draw(300), draw(400)
    _, test_nn = nearest_images(test, train, k=1)
    copies = train[rng.integers(0, 300, 400)] + 1e-3 * rng.standard_normal((400, 20))
    fresh = draw(400)
    for samples, check in ((copies, lambda v: v < -10), (fresh, lambda v: abs(v) < 3)):
        _, nn = nearest_images(samples, train, k=1)
        value = c_t_statistic(
            nn[:, 0],
            samples,
            train,
            test_nn[:, 0],
            test,
            key="m",
            cells=4,
            pca_dims=5,
            min_per_cell=10,
        )
        assert check(value), value
