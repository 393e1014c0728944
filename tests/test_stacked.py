"""Tests of vae_novelty.stacked found by mutation testing (bench/mutation.sh stacked;
docs/benchmarks/mutation.md). The stacked model and optimiser are checked against single
models and torch's Adam in tests/test_ensemble.py."""

from __future__ import annotations

import torch

from vae_novelty.model import VAE
from vae_novelty.stacked import StackedAdam, StackedVAE


def _models(n=3):
    torch.manual_seed(0)
    return [VAE([4], 2, x_dim=5) for _ in range(n)]


def test_stacked_vae_counts_its_members_and_defaults_to_all_of_them():
    stacked = StackedVAE(_models(), torch.device("cpu"))
    assert stacked.n_members == 3
    x, eps = torch.rand(3, 2, 5), torch.randn(3, 2, 2)
    default = stacked.forward(x, eps)
    explicit = stacked.forward(x, eps, stacked.weights, stacked.biases)
    for a, b in zip(default, explicit):
        assert torch.equal(a, b)


def test_stacked_adam_defaults_to_per_member_on_the_cpu():
    params = StackedVAE(_models(), torch.device("cpu")).parameters()
    assert StackedAdam(params, 3, 1e-3, 5).per_member is True
    assert StackedAdam(params, 3, 1e-3, 5, per_member=False).per_member is False


def test_stacked_adam_table_reaches_max_steps():
    # the stacked way looks its bias corrections up by step number: steps 1..max_steps, each
    # equal to Adam's own (float32) for a single member
    params = [torch.zeros(2, 3)]
    opt = StackedAdam(params, 2, 0.1, max_steps=4, per_member=False)
    for _ in range(4):
        opt.step([torch.ones(2, 3)])
    assert opt.steps.tolist() == [4, 4]
    ref = torch.zeros(3, requires_grad=True)
    adam = torch.optim.Adam([ref], lr=0.1, foreach=False)
    for _ in range(4):
        ref.grad = torch.ones(3)
        adam.step()
    assert torch.equal(params[0][0], ref.detach()) and torch.equal(params[0][1], ref.detach())
