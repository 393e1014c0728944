"""Rules train_sweep / train_mini: train every model of one architecture."""

import _bootstrap  # noqa: F401
from pathlib import Path

import torch

from vae_novelty.data import load_mnist, load_split
from vae_novelty.ensemble import train_ensemble_jobs
from vae_novelty.io import describe_device, select_device, setup_logging
from vae_novelty.train import ModelJob, train_jobs

sm = snakemake  # noqa: F821
log = setup_logging(sm.log[0])
p = sm.params
torch.set_num_threads(sm.threads)
device = select_device(p.device)
# TF32 tensor-core products on CUDA only when asked for (training.tf32, default off)
torch.backends.cuda.matmul.allow_tf32 = bool(p.tf32)
log.info("architecture %s hidden=%s dim(z)=%d on %s, %s trainer%s", sm.wildcards.arch, p.hidden,
         p.z_dim, describe_device(device), "ensemble" if p.ensemble else "sequential",
         ", TF32" if p.tf32 and device.type == "cuda" else "")
splits = {Path(f).stem: load_split(Path(f)) for f in
          ([sm.input.splits] if isinstance(sm.input.splits, str) else sm.input.splits)}
jobs = []
for split in p.splits:
    for seed in p.seeds:
        stem = f"{split}_s{seed}"
        model = next(f for f in sm.output.models if Path(f).name == f"{stem}.pt")
        history = next(f for f in sm.output.histories if Path(f).name == f"{stem}.history.csv")
        jobs.append(ModelJob(split, seed, Path(model), Path(history)))
common = dict(arch=sm.wildcards.arch, hidden=p.hidden, z_dim=p.z_dim, epochs=p.epochs,
              batch_size=p.batch_size, learning_rate=p.learning_rate, device=device,
              snapshot_dir=Path(p.snapshot_dir), snapshot_every=p.snapshot_every)
if p.ensemble:
    train_ensemble_jobs(load_mnist(Path(sm.input.data)), splits, jobs, **common,
                        cuda_graphs=p.cuda_graphs)
else:
    train_jobs(load_mnist(Path(sm.input.data)), splits, jobs, **common)
