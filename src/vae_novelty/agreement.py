"""Pixel-space measures of the size sweep (issue 20): nearest training images, the copy
fraction of generated samples, and the cross-half agreement of two models' reconstructions.

Distances are Euclidean in pixel space (pixels in [0, 1]), in float64, found by the exact
pixel search :func:`vae_novelty.pixel_nn.nearest_images` (equal distances: lower position).

- **Copy fraction** (Gu et al., TMLR 2025): a generated sample is a copy when its nearest
  training image is less than ``ratio`` (1/3) times as far as the second nearest.
- **Cross-half agreement** (after Kadkhodaie et al., ICLR 2024): models A and B trained on
  disjoint halves reconstruct the same test image x as ``a`` and ``b``. With ``d_a`` the
  distance from ``a`` to the nearest image of A's own training set (and ``d_b`` likewise),
  the test image counts as *agreeing* when ``|a - b| < min(d_a, d_b)``: the two
  reconstructions are closer to each other than either is to a training image of its own
  model, so neither is a recalled training image. The fraction of agreeing test images goes
  from about 0 (each model reproduces its own training images) towards 1 (both generalise to
  the same function).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .neighbours import nn_ratio
from .pixel_nn import nearest_images


def copy_ratios(samples, train_images, *, chunk_mb: float = 1024.0, device="cpu") -> np.ndarray:
    """Nearest over second-nearest training-image distance of every sample (T,)."""
    _, dist = nearest_images(samples, train_images, k=2, chunk_mb=chunk_mb, device=device)
    return nn_ratio(dist)


def copy_fraction(ratios, ratio: float = 1 / 3) -> float:
    """The fraction of samples whose :func:`copy_ratios` value is below ``ratio``."""
    ratios = np.asarray(ratios, np.float64)
    if ratios.ndim != 1 or len(ratios) == 0:
        raise ValueError(f"ratios must be a non-empty 1-D array, got shape {ratios.shape}")
    return float(np.mean(ratios < ratio))


@dataclass
class Agreement:
    """Per test image: the distance between the two reconstructions (``d_ab``) and of each to
    its own model's nearest training image (``d_a``, ``d_b``); ``agree``: d_ab < min(d_a, d_b)."""

    d_ab: np.ndarray
    d_a: np.ndarray
    d_b: np.ndarray

    @property
    def agree(self) -> np.ndarray:
        return self.d_ab < np.minimum(self.d_a, self.d_b)

    @property
    def fraction(self) -> float:
        return float(np.mean(self.agree))


def agreement(recon_a, recon_b, own_a, own_b) -> Agreement:
    """:class:`Agreement` of reconstructions ``recon_a``, ``recon_b`` (T, P) of the same test
    images by the two models, given each reconstruction's distance to its own model's nearest
    training image (``own_a``, ``own_b``, (T,): :func:`~vae_novelty.pixel_nn.nearest_images`)."""
    a = np.asarray(recon_a, np.float64)
    b = np.asarray(recon_b, np.float64)
    own_a, own_b = np.asarray(own_a, np.float64), np.asarray(own_b, np.float64)
    if a.shape != b.shape or a.ndim != 2 or own_a.shape != (len(a),) or own_b.shape != (len(a),):
        raise ValueError(
            f"shapes disagree: reconstructions {a.shape} and {b.shape}, own "
            f"distances {own_a.shape} and {own_b.shape}"
        )
    if len(a) == 0:
        raise ValueError("no test images")
    return Agreement(np.sqrt(((a - b) ** 2).sum(1)), own_a, own_b)
