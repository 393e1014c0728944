"""Figures 4-13: the architecture sweep for one held-out digit.

Every architecture trained on MNIST^tr without the digit is shown at its decoder parameter count
(log x axis) in the row of its number of hidden layers: the Theorem 1 weighted average mu on
top, the decoder output x_hat below, for one test image of the held-out digit (shown on the
left). Where architectures of one row have nearly equal parameter counts, their images are
spread apart just enough not to overlap, and a leader line points to the exact count.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from .common import show_digit, split_label, test_set_label
from .loaders import ModelImages
from .naming import sweep_figure_number  # noqa: F401 (part of this module's interface)

IMG_IN = 0.62  # side of one image, inches
MAIN_W_IN = 10.5  # width of the sweep axes, inches
INPUT_W_IN = 1.7  # left margin holding the input image
RAIL_IN = 0.14  # from the bottom of a row band to the parameter-count rail
LEADER_IN = 0.16  # from the rail to the bottom of an image pair
LABEL_IN = 0.2  # above an image pair, for the architecture name
GAP_IN = 0.03  # between the two images of a pair


def count_ticks(lo: float, hi: float) -> list[float]:
    """Round numbers m x 10^k within [lo, hi]: the coarsest mantissa set giving 3 ticks."""
    ticks: list[float] = []
    for mantissas in ((1,), (1, 2, 5), (1, 2, 3, 5), tuple(range(1, 10))):
        ticks = [
            m * 10.0**k
            for k in range(int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi))) + 1)
            for m in mantissas
            if lo <= m * 10.0**k <= hi
        ]
        if len(ticks) >= 3:
            break
    return ticks


def format_count(n: float) -> str:
    """200000 -> 200k, 1500000 -> 1.5M."""
    for div, suffix in ((1e6, "M"), (1e3, "k")):
        if n >= div:
            return f"{n / div:g}{suffix}"
    return f"{n:g}"


def _isotonic(y: np.ndarray) -> np.ndarray:
    """Least-squares non-decreasing fit (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [mean, weight]
    for v in y:
        blocks.append([float(v), 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2 = blocks.pop()
            m1, w1 = blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2])
    return np.concatenate([np.full(int(w), m) for m, w in blocks]) if blocks else np.zeros(0)


def spread_positions(targets: Sequence[float], min_gap: float, lo: float, hi: float) -> np.ndarray:
    """Positions as close as possible (least squares) to ``targets``, at least ``min_gap``
    apart, within [lo, hi], keeping the targets' order. If they cannot all fit, the gap
    shrinks to (hi - lo) / (n - 1)."""
    t = np.asarray(targets, dtype=np.float64)
    n = len(t)
    if n == 0:
        return t
    order = np.argsort(t, kind="stable")
    gap = min(float(min_gap), (hi - lo) / (n - 1)) if n > 1 else float(min_gap)
    offsets = gap * np.arange(n)
    u = np.clip(_isotonic(t[order] - offsets), lo, hi - offsets[-1])
    out = np.empty(n)
    out[order] = u + offsets
    return out


def plot_sweep(
    entries: Sequence[ModelImages],
    digit: int,
    input_image: np.ndarray,
    input_index: int | None = None,
) -> Figure:
    """``entries``: one per architecture, each with one selected test image (the same one)."""
    if not entries:
        raise ValueError("no architectures to draw")
    layers = sorted({e.n_hidden_layers for e in entries})
    n_rows = max(layers)
    per_row = max(sum(e.n_hidden_layers == l for e in entries) for l in layers)
    img = min(IMG_IN, MAIN_W_IN / (per_row * 1.12))
    band = 2 * img + GAP_IN + RAIL_IN + LEADER_IN + LABEL_IN + 0.12
    main_h = band * n_rows
    fig_w = INPUT_W_IN + MAIN_W_IN + 0.35
    fig_h = main_h + 1.25
    fig = Figure(figsize=(fig_w, fig_h))
    left, bottom = INPUT_W_IN / fig_w, 0.62 / fig_h
    ax = fig.add_axes((left, bottom, MAIN_W_IN / fig_w, main_h / fig_h))

    params = np.array([e.decoder_params for e in entries], dtype=np.float64)
    lo_p, hi_p = params.min(), params.max()
    span = max(np.log10(hi_p / lo_p), 0.3)
    centre = 0.5 * (np.log10(lo_p) + np.log10(hi_p))
    log_lo, log_hi = centre - 0.5 * span * 1.25, centre + 0.5 * span * 1.25
    ax.set_xscale("log")
    ax.set_xlim(10**log_lo, 10**log_hi)
    ax.set_ylim(0.5, n_rows + 0.5)
    ax.set_yticks(
        range(1, n_rows + 1),
        [f"{l} hidden\nlayer{'s' if l > 1 else ''}" for l in range(1, n_rows + 1)],
        fontsize=8,
    )
    ax.set_xlabel("decoder parameters (log scale)", fontsize=9)
    ticks = count_ticks(10**log_lo, 10**log_hi)
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticks(ticks, [format_count(t) for t in ticks])
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="x", which="both", color="0.92", lw=0.6)
    for l in range(1, n_rows):
        ax.axhline(l + 0.5, color="0.75", lw=0.6)
    ax.set_axisbelow(True)

    sx, sy = img / MAIN_W_IN, img / main_h  # image side in axes fractions
    for l in layers:
        row = [e for e in entries if e.n_hidden_layers == l]
        frac = (np.log10([e.decoder_params for e in row]) - log_lo) / (log_hi - log_lo)
        xs = spread_positions(frac, sx * 1.1, sx * 0.55, 1 - sx * 0.55)
        base = (l - 1) * band / main_h
        rail = base + RAIL_IN / main_h
        pair = rail + LEADER_IN / main_h
        for e, f, x in zip(row, frac, xs):
            ax.plot([f, x], [rail, pair], transform=ax.transAxes, color="0.45", lw=0.6)
            ax.plot(
                [f], [rail], transform=ax.transAxes, marker="^", ms=4, color="0.3", clip_on=False
            )
            bottom_ax = ax.inset_axes((x - sx / 2, pair, sx, sy))
            top_ax = ax.inset_axes((x - sx / 2, pair + sy + GAP_IN / main_h, sx, sy))
            show_digit(top_ax, e.mu[0])
            show_digit(bottom_ax, e.x_hat[0])
            top_ax.set_title(e.hidden, fontsize=6.5, pad=1.5)

    # the input, and how to read a pair
    in_ax = fig.add_axes(
        (0.25 / fig_w, (bottom + main_h / fig_h) - (1.35 + 1.1) / fig_h, 1.1 / fig_w, 1.1 / fig_h)
    )
    show_digit(in_ax, input_image)
    title = f"input $x$\n{test_set_label(digit)}"
    if input_index is not None:
        title += f" #{int(input_index)}"
    in_ax.set_title(title, fontsize=8)
    fig.text(
        0.25 / fig_w,
        (bottom + main_h / fig_h) - 2.55 / fig_h,
        "each pair:\ntop: weighted\naverage $\\mu$\nbottom: decoder\noutput $\\hat{x}$",
        fontsize=7.5,
        va="top",
        ha="left",
    )
    split = entries[0].split
    fig.suptitle(
        f"Figure {sweep_figure_number(digit)}: decoder outputs and weighted averages "
        f"of VAEs trained on {split_label(split)}, for an input from "
        f"{test_set_label(digit)}",
        fontsize=10,
        y=1 - 0.12 / fig_h,
        va="top",
    )
    return fig
