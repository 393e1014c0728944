"""Tests of vae_novelty.decoder found by mutation testing (bench/mutation.sh decoder;
docs/benchmarks/mutation.md). The decoder's other tests are in tests/test_theorem1.py."""

from __future__ import annotations

import numpy as np
import pytest

from vae_novelty import decoder


def test_bce_from_logits_is_float64_for_float32_logits_on_the_default_device():
    # float32 logits are computed in float64 (like x and mu), with the defaults (device "cpu",
    # one chunk); reference: a per-pixel float64 loop
    rng = np.random.default_rng(5)
    logits = rng.normal(0, 4, (3, 6)).astype(np.float32)
    x = rng.random((3, 6))
    mu = rng.random((3, 6))
    x_hat, bce_x, bce_mu = decoder.bce_from_logits(logits, x, mu)
    for i in range(3):
        want_x = want_mu = 0.0
        for j in range(6):
            p = 1.0 / (1.0 + np.exp(-float(logits[i, j])))
            want_x -= x[i, j] * np.log(p) + (1 - x[i, j]) * np.log(1 - p)
            want_mu -= mu[i, j] * np.log(p) + (1 - mu[i, j]) * np.log(1 - p)
            assert x_hat[i, j] == np.float32(p)
        assert bce_x[i] == pytest.approx(want_x, rel=1e-12)
        assert bce_mu[i] == pytest.approx(want_mu, rel=1e-12)
