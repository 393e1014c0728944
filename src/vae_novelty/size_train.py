"""Training of the size sweep (issue 20): every model of one architecture with one budget of
gradient steps, whatever its training-set size N.

A model on N images trains ``steps / ceil(N / batch_size)`` epochs
(:func:`~vae_novelty.size_splits.epochs_for_steps`; the configuration only allows budgets that
are whole epochs for every N), so N = 100 gets as many Adam steps as N = 30,000. The models of
one N (both halves, every seed) have the same number of steps per epoch, so they are trained as
one ensemble (:func:`vae_novelty.training_jobs.train_architecture`, unchanged) with that N's epochs;
one ensemble per N, smallest first.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .size_splits import epochs_for_steps, parse_size_split_name
from .hyperparams import TrainSettings
from .training_jobs import ModelJob, train_architecture

log = logging.getLogger("vae_novelty")


def train_size_models(
    mnist,
    splits: dict,
    jobs: list[ModelJob],
    *,
    arch: str,
    hidden,
    z_dim: int,
    steps: int,
    batch_size: int,
    learning_rate: float,
    device,
    ensemble: bool = True,
    snapshot_dir: Path | None = None,
    snapshot_every: int = 0,
    cuda_graphs: bool = False,
) -> dict[int, int]:
    """Train every job (split names as :func:`~vae_novelty.size_splits.size_split_name`) with
    ``steps`` gradient steps each; returns the epochs used per N."""
    by_n: dict[int, list[ModelJob]] = {}
    for job in jobs:
        by_n.setdefault(parse_size_split_name(job.split)[1], []).append(job)
    epochs = {n: epochs_for_steps(n, batch_size, steps) for n in by_n}  # all checked first
    for n in sorted(by_n):
        log.info(
            "N = %d: %d models, %d epochs of %d steps (%d steps each)",
            n,
            len(by_n[n]),
            epochs[n],
            steps // epochs[n],
            steps,
        )
        settings = TrainSettings(tuple(hidden), z_dim, epochs[n], batch_size, learning_rate)
        train_architecture(
            mnist,
            splits,
            by_n[n],
            settings,
            arch=arch,
            device=device,
            ensemble=ensemble,
            snapshot_dir=Path(snapshot_dir) / f"n{n}" if snapshot_dir else None,
            snapshot_every=snapshot_every,
            cuda_graphs=cuda_graphs,
        )
    return epochs
