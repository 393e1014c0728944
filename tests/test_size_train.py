"""The size sweep's fixed budget of gradient steps: a small N trains as many steps as a large
one (counted on the trainer's optimizer), and the model files record the epochs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vae_novelty import stacked
from vae_novelty.model import load_model
from vae_novelty.size_splits import make_size_splits
from vae_novelty.size_train import train_size_models
from vae_novelty.training_jobs import ModelJob


@pytest.mark.parametrize("ensemble", [True, False])
def test_every_size_gets_the_same_number_of_steps(mnist, tmp_path, monkeypatch, ensemble):
    splits = make_size_splits(
        mnist.train_labels,
        mnist.test_labels,
        [100, 300],
        seed=0,
        eval_per_digit=2,
        eval_seed=0,
        data=mnist.fingerprint,
    )
    jobs = [
        ModelJob(
            name, seed, tmp_path / f"{name}_s{seed}.pt", tmp_path / f"{name}_s{seed}.history.csv"
        )
        for name in ("A100", "B100", "A300")
        for seed in (0, 1)
    ]
    steps = {}  # member -> steps taken, counted where the optimizers step
    if ensemble:
        original = stacked.StackedAdam.step

        def counting(self, grads, active, idx):
            members = range(len(self.host_steps)) if active is None else active
            key = self  # the object itself: an id can be reused after collection
            for m in members:
                steps[(key, m)] = steps.get((key, m), 0) + 1
            return original(self, grads, active, idx)

        monkeypatch.setattr(stacked.StackedAdam, "step", counting)
    else:
        original = torch.optim.Adam.step

        def counting(self, *args, **kwargs):
            steps[self] = steps.get(self, 0) + 1
            return original(self, *args, **kwargs)

        monkeypatch.setattr(torch.optim.Adam, "step", counting)
    epochs = train_size_models(
        mnist,
        splits,
        jobs,
        arch="t",
        hidden=[8],
        z_dim=2,
        steps=6,
        batch_size=50,
        learning_rate=1e-3,
        device=torch.device("cpu"),
        ensemble=ensemble,
    )
    assert epochs == {100: 3, 300: 1}
    # six models, each with six steps (N = 100: 3 epochs of 2; N = 300: 1 epoch of 6)
    assert sorted(steps.values()) == [6] * 6
    for job in jobs:
        _, meta = load_model(job.model_path)
        n = len(splits[job.split].train_idx)
        assert meta["train_config"]["epochs"] * -(-n // 50) == 6
        history = np.loadtxt(job.history_path, delimiter=",", skiprows=1, ndmin=2)
        assert history[-1, 0] == {100: 3, 300: 1}[n]


def test_a_budget_that_is_not_whole_epochs_trains_nothing(mnist, tmp_path):
    splits = make_size_splits(
        mnist.train_labels,
        mnist.test_labels,
        [100, 300],
        seed=0,
        eval_per_digit=2,
        eval_seed=0,
        data=mnist.fingerprint,
    )
    jobs = [ModelJob(n, 0, tmp_path / f"{n}.pt", tmp_path / f"{n}.csv") for n in ("A100", "A300")]
    with pytest.raises(ValueError, match="not a whole number of epochs for N = 300"):
        train_size_models(
            mnist,
            splits,
            jobs,
            arch="t",
            hidden=[8],
            z_dim=2,
            steps=4,
            batch_size=50,
            learning_rate=1e-3,
            device=torch.device("cpu"),
        )
    assert not any(tmp_path.iterdir())
