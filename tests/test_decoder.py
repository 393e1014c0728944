"""Tests of the decoder helpers (float64 decoder logits, BCE from logits) against float64
formulas and loops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vae_novelty import decoder as dec

# --------------------------------------------------------------------------- decoder and BCE


def test_decode_bce_matches_formula():
    from vae_novelty.model import VAE

    torch.manual_seed(0)
    model = VAE([16], 2).eval()
    rng = np.random.default_rng(9)
    z = rng.normal(size=(5, 2)).astype(np.float32)
    x = rng.random((5, 784)).astype(np.float32)
    mu = rng.random((5, 784))
    x_hat, bce_x, bce_mu = dec.decode_bce(model, z, x, mu, "cpu", batch_size=2)
    with torch.no_grad():
        logits = model.double().decode_logits(torch.as_tensor(z, dtype=torch.float64)).numpy()
    p = 1.0 / (1.0 + np.exp(-logits))
    for target, got in ((x.astype(np.float64), bce_x), (mu, bce_mu)):
        want = -(target * np.log(p) + (1 - target) * np.log1p(-p)).sum(1)
        np.testing.assert_allclose(got, want, rtol=1e-10)
    np.testing.assert_allclose(x_hat, p, atol=1e-6)
    assert bce_x.dtype == np.float64 and x_hat.dtype == np.float32


def test_decoder_logits_are_float64_decoder_outputs():
    from vae_novelty.model import VAE

    torch.manual_seed(1)
    model = VAE([8], 3).eval()
    z = np.random.default_rng(25).normal(size=(5, 3))
    got = dec.decoder_logits(model, z, batch_size=2)
    with torch.no_grad():
        want = model.double().decode_logits(torch.as_tensor(z)).numpy()
    assert got.dtype == np.float64 and got.shape == (5, 784)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


# found by mutation testing (bench/mutation.sh decoder; docs/benchmarks/mutation.md)


def test_bce_from_logits_in_chunks_against_a_float64_loop():
    rng = np.random.default_rng(21)
    logits = rng.normal(0, 3, (5, 7))
    x = rng.random((5, 7)).astype(np.float32)  # float32 inputs: computed in float64
    mu = rng.random((5, 7)).astype(np.float32)
    x_hat, bce_x, bce_mu = dec.bce_from_logits(logits, x, mu, "cpu", batch_size=2)
    for i in range(5):
        want_x = want_mu = 0.0
        for j in range(7):
            p = 1.0 / (1.0 + np.exp(-logits[i, j]))
            want_x -= float(x[i, j]) * np.log(p) + (1 - float(x[i, j])) * np.log(1 - p)
            want_mu -= float(mu[i, j]) * np.log(p) + (1 - float(mu[i, j])) * np.log(1 - p)
            assert x_hat[i, j] == np.float32(p)
        assert bce_x[i] == pytest.approx(want_x, rel=1e-12)
        assert bce_mu[i] == pytest.approx(want_mu, rel=1e-12)


def test_float64_model_leaves_the_original_untouched():
    from vae_novelty.model import VAE

    model = VAE([4], 2)
    copy64 = dec.float64_model(model, torch.device("cpu"))
    assert copy64.decoder[0].weight.dtype == torch.float64
    assert model.decoder[0].weight.dtype == torch.float32


# --------------------------------------------------------------------------- found by mutation testing
# (bench/mutation.sh decoder; docs/benchmarks/mutation.md)


def test_bce_from_logits_is_float64_for_float32_logits_on_the_default_device():
    # float32 logits are computed in float64 (like x and mu), with the defaults (device "cpu",
    # one chunk); reference: a per-pixel float64 loop
    rng = np.random.default_rng(5)
    logits = rng.normal(0, 4, (3, 6)).astype(np.float32)
    x = rng.random((3, 6))
    mu = rng.random((3, 6))
    x_hat, bce_x, bce_mu = dec.bce_from_logits(logits, x, mu)
    for i in range(3):
        want_x = want_mu = 0.0
        for j in range(6):
            p = 1.0 / (1.0 + np.exp(-float(logits[i, j])))
            want_x -= x[i, j] * np.log(p) + (1 - x[i, j]) * np.log(1 - p)
            want_mu -= mu[i, j] * np.log(p) + (1 - mu[i, j]) * np.log(1 - p)
            assert x_hat[i, j] == np.float32(p)
        assert bce_x[i] == pytest.approx(want_x, rel=1e-12)
        assert bce_mu[i] == pytest.approx(want_mu, rel=1e-12)
