"""Test ELBO of a trained VAE with its own decoder and with the optimal (Theorem 1) decoder.

For an evaluation test image x (pixels x/255 in [0, 1]) with posterior
q(z|x) = N(m, diag(exp(v))) (as exported, float32, used in float64), and S samples
z_s = m + exp(v / 2) * e_s, e_s ~ N(0, I), shared by both decoders:

    ELBO(x) = (1/S) sum_s log p(x | z_s) - KL(q(z|x) || N(0, I)),
    KL      = 1/2 sum_k (m_k^2 + exp(v_k) - 1 - v_k)                (closed form),
    log p(x | z) = sum_j x_j log p_j + (1 - x_j) log(1 - p_j)        (Bernoulli means p).

(a) ``elbo_decoder``: p = sigmoid(l(z)) of the trained decoder, from its float64 logits:
    log p(x | z) = sum_j x_j l_j - softplus(l_j) (= -BCE(x, x_hat), the training loss's term).
(b) ``elbo_optimal``: the Theorem 1 decoder, p = mu(z) = sum_i w_i(z) x_i over the model's
    training images with w_i(z) = softmax_i log q(z | x_i) over the training posteriors
    (:func:`vae_novelty.theorem1.weight_stats`, exact, float64). mu(z) is exactly 0 or 1 at a
    pixel where all training images with non-negligible weight agree, and a test image that
    differs there would have log-likelihood -inf: the means are clamped to [eps, 1 - eps]
    (``elbo.eps``, default 1e-6: a disagreeing pixel then costs log(1e-6) = -13.8 nats).
    ``clamped_fraction`` is the fraction of the S x P (sample, pixel) means the clamp changed
    (mu < eps or mu > 1 - eps).

Both use the same KL term, so ``elbo_optimal - elbo_decoder`` is the difference of the mean
log-likelihoods. Pixels are continuous, so log p(x | z) is the (unnormalised) Bernoulli
cross-entropy the models are trained with, not a normalised density.

Samples: ``e`` is one (T, S, D) float64 array of standard normals in test-row order, from numpy's
PCG64 seeded with ``SeedSequence([elbo.seed, crc32(model_id)])``: reproducible, different per
model, and independent of chunking and device.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch

from . import tensors
from . import theorem1 as t1
from . import theorem1_table as t1t

# write_table: the ELBO table's writer (re-exported)
from .artefacts import read_model_table, with_meta, write_table  # noqa: F401
from .decoder import float64_model

TABLE_FORMAT = "vae-novelty-elbo/2"
# Points (test images x samples) per call of the Theorem 1 engine: bounds the (points x 784)
# float64 means held at once (~25 MB).
POINTS_PER_CALL = 4096


def noise_seed(seed: int, model_id: str) -> np.random.SeedSequence:
    """The seed sequence of one model's samples: ``elbo.seed`` and a hash of its id."""
    return np.random.SeedSequence([int(seed), zlib.crc32(model_id.encode())])


def draw_noise(seed: int, model_id: str, n: int, samples: int, dim: int) -> np.ndarray:
    """Standard normals e (n, samples, dim), float64, for z_s = m + exp(v / 2) e_s."""
    rng = np.random.Generator(np.random.PCG64(noise_seed(seed, model_id)))
    return rng.standard_normal((int(n), int(samples), int(dim)))


def kl_standard_normal(mean, logvar) -> np.ndarray:
    """KL(N(mean, diag exp(logvar)) || N(0, I)) per row, closed form, float64."""
    m, v = np.asarray(mean, np.float64), np.asarray(logvar, np.float64)
    return 0.5 * (m * m + np.exp(v) - 1.0 - v).sum(-1)


def latent_samples(mean, logvar, noise) -> np.ndarray:
    """z (T, S, D) = mean + exp(logvar / 2) * noise, float64."""
    m, v = np.asarray(mean, np.float64), np.asarray(logvar, np.float64)
    return m[:, None, :] + np.exp(0.5 * v)[:, None, :] * np.asarray(noise, np.float64)


def bernoulli_log_lik(x, p) -> np.ndarray:
    """sum_j x_j log p_j + (1 - x_j) log(1 - p_j) over the last axis (p in (0, 1))."""
    x, p = np.asarray(x, np.float64), np.asarray(p, np.float64)
    return (x * np.log(p) + (1.0 - x) * np.log1p(-p)).sum(-1)


def decoder_log_lik(model, z, x, device="cpu", batch_size: int = POINTS_PER_CALL) -> np.ndarray:
    """log p(x_t | z_ts) (T, S) under the trained decoder, from float64 logits on the device.

    ``z`` (T, S, D), ``x`` (T, P). log p = sum_j x_j l_j - softplus(l_j).
    """
    dev = tensors.resolve_device(device)
    z = np.asarray(z, np.float64)
    T, S, D = z.shape
    out = np.empty((T, S))
    per = max(1, batch_size // max(S, 1))
    with torch.inference_mode(), tensors.no_tf32():
        m64 = float64_model(model, dev)
        xd = tensors.to_tensor(x, dev, torch.float64)
        for i0 in range(0, T, per):
            zb = tensors.to_tensor(z[i0 : i0 + per], dev, torch.float64)
            logits = m64.decode_logits(zb.reshape(-1, D)).reshape(len(zb), S, -1)
            xb = xd[i0 : i0 + per, None, :]
            ll = (xb * logits - torch.nn.functional.softplus(logits)).sum(-1)
            out[i0 : i0 + per] = ll.cpu().numpy()
    return out


def optimal_log_lik(
    z,
    x,
    train_mean,
    train_logvar,
    train_x,
    *,
    clamp_eps: float,
    chunk_mb: float = 1024.0,
    device="cpu",
    points_per_call: int = POINTS_PER_CALL,
) -> tuple[np.ndarray, np.ndarray]:
    """log p(x_t | z_ts) (T, S) under the Theorem 1 decoder, and the clamp counts (T, S).

    The Bernoulli means mu(z) = sum_i w_i(z) x_i come from :func:`theorem1.weight_stats`
    (retried with smaller chunks on GPU out-of-memory), then are clamped to
    [clamp_eps, 1 - clamp_eps]; the counts are the pixels per (t, s) the clamp changed.
    The training images are uploaded to the device once (``train_x`` may already be a tensor
    there), mu stays on the device, and only the (T, S) results come back to the host.
    """
    if not 0.0 < clamp_eps < 0.5:
        raise ValueError(f"clamp_eps must be in (0, 0.5), got {clamp_eps}")
    dev = tensors.resolve_device(device)
    z = np.asarray(z, np.float64)
    T, S, D = z.shape
    log_lik = np.empty((T, S))
    clamped = np.zeros((T, S), np.int64)
    per = max(1, int(points_per_call) // max(S, 1))
    budget = float(chunk_mb)
    with torch.inference_mode():
        xd = tensors.to_tensor(x, dev, torch.float64)
        train_xd = tensors.to_tensor(train_x, dev)
        for i0 in range(0, T, per):
            zb = z[i0 : i0 + per]
            stats, budget = t1.weight_stats_shrinking(
                zb.reshape(-1, D),
                train_mean,
                train_logvar,
                train_xd,
                top_k=1,
                chunk_mb=budget,
                device=dev,
                mu_on_device=True,
            )
            mu = stats.mu.reshape(len(zb), S, -1)
            outside = (mu < clamp_eps) | (mu > 1.0 - clamp_eps)
            clamped[i0 : i0 + per] = outside.sum(-1).cpu().numpy()
            mu = mu.clamp_(clamp_eps, 1.0 - clamp_eps)
            xb = xd[i0 : i0 + per, None, :]
            ll = (xb * torch.log(mu) + (1.0 - xb) * torch.log1p(-mu)).sum(-1)
            log_lik[i0 : i0 + per] = ll.cpu().numpy()
            del stats, mu, outside
    return log_lik, clamped


def elbo_terms(
    model,
    x,
    mean,
    logvar,
    noise,
    train_mean,
    train_logvar,
    train_x,
    *,
    clamp_eps: float,
    chunk_mb: float = 1024.0,
    device="cpu",
) -> dict:
    """Per test image: ``elbo_decoder``, ``elbo_optimal``, ``kl``, ``clamped_fraction`` (T,).

    ``x`` (T, P) test images, ``mean``/``logvar`` (T, D) their posteriors, ``noise``
    (T, S, D) standard normals (:func:`draw_noise`); ``train_*`` the model's training
    posteriors (N, D) and images (N, P; or a tensor already on the device).
    """
    dev = tensors.resolve_device(device)
    x = np.asarray(x, np.float64)
    z = latent_samples(mean, logvar, noise)
    kl = kl_standard_normal(mean, logvar)
    ll_dec = decoder_log_lik(model, z, x, dev)
    ll_opt, clamped = optimal_log_lik(
        z, x, train_mean, train_logvar, train_x, clamp_eps=clamp_eps, chunk_mb=chunk_mb, device=dev
    )
    S, P = z.shape[1], x.shape[1]
    return {
        "elbo_decoder": ll_dec.mean(1) - kl,
        "elbo_optimal": ll_opt.mean(1) - kl,
        "kl": kl,
        "clamped_fraction": clamped.sum(1) / float(max(S * P, 1)),
    }


# --------------------------------------------------------------------------- per-model files


def table_schema():
    """Arrow schema of ``results/elbo/{arch}/{split}_s{seed}.parquet``."""
    import pyarrow as pa

    return pa.schema(
        [
            ("model_id", pa.string()),
            ("mnist_index", pa.int64()),
            ("label", pa.int64()),
            ("elbo_decoder", pa.float64()),
            ("elbo_optimal", pa.float64()),
            ("kl", pa.float64()),
            ("clamped_fraction", pa.float64()),
        ]
    )


def build_table(model_id: str, mnist_index, label, terms: dict, meta: dict):
    import pyarrow as pa

    T = len(mnist_index)
    cols = {
        "model_id": pa.array([model_id] * T, pa.string()),
        "mnist_index": pa.array(np.asarray(mnist_index, np.int64)),
        "label": pa.array(np.asarray(label, np.int64)),
    }
    for name in ("elbo_decoder", "elbo_optimal", "kl", "clamped_fraction"):
        cols[name] = pa.array(np.asarray(terms[name], np.float64))
    table = pa.table(cols, schema=table_schema())
    return with_meta(table, meta)


def evaluate_elbo(
    posterior_path,
    model_path,
    mnist_path,
    spec,
    *,
    samples: int,
    clamp_eps: float,
    seed: int,
    chunk_mb: float = 1024.0,
    device="cpu",
):
    """One model's ELBO table (schema :func:`table_schema`, metadata ``vae_novelty``)."""
    return evaluate_elbo_inputs(
        t1t.load_model_inputs(posterior_path, model_path, mnist_path, spec),
        spec,
        samples=samples,
        clamp_eps=clamp_eps,
        seed=seed,
        chunk_mb=chunk_mb,
        device=device,
    )


def evaluate_elbo_inputs(
    inputs: "t1t.ModelInputs",
    spec,
    *,
    samples: int,
    clamp_eps: float,
    seed: int,
    chunk_mb: float = 1024.0,
    device="cpu",
):
    """:func:`evaluate_elbo` on inputs already in memory."""
    from .io import describe_device, provenance

    dev = tensors.resolve_device(device)
    train, test, x = inputs.train, inputs.test, inputs.x
    noise = draw_noise(seed, spec.model_id, len(x), samples, spec.z_dim)
    with torch.inference_mode():
        terms = elbo_terms(
            inputs.model,
            x,
            test["z_mean"],
            test["z_logvar"],
            noise,
            train["z_mean"],
            train["z_logvar"],
            inputs.x_train,
            clamp_eps=clamp_eps,
            chunk_mb=chunk_mb,
            device=dev,
        )
    meta = {
        **t1t.model_info(spec),
        "schema": TABLE_FORMAT,
        "data": inputs.data,
        "samples": int(samples),
        "eps": float(clamp_eps),
        "seed": int(seed),
        "chunk_mb": float(chunk_mb),
        "device": describe_device(dev),
        "n_train": int(len(train["mnist_index"])),
        "n_test": int(len(x)),
        "posterior_code_version": inputs.posterior_meta.get("code_version"),
        "model_code_version": inputs.model_meta.get("code_version"),
        **provenance(),
    }
    return build_table(spec.model_id, test["mnist_index"], test["label"], terms, meta)


def read_elbo(path, expect_model_id: str | None = None, expect_data: str | None = None):
    """A per-model ELBO table and its metadata (:func:`~vae_novelty.artefacts.read_model_table`,
    with exactly the columns of :func:`table_schema`)."""
    return read_model_table(path, expect_model_id, expect_data, expect_columns=table_schema().names)
