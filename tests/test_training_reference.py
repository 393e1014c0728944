"""Both trainers' steps against a slow reference that shares no code with them.

The reference is written out here: the VAE's forward pass layer by layer, the per-image
negative ELBO from its formula, a plain loop over the images of each batch of one epoch, and
the gradient of the batch's *mean* loss by ``torch.func.grad``, all in float64. The batches and
the noise come from the streams the trainers document (``seed + ORDER_OFFSET``,
``seed + NOISE_OFFSET``). The training set sizes are not multiples of the batch size, so the
last batch of an epoch is short and its loss must be divided by its own length: a trainer that
divided it by the batch size (in ``train_vae`` and in the ensemble's weights together, which
the trainers' agreement with each other cannot notice) fails here.

Each trainer's optimiser is wrapped to record the parameters and gradients it is handed at
every step, then steps as before.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.func import grad

from vae_novelty import ensemble
from vae_novelty.ensemble import EnsembleMember, train_ensemble
from vae_novelty.hyperparams import TrainSettings
from vae_novelty.train import NOISE_OFFSET, ORDER_OFFSET, train_vae

HIDDEN, Z_DIM, BATCH = (6, 5), 2, 4
LR = 1e-3


def _images(n: int, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.random((n, 784), dtype=np.float32))


def _loss_one_image(params: list[torch.Tensor], x: torch.Tensor, e: torch.Tensor):
    """-ELBO of one image with one noise draw: params are (weight, bias) pairs in the order
    encoder layers, mean head, log-variance head, decoder layers."""
    pairs = list(zip(params[0::2], params[1::2]))
    n_enc = len(HIDDEN)
    h = x
    for w, b in pairs[:n_enc]:
        h = torch.clamp(w @ h + b, min=0.0)
    mean = pairs[n_enc][0] @ h + pairs[n_enc][1]
    logvar = pairs[n_enc + 1][0] @ h + pairs[n_enc + 1][1]
    z = mean + torch.exp(logvar / 2) * e
    dec = pairs[n_enc + 2 :]
    for i, (w, b) in enumerate(dec):
        z = w @ z + b
        if i < len(dec) - 1:
            z = torch.clamp(z, min=0.0)
    logits = z
    # -log Bernoulli(x | sigmoid(l)) = log(1 + e^l) - x l, summed over pixels
    bce = (torch.log1p(torch.exp(-logits.abs())) + torch.clamp(logits, min=0.0) - x * logits).sum()
    kl = 0.5 * (mean**2 + torch.exp(logvar) - 1.0 - logvar).sum()
    return bce + kl


def _batch_mean_loss(params, xb, eb):
    total = 0.0
    for i in range(len(xb)):  # a plain loop over the images of the batch
        total = total + _loss_one_image(params, xb[i], eb[i])
    return total / len(xb)


def _reference_epoch(n: int, seed: int):
    """The (row indices, noise) of each step of the first epoch, drawn from the documented
    streams: a shuffle of range(n) cut into batches of BATCH (the last one shorter), and one
    standard normal draw per image and latent dimension, batch after batch."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + ORDER_OFFSET))
    noise = torch.Generator().manual_seed(seed + NOISE_OFFSET)
    steps = []
    for start in range(0, n, BATCH):
        rows = order[start : start + BATCH]
        steps.append((rows, torch.randn(len(rows), Z_DIM, generator=noise)))
    return steps


def _check_step(params, grads, x, rows, eps):
    """The recorded gradient of one step against the reference at the same parameters."""
    p64 = [p.detach().double() for p in params]
    want = grad(_batch_mean_loss)(p64, x[rows].double(), eps.double())
    scale = max(float(w.abs().max()) for w in want)
    assert scale > 0
    err = max(float((g.double() - w).abs().max()) for g, w in zip(grads, want))
    assert err <= 1e-4 * scale, f"gradient off by {err:.3g} (largest entry {scale:.3g})"


def _epoch_loss(steps_params, x, steps):
    """The mean -ELBO over the epoch's images, each at the parameters of its own step."""
    with torch.no_grad():
        total = sum(
            float(_batch_mean_loss([p.double() for p in params], x[rows].double(), eps.double()))
            * len(rows)
            for params, (rows, eps) in zip(steps_params, steps)
        )
    return total / sum(len(rows) for rows, _ in steps)


def test_train_vae_steps_match_the_reference_with_a_short_last_batch(monkeypatch):
    n, seed = 7, 3  # batches of 4 and 3
    x = _images(n)
    recorded = []

    class RecordingAdam(torch.optim.Adam):
        def step(self, closure=None):
            params = [p for group in self.param_groups for p in group["params"]]
            recorded.append(
                ([p.detach().clone() for p in params], [p.grad.detach().clone() for p in params])
            )
            return super().step(closure)

    monkeypatch.setattr(torch.optim, "Adam", RecordingAdam)
    _, history = train_vae(
        x, _images(2, 1), TrainSettings(list(HIDDEN), Z_DIM, 1, BATCH, LR), seed=seed
    )
    steps = _reference_epoch(n, seed)
    assert [len(rows) for rows, _ in steps] == [4, 3]
    assert len(recorded) == len(steps)
    for (params, grads), (rows, eps) in zip(recorded, steps):
        _check_step(params, grads, x, rows, eps)
    want = _epoch_loss([params for params, _ in recorded], x, steps)
    assert abs(history.rows[0]["train_neg_elbo"] - want) <= 1e-5 * abs(want)


def test_ensemble_steps_match_the_reference_with_short_last_batches(monkeypatch):
    sizes, seeds = (7, 5, 3), (0, 1, 2)  # batches (4, 3), (4, 1), (3)
    x_all = _images(20)
    rng = np.random.default_rng(4)
    train_idx = [torch.from_numpy(rng.choice(20, size, replace=False)) for size in sizes]
    recorded = []

    class RecordingAdam(ensemble.StackedAdam):
        def step(self, grads, active=None, active_index=None):
            recorded.append(
                (
                    [p.detach().clone() for p in self.params],
                    [g.detach().clone() for g in grads],
                    list(range(len(sizes))) if active is None else list(active),
                )
            )
            return super().step(grads, active, active_index)

    monkeypatch.setattr(ensemble, "StackedAdam", RecordingAdam)
    members = [
        EnsembleMember(idx, _images(2, 1), seed, f"m{k}")
        for k, (idx, seed) in enumerate(zip(train_idx, seeds))
    ]
    results = train_ensemble(x_all, members, TrainSettings(list(HIDDEN), Z_DIM, 1, BATCH, LR))
    assert [active for _, _, active in recorded] == [[0, 1, 2], [0, 1]]
    for m, (idx, seed) in enumerate(zip(train_idx, seeds)):
        x = x_all[idx]
        steps = _reference_epoch(len(idx), seed)
        mine = [(params, grads, active) for params, grads, active in recorded if m in active]
        assert len(mine) == len(steps)
        member_params = []
        for (params, grads, active), (rows, eps) in zip(mine, steps):
            j = active.index(m)
            member_params.append([p[m] for p in params])
            _check_step(member_params[-1], [g[j] for g in grads], x, rows, eps)
        want = _epoch_loss(member_params, x, steps)
        got = results[m][1].rows[0]["train_neg_elbo"]
        assert abs(got - want) <= 1e-5 * abs(want), m
