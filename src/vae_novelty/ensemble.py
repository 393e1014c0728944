"""Training every model of one architecture at once, as one vectorised ensemble.

The M models ("members") of one architecture (every training split and seed) share their
shapes, so their weights are stacked into ``[M, out, in]`` tensors and every layer of all
members is one batched matrix product (``torch.baddbmm`` / ``torch.bmm``). The training images
stay on the device; each step gathers every member's mini-batch at once.

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
the backward pass of the stacked linear layer is written by hand so that its matrix products
have the same operand layouts as the ones autograd runs for ``nn.Linear``, and one member never
needs padding. Larger ensembles match their members trained alone to float32 rounding: a
vectorised CPU kernel can round an element differently depending on where it falls in a larger
tensor (SIMD body or scalar tail), a padded batch changes the length of the sums over the batch,
and a batched product of small matrices is split across threads differently from a single one.

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

from .config import model_id
from .model import VAE, init_parameters, negative_elbo
from .train import (NOISE_OFFSET, ORDER_OFFSET, History, ModelJob, TrainConfig, _check_finite,
                    ProgressLog, SnapshotClock, batches, content_digest, discard_snapshot, is_evaluated,
                    load_snapshot, mean_neg_elbo, progress, rows_digest, write_model_outputs)

# /2: the key fingerprints every member's training rows and the training images
ENSEMBLE_SNAPSHOT_FORMAT = "vae-novelty-ensemble-snapshot/2"

log = logging.getLogger("vae_novelty")

# torch.optim.Adam's defaults, which train_vae uses.
ADAM_BETA1, ADAM_BETA2 = 0.9, 0.999
ADAM_EPS = 1e-8


@dataclass
class EnsembleMember:
    """One model of the ensemble: its training images (rows of ``x_all``), evaluation images,
    seed and a name for the log."""

    train_idx: torch.Tensor  # int64 rows of the ensemble's x_all
    x_test: torch.Tensor     # evaluation images, on the training device
    seed: int
    tag: str = ""


# --------------------------------------------------------------------------- stacked model

class _StackedLinear(torch.autograd.Function):
    """``y[m] = x[m] @ weight[m].T + bias[m]`` for every member m.

    The backward pass uses the operand layouts autograd uses for ``nn.Linear`` (``addmm`` with
    a transposed weight): grad_x = grad @ W and grad_W = grad^T @ x, so that each member's
    products go through the same BLAS calls as when it is trained alone (autograd's ``baddbmm``
    backward computes x^T @ grad instead, which rounds differently for some shapes).
    """

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad_x = torch.bmm(grad, weight) if ctx.needs_input_grad[0] else None
        return grad_x, torch.bmm(grad.transpose(1, 2), x), grad.sum(1)


class StackedVAE:
    """The parameters of M VAEs of one architecture, stacked along a leading member dimension:
    one ``[M, out, in]`` weight and one ``[M, out]`` bias per linear layer, in the order of
    :meth:`VAE.linear_layers`. The forward pass is :class:`VAE`'s, layer for layer."""

    def __init__(self, models: Sequence[VAE], device: torch.device):
        first = models[0]
        self.hidden, self.z_dim, self.x_dim = first.hidden, first.z_dim, first.x_dim
        layers = [m.linear_layers() for m in models]
        self.weights = [torch.stack([ls[i].weight.detach() for ls in layers]).to(device)
                        .requires_grad_() for i in range(len(layers[0]))]
        self.biases = [torch.stack([ls[i].bias.detach() for ls in layers]).to(device)
                       .requires_grad_() for i in range(len(layers[0]))]
        self.n_members = len(models)

    def parameters(self) -> list[torch.Tensor]:
        return [p for pair in zip(self.weights, self.biases) for p in pair]

    def forward(self, x: torch.Tensor, eps: torch.Tensor, weights=None, biases=None):
        """``x`` [M, B, x_dim], ``eps`` [M, B, z_dim] -> (logits, mean, logvar), each [M, B, .].
        ``weights`` and ``biases`` (default: all members') may be a subset of the members'."""
        weights = self.weights if weights is None else weights
        biases = self.biases if biases is None else biases
        lin = _StackedLinear.apply
        n_enc = len(self.hidden)
        h = x
        for i in range(n_enc):  # encoder: Linear + ReLU per hidden layer
            h = torch.relu(lin(h, weights[i], biases[i]))
        mean = lin(h, weights[n_enc], biases[n_enc])
        logvar = lin(h, weights[n_enc + 1], biases[n_enc + 1])
        h = VAE.reparameterize(mean, logvar, eps)
        last = len(weights) - 1
        for i in range(n_enc + 2, last + 1):  # decoder: Linear + ReLU, no ReLU on the logits
            h = lin(h, weights[i], biases[i])
            if i < last:
                h = torch.relu(h)
        return h, mean, logvar

    @torch.no_grad()
    def copy_member_into(self, m: int, model: VAE) -> VAE:
        """Copy member ``m``'s parameters into ``model`` (a :class:`VAE` of this architecture)."""
        for layer, w, b in zip(model.linear_layers(), self.weights, self.biases):
            layer.weight.copy_(w[m])
            layer.bias.copy_(b[m])
        return model


# --------------------------------------------------------------------------- stacked Adam

class StackedAdam:
    """Adam for stacked parameters, with a step count per member.

    Reproduces ``torch.optim.Adam(lr, foreach=False)`` (``_single_tensor_adam``) for every
    member: ``exp_avg.lerp_``, ``exp_avg_sq.mul_().addcmul_()``, ``denom = sqrt(exp_avg_sq) /
    sqrt(bias_correction2) + eps`` and ``param.addcdiv_(exp_avg, denom, -step_size)``, with the
    bias corrections computed in Python (double precision) from the member's own step count.

    Two ways, the same arithmetic:

    - ``per_member`` (the default on the CPU): Adam's own calls on each member's slices. The
      update is memory-bound, and one member's slices stay in cache where the stacked tensors
      of a large ensemble do not.
    - stacked (the default on CUDA): one call per tensor for all members. The bias corrections
      are tabulated per step number as Adam's kernels round them (to float32) and looked up per
      member on the device; ``addcdiv_`` is spelled out in its evaluation order,
      ``param + (value * exp_avg) / denom``. No host synchronisation, so it can be captured in a
      CUDA graph.
    """

    def __init__(self, params: Sequence[torch.Tensor], n_members: int, lr: float,
                 max_steps: int, per_member: bool | None = None):
        self.params = list(params)
        device = self.params[0].device
        self.lr = lr
        self.per_member = device.type == "cpu" if per_member is None else per_member
        self.exp_avg = [torch.zeros_like(p, memory_format=torch.preserve_format)
                        for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p, memory_format=torch.preserve_format)
                           for p in self.params]
        self.steps = torch.zeros(n_members, dtype=torch.int64, device=device)
        self.host_steps = [0] * n_members  # per_member only (the stacked way uses self.steps)
        self.neg_step_size = self.bc2_sqrt = None
        if not self.per_member:
            # Index 0 is never used for an update (a member's first update is step 1).
            neg_step_size, bc2_sqrt = [float("nan")], [float("nan")]
            for s in range(1, max_steps + 1):
                step_size, bc2 = self._scalars(s)
                neg_step_size.append(-step_size)
                bc2_sqrt.append(bc2)
            self.neg_step_size = torch.tensor(neg_step_size, dtype=torch.float64).float().to(
                device)
            self.bc2_sqrt = torch.tensor(bc2_sqrt, dtype=torch.float64).float().to(device)

    def _scalars(self, step: int) -> tuple[float, float]:
        """(step_size, sqrt(bias_correction2)) as _single_tensor_adam computes them."""
        step = float(step)  # Adam keeps its step count in a float tensor
        bias_correction1 = 1 - ADAM_BETA1 ** step
        bias_correction2 = 1 - ADAM_BETA2 ** step
        return self.lr / bias_correction1, bias_correction2 ** 0.5

    def state_tensors(self) -> list[torch.Tensor]:
        return [*self.params, *self.exp_avg, *self.exp_avg_sq, self.steps]

    @torch.no_grad()
    def step(self, grads: Sequence[torch.Tensor], active: Sequence[int] | None = None,
             active_index: torch.Tensor | None = None) -> None:
        """One Adam step of every member (``active`` None; ``grads`` [M, ...]) or only of the
        members listed in ``active`` (``grads`` [len(active), ...], in that order); the others
        are left untouched (weights, moments and step count). ``active_index``: ``active`` as
        an int64 tensor on the device, when the caller has one (no host-to-device copy)."""
        members = range(len(self.host_steps)) if active is None else list(active)
        if self.per_member:
            for m in members:
                self.host_steps[m] += 1
            self.steps.copy_(torch.tensor(self.host_steps))
            for j, m in enumerate(members):
                step_size, bc2_sqrt = self._scalars(self.host_steps[m])
                for p, g, m1, m2 in zip(self.params, grads, self.exp_avg, self.exp_avg_sq):
                    m1[m].lerp_(g[j], 1 - ADAM_BETA1)
                    m2[m].mul_(ADAM_BETA2).addcmul_(g[j], g[j], value=1 - ADAM_BETA2)
                    denom = (m2[m].sqrt() / bc2_sqrt).add_(ADAM_EPS)
                    p[m].addcdiv_(m1[m], denom, value=-step_size)
            return
        if active is None:
            self.steps += 1
            nss = self.neg_step_size.index_select(0, self.steps)
            bc2 = self.bc2_sqrt.index_select(0, self.steps)
            for p, g, m1, m2 in zip(self.params, grads, self.exp_avg, self.exp_avg_sq):
                _stacked_adam_update(p, g, m1, m2, nss, bc2)
            return
        idx = (active_index if active_index is not None
               else torch.tensor(members, dtype=torch.int64).to(self.steps.device))
        self.steps.index_add_(0, idx, torch.ones_like(idx))
        steps = self.steps.index_select(0, idx)
        nss = self.neg_step_size.index_select(0, steps)
        bc2 = self.bc2_sqrt.index_select(0, steps)
        for p, g, m1, m2 in zip(self.params, grads, self.exp_avg, self.exp_avg_sq):
            sub = [t.index_select(0, idx) for t in (p, m1, m2)]
            _stacked_adam_update(sub[0], g, sub[1], sub[2], nss, bc2)
            for full, part in zip((p, m1, m2), sub):
                full.index_copy_(0, idx, part)


def _stacked_adam_update(p, g, exp_avg, exp_avg_sq, neg_step_size, bc2_sqrt) -> None:
    shape = (-1,) + (1,) * (p.dim() - 1)
    exp_avg.lerp_(g, 1 - ADAM_BETA1)
    exp_avg_sq.mul_(ADAM_BETA2).addcmul_(g, g, value=1 - ADAM_BETA2)
    denom = (exp_avg_sq.sqrt() / bc2_sqrt.view(shape)).add_(ADAM_EPS)
    p.add_(neg_step_size.view(shape) * exp_avg / denom)


# --------------------------------------------------------------------------- one epoch's plan

def _epoch_plan(train_idx: Sequence[torch.Tensor], order_gens, batch_size: int, n_steps: int):
    """Every member's shuffled batches of one epoch, drawn exactly as ``train_vae`` draws them.

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


# --------------------------------------------------------------------------- training

class _GraphedStep:
    """The full-batch training step of every member captured as one CUDA graph.

    Static inputs: ``gidx`` (rows of x_all) and ``eps`` (noise, filled from each member's own
    generator before every replay). Capture needs a few eager warm-up iterations, which update
    the training state: it is saved before them and restored after, so that capturing leaves
    every member exactly where it was.
    """

    def __init__(self, step_fn, x_all, n_members, batch_size, z_dim, state, total):
        device = x_all.device
        self.step_fn = step_fn
        self.gidx = torch.zeros(n_members, batch_size, dtype=torch.int64, device=device)
        self.eps = torch.zeros(n_members, batch_size, z_dim, device=device)
        # 1 / batch_size computed on the CPU, as in _epoch_plan
        self.weight = (torch.ones(n_members, batch_size)
                       / torch.tensor(float(batch_size))).to(device)
        saved = [t.detach().clone() for t in state]
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(3):
                self._body()
        torch.cuda.current_stream(device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(self.graph):
                self._body()
        finally:
            with torch.no_grad():
                for t, v in zip(state, saved):
                    t.copy_(v)
                total.zero_()

    def _body(self):
        self.step_fn(self.gidx, self.eps, self.weight, None)

    def run(self, gidx: torch.Tensor, noise_gens) -> None:
        self.gidx.copy_(gidx)
        for m, gen in enumerate(noise_gens):
            self.eps[m].normal_(generator=gen)
        self.graph.replay()


def train_ensemble(x_all: torch.Tensor, members: Sequence[EnsembleMember], *,
                   hidden: Sequence[int], z_dim: int, epochs: int, batch_size: int,
                   learning_rate: float, cuda_graphs: bool = False,
                   snapshot: Path | None = None, snapshot_every: int = 0,
                   data_digest: str | None = None) -> list[tuple[VAE, History]]:
    """Train one VAE per member, all at once; return each member's (model, history).

    ``x_all`` holds every training image (float pixels in [0, 1]) on the training device; each
    member trains on ``x_all[member.train_idx]`` exactly as :func:`~vae_novelty.train.train_vae`
    would with that member's seed, and is evaluated on ``member.x_test`` after every epoch.
    Raises :class:`~vae_novelty.train.TrainingDiverged` naming the member whose training loss
    is not finite.

    With ``snapshot`` set, the whole ensemble's state (stacked weights, Adam moments and step
    counts, every member's generators and history) is saved every ``snapshot_every`` epochs,
    and training resumes from that file when it exists and was written for the same run: the
    same settings, members (tags, seeds of the data order and noise) and training rows (a
    SHA-256 of each member's ``train_idx``, and ``data_digest``, a digest of the training
    images, by default :func:`~vae_novelty.train.content_digest` of ``x_all``). The result is
    bitwise the same as an uninterrupted run. A snapshot of another run, or one that cannot be
    read or applied, is deleted with a log line and training starts afresh
    (:func:`~vae_novelty.train.load_snapshot`).
    """
    device = x_all.device
    n_members = len(members)
    if n_members == 0:
        return []
    models = []
    for member in members:
        model = VAE(hidden, z_dim)
        init_parameters(model, torch.Generator().manual_seed(member.seed))
        models.append(model)
    net = StackedVAE(models, device)
    params = net.parameters()
    train_idx = [m.train_idx.detach().to("cpu", torch.int64) for m in members]
    n_train = [len(idx) for idx in train_idx]
    if min(n_train) == 0:
        raise ValueError("every ensemble member needs at least one training image")
    steps_per_epoch = [math.ceil(n / batch_size) for n in n_train]
    n_steps = max(steps_per_epoch)
    adam = StackedAdam(params, n_members, learning_rate, epochs * n_steps)
    order_gens = [torch.Generator().manual_seed(m.seed + ORDER_OFFSET) for m in members]
    noise_gens = [torch.Generator(device=device).manual_seed(m.seed + NOISE_OFFSET)
                  for m in members]
    eval_models = [VAE(hidden, z_dim).to(device).eval() for _ in members]
    histories = [History() for _ in members]
    total = torch.zeros(n_members, dtype=torch.float64, device=device)
    computed = 0  # rows computed per epoch: members whose epoch is over are left out
    for s in range(n_steps):
        rows = [min(batch_size, n - s * batch_size) for n in n_train if n > s * batch_size]
        computed += len(rows) * max(rows)
    log.info("ensemble of %d members, %s training images, %s steps per epoch (%.1f%% of the "
             "batched rows are padding)", n_members, n_train, steps_per_epoch,
             100 * (1 - sum(n_train) / computed))

    # Subsets of members still in their epoch (only in an epoch's last steps, when the
    # members' training sets differ in size), as device index tensors made once each.
    member_index: dict[tuple[int, ...], torch.Tensor] = {}

    def device_index(active: tuple[int, ...]) -> torch.Tensor:
        if active not in member_index:
            member_index[active] = torch.tensor(active, dtype=torch.int64).to(device)
        return member_index[active]

    def train_step(gidx, eps, weight, active):
        # gidx [A, B]: rows of x_all; eps [A, B, z]; weight [A, B] (0 on padding), for the
        # members in ``active`` (None: all M); the others' epochs are over and are skipped
        if active is None:
            weights, biases = net.weights, net.biases
            idx = None
        else:
            idx = device_index(tuple(active))
            weights, biases = ([t.detach().index_select(0, idx).requires_grad_() for t in ts]
                               for ts in (net.weights, net.biases))
        xb = x_all.index_select(0, gidx.reshape(-1)).view(*gidx.shape, x_all.shape[-1])
        logits, mean, logvar = net.forward(xb, eps, weights, biases)
        per_image = negative_elbo(xb, logits, mean, logvar)  # [A, B]
        loss = (per_image * weight).sum()
        grads = torch.autograd.grad(loss, [t for pair in zip(weights, biases) for t in pair])
        adam.step(grads, active, idx)
        with torch.no_grad():  # as train_vae's loss_sum, over real rows only
            sums = torch.where(weight > 0, per_image, 0.0).sum(-1).double()
            if active is None:
                total.add_(sums)
            else:
                total.index_add_(0, idx, sums)

    graphed = None
    if cuda_graphs and device.type == "cuda":
        try:
            graphed = _GraphedStep(train_step, x_all, n_members, batch_size, z_dim,
                                   adam.state_tensors(), total)
            log.info("full-batch training step captured as a CUDA graph")
        except RuntimeError as exc:  # pragma: no cover - needs a GPU
            log.warning("CUDA graph capture failed (%s); training without CUDA graphs", exc)
            graphed = None
    elif cuda_graphs:
        log.info("cuda_graphs is set but the device is %s: ignored", device)

    key = None
    if snapshot is not None:
        key = {"hidden": list(hidden), "z_dim": z_dim, "epochs": epochs,
               "batch_size": batch_size, "learning_rate": learning_rate,
               "seeds": [m.seed for m in members], "tags": [m.tag for m in members],
               "order_seeds": [m.seed + ORDER_OFFSET for m in members],
               "noise_seeds": [m.seed + NOISE_OFFSET for m in members], "n_train": n_train,
               "train_rows": [rows_digest(idx) for idx in train_idx],
               "train_data": data_digest if data_digest is not None else content_digest(x_all)}
    state = _EnsembleState(adam, order_gens, noise_gens, histories)
    start_epoch = 1
    if snapshot is not None and Path(snapshot).exists():
        start_epoch = state.restore(snapshot, key)
        if start_epoch > 1:
            log.info("ensemble resumed from snapshot %s at epoch %d", snapshot, start_epoch)
    clock = SnapshotClock(snapshot_every if snapshot is not None else 0, epochs)
    t_start = time.perf_counter()
    notes = ProgressLog(f"ensemble of {n_members}")
    for epoch in range(start_epoch, epochs + 1):
        t0 = time.perf_counter()
        gidx_all, weight_all, rows_all = _epoch_plan(train_idx, order_gens, batch_size, n_steps)
        gidx_all, weight_all = gidx_all.to(device), weight_all.to(device)
        total.zero_()
        for s in range(n_steps):
            notes.note((epoch - start_epoch + s / n_steps) / (epochs - start_epoch + 1),
                       f"epoch {epoch}/{epochs}, step {s}/{n_steps}")
            rows = rows_all[s]
            if all(r == batch_size for r in rows):
                if graphed is not None:
                    graphed.run(gidx_all[s], noise_gens)
                    continue
                eps = torch.empty(n_members, batch_size, z_dim, device=device)
                for m, gen in enumerate(noise_gens):
                    eps[m].normal_(generator=gen)
                train_step(gidx_all[s], eps, weight_all[s], None)
                continue
            # a short last batch: pad to the longest batch of this step, skip the members
            # whose epoch is over
            width = max(rows)
            active = [m for m, r in enumerate(rows) if r]
            eps = torch.zeros(len(active), width, z_dim, device=device)
            for j, m in enumerate(active):
                eps[j, :rows[m]].normal_(generator=noise_gens[m])
            if len(active) == n_members:
                train_step(gidx_all[s, :, :width], eps, weight_all[s, :, :width], None)
            else:
                sel = device_index(tuple(active))
                train_step(gidx_all[s, :, :width].index_select(0, sel), eps,
                           weight_all[s, :, :width].index_select(0, sel), active)
        if is_evaluated(epoch, epochs):
            totals = total.tolist()
            train_losses = [t / n for t, n in zip(totals, n_train)]
            for member, loss in zip(members, train_losses):
                _check_finite(loss, epoch, "training", tag=member.tag)
            seconds = time.perf_counter() - t0
            for m, member in enumerate(members):
                model = net.copy_member_into(m, eval_models[m])
                test_loss = mean_neg_elbo(model, member.x_test, member.seed)
                histories[m].rows.append({"epoch": epoch, "train_neg_elbo": train_losses[m],
                                          "test_neg_elbo": test_loss})
                log.info("%s epoch %d/%d train -ELBO %.3f test -ELBO %.3f (ensemble epoch "
                         "%.2fs)", member.tag, epoch, epochs, train_losses[m], test_loss,
                         seconds)
            log.info("ensemble epoch %d/%d done: %s", epoch, epochs,
                     progress(time.perf_counter() - t_start, epoch - start_epoch + 1,
                              epochs - epoch))
        if clock.due(epoch):
            state.save(snapshot, key, epoch)
    return list(zip(eval_models, histories))


class _EnsembleState:
    """Everything an ensemble needs to resume bitwise: parameters, Adam, generators, history."""

    def __init__(self, adam: StackedAdam, order_gens, noise_gens, histories):
        self.adam, self.order_gens, self.noise_gens = adam, order_gens, noise_gens
        self.histories = histories

    def save(self, path: Path, key: dict, epoch: int) -> None:
        from .model import write_torch_atomic

        payload = {"format": ENSEMBLE_SNAPSHOT_FORMAT, "key": key, "epoch": epoch,
                   **self._state()}
        write_torch_atomic(payload, path)
        log.info("ensemble snapshot written at epoch %d: %s", epoch, path)

    def _tensors(self) -> list[torch.Tensor]:
        a = self.adam
        return [*a.params, *a.exp_avg, *a.exp_avg_sq, a.steps]

    def _state(self) -> dict:
        """A copy of the resumable state (tensors on the CPU): what a snapshot holds."""
        return {"tensors": [t.detach().to("cpu", copy=True) for t in self._tensors()],
                "host_steps": list(self.adam.host_steps),
                "order_gens": [g.get_state() for g in self.order_gens],
                "noise_gens": [g.get_state() for g in self.noise_gens],
                "histories": [list(h.rows) for h in self.histories]}

    def _apply(self, state: dict) -> None:
        """Set the state from :meth:`_state`'s form (a snapshot's payload or a backup)."""
        with torch.no_grad():
            for t, value in zip(self._tensors(), state["tensors"]):
                t.copy_(value)
        self.adam.host_steps[:] = [int(x) for x in state["host_steps"]]
        for g, st in zip(self.order_gens, state["order_gens"]):
            g.set_state(st)
        for g, st in zip(self.noise_gens, state["noise_gens"]):
            g.set_state(st)
        for h, rows in zip(self.histories, state["histories"]):
            h.rows[:] = rows

    def restore(self, path: Path, key: dict) -> int:
        """Resume from the snapshot ``path`` when it belongs to this run (``key``): the next
        epoch. Otherwise (another run, unreadable, or content that does not fit) the file is
        deleted with a log line, the state is left as it was and the result is 1."""
        payload = load_snapshot(path, ENSEMBLE_SNAPSHOT_FORMAT, key)
        if payload is None:
            return 1
        a = self.adam
        tensors = self._tensors()
        backup = self._state()
        try:
            saved = payload["tensors"]
            counts = {"tensors": (len(saved), len(tensors)),
                      "host_steps": (len(payload["host_steps"]), len(a.host_steps)),
                      "order_gens": (len(payload["order_gens"]), len(self.order_gens)),
                      "noise_gens": (len(payload["noise_gens"]), len(self.noise_gens)),
                      "histories": (len(payload["histories"]), len(self.histories))}
            wrong = {k: v for k, v in counts.items() if v[0] != v[1]}
            if wrong:
                raise ValueError(", ".join(f"{k}: {got} saved, {want} expected"
                                           for k, (got, want) in wrong.items()))
            for t, value in zip(tensors, saved):
                if tuple(value.shape) != tuple(t.shape):
                    raise ValueError(f"a tensor of shape {tuple(value.shape)}, expected "
                                     f"{tuple(t.shape)}")
            self._apply(payload)
            return int(payload["epoch"]) + 1
        except Exception as exc:  # put back the state as it was before: nothing half-applied
            self._apply(backup)
            discard_snapshot(path, f"cannot be applied ({type(exc).__name__}: {exc})")
            return 1


def train_ensemble_jobs(mnist, splits: dict, jobs: list[ModelJob], *, arch: str,
                        hidden: Sequence[int], z_dim: int, epochs: int, batch_size: int,
                        learning_rate: float, device: torch.device,
                        cuda_graphs: bool = False, snapshot_dir: Path | None = None,
                        snapshot_every: int = 0) -> None:
    """Train every model of one architecture as one ensemble, then write each model file and
    its per-epoch history (CSV) atomically, exactly as :func:`~vae_novelty.train.train_jobs`
    writes them."""
    from .data import to_float

    x_all = torch.from_numpy(to_float(mnist.train_images)).to(device)
    x_test_all = torch.from_numpy(to_float(mnist.test_images)).to(device)
    members = []
    for job in jobs:
        split = splits[job.split]
        tag = model_id(arch, job.split, job.seed)
        x_test = x_test_all[torch.from_numpy(split.test_idx).to(device)]
        members.append(EnsembleMember(torch.from_numpy(split.train_idx), x_test, job.seed, tag))
        log.info("%s: %d training images, %d test images", tag, len(split.train_idx),
                 len(x_test))
    snap = Path(snapshot_dir) / "ensemble.pt" if snapshot_dir else None
    results = train_ensemble(x_all, members, hidden=hidden, z_dim=z_dim, epochs=epochs,
                             batch_size=batch_size, learning_rate=learning_rate,
                             cuda_graphs=cuda_graphs, snapshot=snap,
                             snapshot_every=snapshot_every,
                             data_digest=content_digest(mnist.train_images) if snap else None)
    for job, member, (model, history) in zip(jobs, members, results):
        cfg = TrainConfig(hidden, z_dim, epochs, batch_size, learning_rate, job.seed)
        write_model_outputs(job, model, history, arch=arch,
                            heldout_digit=splits[job.split].heldout_digit,
                            n_train=len(member.train_idx), cfg=cfg, device=device,
                            trainer="ensemble", train_rows=splits[job.split].train_idx,
                            data=mnist.fingerprint)
    if snap is not None and snap.exists():
        snap.unlink()
