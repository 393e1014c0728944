"""Figure 1: reconstructions of a held-out digit by the shallow and deep VAEs.

A 2 x 2 arrangement of blocks: rows are the VAEs (shallow, deep), columns their training sets
(MNIST^tr, MNIST^tr without the digit). Each block shows, for a few test images of the digit,
the input x, the decoder output x_hat, the Theorem 1 weighted average mu and the training images
with the largest weights (weight printed above each), then the histogram of the weights'
perplexity over every evaluated test image of the digit.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from .common import ROLE_COLOURS, dataset, format_weight, show_digit, split_label, test_set_label
from .loaders import ModelImages

ROW_NAMES = ("input $x$", r"decoder $\hat{x}$", r"weighted avg. $\mu$")
CELL_IN = 0.62  # inches per image column
LABEL_IN = 1.15  # inches for the row labels of a block
TITLE_IN = 0.6  # inches above the blocks for the figure title
HIST_IN = 1.75  # inches for a block's histogram
MIN_BLOCK_IN = 4.0  # narrowest block: with few test images the images grow instead


def perplexity_histogram(
    ax, perplexity: np.ndarray, bins: int, hist_max: float, colour: str = "tab:blue"
) -> tuple[np.ndarray, int]:
    """Histogram of perplexities over [0, hist_max]; returns the counts and how many lie beyond."""
    perplexity = np.asarray(perplexity, dtype=np.float64)
    edges = np.linspace(0.0, float(hist_max), int(bins) + 1)
    counts, _ = np.histogram(perplexity, bins=edges)
    beyond = int(np.sum(perplexity > hist_max))
    ax.stairs(counts, edges, fill=True, color=colour, alpha=0.75)
    ax.axvline(1.0, color="0.2", lw=0.8, ls=":")
    ax.set_xlim(0.0, float(hist_max))
    ax.set_xlabel("perplexity of the weights $w$", fontsize=8)
    ax.set_ylabel("test images", fontsize=8)
    ax.tick_params(labelsize=7)
    note = f"n = {len(perplexity)}"
    if len(perplexity):
        note += f"\nmedian {np.median(perplexity):.2f}"
    if beyond:
        note += f"\n{beyond} > {hist_max:g} not shown"
    ax.text(0.98, 0.95, note, transform=ax.transAxes, ha="right", va="top", fontsize=7)
    return counts, beyond


def cell_size(n_images: int) -> float:
    """Inches per image column: CELL_IN, or more so that a block is at least MIN_BLOCK_IN."""
    return max(CELL_IN, (MIN_BLOCK_IN - LABEL_IN - 0.2) / max(n_images, 1))


def _block(sub, panel: ModelImages, title: str, colour: str, bins: int, hist_max: float):
    """One model's block inside subfigure ``sub``; returns its histogram axes."""
    n = len(panel.x)
    k = panel.top_images.shape[1]
    n_img_rows = len(ROW_NAMES) + k
    cell = cell_size(n)
    grid = sub.add_gridspec(
        n_img_rows + 2,
        n,
        height_ratios=[1.0] * n_img_rows + [0.35, HIST_IN / cell * 0.8],
        left=LABEL_IN / (LABEL_IN + n * cell + 0.2),
        right=0.97,
        top=0.93,
        bottom=0.07,
        hspace=0.28,
        wspace=0.06,
    )
    names = list(ROW_NAMES) + [f"top {j + 1}" for j in range(k)]
    for col in range(n):
        rows = [panel.x[col], panel.x_hat[col], panel.mu[col]] + [
            panel.top_images[col, j] for j in range(k)
        ]
        for r, image in enumerate(rows):
            ax = sub.add_subplot(grid[r, col])
            label = None
            if r == 0:
                label = f"#{int(panel.rows['mnist_index'].iloc[col])}"
            elif r >= len(ROW_NAMES):
                label = format_weight(panel.top_weights[col, r - len(ROW_NAMES)])
            show_digit(ax, image, title=label, fontsize=6.5)
            if col == 0:
                ax.set_ylabel(names[r], rotation=0, ha="right", va="center", fontsize=8, labelpad=4)
    hist_ax = sub.add_subplot(grid[n_img_rows + 1, :])
    perplexity_histogram(hist_ax, panel.perplexity, bins, hist_max, colour)
    sub.suptitle(title, fontsize=9, color=colour, y=0.985)
    return hist_ax


def tallest_bar(ax) -> float:
    """Height of the tallest histogram bar drawn on ``ax`` (1 when it has none)."""
    heights = [float(np.max(patch.get_data().values, initial=0.0)) for patch in ax.patches]
    return max(heights, default=1.0) or 1.0


def plot_figure1(
    blocks: Sequence[Sequence[ModelImages]],
    row_titles: Sequence[str],
    row_roles: Sequence[str],
    digit: int,
    hist_bins: int = 30,
    hist_max: float = 6.0,
) -> Figure:
    """``blocks[r][c]``: the model of row r (a VAE: shallow, deep) and column c (a training set).

    ``row_titles`` names the VAEs (e.g. "shallow VAE (400)"), ``row_roles`` picks their colours
    ("shallow" blue, "deep" green). Every block must show the same number of test images.
    """
    n_rows = len(blocks)
    n_cols = max(len(r) for r in blocks)
    n_img = len(blocks[0][0].x)
    k = blocks[0][0].top_images.shape[1]
    cell = cell_size(n_img)
    block_w = LABEL_IN + n_img * cell + 0.2
    block_h = (len(ROW_NAMES) + k) * cell * 1.18 + HIST_IN + 0.9
    title = (
        f"Figure 1: reconstructions of {test_set_label(digit)}\n(inputs numbered by {dataset()} "
        f"test row; weights of the top training images above them)"
    )
    title_in = TITLE_IN
    if block_w * n_cols < 7.0:  # one column of blocks: wrap the title once more
        title = title.replace("row; ", "row;\n")
        title_in += 0.2
    fig_h = block_h * n_rows + title_in
    fig = Figure(figsize=(block_w * n_cols, fig_h))
    # subfigures ignore gridspec margins: the title gets a row of its own
    subs = fig.subfigures(
        n_rows + 1,
        n_cols,
        squeeze=False,
        height_ratios=[title_in] + [block_h] * n_rows,
        wspace=0,
        hspace=0,
    )
    hist_axes = []
    for r in range(n_rows):
        colour = ROLE_COLOURS.get(row_roles[r], "tab:blue")
        for c in range(n_cols):
            if c >= len(blocks[r]):
                continue
            sub = subs[r + 1, c]
            panel = blocks[r][c]
            block_title = f"{row_titles[r]}, trained on {split_label(panel.split)}"
            hist_axes.append(_block(sub, panel, block_title, colour, hist_bins, hist_max))
    # The common limit is read before the axes are shared: once shared, every axis reports the
    # first one's limit and the tallest bar elsewhere would be clipped.
    top = max(tallest_bar(ax) for ax in hist_axes) * 1.05
    for ax in hist_axes[1:]:
        ax.sharey(hist_axes[0])
    hist_axes[0].set_ylim(0, top)
    fig.suptitle(title, fontsize=10, y=1 - 0.12 / fig_h, va="top")
    return fig
