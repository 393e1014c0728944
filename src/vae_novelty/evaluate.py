"""Stage ``evaluate``: every model of one architecture, in one process, on one device.

Per model (one architecture, every training split and seed): export the posteriors of its
training split and evaluation images to Parquet, then compute the Theorem 1 table and images
and the test ELBO with the trained and the optimal decoder from them. One process per
architecture imports torch, reads MNIST and opens the device once; the training images of a
model are uploaded to the device once and shared by every pass over them. Each model still
gets its own files, so tables and figures stay per model.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from . import elbo as E
from . import tensors
from . import theorem1_table as t1t
from .config import ModelSpec
from .data import check_fingerprint
from .model import ModelFileError, load_model
from .posterior import posterior_arrays, posterior_table
from .posterior import write_table as write_posteriors
from .splits import rows_digest

log = logging.getLogger("vae_novelty")


@dataclass(frozen=True)
class EvalSettings:
    """Settings that change results (rule params) and those that do not (chunk_mb, device)."""

    top_k: int
    samples: int
    eps: float
    sample_seed: int
    chunk_mb: float = 1024.0


@dataclass(frozen=True)
class EvalJob:
    """One model and the files the stage writes for it."""

    spec: ModelSpec
    model: Path
    posteriors: Path
    theorem1_table: Path
    theorem1_images: Path
    elbo_table: Path


def evaluate_job(job: EvalJob, mnist, split, settings: EvalSettings, device) -> dict:
    """Write the posterior, Theorem 1 and ELBO files of one model; returns a few numbers."""
    spec = job.spec
    if split.name != spec.split:
        raise ValueError(
            f"split file holds {split.name!r}, model {spec.model_id} was trained on {spec.split!r}"
        )
    t0 = time.perf_counter()
    model, model_meta = load_model(
        job.model,
        expect_hidden=list(spec.hidden),
        expect_z_dim=spec.z_dim,
        expect_model_id=spec.model_id,
    )
    recorded = model_meta.get("train_rows")
    if recorded is not None and recorded != rows_digest(split.train_idx):
        raise ModelFileError(
            f"{job.model}: trained on other training rows than split "
            f"{split.name!r} holds now (the split file or the data changed "
            f"after training; rerun training)"
        )
    check_fingerprint(model_meta.get("data"), mnist.fingerprint, job.model, what="trained on")
    table = posterior_table(
        model, model_meta, mnist, split, hidden=list(spec.hidden), z_dim=spec.z_dim, device=device
    )
    write_posteriors(table, job.posteriors)
    # the same checks as any reader of the file, on the table in memory
    posteriors = posterior_arrays(table, job.posteriors, expect_z_dim=spec.z_dim)
    inputs = t1t.model_inputs(posteriors, mnist, model, model_meta, spec, job.posteriors)
    inputs.x_train = tensors.to_tensor(inputs.x_train, device)  # uploaded once per model
    t1_start = time.perf_counter()
    result = t1t.evaluate_inputs(
        inputs, spec, top_k=settings.top_k, chunk_mb=settings.chunk_mb, device=device
    )
    t1t.write_result(result, job.theorem1_table, job.theorem1_images)
    elbo_start = time.perf_counter()
    elbo_table = E.evaluate_elbo_inputs(
        inputs,
        spec,
        samples=settings.samples,
        clamp_eps=settings.eps,
        seed=settings.sample_seed,
        chunk_mb=settings.chunk_mb,
        device=device,
    )
    E.write_table(elbo_table, job.elbo_table)
    end = time.perf_counter()
    df = result.table.to_pandas()
    el = elbo_table.to_pandas()
    stats = {
        "model_id": spec.model_id,
        "n_train": int(result.meta["n_train"]),
        "n_test": len(df),
        "export_s": t1_start - t0,
        "theorem1_s": elbo_start - t1_start,
        "elbo_s": end - elbo_start,
        "median_perplexity": float(df.perplexity.median()),
        "frac_closer_to_mu": t1t.frac_closer_to_mu(df.bce_mu_xhat, df.bce_x_xhat),
        "elbo_decoder": float(el.elbo_decoder.mean()),
        "elbo_optimal": float(el.elbo_optimal.mean()),
    }
    log.info(
        "%s: %d training, %d test images; export %.1fs, Theorem 1 %.1fs, ELBO %.1fs; "
        "median perplexity %.3f, closer to mu %.3f, mean ELBO decoder %.2f optimal %.2f",
        spec.model_id,
        stats["n_train"],
        stats["n_test"],
        stats["export_s"],
        stats["theorem1_s"],
        stats["elbo_s"],
        stats["median_perplexity"],
        stats["frac_closer_to_mu"],
        stats["elbo_decoder"],
        stats["elbo_optimal"],
    )
    del inputs
    return stats


def evaluate_jobs(
    jobs: list[EvalJob], mnist, splits: dict, settings: EvalSettings, device
) -> list[dict]:
    """:func:`evaluate_job` for every job (``splits``: split name -> Split)."""
    out = []
    for i, job in enumerate(jobs, 1):
        if job.spec.split not in splits:
            raise ValueError(f"no split file for {job.spec.split!r} (model {job.spec.model_id})")
        log.info("model %d/%d: %s", i, len(jobs), job.spec.model_id)
        out.append(evaluate_job(job, mnist, splits[job.spec.split], settings, device))
    return out
