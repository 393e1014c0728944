"""The samples stage: every quantity of a sample against a slow float64 reference on small
data (duplicated training images included: ties go to the lower MNIST row), and the files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from vae_novelty import samples as S
from vae_novelty import tables as T
from vae_novelty.classifier import DigitCNN, classify
from vae_novelty.config import ModelSpec
from vae_novelty.data import Mnist, to_float
from vae_novelty.evaluate import EvalJob, EvalSettings, evaluate_jobs
from vae_novelty.model import VAE, save_model
from vae_novelty.posterior import read_posteriors
from vae_novelty.samples_table import read_samples
from vae_novelty.splits import Split

CPU = torch.device("cpu")
SETTINGS = S.SampleSettings(
    n=40,
    seed=3,
    top_k=3,
    figure_images=5,
    ct_cells=3,
    ct_pca_dims=4,
    ct_min_per_cell=2,
    max_test_per_digit=None,
    chunk_mb=0.05,
)


# --------------------------------------------------------------------------- references


def ref_theorem1(z, mean, logvar, x_train, logits, k):
    """Per-dimension float64 log densities by loops, logsumexp, weights, top-k (ties: lower
    position), mu and BCE(mu, x_hat) from its textbook formula."""
    z, mean, logvar = (np.asarray(a, np.float64) for a in (z, mean, logvar))
    T_, N = len(z), len(mean)
    L = np.zeros((T_, N))
    for t in range(T_):
        for i in range(N):
            for d in range(z.shape[1]):
                var = math.exp(logvar[i, d])
                L[t, i] += -0.5 * (math.log(2 * math.pi * var) + (z[t, d] - mean[i, d]) ** 2 / var)
    m = L.max(1, keepdims=True)
    w = np.exp(L - m) / np.exp(L - m).sum(1, keepdims=True)
    perplexity = np.exp(-(w * np.log(np.where(w > 0, w, 1))).sum(1))
    top = np.array([sorted(range(N), key=lambda i: (-L[t, i], i))[:k] for t in range(T_)])
    mu = w @ np.asarray(x_train, np.float64)
    p = 1 / (1 + np.exp(-np.asarray(logits, np.float64)))
    bce = -(mu * np.log(p) + (1 - mu) * np.log(1 - p)).sum(1)
    return {
        "perplexity": perplexity,
        "w_max": w.max(1),
        "top": top,
        "w": w,
        "top_w": np.take_along_axis(w, top, 1),
        "mu": mu,
        "bce": bce,
    }


def assert_same_top(pos, weight, ref_pos, ref_weight, w):
    """Same weights in the same order; positions equal, except where the reference has an
    exact tie (duplicated posteriors): then the engine's position must carry the same weight
    (``w``: the reference's full weight matrix). The engine orders exact ties by position,
    but a BLAS kernel may round two equal rows differently in the last bit (documented in
    vae_novelty.theorem1)."""
    np.testing.assert_allclose(weight, ref_weight, atol=1e-12)
    for t in range(len(pos)):
        for i in range(pos.shape[1]):
            if pos[t, i] != ref_pos[t, i]:
                assert w[t, pos[t, i]] == pytest.approx(ref_weight[t, i], rel=1e-9), (t, i)
                assert w[t, pos[t, i]] == w[t, ref_pos[t, i]], (t, i)  # an exact tie


def ref_nearest(queries, refs, k):
    out_pos, out_dist = [], []
    for q in np.asarray(queries, np.float64):
        d = [math.sqrt(float(((np.asarray(r, np.float64) - q) ** 2).sum())) for r in refs]
        order = sorted(range(len(refs)), key=lambda i: (d[i], i))[:k]
        out_pos.append(order)
        out_dist.append([d[i] for i in order])
    return np.array(out_pos), np.array(out_dist)


# --------------------------------------------------------------------------- theorem 1 at z


@pytest.mark.parametrize("dim", [2, 5])
def test_theorem1_at_z_matches_the_per_dimension_reference(dim):
    rng = np.random.default_rng(dim)
    n = 50
    mean = rng.normal(size=(n, dim))
    mean[25:30] = mean[:5]  # duplicated posteriors: exact ties
    logvar = rng.uniform(-3, 0, (n, dim))
    logvar[25:30] = logvar[:5]
    x_train = rng.random((n, 12)).astype(np.float32)
    z = rng.normal(size=(30, dim)).astype(np.float32)
    z[:5] = mean[:5]  # on top of a (duplicated) training code
    logits = rng.normal(0, 3, (30, 12))
    stats, bce = S.theorem1_at(z, mean, logvar, x_train, logits, top_k=3, chunk_mb=0.01, device=CPU)
    ref = ref_theorem1(z, mean, logvar, x_train, logits, 3)
    np.testing.assert_allclose(stats.perplexity, ref["perplexity"], rtol=1e-9)
    np.testing.assert_allclose(stats.w_max, ref["w_max"], atol=1e-12)
    assert_same_top(stats.topk_pos, stats.topk_weight, ref["top"], ref["top_w"], ref["w"])
    np.testing.assert_allclose(stats.mu, ref["mu"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(bce, ref["bce"], rtol=1e-9)


def test_latent_codes_are_seeded_per_model_and_float32():
    a = S.latent_codes(0, "h16.no9.s0", 100, 3)
    assert a.dtype == np.float32 and a.shape == (100, 3)
    np.testing.assert_array_equal(a, S.latent_codes(0, "h16.no9.s0", 100, 3))
    assert not np.array_equal(a, S.latent_codes(0, "h16.no8.s0", 100, 3))
    assert not np.array_equal(a, S.latent_codes(1, "h16.no9.s0", 100, 3))
    assert abs(a.mean()) < 0.2 and abs(a.std() - 1) < 0.2


# --------------------------------------------------------------------------- the stage


def _setup(tmp_path: Path):
    rng = np.random.default_rng(5)
    train = rng.integers(0, 256, (60, 784), dtype=np.uint8)
    train[30:40] = train[0:10]  # duplicates: the lower row must win ties
    mnist = Mnist(
        train,
        np.arange(60, dtype=np.uint8) % 10,
        rng.integers(0, 256, (40, 784), dtype=np.uint8),
        np.arange(40, dtype=np.uint8) % 10,
    )
    torch.manual_seed(0)
    model_id = "h16.no9.s0"
    save_model(VAE([16], 2), tmp_path / "m.pt", model_id=model_id, data=mnist.fingerprint)
    split = Split(
        "no9",
        np.flatnonzero(mnist.train_labels != 9),
        np.flatnonzero(mnist.test_labels == 9),
        9,
        mnist.fingerprint,
    )
    spec = ModelSpec("h16", (16,), 2, "no9", 0)
    out = tmp_path / "out"
    evaluate_jobs(
        [
            EvalJob(
                spec,
                tmp_path / "m.pt",
                out / "post.parquet",
                out / "t1.parquet",
                out / "t1.npz",
                out / "elbo.parquet",
            )
        ],
        mnist,
        {"no9": split},
        EvalSettings(top_k=3, samples=1, eps=1e-6, sample_seed=0, chunk_mb=0.05),
        CPU,
    )
    job = S.SampleJob(
        spec, tmp_path / "m.pt", out / "post.parquet", out / "s.parquet", out / "s.npz"
    )
    torch.manual_seed(1)
    return mnist, split, spec, job, DigitCNN().eval()


def test_the_stage_matches_the_references(tmp_path):
    mnist, split, spec, job, clf = _setup(tmp_path)
    S.sample_jobs([job], mnist, {"no9": split}, clf, {"test_accuracy": 0.1}, SETTINGS, CPU)
    df = pd.read_parquet(job.table)
    meta = read_samples(job.table, expect_model_id=spec.model_id, expect_data=mnist.fingerprint)[1]
    assert len(df) == SETTINGS.n and list(df["sample"]) == list(range(SETTINGS.n))
    z = np.stack(df.z.to_numpy())
    np.testing.assert_array_equal(z, S.latent_codes(3, spec.model_id, 40, 2))
    # the decoder output from the model in float64, by hand
    from vae_novelty.model import load_model

    model = load_model(job.model)[0].double()
    with torch.no_grad():
        logits = model.decode_logits(torch.as_tensor(z, dtype=torch.float64)).numpy()
    x_hat = 1 / (1 + np.exp(-logits))
    train, test, _ = read_posteriors(job.posteriors)
    x_train = to_float(mnist.train_images[split.train_idx]).astype(np.float64)  # as held
    ref = ref_theorem1(z, train["z_mean"], train["z_logvar"], x_train, logits, 3)
    np.testing.assert_allclose(df.perplexity, ref["perplexity"], rtol=1e-9)
    np.testing.assert_allclose(df.w_max, ref["w_max"], atol=1e-12)
    top_pos = np.searchsorted(split.train_idx, np.stack(df.top_rows))
    assert_same_top(top_pos, np.stack(df.top_weights), ref["top"], ref["top_w"], ref["w"])
    np.testing.assert_allclose(df.bce_mu_xhat, ref["bce"], rtol=1e-6)
    pos, dist = ref_nearest(x_hat, x_train, 2)
    np.testing.assert_array_equal(df.nn1_row, split.train_idx[pos[:, 0]])
    np.testing.assert_array_equal(df.nn2_row, split.train_idx[pos[:, 1]])
    np.testing.assert_allclose(df.nn1_dist, dist[:, 0], rtol=1e-9)
    np.testing.assert_allclose(df.nn2_dist, dist[:, 1], rtol=1e-9)
    tpos, tdist = ref_nearest(x_hat, to_float(mnist.test_images[split.test_idx]), 1)
    np.testing.assert_array_equal(df.test_nn_row, split.test_idx[tpos[:, 0]])
    np.testing.assert_allclose(df.test_nn_dist, tdist[:, 0], rtol=1e-9)
    digit, prob = classify(clf, x_hat.astype(np.float32))
    np.testing.assert_array_equal(df.digit, digit)
    np.testing.assert_allclose(df.digit_prob, prob, rtol=1e-12)
    # metadata: model, data, settings, C_T with its cells, classifier
    assert meta["model_id"] == spec.model_id and meta["data"] == mnist.fingerprint
    assert meta["settings"]["n"] == 40 and meta["ct"]["cells"] and meta["ct"]["pca_dims"] == 4
    assert meta["ct"]["heldout_digits"] == list(range(9)) and meta["ct"]["n_heldout"] == 36
    assert meta["classifier"]["test_accuracy"] == 0.1
    with np.load(job.images) as npz:
        assert npz["x_hat"].shape == (5, 784) and npz["mu"].dtype == np.float32
        assert str(npz["model_id"]) == spec.model_id
        np.testing.assert_allclose(npz["mu"], ref["mu"][:5], atol=1e-6)
        np.testing.assert_allclose(npz["x_hat"], x_hat[:5], atol=1e-6)


def test_the_summary_columns(tmp_path):
    mnist, split, spec, job, clf = _setup(tmp_path)
    S.sample_jobs([job], mnist, {"no9": split}, clf, {}, SETTINGS, CPU)
    table, meta = read_samples(job.table)
    df = table.to_pandas()
    stats = T.samples_stats(df, meta, 9)
    ratio = df.nn1_dist / df.nn2_dist
    assert stats["sample_copy_frac"] == pytest.approx((ratio < 1 / 3).mean())
    assert stats["sample_dist_ratio_median"] == pytest.approx(ratio.median())
    assert stats["sample_heldout_frac"] == pytest.approx((df.digit == 9).mean())
    assert sum(stats[f"sample_digit_frac_{d}"] for d in range(10)) == pytest.approx(1)
    assert stats["sample_ct"] == meta["ct"]["ct"]
    assert np.isnan(T.samples_stats(df, meta, -1)["sample_heldout_frac"])
    assert all(np.isnan(v) for v in T.samples_stats(None, None, 9).values())


def test_summary_copy_fraction_by_hand():
    df = pd.DataFrame(
        {
            "nn1_dist": [1.0, 1.0, 0.0, 2.0],
            "nn2_dist": [4.0, 2.0, 0.0, 5.0],
            "perplexity": [1, 2, 3, 4],
            "w_max": [1.0, 0.995, 0.5, 0.2],
            "digit": [9, 1, 9, 3],
        }
    )
    s = T.samples_stats(df, {"ct": {"ct": -1.5}}, 9)
    # ratios 0.25, 0.5, 1 (0/0 counts as 1), 0.4: one below 1/3
    assert s["sample_copy_frac"] == 0.25 and s["sample_dist_ratio_median"] == 0.45
    assert s["sample_frac_wmax_gt_0_99"] == 0.5 and s["sample_heldout_frac"] == 0.5
    assert s["sample_ct"] == -1.5 and s["sample_digit_frac_3"] == 0.25


def test_a_posterior_file_of_other_rows_is_refused(tmp_path):
    mnist, split, spec, job, clf = _setup(tmp_path)
    other = Split("no9", split.train_idx[1:], split.test_idx, 9, mnist.fingerprint)
    with pytest.raises(ValueError, match="training rows differ"):
        S.sample_jobs([job], mnist, {"no9": other}, clf, {}, SETTINGS, CPU)
    assert not job.table.exists()
