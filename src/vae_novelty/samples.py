"""Stage ``samples``: what the VAEs generate, measured per sample.

Per model (one process per architecture, as ``evaluate``), ``samples.n`` latent codes
z ~ N(0, I) from numpy's PCG64 seeded with ``SeedSequence([samples.seed, crc32(model_id)])``
(drawn in float64, rounded to float32, and used as those float32 values everywhere), and for
each:

- the decoder mean x_hat(z) = sigmoid(decoder logits), the decoder run in float64;
- Theorem 1 at z over all of the model's training posteriors (the engine of
  :mod:`vae_novelty.theorem1`: weights w_i(z) = log q(z|x_i) normalised): ``perplexity``,
  ``w_max``, the top-k training rows and weights (``top_rows``, ``top_weights``), the weighted
  average mu(z) and ``bce_mu_xhat`` = BCE(mu(z), x_hat(z)) (summed over pixels, from the
  logits);
- the two nearest training images of x_hat in pixel L2 (pixels in [0, 1]; exact, ties to the
  lower MNIST row: :mod:`vae_novelty.pixel_nn`): ``nn1_row``, ``nn1_dist``, ``nn2_row``,
  ``nn2_dist`` (rows of the MNIST training file), and the nearest image of the model's
  evaluation test set (``test_nn_row``, MNIST t10k row, ``test_nn_dist``);
- the digit the classifier (:mod:`vae_novelty.classifier`) assigns to x_hat and its
  probability (``digit``, ``digit_prob``).

Per model also C_T (:mod:`vae_novelty.ct`), recorded in the table's metadata with its cell
construction. Files: ``results/samples/{arch}/{split}_s{seed}.parquet`` (one row per sample)
and ``.npz`` beside it (``x_hat`` and ``mu`` of the first ``samples.figure_images`` samples,
float32 (m, 784), with ``z``, ``model_id`` and ``data``), in the format of
:mod:`vae_novelty.samples_table`.
"""

from __future__ import annotations

import logging
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import ct as C
from . import decoder
from . import pixel_nn
from . import theorem1 as t1
from . import theorem1_table as t1t
from .classifier import classify
from .config import ModelSpec
from .model import bce_per_image, load_model
from .io import describe_device, provenance
from .posterior import read_posteriors
from .samples_table import TABLE_FORMAT, build_table, write_result
from .splits import rows_digest
from .tensors import to_tensor

log = logging.getLogger("vae_novelty")


@dataclass(frozen=True)
class SampleSettings:
    """Settings that change results (rule params) and those that do not (chunk_mb)."""

    n: int
    seed: int
    top_k: int
    figure_images: int
    ct_cells: int
    ct_pca_dims: int
    ct_min_per_cell: int
    max_test_per_digit: int | None = None  # the held-out images of C_T, as the splits
    chunk_mb: float = 1024.0

    def recorded(self) -> dict:
        return {
            "n": self.n,
            "seed": self.seed,
            "top_k": self.top_k,
            "figure_images": self.figure_images,
            "ct_cells": self.ct_cells,
            "ct_pca_dims": self.ct_pca_dims,
            "ct_min_per_cell": self.ct_min_per_cell,
            "max_test_per_digit": self.max_test_per_digit,
        }


@dataclass(frozen=True)
class SampleJob:
    """One model, its inputs and the two files the stage writes for it."""

    spec: ModelSpec
    model: Path
    posteriors: Path
    table: Path
    images: Path


@dataclass
class SplitCache:
    """What depends on the training split only (shared by the seeds of a job): C_T's cells and
    the held-out images' distances to the training set."""

    entries: dict = field(default_factory=dict)


def latent_codes(seed: int, model_id: str, n: int, dim: int) -> np.ndarray:
    """z (n, dim) ~ N(0, I): float64 draws rounded to float32 (then used as float64)."""
    rng = np.random.Generator(
        np.random.PCG64(np.random.SeedSequence([int(seed), zlib.crc32(model_id.encode())]))
    )
    return rng.standard_normal((int(n), int(dim))).astype(np.float32)


def theorem1_at(
    z, train_mean, train_logvar, x_train, logits, *, top_k: int, chunk_mb: float, device
) -> tuple[t1.WeightStats, np.ndarray]:
    """Theorem 1 at latent points z: the engine's weight statistics (with mu) and
    BCE(mu(z), x_hat(z)) per point from the decoder ``logits`` (float64)."""
    stats, _ = t1.weight_stats_shrinking(
        np.asarray(z, np.float64),
        train_mean,
        train_logvar,
        x_train,
        top_k=top_k,
        chunk_mb=chunk_mb,
        device=device,
    )
    with torch.inference_mode():
        bce = bce_per_image(
            torch.as_tensor(logits, dtype=torch.float64),
            torch.as_tensor(stats.mu, dtype=torch.float64),
        ).numpy()
    return stats, bce


def split_parts(
    cache: SplitCache, split, mnist, train_np, x_train, settings: SampleSettings, device
) -> dict:
    """C_T's cells and held-out distances of a training split (computed once per job);
    ``train_np`` its training images (numpy), ``x_train`` the same on the device."""
    if split.name in cache.entries:
        return cache.entries[split.name]
    from .data import to_float

    t0 = time.perf_counter()
    cells = C.fit_cells(
        train_np,
        cells=settings.ct_cells,
        pca_dims=settings.ct_pca_dims,
        seed=settings.seed,
        split=split.name,
    )
    digits = np.unique(mnist.train_labels[split.train_idx])
    rows = C.heldout_rows(mnist.test_labels, digits, settings.max_test_per_digit)
    held_x = to_float(mnist.test_images[rows])
    _, held_dist = pixel_nn.nearest_images(
        held_x, x_train, k=1, chunk_mb=settings.chunk_mb, device=device
    )
    entry = {
        "cells": cells,
        "heldout_rows": rows,
        "heldout_cell": cells.assign(held_x),
        "heldout_dist": held_dist[:, 0],
        "digits": [int(d) for d in digits],
    }
    log.info(
        "split %s: C_T cells (%d, PCA %d, %d k-means iterations) and %d held-out "
        "images' distances in %.1fs",
        split.name,
        len(cells.centres),
        len(cells.components),
        cells.iterations,
        len(rows),
        time.perf_counter() - t0,
    )
    cache.entries[split.name] = entry
    return entry


def sample_job(
    job: SampleJob,
    mnist,
    split,
    classifier,
    classifier_meta: dict,
    settings: SampleSettings,
    device,
    cache: SplitCache | None = None,
) -> dict:
    """Write one model's samples table and images; returns a few numbers for the log."""
    spec = job.spec
    if split.name != spec.split:
        raise ValueError(
            f"split file holds {split.name!r}, model {spec.model_id} was trained on {spec.split!r}"
        )
    cache = cache if cache is not None else SplitCache()
    t0 = time.perf_counter()
    model, model_meta = load_model(
        job.model,
        expect_hidden=list(spec.hidden),
        expect_z_dim=spec.z_dim,
        expect_model_id=spec.model_id,
    )
    posteriors = read_posteriors(job.posteriors, expect_z_dim=spec.z_dim)
    inputs = t1t.model_inputs(posteriors, mnist, model, model_meta, spec, job.posteriors)
    train_rows = inputs.train["mnist_index"].astype(np.int64)
    if rows_digest(train_rows) != rows_digest(split.train_idx):
        raise ValueError(
            f"{job.posteriors}: training rows differ from split {split.name!r} (rerun evaluate)"
        )
    if len(train_rows) < 2:
        raise ValueError(
            f"model {spec.model_id}: the samples stage needs at least two "
            f"training images (nn1 and nn2), the split has {len(train_rows)}"
        )
    test_rows = inputs.test["mnist_index"].astype(np.int64)
    x_train = to_tensor(inputs.x_train, device)  # uploaded once per model
    z = latent_codes(settings.seed, spec.model_id, settings.n, spec.z_dim)
    logits = decoder.decoder_logits(model, z, device)
    x_hat = np.exp(-np.logaddexp(0.0, -logits))  # sigmoid, float64
    t_dec = time.perf_counter()
    stats, bce_mu = theorem1_at(
        z,
        inputs.train["z_mean"],
        inputs.train["z_logvar"],
        x_train,
        logits,
        top_k=settings.top_k,
        chunk_mb=settings.chunk_mb,
        device=device,
    )
    t_t1 = time.perf_counter()
    nn_pos, nn_dist = pixel_nn.nearest_images(
        x_hat, x_train, k=2, chunk_mb=settings.chunk_mb, device=device
    )
    if len(test_rows):
        test_pos, test_dist = pixel_nn.nearest_images(
            x_hat, inputs.x, k=1, chunk_mb=settings.chunk_mb, device=device
        )
        test_nn_row, test_nn_dist = test_rows[test_pos[:, 0]], test_dist[:, 0]
    else:
        test_nn_row, test_nn_dist = np.full(len(z), -1), np.full(len(z), np.nan)
    t_nn = time.perf_counter()
    digit, digit_prob = classify(classifier, x_hat.astype(np.float32), device)
    parts = split_parts(cache, split, mnist, inputs.x_train, x_train, settings, device)
    cells = parts["cells"]
    result = C.c_t(
        nn_dist[:, 0],
        cells.assign(x_hat),
        parts["heldout_dist"],
        parts["heldout_cell"],
        len(cells.centres),
        settings.ct_min_per_cell,
    )
    t_ct = time.perf_counter()
    ct_meta = {
        "ct": result["ct"],
        "cells": result["cells"],
        **cells.describe(),
        "seed": settings.seed,
        "min_per_cell": settings.ct_min_per_cell,
        "embedding": "PCA of the model's training images (pixels x/255)",
        "distance": "pixel L2 to the nearest training image",
        "heldout": "MNIST test images of the training split's digits",
        "heldout_digits": parts["digits"],
        "n_heldout": int(len(parts["heldout_rows"])),
        "heldout_rows_digest": rows_digest(parts["heldout_rows"]),
    }
    meta = {
        **t1t.model_info(spec),
        "schema": TABLE_FORMAT,
        "data": inputs.data,
        "settings": settings.recorded(),
        "chunk_mb": float(settings.chunk_mb),
        "device": describe_device(device),
        "n_train": int(len(train_rows)),
        "n_test": int(len(test_rows)),
        "ct": ct_meta,
        "classifier": {
            k: classifier_meta.get(k)
            for k in ("test_accuracy", "settings", "code_version", "n_train")
        },
        "model_code_version": model_meta.get("code_version"),
        "posterior_code_version": inputs.posterior_meta.get("code_version"),
        **provenance(),
    }
    table = build_table(
        spec.model_id,
        z,
        stats,
        train_rows[stats.topk_pos],
        bce_mu,
        train_rows[nn_pos],
        nn_dist,
        test_nn_row,
        test_nn_dist,
        digit,
        digit_prob,
        meta,
    )
    write_result(table, job.table, job.images, z, x_hat, stats.mu, settings.figure_images, meta)
    ratio = nn_dist[:, 0] / np.where(nn_dist[:, 1] > 0, nn_dist[:, 1], np.inf)
    out = {
        "model_id": spec.model_id,
        "copy_frac": float((ratio < 1 / 3).mean()),
        "median_perplexity": float(np.median(stats.perplexity)),
        "ct": result["ct"],
        "seconds": time.perf_counter() - t0,
        # timings go to the log and the caller, never into the files (two runs of the same
        # configuration write identical files)
        "parts_s": {
            "decode": t_dec - t0,
            "theorem1": t_t1 - t_dec,
            "neighbours": t_nn - t_t1,
            "classify_ct": t_ct - t_nn,
        },
    }
    log.info(
        "%s: %d samples in %.1fs (decode %.1f, Theorem 1 %.1f, neighbours %.1f, "
        "classifier and C_T %.1f); copy fraction %.3f, median perplexity %.3f, C_T %.2f",
        spec.model_id,
        len(z),
        out["seconds"],
        t_dec - t0,
        t_t1 - t_dec,
        t_nn - t_t1,
        t_ct - t_nn,
        out["copy_frac"],
        out["median_perplexity"],
        out["ct"],
    )
    return out


def sample_jobs(
    jobs: list[SampleJob],
    mnist,
    splits: dict,
    classifier,
    classifier_meta: dict,
    settings: SampleSettings,
    device,
) -> list[dict]:
    """:func:`sample_job` for every job (``splits``: split name -> Split)."""
    cache, out = SplitCache(), []
    for i, job in enumerate(jobs, 1):
        if job.spec.split not in splits:
            raise ValueError(f"no split file for {job.spec.split!r} (model {job.spec.model_id})")
        log.info("model %d/%d: %s", i, len(jobs), job.spec.model_id)
        out.append(
            sample_job(
                job,
                mnist,
                splits[job.spec.split],
                classifier,
                classifier_meta,
                settings,
                device,
                cache,
            )
        )
    return out
