"""Set-up shared by the scripts of the per-architecture rules (train, evaluate)."""

from __future__ import annotations

from pathlib import Path

import torch

from .io import describe_device, select_device, setup_logging


def start_job(log_path, threads: int, device: str, rule: str, wildcards: dict):
    """The job's logger (to ``log_path``), torch host threads = ``threads`` (those the scheduler
    granted the job), and the torch device for the setting ``device`` (``auto``, ``cpu`` or
    ``cuda``: a speed-only setting, which the rules pass in ``resources``, not ``params``).
    The rule script hands these over as plain values; the package never reads the Snakemake
    object."""
    log = setup_logging(log_path)
    torch.set_num_threads(max(1, int(threads)))
    torch_device = select_device(str(device))
    log.info(
        "rule %s, wildcards %s: on %s, %d host thread(s)",
        rule,
        dict(wildcards),
        describe_device(torch_device),
        torch.get_num_threads(),
    )
    return log, torch_device


def output_for(paths, name: str) -> Path:
    """The one path among ``paths`` whose file name is ``name`` (an output of this job)."""
    found = [
        Path(p) for p in ([paths] if isinstance(paths, str) else paths) if Path(p).name == name
    ]
    if len(found) != 1:
        raise ValueError(f"expected one output named {name!r}, found {len(found)}")
    return found[0]
