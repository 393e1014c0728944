"""Set-up shared by the scripts of the per-architecture rules (train, evaluate)."""

from __future__ import annotations

from pathlib import Path

from .io import describe_device, select_device, setup_logging


def start_job(sm):
    """The job's logger, torch host threads = the threads the scheduler granted the job, and
    the torch device (``resources.torch_device``: a speed-only setting, so it lives in
    ``resources``, which Snakemake does not fingerprint, and not in ``params``)."""
    import torch

    log = setup_logging(sm.log[0])
    torch.set_num_threads(max(1, int(sm.threads)))
    device = select_device(str(sm.resources.get("torch_device", "auto")))
    log.info("rule %s, wildcards %s: on %s, %d host thread(s)", sm.rule, dict(sm.wildcards),
             describe_device(device), torch.get_num_threads())
    return log, device


def output_for(paths, name: str) -> Path:
    """The one path among ``paths`` whose file name is ``name`` (an output of this job)."""
    found = [Path(p) for p in ([paths] if isinstance(paths, str) else paths)
             if Path(p).name == name]
    if len(found) != 1:
        raise ValueError(f"expected one output named {name!r}, found {len(found)}")
    return found[0]
