"""Training one VAE: Adam, shuffled mini-batches of device-resident data, seeded streams.

Every source of randomness has its own generator derived from the seed, so a model depends
only on (architecture, data, seed, hyperparameters):
- initial weights: a CPU generator seeded with ``seed``;
- the data order of each epoch: a CPU generator seeded with ``seed + ORDER_OFFSET``;
- the reparameterisation noise: a generator on the training device seeded with
  ``seed + NOISE_OFFSET``;
- the noise of the per-epoch test ELBO: a fresh generator seeded with ``seed + EVAL_OFFSET``.

Snapshots (resuming an interrupted run, :mod:`vae_novelty.snapshots`) are used only when they
belong to the run: the snapshot's key must equal the run's, i.e. the architecture and
hyperparameters, the seeds of the data order and the noise, the number of training rows and a
SHA-256 of the training rows themselves (:func:`~vae_novelty.splits.rows_digest` of the rows'
indices into the training file together with the data's fingerprint, or
:func:`~vae_novelty.data.content_digest` of the training images when no indices are given). Any
other snapshot, and one that cannot be read (truncated, corrupt, not a snapshot), is deleted with
a log line and training starts afresh: it is never applied, and it never stops a rerun
(:func:`~vae_novelty.snapshots.load_snapshot`).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from .data import content_digest
from .hyperparams import TrainSettings
from .model import VAE, init_parameters, negative_elbo
from .snapshots import (
    SNAPSHOT_FORMAT,
    SnapshotClock,
    discard_snapshot,
    load_snapshot,
    restore_snapshot,
    save_snapshot,
    snapshot_key,
)
from .splits import rows_digest

ORDER_OFFSET = 1_000_003
NOISE_OFFSET = 2_000_003
EVAL_OFFSET = 3_000_017

log = logging.getLogger("vae_novelty")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; no model is written."""


@dataclass
class History:
    rows: list[dict] = field(default_factory=list)

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(self.rows, columns=["epoch", "train_neg_elbo", "test_neg_elbo"])


# At most this many evaluated epochs per model: a model trained longer (mini-MNIST: 3,000
# epochs) is evaluated on its test images, logged and recorded in its history every
# ceil(epochs / MAX_EVALUATIONS) epochs and at its last epoch.
MAX_EVALUATIONS = 100


def is_evaluated(epoch: int, epochs: int) -> bool:
    """Whether ``epoch`` (1-based) of ``epochs`` is evaluated, logged and recorded."""
    every = max(1, math.ceil(epochs / MAX_EVALUATIONS))
    return epoch == epochs or epoch % every == 0


def batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """One epoch of shuffled index batches (the last one may be smaller)."""
    perm = torch.randperm(n, generator=generator)
    return list(perm.split(batch_size))


def epoch_plan(train_idx: Sequence[torch.Tensor], order_gens, batch_size: int, n_steps: int):
    """Every member's shuffled batches of one epoch, drawn exactly as ``train_vae`` draws them.

    For the ensemble trainer (:mod:`vae_novelty.ensemble`): ``train_idx[m]`` and
    ``order_gens[m]`` are member m's training rows and data-order generator; a step's batch is
    padded to the largest batch of that step.

    Returns ``gidx`` [n_steps, M, batch_size] (rows of x_all; padding points at row
    ``train_idx[m][0]``), ``weight`` [n_steps, M, batch_size] (1 / batch length for real rows,
    as the gradient of ``loss_sum / len(xb)``; 0 for padding) and ``rows[step][m]`` (the number
    of real rows, 0 when the member's epoch is over).
    """
    n_members = len(train_idx)
    gidx = torch.zeros(n_steps, n_members, batch_size, dtype=torch.int64)
    weight = torch.zeros(n_steps, n_members, batch_size, dtype=torch.float32)
    rows = [[0] * n_members for _ in range(n_steps)]
    for m, (idx, gen) in enumerate(zip(train_idx, order_gens)):
        parts = batches(len(idx), batch_size, gen)
        counts = torch.tensor([len(b) for b in parts], dtype=torch.int64)
        flat = idx[torch.cat(parts)]
        padded = torch.full((n_steps * batch_size,), int(idx[0]), dtype=torch.int64)
        padded[: len(flat)] = flat
        # each batch starts at a multiple of batch_size: only the last one can be short
        gidx[:, m] = padded.view(n_steps, batch_size)
        recip = torch.ones(len(counts), dtype=torch.float32) / counts.to(torch.float32)
        valid = torch.arange(batch_size) < counts[:, None]
        weight[: len(counts), m] = torch.where(valid, recip[:, None], torch.zeros(()))
        for s, c in enumerate(counts.tolist()):
            rows[s][m] = c
    return gidx, weight, rows


@torch.no_grad()
def mean_neg_elbo(model: VAE, x: torch.Tensor, seed: int, batch_size: int = 4096) -> float:
    """Mean negative ELBO over ``x`` with one z sample per image, from a fixed noise stream."""
    if len(x) == 0:
        return float("nan")
    gen = torch.Generator(device=x.device).manual_seed(seed + EVAL_OFFSET)
    total = 0.0
    for chunk in x.split(batch_size):
        eps = torch.randn(len(chunk), model.z_dim, generator=gen, device=x.device)
        logits, mean, logvar = model(chunk, eps)
        total += float(negative_elbo(chunk, logits, mean, logvar).sum())
    return total / len(x)


# A training job logs its progress at least this often (seconds), with the time left.
PROGRESS_SECONDS = 15.0


class ProgressLog:
    """The progress of one training run (epochs ``start_epoch`` to ``epochs``): time so far and
    an estimate of the time left, by one formula (:meth:`text`) for the per-epoch log lines and
    for the notes :meth:`note` logs at most once per :data:`PROGRESS_SECONDS` (for epochs that
    take longer than that)."""

    def __init__(
        self, what: str, epochs: int = 1, start_epoch: int = 1, every: float | None = None
    ):
        self.what, self.epochs, self.start_epoch = what, epochs, start_epoch
        self.every = PROGRESS_SECONDS if every is None else float(every)
        self.start = self.last = time.perf_counter()

    def fraction(self, epoch: int, step: int = 0, steps: int = 1) -> float:
        """The fraction of the run done at ``step`` (of ``steps``) of ``epoch``."""
        return (epoch - self.start_epoch + step / steps) / (self.epochs - self.start_epoch + 1)

    def text(self, fraction: float, now: float | None = None) -> str:
        """``"12.3s so far, about 45s left"``, at the pace so far, with ``fraction`` done."""
        elapsed = (time.perf_counter() if now is None else now) - self.start
        return f"{elapsed:.1f}s so far, about {elapsed * (1 - fraction) / fraction:.0f}s left"

    def epoch_done(self, epoch: int) -> str:
        """:meth:`text` at the end of ``epoch``, for its log line."""
        return self.text(self.fraction(epoch + 1))

    def step(self, epoch: int, step: int, steps: int) -> None:
        """:meth:`note` for ``step`` (of ``steps``) of ``epoch``."""
        self.note(
            self.fraction(epoch, step, steps), f"epoch {epoch}/{self.epochs}, step {step}/{steps}"
        )

    def note(self, fraction: float, detail: str) -> None:
        """Log ``detail`` with the fraction done and the time left, unless the last note is
        less than ``every`` seconds old."""
        now = time.perf_counter()
        if now - self.last < self.every or fraction <= 0:
            return
        self.last = now
        log.info(
            "%s: %s, %.0f%% done, %s", self.what, detail, 100 * fraction, self.text(fraction, now)
        )


def check_finite(value: float, epoch: int, what: str, tag: str = "") -> None:
    if not math.isfinite(value):
        prefix = f"{tag}: " if tag else ""
        raise TrainingDiverged(
            f"{prefix}training diverged: {what} negative ELBO is {value} at "
            f"epoch {epoch}; no model was written (lower "
            f"training.learning_rate?)"
        )


def model_snapshot_key(
    settings: TrainSettings, seed: int, n_train: int, train_rows: str, data_digest: str | None
) -> dict:
    """What a snapshot (or a kept finished model) of one model must have been written for:
    :func:`~vae_novelty.snapshots.snapshot_key` with this module's seeding of the data order
    (``seed + ORDER_OFFSET``) and noise (``seed + NOISE_OFFSET``) streams."""
    return snapshot_key(
        settings.record(seed),
        seed + ORDER_OFFSET,
        seed + NOISE_OFFSET,
        n_train,
        train_rows,
        data_digest,
    )


def train_vae(
    x_train: torch.Tensor,
    x_test: torch.Tensor,
    cfg: TrainSettings,
    *,
    seed: int,
    snapshot: Path | None = None,
    snapshot_every: int = 0,
    tag: str = "",
    train_rows=None,
    data_digest: str | None = None,
    keep_final: bool = False,
) -> tuple[VAE, History]:
    """Train one VAE with the settings ``cfg`` and seed ``seed`` on ``x_train`` (float pixels
    in [0, 1], already on the training device).

    ``x_test`` gives the test negative ELBO recorded after each evaluated epoch
    (:func:`is_evaluated`). With ``snapshot`` set, the full training state (weights, Adam,
    generators, history) is saved every ``snapshot_every`` epochs
    (:class:`~vae_novelty.snapshots.SnapshotClock`) and training resumes from it when the file
    exists and was written by this very run (same settings, seeds and training rows; see the
    module docstring), producing the same model as an uninterrupted run. ``train_rows`` (the
    indices of ``x_train``'s rows in the training file) and ``data_digest`` (the fingerprint of
    the data they index, :func:`~vae_novelty.data.data_fingerprint`) identify the training data
    for the snapshot key; without ``train_rows`` the training images themselves are hashed.
    With ``keep_final`` (and ``snapshot``), the finished state is saved as a snapshot too (a
    completed snapshot: resuming from it trains no further epoch), so that the caller can keep
    a finished model's work until its whole job has succeeded.
    """
    device = x_train.device

    def fresh():
        model = VAE(cfg.hidden, cfg.z_dim).to(device)
        init_parameters(model, torch.Generator().manual_seed(seed))
        model.to(device)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate, foreach=False)
        order_gen = torch.Generator().manual_seed(seed + ORDER_OFFSET)
        noise_gen = torch.Generator(device=device).manual_seed(seed + NOISE_OFFSET)
        return model, opt, order_gen, noise_gen, History()

    model, opt, order_gen, noise_gen, history = fresh()
    start_epoch = 1
    key = None
    if snapshot is not None:
        key = model_snapshot_key(
            cfg,
            seed,
            len(x_train),
            rows_digest(train_rows) if train_rows is not None else content_digest(x_train),
            data_digest,
        )
    if snapshot is not None and Path(snapshot).exists():
        payload = load_snapshot(snapshot, SNAPSHOT_FORMAT, key, tag)
        if payload is not None:
            try:
                start_epoch = restore_snapshot(payload, model, opt, order_gen, noise_gen, history)
            except Exception as exc:  # a half-applied state must not be trained on
                discard_snapshot(snapshot, f"cannot be applied ({type(exc).__name__}: {exc})", tag)
                model, opt, order_gen, noise_gen, history = fresh()
                start_epoch = 1
            else:
                log.info("%s resumed from snapshot %s at epoch %d", tag, snapshot, start_epoch)
    n = len(x_train)
    clock = SnapshotClock(snapshot_every if snapshot is not None else 0, cfg.epochs)
    steps = math.ceil(n / cfg.batch_size)
    notes = ProgressLog(tag or "training", cfg.epochs, start_epoch)
    for epoch in range(start_epoch, cfg.epochs + 1):
        model.train()
        total = torch.zeros((), dtype=torch.float64, device=device)
        # the shuffle is drawn on the CPU (one stream whatever the device) and copied to the
        # device once per epoch, not once per batch
        for step, idx in enumerate(
            torch.cat(batches(n, cfg.batch_size, order_gen)).to(device).split(cfg.batch_size)
        ):
            notes.step(epoch, step, steps)
            xb = x_train[idx]
            eps = torch.randn(len(xb), cfg.z_dim, generator=noise_gen, device=device)
            logits, mean, logvar = model(xb, eps)
            loss_sum = negative_elbo(xb, logits, mean, logvar).sum()
            opt.zero_grad(set_to_none=True)
            (loss_sum / len(xb)).backward()
            opt.step()
            total += loss_sum.detach().double()
        if is_evaluated(epoch, cfg.epochs):
            train_loss = float(total) / n
            check_finite(train_loss, epoch, "training", tag)
            model.eval()
            test_loss = mean_neg_elbo(model, x_test, seed)
            history.rows.append(
                {"epoch": epoch, "train_neg_elbo": train_loss, "test_neg_elbo": test_loss}
            )
            log.info(
                "%s epoch %d/%d train -ELBO %.3f test -ELBO %.3f (%s)",
                tag,
                epoch,
                cfg.epochs,
                train_loss,
                test_loss,
                notes.epoch_done(epoch),
            )
        if clock.due(epoch):
            save_snapshot(snapshot, key, epoch, model, opt, order_gen, noise_gen, history)
    if keep_final and snapshot is not None and start_epoch <= cfg.epochs:
        save_snapshot(snapshot, key, cfg.epochs, model, opt, order_gen, noise_gen, history)
    model.eval()
    return model, history
