"""The decoder side of Theorem 1: float64 decoder logits, x_hat and the two BCEs per image."""

from __future__ import annotations

import copy

import numpy as np
import torch

from .tensors import F64, no_tf32, resolve_device, to_tensor


@torch.inference_mode()
def decode_bce(
    model, z, x, mu, device="cpu", batch_size: int = 1024
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x_hat, BCE(x, x_hat), BCE(mu, x_hat))`` for posterior means ``z`` (T, D).

    The decoder runs in float64 (:func:`decoder_logits`) and both BCEs are summed over pixels
    from the decoder logits (:func:`bce_from_logits`). ``x_hat`` is returned as float32.
    """
    return bce_from_logits(decoder_logits(model, z, device, batch_size), x, mu, device, batch_size)


def bce_from_logits(
    logits, x, mu, device="cpu", batch_size: int = 1024
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x_hat, BCE(x, x_hat), BCE(mu, x_hat))`` from float64 decoder logits (T, P), with
    :func:`vae_novelty.model.bce_per_image` in float64; ``x_hat`` as float32."""
    from .model import bce_per_image

    dev = resolve_device(device)
    T = len(logits)
    x_hat = np.empty(np.shape(logits), np.float32)
    bce_x, bce_mu = np.empty(T), np.empty(T)
    with torch.inference_mode():
        for i0 in range(0, T, batch_size):
            sl = slice(i0, i0 + batch_size)
            lg = to_tensor(logits[sl], dev, F64)
            x_hat[sl] = torch.sigmoid(lg).float().cpu().numpy()
            bce_x[sl] = bce_per_image(lg, to_tensor(x[sl], dev, F64)).cpu().numpy()
            bce_mu[sl] = bce_per_image(lg, to_tensor(mu[sl], dev, F64)).cpu().numpy()
    return x_hat, bce_x, bce_mu


def float64_model(model, device: torch.device):
    """A float64 copy of ``model`` on ``device``, in eval mode (the original is untouched)."""
    return copy.deepcopy(model).to(device=device, dtype=F64).eval()


@torch.inference_mode()
def decoder_logits(model, z, device="cpu", batch_size: int = 1024) -> np.ndarray:
    """Decoder logits (float64, (T, P)) at latent points ``z`` (T, D), from a float64 copy of
    ``model``."""
    dev = resolve_device(device)
    m64 = float64_model(model, dev)
    z = np.asarray(z)
    out = np.empty((len(z), m64.x_dim))
    with no_tf32():
        for i0 in range(0, len(z), batch_size):
            out[i0 : i0 + batch_size] = (
                m64.decode_logits(to_tensor(z[i0 : i0 + batch_size], dev, F64)).cpu().numpy()
            )
    return out
