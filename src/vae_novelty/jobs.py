"""Set-up shared by the scripts of the per-model rules (theorem1, optimal_elbo)."""

from __future__ import annotations

from .io import select_device, setup_logging


def start_model_job(sm):
    """Set-up shared by the per-model rules' scripts (wildcards arch, split, seed; params
    hidden, z_dim, device): the job's logger, torch threads = the job's threads, the device,
    and the model's :class:`~vae_novelty.config.ModelSpec`."""
    import torch

    from .config import ModelSpec

    log = setup_logging(sm.log[0])
    torch.set_num_threads(sm.threads)
    device = select_device(sm.params.device)
    w = sm.wildcards
    spec = ModelSpec(w.arch, tuple(sm.params.hidden), int(sm.params.z_dim), w.split, int(w.seed))
    return log, device, spec
