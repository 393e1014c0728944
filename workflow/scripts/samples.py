"""Rule samples: generated samples of every model of one architecture
(src/vae_novelty/samples.py)."""

import _bootstrap  # noqa: F401
from pathlib import Path

from vae_novelty.classifier import load_classifier
from vae_novelty.config import ModelSpec
from vae_novelty.data import load_mnist
from vae_novelty.jobs import output_for, start_job
from vae_novelty.samples import SampleJob, SampleSettings, sample_jobs
from vae_novelty.splits import load_checked_splits

sm = snakemake  # noqa: F821
p, out = sm.params.settings, sm.output
log, device = start_job(
    sm.log[0], sm.threads, sm.resources.get("torch_device", "auto"), sm.rule, dict(sm.wildcards)
)
settings = SampleSettings(
    n=p["n"],
    seed=p["seed"],
    top_k=p["top_k"],
    figure_images=p["figure_images"],
    ct_cells=p["ct_cells"],
    ct_pca_dims=p["ct_pca_dims"],
    ct_min_per_cell=p["ct_min_per_cell"],
    max_test_per_digit=p["max_test_per_digit"],
    chunk_mb=float(sm.resources.chunk_mb),
)
jobs = []
for split, seed in p["models"]:
    spec = ModelSpec(sm.wildcards.arch, tuple(p["hidden"]), int(p["z_dim"]), split, int(seed))
    stem = f"{split}_s{seed}"
    jobs.append(
        SampleJob(
            spec,
            output_for(sm.input.models, f"{stem}.pt"),
            output_for(sm.input.posteriors, f"{stem}.parquet"),
            output_for(out.tables, f"{stem}.parquet"),
            output_for(out.images, f"{stem}.npz"),
        )
    )
mnist = load_mnist(Path(sm.input.data))
splits = load_checked_splits(sm.input.splits, mnist)
classifier, classifier_meta = load_classifier(sm.input.classifier, expect_data=mnist.fingerprint)
sample_jobs(jobs, mnist, splits, classifier, classifier_meta, settings, device)
