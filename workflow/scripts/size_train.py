"""Rule size_train: every model of one architecture of the size sweep, one step budget."""

import _bootstrap  # noqa: F401
from pathlib import Path

import torch

from vae_novelty.data import load_mnist
from vae_novelty.jobs import output_for, start_job
from vae_novelty.size_train import train_size_models
from vae_novelty.splits import load_checked_splits
from vae_novelty.training_jobs import ModelJob

sm = snakemake  # noqa: F821
p, res = sm.params.settings, sm.resources
log, device = start_job(
    sm.log[0], sm.threads, sm.resources.get("torch_device", "auto"), sm.rule, dict(sm.wildcards)
)
torch.backends.cuda.matmul.allow_tf32 = bool(p["tf32"])
mnist = load_mnist(Path(sm.input.data))
splits = load_checked_splits(sm.input.splits, mnist)
jobs = [
    ModelJob(
        split,
        seed,
        output_for(sm.output.models, f"{split}_s{seed}.pt"),
        output_for(sm.output.histories, f"{split}_s{seed}.history.csv"),
    )
    for split, seed in p["models"]
]
arch = sm.wildcards.arch
# {results_dir}/size/snapshots/{arch}/ (models are {results_dir}/size/models/{arch}/)
snapshot_dir = Path(sm.output.models[0]).parents[2] / "snapshots" / arch
train_size_models(
    mnist,
    splits,
    jobs,
    arch=arch,
    hidden=p["hidden"],
    z_dim=p["z_dim"],
    steps=p["steps"],
    batch_size=p["batch_size"],
    learning_rate=p["learning_rate"],
    device=device,
    ensemble=p["ensemble"],
    snapshot_dir=snapshot_dir,
    snapshot_every=int(res.snapshot_every),
    cuda_graphs=bool(res.cuda_graphs),
)
