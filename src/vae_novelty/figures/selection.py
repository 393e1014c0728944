"""What each figure shows: which test rows, which latent samples, which grid points."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd


class SelectionError(ValueError):
    """A configured position or option asks for something the results do not contain."""


def digit_rows(df: pd.DataFrame, digit: int) -> pd.DataFrame:
    """The rows of MNIST_digit^te a model was evaluated on, in MNIST test-file order.

    Models trained on all of MNIST^tr are evaluated on every held-out digit, so the label must
    be selected; a model trained without ``digit`` is evaluated on MNIST_digit^te only.
    """
    rows = df[df["label"] == digit]
    return rows.sort_values("mnist_index", kind="stable").reset_index(drop=True)


def select_positions(
    df: pd.DataFrame, digit: int, positions: Sequence[int], what: str = "model"
) -> pd.DataFrame:
    """Rows at ``positions`` (0 = first image) within MNIST_digit^te of one model's table."""
    rows = digit_rows(df, digit)
    bad = [int(p) for p in positions if not 0 <= int(p) < len(rows)]
    if bad:
        raise SelectionError(
            f"{what}: positions {bad} are beyond the {len(rows)} evaluated test "
            f"images of digit {digit} (positions 0..{len(rows) - 1})"
        )
    return rows.iloc[[int(p) for p in positions]].reset_index(drop=True)


def lookup_rows(index: np.ndarray, wanted: Sequence[int], what: str = "arrays") -> np.ndarray:
    """Positions in ``index`` (an array of MNIST row numbers) of each value in ``wanted``."""
    index = np.asarray(index, dtype=np.int64)
    wanted = np.asarray(wanted, dtype=np.int64)
    order = np.argsort(index, kind="stable")
    sorted_index = index[order]
    pos = np.searchsorted(sorted_index, wanted)
    found = pos < len(index)
    found[found] = sorted_index[pos[found]] == wanted[found]
    if not np.all(found):
        raise SelectionError(f"{what}: MNIST rows {wanted[~found].tolist()} are not in the file")
    return order[pos]


# --------------------------------------------------------------------------- Figure 3


@dataclass
class LatentSamples:
    """Points z drawn by stratified sampling: one stratum per digit class."""

    z: np.ndarray  # (n, D) float64
    label: np.ndarray  # (n,) the stratum's digit
    source: np.ndarray  # (n,) row in the training posterior arrays whose q(z|x) was sampled


def stratified_samples(
    z_mean: np.ndarray, z_logvar: np.ndarray, labels: np.ndarray, per_class: int, seed: int
) -> LatentSamples:
    """For each digit class present (ascending), ``per_class`` times: pick a random training
    image x of that class, then draw z ~ q(z|x) = N(mean, diag(exp(logvar)))."""
    rng = np.random.default_rng(seed)
    mean = np.asarray(z_mean, dtype=np.float64)
    std = np.exp(0.5 * np.asarray(z_logvar, dtype=np.float64))
    labels = np.asarray(labels)
    zs, labs, srcs = [], [], []
    for digit in np.unique(labels):
        members = np.flatnonzero(labels == digit)
        for _ in range(per_class):
            i = int(rng.choice(members))
            zs.append(mean[i] + std[i] * rng.standard_normal(mean.shape[1]))
            labs.append(int(digit))
            srcs.append(i)
    dim = mean.shape[1] if mean.ndim == 2 else 0
    return LatentSamples(
        np.array(zs, dtype=np.float64).reshape(-1, dim),
        np.array(labs, dtype=np.int64),
        np.array(srcs, dtype=np.int64),
    )


@dataclass
class LatentGrid:
    """A square grid over [-extent, extent]^2.

    ``points`` is (n*n, 2) with z_1 varying fastest, so ``values.reshape(n, n)[i, j]`` is the
    value at (z_1 = axis[j], z_2 = axis[i]): row i goes up the z_2 axis, as drawn with
    ``imshow(..., origin="lower", extent=grid.image_extent)``.
    """

    axis: np.ndarray
    points: np.ndarray

    @property
    def size(self) -> int:
        return len(self.axis)

    @property
    def image_extent(self) -> tuple[float, float, float, float]:
        """Pixel edges (not centres) for imshow: half a cell beyond the first and last point."""
        half = (self.axis[1] - self.axis[0]) / 2 if self.size > 1 else 0.5
        lo, hi = float(self.axis[0] - half), float(self.axis[-1] + half)
        return (lo, hi, lo, hi)

    def as_image(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values)
        if values.shape != (self.size * self.size,):
            raise ValueError(f"expected {self.size * self.size} grid values, got {values.shape}")
        return values.reshape(self.size, self.size)


def latent_grid(grid_size: int, extent: float) -> LatentGrid:
    axis = np.linspace(-float(extent), float(extent), int(grid_size))
    z1, z2 = np.meshgrid(axis, axis, indexing="xy")  # z1[i, j] = axis[j], z2[i, j] = axis[i]
    return LatentGrid(axis, np.column_stack([z1.ravel(), z2.ravel()]))
