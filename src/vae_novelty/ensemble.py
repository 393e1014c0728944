"""Training every model of one architecture at once, as one vectorised ensemble.

The M models ("members") of one architecture (every training split and seed) share their
shapes, so they are trained as one stacked model with one stacked optimizer
(:class:`~vae_novelty.stacked.StackedVAE`, :class:`~vae_novelty.stacked.StackedAdam`: the
math). This module is the training loop around them: each epoch's plan of batches
(:func:`~vae_novelty.train.epoch_plan`), the steps, the evaluation, the CUDA graph and the
snapshots. The training images stay on the device; each step gathers every member's
mini-batch at once.

Each member follows the trajectory it would follow if trained alone by
:func:`vae_novelty.train.train_vae`:

- the same streams: initial weights from a CPU generator seeded with its seed (through
  :func:`~vae_novelty.model.init_parameters`), its data order from a CPU generator seeded with
  ``seed + ORDER_OFFSET`` (through :func:`~vae_novelty.train.batches`), its reparameterisation
  noise from a device generator seeded with ``seed + NOISE_OFFSET``, drawn with the same shapes
  and in the same order;
- its own number of steps per epoch: members train on splits of different sizes (60,000 images
  for MNIST^tr, 54,051 without the 9s), so they have different numbers of batches and a smaller
  last batch. A step's batch is padded to the largest batch of that step; padded rows get
  weight 0 in the loss (so exactly zero gradient), and a member whose epoch has no batch left
  at this step is left out of the step (its weights, Adam moments and step count untouched);
- its own Adam state and step count, with the arithmetic of ``torch.optim.Adam(foreach=False)``
  (the bias corrections are computed per member, in double precision as Adam does, and rounded
  to float32 as Adam's kernels round its Python scalars);
- its own per-epoch history (the same train/test negative ELBO, the same NaN check) and its own
  model file, written by the same code as the sequential trainer.

On the CPU an ensemble of one member reproduces ``train_vae`` bit for bit (tests/test_ensemble.py):
the stacked model computes what a lone model computes (see :mod:`vae_novelty.stacked`), and one
member never needs padding. Larger ensembles match their members trained alone to float32
rounding: besides the rounding of the stacked kernels, a padded batch changes the length of the
sums over the batch.

On CUDA, the full-batch training step (forward, backward, Adam) can be captured once as a CUDA
graph and replayed (``cuda_graphs=True``), which removes the per-kernel launch cost that
dominates these small matrix products; steps with padded batches run eagerly.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from .data import content_digest
from .hyperparams import TrainSettings
from .model import VAE, init_parameters, negative_elbo
from .snapshots import EnsembleState, SnapshotClock
from .splits import rows_digest
from .stacked import GraphedStep, StackedAdam, StackedVAE
from .train import (
    NOISE_OFFSET,
    ORDER_OFFSET,
    History,
    ProgressLog,
    TrainingDiverged,
    check_finite,
    epoch_plan,
    is_evaluated,
    mean_neg_elbo,
)

log = logging.getLogger("vae_novelty")


class MembersDiverged(TrainingDiverged):
    """Some members of an ensemble diverged, the others finished: the message names each
    diverged member (one line each, starting with its tag); ``results`` holds every member's
    (model, history), None for a diverged one, so that the finished models are not lost."""

    def __init__(self, message: str, results: list):
        super().__init__(message)
        self.results = results


@dataclass
class EnsembleMember:
    """One model of the ensemble: its training images (rows of ``x_all``), evaluation images,
    seed and a name for the log."""

    train_idx: torch.Tensor  # int64 rows of the ensemble's x_all
    x_test: torch.Tensor  # evaluation images, on the training device
    seed: int
    tag: str = ""


# --------------------------------------------------------------------------- training


class _EnsembleRun:
    """The training state of one ensemble (stacked weights, Adam, every member's generators,
    histories and evaluation model) and its steps.

    Everything is made in the order :func:`~vae_novelty.train.train_vae` makes it for one
    model, member after member, so that every stream (the global one included, which the
    :class:`VAE` constructors draw from) is consumed as before.
    """

    def __init__(
        self, x_all: torch.Tensor, members: Sequence[EnsembleMember], settings: TrainSettings
    ):
        device = self.device = x_all.device
        hidden, z_dim, epochs = settings.hidden, settings.z_dim, settings.epochs
        batch_size, learning_rate = settings.batch_size, settings.learning_rate
        self.x_all, self.members, self.batch_size = x_all, members, batch_size
        self.settings = settings.record()
        self.net = StackedVAE([_initial_model(hidden, z_dim, m.seed) for m in members], device)
        self.train_idx = [m.train_idx.detach().to("cpu", torch.int64) for m in members]
        self.n_train = [len(idx) for idx in self.train_idx]
        if min(self.n_train) == 0:
            raise ValueError("every ensemble member needs at least one training image")
        self.steps_per_epoch = [math.ceil(n / batch_size) for n in self.n_train]
        self.n_steps = max(self.steps_per_epoch)
        self.adam = StackedAdam(
            self.net.parameters(), len(members), learning_rate, epochs * self.n_steps
        )
        self.order_gens = [torch.Generator().manual_seed(m.seed + ORDER_OFFSET) for m in members]
        self.noise_gens = [
            torch.Generator(device=device).manual_seed(m.seed + NOISE_OFFSET) for m in members
        ]
        self.eval_models = [VAE(hidden, z_dim).to(device).eval() for _ in members]
        self.histories = [History() for _ in members]
        self.state = EnsembleState(self.adam, self.order_gens, self.noise_gens, self.histories)
        self.total = torch.zeros(len(members), dtype=torch.float64, device=device)
        # Subsets of members still in their epoch (only in an epoch's last steps, when the
        # members' training sets differ in size), as device index tensors made once each.
        self.member_index: dict[tuple[int, ...], torch.Tensor] = {}
        self.graphed: GraphedStep | None = None
        self.diverged: dict[int, str] = {}  # member -> its TrainingDiverged message
        self._log_padding()

    def _log_padding(self) -> None:
        """Log the members' sizes and the share of the batched rows that is padding."""
        computed = 0  # rows computed per epoch: members whose epoch is over are left out
        for s in range(self.n_steps):
            rows = [
                min(self.batch_size, n - s * self.batch_size)
                for n in self.n_train
                if n > s * self.batch_size
            ]
            computed += len(rows) * max(rows)
        log.info(
            "ensemble of %d members, %s training images, %s steps per epoch (%.1f%% of "
            "the batched rows are padding)",
            len(self.members),
            self.n_train,
            self.steps_per_epoch,
            100 * (1 - sum(self.n_train) / computed),
        )

    def index(self, active: tuple[int, ...]) -> torch.Tensor:
        """``active`` as an int64 tensor on the device, made once per subset."""
        if active not in self.member_index:
            self.member_index[active] = torch.tensor(active, dtype=torch.int64).to(self.device)
        return self.member_index[active]

    def step(self, gidx, eps, weight, active) -> None:
        """One step of the members in ``active`` (None: all M; the others' epochs are over and
        are skipped): ``gidx`` [A, B] rows of x_all, ``eps`` [A, B, z], ``weight`` [A, B]
        (0 on padding). Adds each member's summed loss over its real rows to ``total``."""
        net, x_all = self.net, self.x_all
        if active is None:
            weights, biases = net.weights, net.biases
            idx = None
        else:
            idx = self.index(tuple(active))
            weights, biases = (
                [t.detach().index_select(0, idx).requires_grad_() for t in ts]
                for ts in (net.weights, net.biases)
            )
        xb = x_all.index_select(0, gidx.reshape(-1)).view(*gidx.shape, x_all.shape[-1])
        logits, mean, logvar = net.forward(xb, eps, weights, biases)
        per_image = negative_elbo(xb, logits, mean, logvar)  # [A, B]
        loss = (per_image * weight).sum()
        grads = torch.autograd.grad(loss, [t for pair in zip(weights, biases) for t in pair])
        self.adam.step(grads, active, idx)
        with torch.no_grad():  # as train_vae's loss_sum, over real rows only
            sums = torch.where(weight > 0, per_image, 0.0).sum(-1).double()
            if active is None:
                self.total.add_(sums)
            else:
                self.total.index_add_(0, idx, sums)

    def capture_graph(self, cuda_graphs: bool) -> None:
        """With ``cuda_graphs`` on a CUDA device, capture the full-batch step as a CUDA graph
        (:class:`GraphedStep`); steps run eagerly when capture fails."""
        if cuda_graphs and self.device.type == "cuda":
            try:
                self.graphed = GraphedStep(
                    self.step,
                    self.x_all,
                    len(self.members),
                    self.batch_size,
                    self.net.z_dim,
                    self.adam.state_tensors(),
                    self.total,
                )
                log.info("full-batch training step captured as a CUDA graph")
            except RuntimeError as exc:  # pragma: no cover - needs a GPU
                log.warning("CUDA graph capture failed (%s); training without CUDA graphs", exc)
                self.graphed = None
        elif cuda_graphs:
            log.info("cuda_graphs is set but the device is %s: ignored", self.device)

    def snapshot_key(self, data_digest: str | None) -> dict:
        """What a snapshot of this ensemble must have been written for: the settings, the
        members (tags, seeds of every stream) and their training rows and images."""
        members = self.members
        return {
            **self.settings,
            "seeds": [m.seed for m in members],
            "tags": [m.tag for m in members],
            "order_seeds": [m.seed + ORDER_OFFSET for m in members],
            "noise_seeds": [m.seed + NOISE_OFFSET for m in members],
            "n_train": self.n_train,
            "train_rows": [rows_digest(idx) for idx in self.train_idx],
            "train_data": (data_digest if data_digest is not None else content_digest(self.x_all)),
        }

    def resume(self, snapshot: Path | None, key: dict | None) -> int:
        """The first epoch to train: after the snapshot's, when ``snapshot`` exists and belongs
        to this run (:meth:`EnsembleState.restore`); else 1."""
        if snapshot is None or not Path(snapshot).exists():
            return 1
        start_epoch = self.state.restore(snapshot, key)
        if start_epoch > 1:
            log.info("ensemble resumed from snapshot %s at epoch %d", snapshot, start_epoch)
        return start_epoch

    def train_epoch(self, epoch: int, notes: ProgressLog) -> None:
        """Every member's steps of one epoch, its losses summed in ``total``."""
        gidx_all, weight_all, rows_all = epoch_plan(
            self.train_idx, self.order_gens, self.batch_size, self.n_steps
        )
        gidx_all, weight_all = gidx_all.to(self.device), weight_all.to(self.device)
        self.total.zero_()
        for s in range(self.n_steps):
            notes.step(epoch, s, self.n_steps)
            if all(r == self.batch_size for r in rows_all[s]):
                self._full_step(gidx_all[s], weight_all[s])
            else:
                self._padded_step(gidx_all[s], weight_all[s], rows_all[s])

    def _full_step(self, gidx, weight) -> None:
        """A step in which every member has a full batch: replayed as a CUDA graph if one was
        captured, else run eagerly."""
        if self.graphed is not None:
            self.graphed.run(gidx, self.noise_gens)
            return
        eps = torch.empty(len(self.members), self.batch_size, self.net.z_dim, device=self.device)
        for m, gen in enumerate(self.noise_gens):
            eps[m].normal_(generator=gen)
        self.step(gidx, eps, weight, None)

    def _padded_step(self, gidx, weight, rows) -> None:
        """A step with a short last batch: padded to the longest batch of this step, the
        members whose epoch is over (``rows[m]`` 0) left out."""
        width = max(rows)
        active = [m for m, r in enumerate(rows) if r]
        eps = torch.zeros(len(active), width, self.net.z_dim, device=self.device)
        for j, m in enumerate(active):
            eps[j, : rows[m]].normal_(generator=self.noise_gens[m])
        if len(active) == len(self.members):
            self.step(gidx[:, :width], eps, weight[:, :width], None)
        else:
            sel = self.index(tuple(active))
            self.step(
                gidx[:, :width].index_select(0, sel),
                eps,
                weight[:, :width].index_select(0, sel),
                active,
            )

    def evaluate(self, epoch: int, t0: float) -> None:
        """Check every member's training loss, evaluate it on its test images, and record and
        log both (``t0``: the epoch's start). A member whose loss is not finite is marked
        diverged (``self.diverged``: its :class:`~vae_novelty.train.TrainingDiverged` message)
        and no longer evaluated; the others train on (a member's numbers never depend on
        another's), and when every member has diverged the error is raised at once."""
        epochs = self.settings["epochs"]
        train_losses = [t / n for t, n in zip(self.total.tolist(), self.n_train)]
        for m, (member, loss) in enumerate(zip(self.members, train_losses)):
            if m in self.diverged:
                continue
            try:
                check_finite(loss, epoch, "training", tag=member.tag)
            except TrainingDiverged as exc:
                self.diverged[m] = str(exc)
                log.error("%s", exc)
        if len(self.diverged) == len(self.members):
            raise TrainingDiverged("\n".join(self.diverged[m] for m in sorted(self.diverged)))
        seconds = time.perf_counter() - t0
        for m, member in enumerate(self.members):
            if m in self.diverged:
                continue
            model = self.net.copy_member_into(m, self.eval_models[m])
            test_loss = mean_neg_elbo(model, member.x_test, member.seed)
            self.histories[m].rows.append(
                {"epoch": epoch, "train_neg_elbo": train_losses[m], "test_neg_elbo": test_loss}
            )
            log.info(
                "%s epoch %d/%d train -ELBO %.3f test -ELBO %.3f (ensemble epoch %.2fs)",
                member.tag,
                epoch,
                epochs,
                train_losses[m],
                test_loss,
                seconds,
            )

    def results(self) -> list[tuple[VAE, History] | None]:
        """Every member's (model, history), None for a diverged member; the models hold the
        last evaluated weights."""
        return [
            None if m in self.diverged else pair
            for m, pair in enumerate(zip(self.eval_models, self.histories))
        ]


def _initial_model(hidden: Sequence[int], z_dim: int, seed: int) -> VAE:
    """A VAE with the initial weights ``train_vae`` gives it for ``seed``."""
    model = VAE(hidden, z_dim)
    init_parameters(model, torch.Generator().manual_seed(seed))
    return model


def train_ensemble(
    x_all: torch.Tensor,
    members: Sequence[EnsembleMember],
    settings: TrainSettings,
    *,
    cuda_graphs: bool = False,
    snapshot: Path | None = None,
    snapshot_every: int = 0,
    data_digest: str | None = None,
) -> list[tuple[VAE, History]]:
    """Train one VAE per member with the settings ``settings``, all at once; return each
    member's (model, history).

    ``x_all`` holds every training image (float pixels in [0, 1]) on the training device; each
    member trains on ``x_all[member.train_idx]`` exactly as :func:`~vae_novelty.train.train_vae`
    would with that member's seed, and is evaluated on ``member.x_test`` after every epoch.
    A member whose training loss is not finite stops being evaluated, the others train to
    the end; then :class:`MembersDiverged` (a :class:`~vae_novelty.train.TrainingDiverged`)
    names the diverged members and carries the finished members' results. When every member
    has diverged, :class:`~vae_novelty.train.TrainingDiverged` is raised at once.

    With ``snapshot`` set, the whole ensemble's state (stacked weights, Adam moments and step
    counts, every member's generators and history) is saved every ``snapshot_every`` epochs,
    and training resumes from that file when it exists and was written for the same run: the
    same settings, members (tags, seeds of the data order and noise) and training rows (a
    SHA-256 of each member's ``train_idx``, and ``data_digest``, the data's fingerprint, by
    default :func:`~vae_novelty.data.content_digest` of ``x_all``). The result is
    bitwise the same as an uninterrupted run. A snapshot of another run, or one that cannot be
    read or applied, is deleted with a log line and training starts afresh
    (:func:`~vae_novelty.snapshots.load_snapshot`).
    """
    if not members:
        return []
    run = _EnsembleRun(x_all, members, settings)
    epochs = settings.epochs
    run.capture_graph(cuda_graphs)
    key = run.snapshot_key(data_digest) if snapshot is not None else None
    start_epoch = run.resume(snapshot, key)
    clock = SnapshotClock(snapshot_every if snapshot is not None else 0, epochs)
    notes = ProgressLog(f"ensemble of {len(members)}", epochs, start_epoch)
    for epoch in range(start_epoch, epochs + 1):
        t0 = time.perf_counter()
        run.train_epoch(epoch, notes)
        if is_evaluated(epoch, epochs):
            run.evaluate(epoch, t0)
            log.info("ensemble epoch %d/%d done: %s", epoch, epochs, notes.epoch_done(epoch))
        if clock.due(epoch):
            run.state.save(snapshot, key, epoch)
    if run.diverged:
        raise MembersDiverged(
            "\n".join(run.diverged[m] for m in sorted(run.diverged)), run.results()
        )
    return run.results()
