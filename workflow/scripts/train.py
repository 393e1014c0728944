"""Rules train_sweep / train_mini: train every model of one architecture."""

import _bootstrap  # noqa: F401
from pathlib import Path

import torch

from vae_novelty.data import load_mnist
from vae_novelty.splits import load_checked_splits
from vae_novelty.jobs import output_for, start_job
from vae_novelty.hyperparams import TrainSettings
from vae_novelty.training_jobs import ModelJob, train_architecture

sm = snakemake  # noqa: F821
p, res = sm.params.settings, sm.resources
log, device = start_job(
    sm.log[0], sm.threads, sm.resources.get("torch_device", "auto"), sm.rule, dict(sm.wildcards)
)
# TF32 tensor-core products on CUDA only when asked for (training.tf32, default off)
torch.backends.cuda.matmul.allow_tf32 = bool(p["tf32"])
arch = sm.wildcards.arch
log.info(
    "architecture %s hidden=%s dim(z)=%d, %s trainer%s",
    arch,
    p["hidden"],
    p["z_dim"],
    "ensemble" if p["ensemble"] else "sequential",
    ", TF32" if p["tf32"] and device.type == "cuda" else "",
)
mnist = load_mnist(Path(sm.input.data))
# every split checked against its file name and the MNIST arrays before any training starts
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
# resumable snapshots: {results_dir}/snapshots/{arch}/ (models are {results_dir}/models/{arch}/)
snapshot_dir = Path(sm.output.models[0]).parents[2] / "snapshots" / arch
train_architecture(
    mnist,
    splits,
    jobs,
    TrainSettings.from_params(p),
    arch=arch,
    device=device,
    ensemble=p["ensemble"],
    snapshot_dir=snapshot_dir,
    snapshot_every=int(res.snapshot_every),
    cuda_graphs=bool(res.cuda_graphs),
)
