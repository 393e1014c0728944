"""Rule evaluate: posteriors, Theorem 1 and optimal-decoder ELBO of every model of one
architecture (src/vae_novelty/evaluate.py)."""

import _bootstrap  # noqa: F401
from pathlib import Path

from vae_novelty.config import ModelSpec
from vae_novelty.data import load_mnist
from vae_novelty.splits import load_checked_splits
from vae_novelty.evaluate import EvalJob, EvalSettings, evaluate_jobs
from vae_novelty.jobs import output_for, start_job

sm = snakemake  # noqa: F821
p, out = sm.params.settings, sm.output
log, device = start_job(
    sm.log[0], sm.threads, sm.resources.get("torch_device", "auto"), sm.rule, dict(sm.wildcards)
)
settings = EvalSettings(
    top_k=p["top_k"],
    samples=p["samples"],
    eps=p["eps"],
    sample_seed=p["sample_seed"],
    chunk_mb=float(sm.resources.chunk_mb),
)
jobs = []
for split, seed in p["models"]:
    spec = ModelSpec(sm.wildcards.arch, tuple(p["hidden"]), int(p["z_dim"]), split, int(seed))
    stem = f"{split}_s{seed}"
    jobs.append(
        EvalJob(
            spec,
            output_for(sm.input.models, f"{stem}.pt"),
            output_for(out.posteriors, f"{stem}.parquet"),
            output_for(out.theorem1_tables, f"{stem}.parquet"),
            output_for(out.theorem1_images, f"{stem}.npz"),
            output_for(out.elbo, f"{stem}.parquet"),
        )
    )
mnist = load_mnist(Path(sm.input.data))
splits = load_checked_splits(sm.input.splits, mnist)
evaluate_jobs(jobs, mnist, splits, settings, device)
