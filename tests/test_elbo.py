"""The optimal decoder's test ELBO against slow float64 references (loops), on small data."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from vae_novelty import elbo as E
from vae_novelty.model import VAE

# --------------------------------------------------------------------------- references


def ref_decoder_logits(model: VAE, z):
    """The MLP decoder in numpy float64: Linear + ReLU per hidden layer, then Linear."""
    layers = [m for m in model.decoder if isinstance(m, torch.nn.Linear)]
    h = np.asarray(z, np.float64)
    for k, layer in enumerate(layers):
        W = layer.weight.detach().double().numpy()
        b = layer.bias.detach().double().numpy()
        h = h @ W.T + b
        if k < len(layers) - 1:
            h = np.maximum(h, 0.0)
    return h


def ref_log_bernoulli(x, p):
    """sum_j x_j log p_j + (1 - x_j) log(1 - p_j), pixel by pixel."""
    total = 0.0
    for xj, pj in zip(x, p):
        total += xj * math.log(pj) + (1 - xj) * math.log(1 - pj)
    return total


def ref_kl(mean, logvar):
    total = 0.0
    for m, v in zip(mean, logvar):
        total += 0.5 * (m * m + math.exp(v) - 1 - v)
    return total


def ref_log_q(z, mean, logvar):
    """log N(z | mean, diag exp(logvar)), dimension by dimension."""
    total = 0.0
    for zk, mk, vk in zip(z, mean, logvar):
        total += -0.5 * (math.log(2 * math.pi) + vk + (zk - mk) ** 2 / math.exp(vk))
    return total


def ref_optimal_mean(z, train_mean, train_logvar, train_x):
    """mu(z) = sum_i w_i x_i, w = softmax_i log q(z | x_i), by a loop over training rows."""
    logq = np.array([ref_log_q(z, m, v) for m, v in zip(train_mean, train_logvar)])
    w = np.exp(logq - logq.max())
    w /= w.sum()
    mu = np.zeros(train_x.shape[1])
    for wi, xi in zip(w, np.asarray(train_x, np.float64)):
        mu += wi * xi
    return mu


def ref_elbo(model, x, mean, logvar, noise, train_mean, train_logvar, train_x, eps):
    """Per test image: (elbo_decoder, elbo_optimal, kl, clamped_fraction), all by loops."""
    out = []
    for t in range(len(x)):
        kl = ref_kl(mean[t], logvar[t])
        ll_dec, ll_opt, clamped = [], [], 0
        for s in range(noise.shape[1]):
            z = np.array(
                [
                    mean[t, k] + math.exp(0.5 * logvar[t, k]) * noise[t, s, k]
                    for k in range(mean.shape[1])
                ]
            )
            logits = ref_decoder_logits(model, z[None])[0]
            p = np.array([1 / (1 + math.exp(-v)) for v in logits])
            ll_dec.append(ref_log_bernoulli(x[t], p))
            mu = ref_optimal_mean(z, train_mean, train_logvar, train_x)
            clamped += int(sum(m < eps or m > 1 - eps for m in mu))
            ll_opt.append(ref_log_bernoulli(x[t], [min(max(m, eps), 1 - eps) for m in mu]))
        out.append(
            (
                np.mean(ll_dec) - kl,
                np.mean(ll_opt) - kl,
                kl,
                clamped / (noise.shape[1] * x.shape[1]),
            )
        )
    return np.array(out)


def tiny_model(seed=0, hidden=(3,), z_dim=2, x_dim=5):
    torch.manual_seed(seed)
    return VAE(list(hidden), z_dim, x_dim).eval()


# --------------------------------------------------------------------------- hand-made model


def test_hand_made_model_matches_reference():
    # 5 pixels, dim(z) = 2, decoder 2-3-5 with moderate logits so that p stays well inside
    # (0, 1) and the sigmoid of the reference is accurate; training images with a pixel that
    # is 0 in all of them (pixel 0) and one that is 1 in all (pixel 4): the clamp is active
    # there for every sample.
    model = tiny_model()
    rng = np.random.default_rng(0)
    train_x = rng.random((7, 5))
    train_x[:, 0], train_x[:, 4] = 0.0, 1.0
    train_mean, train_logvar = rng.normal(size=(7, 2)), rng.uniform(-1.5, 0.5, (7, 2))
    x = rng.random((4, 5))
    x[0] = [0.0, 0.2, 1.0, 0.5, 1.0]
    mean, logvar = rng.normal(size=(4, 2)), rng.uniform(-2, 0, (4, 2))
    noise = rng.standard_normal((4, 3, 2))
    for eps in (1e-6, 1e-3):
        got = E.elbo_terms(
            model,
            x,
            mean,
            logvar,
            noise,
            train_mean,
            train_logvar,
            train_x,
            clamp_eps=eps,
            chunk_mb=0.001,
        )
        ref = ref_elbo(model, x, mean, logvar, noise, train_mean, train_logvar, train_x, eps)
        for k, name in enumerate(("elbo_decoder", "elbo_optimal", "kl", "clamped_fraction")):
            np.testing.assert_allclose(got[name], ref[:, k], rtol=1e-10, atol=1e-12, err_msg=name)
        # pixels 0 and 4 of every sample are clamped, nothing else (means of 5 random pixels)
        np.testing.assert_array_equal(got["clamped_fraction"], 2 / 5)


def test_kl_and_decoder_log_lik_formulas():
    rng = np.random.default_rng(1)
    mean, logvar = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    np.testing.assert_allclose(
        E.kl_standard_normal(mean, logvar), [ref_kl(m, v) for m, v in zip(mean, logvar)], rtol=1e-13
    )
    assert E.kl_standard_normal(np.zeros((1, 3)), np.zeros((1, 3)))[0] == 0.0
    model = tiny_model(1, hidden=(6, 4), z_dim=4, x_dim=9)
    z = rng.normal(size=(3, 2, 4))
    x = rng.random((3, 9))
    got = E.decoder_log_lik(model, z, x, batch_size=2)  # batches of one image
    for t in range(3):
        for s in range(2):
            logits = ref_decoder_logits(model, z[t, s][None])[0]
            p = 1 / (1 + np.exp(-logits))
            assert got[t, s] == pytest.approx(ref_log_bernoulli(x[t], p), rel=1e-12)


def test_large_logits_stay_finite():
    # sigmoid(+-60) rounds to 1 / 0 in float64, the logits form does not: log p = x l -
    # softplus(l) = -60 for a pixel x = 0 at l = 60 (and x = 1 at l = -60)
    model = tiny_model(2, hidden=(2,), z_dim=1, x_dim=2)
    with torch.no_grad():
        for layer in model.decoder:
            if isinstance(layer, torch.nn.Linear):
                layer.weight.zero_()
                layer.bias.zero_()
        model.decoder[-1].bias.copy_(torch.tensor([60.0, -60.0]))
    got = E.decoder_log_lik(model, np.zeros((1, 1, 1)), np.array([[0.0, 1.0]]))
    assert got[0, 0] == pytest.approx(-120.0, rel=1e-12)


# --------------------------------------------------------------------------- exact limits


def exact_log_lik(x, eps):
    """log p(x | mu = x) with means clamped to [eps, 1 - eps] (0 log 0 = 0 before clamping)."""
    p = np.clip(x, eps, 1 - eps)
    return ref_log_bernoulli(x, p)


def test_one_training_image_gives_its_own_means():
    # training set = {x0}: w = 1 for every z, mu(z) = x0, so the optimal decoder's
    # log-likelihood of x0 is the exact value sum x log x + (1 - x) log(1 - x) (pixels at 0 or 1
    # cost log(1 - eps) each, through the clamp), whatever the samples
    rng = np.random.default_rng(3)
    x0 = rng.random(12)
    x0[:3] = 0.0
    x0[3:5] = 1.0
    model = tiny_model(3, x_dim=12)
    mean, logvar = rng.normal(size=(1, 2)), rng.normal(size=(1, 2))
    noise = rng.standard_normal((1, 5, 2))
    for eps in (1e-6, 1e-9):
        got = E.elbo_terms(
            model,
            x0[None],
            mean,
            logvar,
            noise,
            rng.normal(size=(1, 2)),
            rng.normal(size=(1, 2)),
            x0[None],
            clamp_eps=eps,
        )
        ll = got["elbo_optimal"][0] + got["kl"][0]
        assert ll == pytest.approx(exact_log_lik(x0, eps), rel=1e-12)
        exact = sum(v * math.log(v) + (1 - v) * math.log(1 - v) for v in x0[5:])
        assert abs(ll - exact) <= 5 * eps * 1.001  # 5 pixels at 0 or 1
        assert got["clamped_fraction"][0] == pytest.approx(5 / 12)


def test_sharp_posteriors_approach_the_exact_log_likelihood():
    # x0 is one of 6 training images (the others differ from it); the test posterior of x0 is
    # its own training posterior N(m0, sigma^2 I); the others' means are >= 1 away. As sigma
    # shrinks, w(z_s) -> one-hot on x0 for z_s ~ q(z|x0), mu(z_s) -> x0 and the optimal
    # decoder's log-likelihood -> the exact value log p(x0 | x0); the sampled estimate
    # matches the loop reference at every sigma.
    rng = np.random.default_rng(4)
    train_x = rng.random((6, 10))
    x0 = train_x[2]
    train_mean = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 0.0], [0.0, 2.0]])
    model = tiny_model(4, x_dim=10)
    noise = rng.standard_normal((1, 4, 2))
    exact = exact_log_lik(x0, 1e-6)
    errors = []
    for sigma in (0.5, 0.3, 0.2, 0.1, 0.05):
        train_logvar = np.full((6, 2), 2 * math.log(sigma))
        mean, logvar = train_mean[2:3], train_logvar[2:3]
        got = E.elbo_terms(
            model, x0[None], mean, logvar, noise, train_mean, train_logvar, train_x, clamp_eps=1e-6
        )
        ref = ref_elbo(
            model, x0[None], mean, logvar, noise, train_mean, train_logvar, train_x, 1e-6
        )
        np.testing.assert_allclose(got["elbo_optimal"], ref[:, 1], rtol=1e-10)
        errors.append(exact - (got["elbo_optimal"][0] + got["kl"][0]))
    # log p(x|mu) <= log p(x|x) (Gibbs), up to rounding; the gap shrinks to rounding level
    assert all(e >= -1e-12 for e in errors)
    assert errors[0] > 0.1 and errors[1] > 1e-4
    assert all(b <= a + 1e-12 for a, b in zip(errors, errors[1:]))
    assert abs(errors[-1]) < 1e-12


# --------------------------------------------------------------------------- samples


def test_noise_is_seeded_per_model():
    a = E.draw_noise(0, "h64.no9.s0", 5, 3, 4)
    assert a.shape == (5, 3, 4) and a.dtype == np.float64
    np.testing.assert_array_equal(a, E.draw_noise(0, "h64.no9.s0", 5, 3, 4))
    assert not np.array_equal(a, E.draw_noise(1, "h64.no9.s0", 5, 3, 4))
    assert not np.array_equal(a, E.draw_noise(0, "h64.full.s0", 5, 3, 4))
    # a test image's samples do not depend on how many follow it
    np.testing.assert_array_equal(
        E.draw_noise(0, "m", 7, 3, 4)[:5].reshape(-1), E.draw_noise(0, "m", 5, 3, 4).reshape(-1)
    )


def test_chunking_does_not_change_the_optimal_elbo():
    rng = np.random.default_rng(5)
    train_x = rng.random((50, 20))
    train_mean, train_logvar = rng.normal(size=(50, 2)), rng.uniform(-3, -1, (50, 2))
    x, mean, logvar = rng.random((9, 20)), rng.normal(size=(9, 2)), rng.uniform(-3, -1, (9, 2))
    z = E.latent_samples(mean, logvar, rng.standard_normal((9, 4, 2)))
    whole, c_whole = E.optimal_log_lik(
        z, x, train_mean, train_logvar, train_x, clamp_eps=1e-6, chunk_mb=64
    )
    for per_call in (1, 4, 7):
        part, c_part = E.optimal_log_lik(
            z,
            x,
            train_mean,
            train_logvar,
            train_x,
            clamp_eps=1e-6,
            chunk_mb=0.002,
            points_per_call=per_call,
        )
        np.testing.assert_allclose(part, whole, rtol=1e-11)
        np.testing.assert_array_equal(c_part, c_whole)
    with pytest.raises(ValueError, match="clamp_eps"):
        E.optimal_log_lik(z, x, train_mean, train_logvar, train_x, clamp_eps=0.0)


# --------------------------------------------------------------------------- per-model file


def test_evaluate_elbo_writes_the_documented_format(tmp_path):
    import pyarrow.parquet as pq

    from test_theorem1_table import _tiny_model_files
    from vae_novelty.data import to_float
    from vae_novelty.model import load_model

    rng = np.random.default_rng(6)
    spec, mnist, train_idx, test_idx, (tm, tv, em, ev) = _tiny_model_files(
        tmp_path, rng, n_train=12, n_test=3, hidden=(8,), copy_of=2
    )
    table = E.evaluate_elbo(
        tmp_path / "post.parquet",
        tmp_path / "m.pt",
        tmp_path / "mnist.npz",
        spec,
        samples=2,
        clamp_eps=1e-6,
        seed=7,
        chunk_mb=0.05,
    )
    E.write_table(table, tmp_path / "elbo.parquet")
    back, meta = E.read_elbo(tmp_path / "elbo.parquet", expect_model_id=spec.model_id)
    assert back.schema.equals(E.table_schema(), check_metadata=False)
    assert back.equals(pq.read_table(tmp_path / "elbo.parquet"))
    assert (meta["samples"], meta["eps"], meta["seed"], meta["n_train"], meta["n_test"]) == (
        2,
        1e-6,
        7,
        12,
        3,
    )
    assert meta["schema"] == E.TABLE_FORMAT and "code_version" in meta
    df = back.to_pandas()
    assert df.model_id.tolist() == [spec.model_id] * 3
    np.testing.assert_array_equal(df.mnist_index, test_idx)
    np.testing.assert_array_equal(df.label, mnist.test_labels[test_idx])
    f32 = lambda a: a.astype(np.float32).astype(np.float64)  # noqa: E731 - as stored
    model, _ = load_model(tmp_path / "m.pt")
    noise = E.draw_noise(7, spec.model_id, 3, 2, spec.z_dim)
    ref = ref_elbo(
        model,
        to_float(mnist.test_images[test_idx]).astype(np.float64),
        f32(em),
        f32(ev),
        noise,
        f32(tm),
        f32(tv),
        to_float(mnist.train_images[train_idx]),
        1e-6,
    )
    for k, name in enumerate(("elbo_decoder", "elbo_optimal", "kl", "clamped_fraction")):
        np.testing.assert_allclose(df[name], ref[:, k], rtol=1e-9, err_msg=name)
    with pytest.raises(ValueError, match="expected 'other"):
        E.read_elbo(tmp_path / "elbo.parquet", expect_model_id="other.no9.s0")
    assert json.loads(back.schema.metadata[b"vae_novelty"])["model_id"] == spec.model_id


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_equals_cpu():
    rng = np.random.default_rng(8)
    model = VAE([32], 8).eval()
    train_x = rng.random((3000, 784)).astype(np.float32)
    train_mean, train_logvar = rng.normal(size=(3000, 8)), rng.uniform(-4, -1, (3000, 8))
    x, mean, logvar = rng.random((40, 784)), rng.normal(size=(40, 8)), rng.uniform(-4, -1, (40, 8))
    noise = rng.standard_normal((40, 4, 8))
    cpu = E.elbo_terms(
        model,
        x,
        mean,
        logvar,
        noise,
        train_mean,
        train_logvar,
        train_x,
        clamp_eps=1e-6,
        chunk_mb=8,
        device="cpu",
    )
    gpu = E.elbo_terms(
        model,
        x,
        mean,
        logvar,
        noise,
        train_mean,
        train_logvar,
        train_x,
        clamp_eps=1e-6,
        chunk_mb=8,
        device="cuda",
    )
    for name in cpu:
        np.testing.assert_allclose(gpu[name], cpu[name], rtol=1e-9, atol=1e-9, err_msg=name)


# found by mutation testing (bench/mutation.sh elbo; docs/benchmarks/mutation.md)


def test_bernoulli_log_lik_and_kl_over_the_last_axis_against_loops():
    rng = np.random.default_rng(31)
    x, p = rng.random((2, 3, 5)), rng.uniform(0.05, 0.95, (2, 3, 5))
    mean, logvar = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 3, 4))
    got_ll, got_kl = E.bernoulli_log_lik(x, p), E.kl_standard_normal(mean, logvar)
    assert got_ll.shape == got_kl.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            ll = sum(
                x[i, j, k] * math.log(p[i, j, k]) + (1 - x[i, j, k]) * math.log(1 - p[i, j, k])
                for k in range(5)
            )
            assert got_ll[i, j] == pytest.approx(ll, rel=1e-13)
            assert got_kl[i, j] == pytest.approx(ref_kl(mean[i, j], logvar[i, j]), rel=1e-13)
    # float32 inputs are computed in float64 (float32 logarithms would be off by ~1e-7)
    x32, p32 = x.astype(np.float32), p.astype(np.float32)
    got = E.bernoulli_log_lik(x32, p32)
    want = E.bernoulli_log_lik(x32.astype(np.float64), p32.astype(np.float64))
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-14)


def test_log_liks_of_float32_images_are_float64():
    rng = np.random.default_rng(32)
    model = tiny_model(2, hidden=(5,), z_dim=2, x_dim=6)
    z = rng.normal(size=(2, 1, 2))
    x = rng.random((2, 6)).astype(np.float32)
    got = E.decoder_log_lik(model, z, x)
    assert got.dtype == np.float64
    for t in range(2):
        p = 1 / (1 + np.exp(-ref_decoder_logits(model, z[t, 0][None])[0]))
        assert got[t, 0] == pytest.approx(ref_log_bernoulli(x[t].astype(np.float64), p), rel=1e-12)


def test_optimal_log_lik_clamp_bounds_and_counts_at_the_boundary():
    # one training image: mu(z) = x0 exactly; pixels exactly at eps and 1 - eps are not clamped
    x0 = np.array([[0.25, 0.75, 0.5, 0.125, 0.875]])
    args = (np.zeros((1, 2, 1)), x0, np.zeros((1, 1)), np.zeros((1, 1)), x0)
    log_lik, clamped = E.optimal_log_lik(*args, clamp_eps=0.25)
    assert clamped.tolist() == [[2, 2]]
    p = np.clip(x0[0], 0.25, 0.75)
    want = float(np.sum(x0[0] * np.log(p) + (1 - x0[0]) * np.log(1 - p)))
    np.testing.assert_allclose(log_lik, [[want, want]], rtol=1e-13)
    _, clamped = E.optimal_log_lik(*args, clamp_eps=0.125)
    assert clamped.tolist() == [[0, 0]]
    _, clamped = E.optimal_log_lik(
        args[0], x0.astype(np.float32), *args[2:4], x0.astype(np.float32), clamp_eps=0.125
    )
    assert clamped.tolist() == [[0, 0]]
    for bad in (0.5, 1.0, 0.0):
        with pytest.raises(ValueError, match=rf"^clamp_eps must be in \(0, 0.5\), got {bad}$"):
            E.optimal_log_lik(*args, clamp_eps=bad)


def test_evaluate_elbo_records_its_inputs_and_read_elbo_checks_columns(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from test_theorem1_table import _tiny_model_files
    from vae_novelty.data import load_mnist
    from vae_novelty.model import load_model, save_model

    rng = np.random.default_rng(33)
    spec, *_ = _tiny_model_files(tmp_path, rng, n_train=6, n_test=2, hidden=(8,), copy_of=1)
    # code versions recorded by the model and posterior files are carried into the ELBO file
    model, model_meta = load_model(tmp_path / "m.pt")
    save_model(model, tmp_path / "m.pt", **model_meta, code_version="model-v1")
    post = pq.read_table(tmp_path / "post.parquet")
    post_meta = json.loads(post.schema.metadata[b"vae_novelty"])
    post_meta["code_version"] = "post-v1"
    pq.write_table(
        post.replace_schema_metadata(
            {**post.schema.metadata, b"vae_novelty": json.dumps(post_meta).encode()}
        ),
        tmp_path / "post.parquet",
    )
    table = E.evaluate_elbo(
        tmp_path / "post.parquet",
        tmp_path / "m.pt",
        tmp_path / "mnist.npz",
        spec,
        samples=1,
        clamp_eps=1e-6,
        seed=1,
    )
    meta = json.loads(table.schema.metadata[b"vae_novelty"])
    assert meta["data"] == load_mnist(tmp_path / "mnist.npz").fingerprint
    assert meta["chunk_mb"] == 1024.0 and meta["device"].startswith("cpu")
    assert (meta["model_code_version"], meta["posterior_code_version"]) == ("model-v1", "post-v1")
    E.write_table(
        table.drop_columns(["kl"]).replace_schema_metadata(table.schema.metadata),
        tmp_path / "short.parquet",
    )
    assert "kl" not in pq.read_table(tmp_path / "short.parquet").column_names
    with pytest.raises(ValueError, match="kl"):
        E.read_elbo(tmp_path / "short.parquet")
    assert isinstance(table, pa.Table)
