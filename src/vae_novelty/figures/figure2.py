"""Figure 2: BCE(x, x_hat) against BCE(mu, x_hat) over the test images of a held-out digit.

One panel per model (rows: shallow, deep VAE; columns: training set), each a 2-D histogram on
shared axes [0, bce_max]^2 with the line y = x. Below the line the decoder output is closer to
the input x than to the Theorem 1 weighted average mu (it generalises); above it, closer to mu.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import ListedColormap
from matplotlib.ticker import MaxNLocator
from matplotlib.figure import Figure

from .common import ROLE_CMAPS, ROLE_COLOURS, split_label, test_set_label


@dataclass
class BcePanel:
    title: str  # e.g. "shallow VAE (400)"
    role: str  # "shallow" or "deep": picks the colour
    split: str  # the training split of the model
    bce_x_xhat: np.ndarray  # y: BCE(x, x_hat) per test image
    bce_mu_xhat: np.ndarray  # x: BCE(mu, x_hat) per test image


def count_cmap(role: str) -> ListedColormap:
    """The role's sequential colour map without its near-white end, so a single image shows."""
    base = colormaps[ROLE_CMAPS.get(role, "Blues")]
    return ListedColormap(base(np.linspace(0.3, 1.0, 256)), name=f"{base.name}_counts")


def bce_summary(bce_x_xhat: np.ndarray, bce_mu_xhat: np.ndarray, bce_max: float) -> dict:
    """Fraction below y = x (x_hat closer to x than to mu), and how many points lie off-axes."""
    y = np.asarray(bce_x_xhat, dtype=np.float64)
    x = np.asarray(bce_mu_xhat, dtype=np.float64)
    n = len(x)
    return {
        "n": n,
        "frac_below": float(np.mean(y < x)) if n else float("nan"),
        "outside": int(np.sum((x > bce_max) | (y > bce_max) | (x < 0) | (y < 0))),
    }


def plot_figure2(
    panels: Sequence[Sequence[BcePanel]], digit: int, bce_max: float = 250.0, bins: int = 60
) -> Figure:
    """``panels[r][c]``: the model of row r (VAE) and column c (training set)."""
    n_rows = len(panels)
    n_cols = max(len(r) for r in panels)
    fig = Figure(figsize=(4.1 * n_cols + 0.4, 3.7 * n_rows + 0.6), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False, sharex=True, sharey=True)
    edges = np.linspace(0.0, float(bce_max), int(bins) + 1)
    for r in range(n_rows):
        for c in range(n_cols):
            ax = axes[r, c]
            if c >= len(panels[r]):
                ax.set_visible(False)
                continue
            p = panels[r][c]
            x = np.asarray(p.bce_mu_xhat, dtype=np.float64)
            y = np.asarray(p.bce_x_xhat, dtype=np.float64)
            counts, _, _ = np.histogram2d(x, y, bins=[edges, edges])
            masked = np.ma.masked_equal(counts.T, 0)  # rows of the image: y bins
            mesh = ax.pcolormesh(
                edges,
                edges,
                masked,
                cmap=count_cmap(p.role),
                vmin=0.5,
                vmax=max(1.5, counts.max() + 0.5),
                rasterized=True,
            )
            cbar = fig.colorbar(
                mesh,
                ax=ax,
                shrink=0.85,
                pad=0.01,
                ticks=MaxNLocator(integer=True, nbins=6, min_n_ticks=1),
            )
            cbar.set_label("test images per bin", fontsize=8)
            cbar.ax.tick_params(labelsize=7)
            ax.plot([0, bce_max], [0, bce_max], color="0.15", lw=1.0, ls="--", label="$y = x$")
            outside = (x > bce_max) | (y > bce_max)
            if outside.any():  # drawn on the border, so that none silently disappears
                ax.plot(
                    np.clip(x[outside], 0, bce_max),
                    np.clip(y[outside], 0, bce_max),
                    ls="none",
                    marker="o",
                    ms=3.5,
                    mfc="none",
                    mew=0.7,
                    clip_on=False,
                    color=ROLE_COLOURS.get(p.role, "k"),
                    label="beyond the axes",
                )
            if len(x):
                ax.plot(
                    min(np.median(x), bce_max),
                    min(np.median(y), bce_max),
                    marker="+",
                    ms=11,
                    mew=1.8,
                    color=ROLE_COLOURS.get(p.role, "k"),
                    ls="none",
                    clip_on=False,
                    label="median",
                )
            s = bce_summary(y, x, bce_max)
            note = (
                f"below $y=x$ ($\\hat{{x}}$ closer to $x$): {100 * s['frac_below']:.0f}%"
                f"\nn = {s['n']}"
            )
            if len(x):
                note += f", median ({np.median(x):.0f}, {np.median(y):.0f})"
            if s["outside"]:
                note += f"\n{s['outside']} beyond the axes, drawn on the border"
            ax.text(
                0.03,
                0.97,
                note,
                transform=ax.transAxes,
                ha="left",
                va="top",
                fontsize=7.5,
                bbox={"boxstyle": "round,pad=0.25", "fc": "white", "ec": "0.7", "alpha": 0.9},
            )
            ax.set_xlim(0, bce_max)
            ax.set_ylim(0, bce_max)
            ax.set_aspect("equal")
            ax.set_title(
                f"{p.title}, trained on {split_label(p.split)}",
                fontsize=9,
                color=ROLE_COLOURS.get(p.role, "k"),
            )
            ax.tick_params(labelsize=7)
            if r == n_rows - 1:
                ax.set_xlabel(
                    r"BCE($\mu$, $\hat{x}$)  (weighted average vs decoder output)", fontsize=8
                )
            if c == 0:
                ax.set_ylabel(r"BCE($x$, $\hat{x}$)  (input vs decoder output)", fontsize=8)
            ax.legend(loc="lower right", fontsize=7, framealpha=0.9)
    fig.suptitle(
        f"Figure 2: reconstruction error against distance to the weighted average, "
        f"over {test_set_label(digit)}",
        fontsize=10,
    )
    return fig
