"""The MLP VAE of the paper: Bernoulli likelihood, diagonal Gaussian posterior, N(0, I) prior.

Encoder: Linear + ReLU per hidden layer, then two linear heads giving the posterior mean and
log-variance. Decoder: the hidden widths reversed, Linear + ReLU, then a linear layer giving the
784 Bernoulli logits (sigmoid of the logits = Bernoulli means).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

X_DIM = 784
MODEL_FORMAT = "vae-novelty-model/1"


def mlp(widths: Sequence[int]) -> nn.Sequential:
    """Linear + ReLU between consecutive widths (no activation after the last layer)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class VAE(nn.Module):
    def __init__(self, hidden: Sequence[int], z_dim: int, x_dim: int = X_DIM):
        super().__init__()
        hidden = [int(h) for h in hidden]
        if not hidden or min(hidden) < 1 or z_dim < 1:
            raise ValueError(f"invalid architecture hidden={hidden} z_dim={z_dim}")
        self.hidden, self.z_dim, self.x_dim = hidden, int(z_dim), int(x_dim)
        self.encoder_body = nn.Sequential(mlp([x_dim, *hidden]), nn.ReLU())
        self.fc_mean = nn.Linear(hidden[-1], z_dim)
        self.fc_logvar = nn.Linear(hidden[-1], z_dim)
        self.decoder = mlp([z_dim, *reversed(hidden), x_dim])

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder_body(x)
        return self.fc_mean(h), self.fc_logvar(h)

    @staticmethod
    def reparameterize(mean: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        return mean + torch.exp(0.5 * logvar) * eps

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Bernoulli means x_hat in (0, 1)."""
        return torch.sigmoid(self.decode_logits(z))

    def forward(self, x: torch.Tensor, eps: torch.Tensor):
        mean, logvar = self.encode(x)
        z = self.reparameterize(mean, logvar, eps)
        return self.decode_logits(z), mean, logvar

    def linear_layers(self) -> list[nn.Linear]:
        """Every Linear layer in a fixed order (encoder, mean head, log-variance head, decoder)."""
        return (
            [m for m in self.encoder_body.modules() if isinstance(m, nn.Linear)]
            + [self.fc_mean, self.fc_logvar]
            + [m for m in self.decoder.modules() if isinstance(m, nn.Linear)]
        )


def init_parameters(model: VAE, generator: torch.Generator) -> None:
    """PyTorch's default Linear initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and
    biases, drawn from ``generator`` (a CPU generator) so that it depends only on the seed."""
    with torch.no_grad():
        for layer in model.linear_layers():
            bound = 1.0 / math.sqrt(layer.in_features)
            for p in (layer.weight, layer.bias):
                values = torch.empty(p.shape, dtype=p.dtype).uniform_(
                    -bound, bound, generator=generator
                )
                p.copy_(values)


def bce_per_image(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Summed binary cross-entropy of targets ``x`` in [0, 1] under Bernoulli logits."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


def kl_per_image(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)) in closed form."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)


def negative_elbo(
    x: torch.Tensor, logits: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor
) -> torch.Tensor:
    """Per-image negative ELBO (one z sample): BCE(x, decoder(z)) + KL(q(z|x) || p(z))."""
    return bce_per_image(logits, x) + kl_per_image(mean, logvar)


def linear_params(widths: Sequence[int]) -> int:
    return sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))


def decoder_param_count(hidden: Sequence[int], z_dim: int, x_dim: int = X_DIM) -> int:
    return linear_params([z_dim, *reversed(list(hidden)), x_dim])


def encoder_param_count(hidden: Sequence[int], z_dim: int, x_dim: int = X_DIM) -> int:
    return linear_params([x_dim, *hidden]) + 2 * (hidden[-1] * z_dim + z_dim)


class ModelFileError(RuntimeError):
    """A model file is unreadable or is not the model that was expected."""


def save_model(model: VAE, path: Path | str, **meta) -> None:
    payload = {
        "format": MODEL_FORMAT,
        "hidden": model.hidden,
        "z_dim": model.z_dim,
        "x_dim": model.x_dim,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": meta,
    }
    write_torch_atomic(payload, path)


def write_torch_atomic(payload, path: Path | str) -> None:
    """``torch.save`` through a buffer, so the bytes do not depend on a temporary file name
    (torch names the archive after the file), then an atomic rename into place."""
    import io

    from .io import atomic_path

    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def load_model(
    path: Path | str,
    expect_hidden: Sequence[int] | None = None,
    expect_z_dim: int | None = None,
    map_location="cpu",
    expect_model_id: str | None = None,
) -> tuple[VAE, dict]:
    """Load a model saved by :func:`save_model`, checking it is the expected architecture (and,
    with ``expect_model_id``, the expected model: split and seed)."""
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds
        raise ModelFileError(f"{path}: cannot read model file ({exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise ModelFileError(f"{path}: not a vae-novelty model file (format {MODEL_FORMAT})")
    hidden, z_dim = list(payload["hidden"]), int(payload["z_dim"])
    if expect_hidden is not None and list(expect_hidden) != hidden:
        raise ModelFileError(
            f"{path}: model has hidden widths {hidden}, expected "
            f"{list(expect_hidden)} (a model file from another architecture?)"
        )
    if expect_z_dim is not None and int(expect_z_dim) != z_dim:
        raise ModelFileError(f"{path}: model has dim(z)={z_dim}, expected {expect_z_dim}")
    recorded = payload["meta"].get("model_id")
    if expect_model_id is not None and recorded not in (None, expect_model_id):
        raise ModelFileError(
            f"{path}: holds model {recorded!r}, expected {expect_model_id!r} "
            f"(a file of another split or seed?)"
        )
    model = VAE(hidden, z_dim, payload["x_dim"])
    model.load_state_dict(payload["state_dict"])
    model.eval()
    return model, payload["meta"]
