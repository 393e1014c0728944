"""The vectorised math of an ensemble: M VAEs of one architecture as stacked tensors.

The M models ("members") share their shapes, so their weights are stacked into
``[M, out, in]`` tensors and every layer of all members is one batched matrix product
(``torch.baddbmm`` / ``torch.bmm``): :class:`StackedVAE`. :class:`StackedAdam` updates the
stacked parameters with the arithmetic of ``torch.optim.Adam(foreach=False)``, with a step
count per member, so that a member can be left out of a step.

Both are written so that one member computes exactly what a lone :class:`~vae_novelty.model.VAE`
and its Adam compute on the CPU: the backward pass of the stacked linear layer is written by
hand so that its matrix products have the same operand layouts as the ones autograd runs for
``nn.Linear``. With more members, results match to float32 rounding: a vectorised CPU kernel
can round an element differently depending on where it falls in a larger tensor (SIMD body or
scalar tail), and a batched product of small matrices is split across threads differently from
a single one. The training loop that uses them is :mod:`vae_novelty.ensemble`.
"""

from __future__ import annotations

from typing import Sequence

import torch

from .model import VAE

# torch.optim.Adam's defaults, which train_vae uses.
ADAM_BETA1, ADAM_BETA2 = 0.9, 0.999
ADAM_EPS = 1e-8


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
        self.weights = [
            torch.stack([ls[i].weight.detach() for ls in layers]).to(device).requires_grad_()
            for i in range(len(layers[0]))
        ]
        self.biases = [
            torch.stack([ls[i].bias.detach() for ls in layers]).to(device).requires_grad_()
            for i in range(len(layers[0]))
        ]
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

    def __init__(
        self,
        params: Sequence[torch.Tensor],
        n_members: int,
        lr: float,
        max_steps: int,
        per_member: bool | None = None,
    ):
        self.params = list(params)
        device = self.params[0].device
        self.lr = lr
        self.per_member = device.type == "cpu" if per_member is None else per_member
        self.exp_avg = [
            torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params
        ]
        self.exp_avg_sq = [
            torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params
        ]
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
            self.neg_step_size = torch.tensor(neg_step_size, dtype=torch.float64).float().to(device)
            self.bc2_sqrt = torch.tensor(bc2_sqrt, dtype=torch.float64).float().to(device)

    def _scalars(self, step: int) -> tuple[float, float]:
        """(step_size, sqrt(bias_correction2)) as _single_tensor_adam computes them."""
        step = float(step)  # Adam keeps its step count in a float tensor
        bias_correction1 = 1 - ADAM_BETA1**step
        bias_correction2 = 1 - ADAM_BETA2**step
        return self.lr / bias_correction1, bias_correction2**0.5

    def state_tensors(self) -> list[torch.Tensor]:
        return [*self.params, *self.exp_avg, *self.exp_avg_sq, self.steps]

    @torch.no_grad()
    def step(
        self,
        grads: Sequence[torch.Tensor],
        active: Sequence[int] | None = None,
        active_index: torch.Tensor | None = None,
    ) -> None:
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
        idx = (
            active_index
            if active_index is not None
            else torch.tensor(members, dtype=torch.int64).to(self.steps.device)
        )
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
    """One Adam update of stacked tensors ``[M, ...]`` with per-member ``neg_step_size`` and
    ``bc2_sqrt`` ``[M]`` (float32, as :class:`StackedAdam` tabulates them)."""
    shape = (-1,) + (1,) * (p.dim() - 1)
    exp_avg.lerp_(g, 1 - ADAM_BETA1)
    exp_avg_sq.mul_(ADAM_BETA2).addcmul_(g, g, value=1 - ADAM_BETA2)
    denom = (exp_avg_sq.sqrt() / bc2_sqrt.view(shape)).add_(ADAM_EPS)
    p.add_(neg_step_size.view(shape) * exp_avg / denom)


class GraphedStep:
    """The full-batch training step of every member of a stacked model (``step_fn(gidx, eps,
    weight, None)``: forward, backward, :class:`StackedAdam`) captured as one CUDA graph, for
    :mod:`vae_novelty.ensemble`.

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
        # 1 / batch_size computed on the CPU, as the ensemble's epoch plan does
        self.weight = (torch.ones(n_members, batch_size) / torch.tensor(float(batch_size))).to(
            device
        )
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
