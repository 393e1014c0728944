"""Figure 3: the latent space of the mini-MNIST VAE (dim(z) = 2).

Left: decoder outputs at latent points z drawn by stratified sampling (one stratum per digit
class), each with max_i w_i(z). Middle: max_i w_i(z) over a grid, with the training posteriors
(means, and 2-sigma ellipses). Right: the aggregate posterior q(z) = mean_i q(z|x_i) on the
same grid (log scale). Both maps: origin lower left, x = z_1, y = z_2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from matplotlib import patheffects
from matplotlib.collections import EllipseCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .common import format_weight, show_digit, split_label
from .selection import LatentGrid, LatentSamples, latent_grid, stratified_samples

# weights(points (G, 2)) -> (max_i w_i(z), logsumexp_i log q(z|x_i)) per point
WeightsFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
DecodeFn = Callable[[np.ndarray], np.ndarray]
LOG_Q_RANGE = 20.0  # nats of log q(z) shown below its maximum
SIGMAS = 2.0
MAX_W = r"$\mathrm{max}_i\, w_i(z)$"


@dataclass
class Figure3Data:
    train_mean: np.ndarray  # (N, 2)
    train_logvar: np.ndarray  # (N, 2)
    train_label: np.ndarray  # (N,)
    grid: LatentGrid
    max_w: np.ndarray  # (G,) max_i w_i(z) on grid.points
    log_q: np.ndarray  # (G,) log q(z) = logsumexp_i log q(z|x_i) - log N
    samples: LatentSamples
    sample_images: np.ndarray  # (S, 784) decoder outputs at samples.z
    sample_max_w: np.ndarray  # (S,)


def figure3_data(
    train_mean,
    train_logvar,
    train_label,
    weights: WeightsFn,
    decode: DecodeFn,
    grid_size: int,
    extent: float,
    samples_per_digit: int,
    sample_seed: int,
) -> Figure3Data:
    """Everything Figure 3 draws. ``weights`` is the Theorem 1 engine on the training
    posteriors; ``decode`` maps z (S, 2) to Bernoulli means (S, 784)."""
    mean = np.asarray(train_mean, dtype=np.float64)
    logvar = np.asarray(train_logvar, dtype=np.float64)
    if mean.ndim != 2 or mean.shape[1] != 2:
        raise ValueError(f"Figure 3 needs dim(z) = 2, got posterior means of shape {mean.shape}")
    grid = latent_grid(grid_size, extent)
    max_w, log_norm = weights(grid.points)
    samples = stratified_samples(mean, logvar, train_label, samples_per_digit, sample_seed)
    sample_w, _ = weights(samples.z)
    images = np.asarray(decode(samples.z), dtype=np.float32)
    return Figure3Data(
        mean,
        logvar,
        np.asarray(train_label),
        grid,
        np.asarray(max_w),
        np.asarray(log_norm) - np.log(len(mean)),
        samples,
        images,
        np.asarray(sample_w),
    )


def _posteriors(ax, data: Figure3Data, colours) -> None:
    """Means as dots and 2-sigma ellipses (axis-aligned: the posteriors are diagonal)."""
    sd = np.exp(0.5 * data.train_logvar)
    ells = EllipseCollection(
        2 * SIGMAS * sd[:, 0],
        2 * SIGMAS * sd[:, 1],
        np.zeros(len(sd)),
        units="xy",
        offsets=data.train_mean,
        offset_transform=ax.transData,
        facecolors="none",
        edgecolors=colours,
        linewidths=0.9,
    )
    ax.add_collection(ells)
    ax.scatter(
        data.train_mean[:, 0],
        data.train_mean[:, 1],
        s=9,
        c=colours,
        edgecolors="black",
        linewidths=0.4,
        zorder=3,
    )


def _samples(ax, data: Figure3Data) -> None:
    outline = [patheffects.withStroke(linewidth=2.0, foreground="black")]
    z = data.samples.z
    ax.scatter(z[:, 0], z[:, 1], marker="x", s=30, c="white", linewidths=1.4, zorder=4)
    ax.scatter(z[:, 0], z[:, 1], marker="x", s=30, c="black", linewidths=0.5, zorder=4)
    for (z1, z2), label in zip(z, sample_names(data.samples)):
        ax.annotate(
            label,
            (z1, z2),
            xytext=(3, 3),
            textcoords="offset points",
            fontsize=7,
            color="white",
            path_effects=outline,
            zorder=5,
        )


def sample_names(samples: LatentSamples) -> list[str]:
    """``3`` for the single sample of stratum 3, or ``3a``, ``3b`` ... for several."""
    counts = {int(d): int(np.sum(samples.label == d)) for d in np.unique(samples.label)}
    seen: dict[int, int] = {}
    names = []
    for d in samples.label.tolist():
        j = seen.get(d, 0)
        seen[d] = j + 1
        names.append(str(d) if counts[d] == 1 else f"{d}{chr(ord('a') + j)}")
    return names


def plot_figure3(data: Figure3Data, cmap: str = "viridis") -> Figure:
    from matplotlib import colormaps

    n_samples = len(data.samples.z)
    ncols = 2 if n_samples <= 12 else int(np.ceil(np.sqrt(n_samples / 2)))
    nrows = int(np.ceil(n_samples / ncols))
    fig = Figure(figsize=(ncols * 0.95 + 10.8, 7.0), layout="constrained")
    grid = fig.add_gridspec(
        nrows + 1,
        ncols + 2,
        width_ratios=[0.9] * ncols + [5.0, 5.0],
        height_ratios=[0.55] + [1.0] * nrows,
    )

    # decoder outputs at the sampled z, in stratum (digit class) order
    names = sample_names(data.samples)
    for i in range(n_samples):
        ax = fig.add_subplot(grid[1 + i // ncols, i % ncols])
        show_digit(
            ax,
            data.sample_images[i],
            title=f"{names[i]}: w={format_weight(data.sample_max_w[i])}",
            fontsize=7,
        )
    head = fig.add_subplot(grid[0, :ncols])
    head.axis("off")
    head.text(
        0.5,
        0.0,
        "decoder outputs at $z$\nsampled per digit class\n(class: " + MAX_W + ")",
        ha="center",
        va="bottom",
        fontsize=8,
        transform=head.transAxes,
    )

    label_colours = colormaps["tab10"](np.asarray(data.train_label, dtype=int) % 10)
    ax_w = fig.add_subplot(grid[:, ncols])
    ax_q = fig.add_subplot(grid[:, ncols + 1], sharex=ax_w, sharey=ax_w)
    extent = data.grid.image_extent
    im_w = ax_w.imshow(
        data.grid.as_image(data.max_w),
        origin="lower",
        extent=extent,
        cmap=cmap,
        vmin=0.0,
        vmax=1.0,
        interpolation="nearest",
        aspect="equal",
    )
    log_q = data.grid.as_image(data.log_q)
    top = float(np.max(log_q))
    im_q = ax_q.imshow(
        log_q,
        origin="lower",
        extent=extent,
        cmap=cmap,
        vmin=top - LOG_Q_RANGE,
        vmax=top,
        interpolation="nearest",
        aspect="equal",
    )
    for ax in (ax_w, ax_q):
        _posteriors(ax, data, label_colours)
        _samples(ax, data)
        lim = float(data.grid.axis[-1])
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_xlabel("$z_1$", fontsize=9)
        ax.tick_params(labelsize=7)
    ax_w.set_ylabel("$z_2$", fontsize=9)
    ax_w.set_title("largest weight " + MAX_W, fontsize=9)
    ax_q.set_title(r"aggregate posterior $q(z) = \frac{1}{N}\sum_i q(z|x_i)$", fontsize=9)
    for ax, im, label, extend in (
        (ax_w, im_w, MAX_W + " (1: a single training image carries all the weight)", "neither"),
        (ax_q, im_q, rf"$\log q(z)$ (nats; down to {LOG_Q_RANGE:g} below the maximum)", "min"),
    ):
        cb = fig.colorbar(im, ax=ax, orientation="horizontal", shrink=0.8, pad=0.02, extend=extend)
        cb.set_label(label, fontsize=8)
        cb.ax.tick_params(labelsize=7)
    handles = [
        Line2D(
            [],
            [],
            ls="none",
            marker="o",
            ms=5,
            mfc=colormaps["tab10"](d % 10),
            mec="black",
            mew=0.4,
            label=str(d),
        )
        for d in np.unique(np.asarray(data.train_label, dtype=int))
    ]
    handles.append(
        Line2D([], [], ls="none", marker="x", ms=6, mew=1.2, color="black", label="sampled $z$")
    )
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncol=len(handles),
        fontsize=7,
        title=f"training posteriors by digit (dots: means; ellipses: {SIGMAS:g} sd)",
        title_fontsize=7,
        frameon=False,
        handletextpad=0.2,
        columnspacing=0.8,
    )
    fig.suptitle(f"Figure 3: {split_label('mini')} latent space, dim(z) = 2", fontsize=10)
    return fig
