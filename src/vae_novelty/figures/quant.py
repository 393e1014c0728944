"""A quantitative Figure 4: the sweep's depth-versus-size claim as a measurement.

For every held-out digit d, one small panel per statistic: each architecture trained on MNIST^tr
without d is a point at its decoder parameter count (log x axis), coloured (and shaped) by its
number of hidden layers, at the mean over seeds of

- ``frac_closer_to_mu``: the fraction of MNIST_d^te whose decoder output is closer (in BCE) to
  the Theorem 1 weighted average mu than to the input x, and
- ``perplexity_median``: the median perplexity of the Theorem 1 weights (1 = the nearest
  training image carries all weight),

with the bootstrap interval over seeds as an error bar (none where it is NaN: one seed). Points
of one depth are joined in order of parameter count. With more than one held-out digit, a last
panel shows the same statistics averaged over the digits (per seed, then over seeds).
Values come from ``results/tables/summary_by_config.csv`` (:mod:`vae_novelty.seeds`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, NullLocator

from .common import dataset, test_set_label
from .sweep import count_ticks, format_count


class Metric(NamedTuple):
    """One block of small multiples: a statistic of ``summary_by_config.csv`` and its axis."""

    stem: str  # column stem: {stem}_mean, {stem}_ci_lo, {stem}_ci_hi
    ylabel: str
    title: str  # block title, str.format(data=dataset())
    # y axis: "fraction" [0, 1]; "perplexity" from 1 (log when large); "share" from 0 to the
    # largest value; "signed" around 0 (e.g. a z-score)
    axis: str = "fraction"
    ref: float | None = None  # a dotted reference line at this value


METRICS = (
    Metric(
        "frac_closer_to_mu",
        r"fraction closer to $\mu$",
        r"Fraction of {data}$^{{te}}_d$ whose reconstruction $\hat{{x}}$ is closer to the "
        r"weighted average $\mu$ than to the input $x$",
        "fraction",
        0.5,
    ),
    Metric(
        "perplexity_median",
        "median perplexity",
        "Median perplexity of the Theorem 1 weights over {data}$^{{te}}_d$ "
        "(1 = one training image carries all weight)",
        "perplexity",
    ),
)
AXES = ("fraction", "perplexity", "share", "signed")
DEPTH_COLOURS = {1: "tab:blue", 2: "tab:orange", 3: "tab:green"}  # shallow blue, deep green
DEPTH_MARKERS = {1: "o", 2: "s", 3: "^"}
MORE_COLOURS = ("tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")
MORE_MARKERS = ("D", "v", "P", "X", "h", "*")
MAX_COLS = 6
MIN_W_IN = 6.2
PANEL_W_IN, PANEL_H_IN = 2.15, 1.85
LOG_Y_RATIO = 4.0  # perplexity gets a log axis when its largest value is this many times 1


@dataclass
class QuantPanel:
    title: str  # e.g. "held-out 9"
    table: pd.DataFrame  # one row per architecture: n_hidden_layers, decoder_params, and
    #                       {stem}_mean, {stem}_ci_lo, {stem}_ci_hi for every metric stem


def depth_style(depth: int) -> tuple[str, str]:
    """Colour and marker of a number of hidden layers."""
    d = int(depth)
    if d in DEPTH_COLOURS:
        return DEPTH_COLOURS[d], DEPTH_MARKERS[d]
    i = (d - 4) % len(MORE_COLOURS)
    return MORE_COLOURS[i], MORE_MARKERS[i % len(MORE_MARKERS)]


def depth_label(depth: int) -> str:
    return f"{int(depth)} hidden layer{'s' if int(depth) != 1 else ''}"


def digit_panels(
    by_config: pd.DataFrame, digits: Sequence[int], pooled: pd.DataFrame | None = None
) -> list[QuantPanel]:
    """One panel per held-out digit (rows of split ``no{d}``), then ``pooled`` if given."""
    panels = []
    for d in digits:
        rows = by_config[by_config["split"] == f"no{int(d)}"]
        if rows.empty:
            raise ValueError(f"summary_by_config has no models trained without {d}")
        panels.append(
            QuantPanel(f"held-out {int(d)}: {test_set_label(int(d))}", rows.reset_index(drop=True))
        )
    if pooled is not None and not pooled.empty:
        panels.append(
            QuantPanel(f"mean over held-out {_digit_range(digits)}", pooled.reset_index(drop=True))
        )
    return panels


def _digit_range(digits: Sequence[int]) -> str:
    ds = sorted(int(d) for d in digits)
    if ds == list(range(ds[0], ds[-1] + 1)) and len(ds) > 2:
        return f"{ds[0]}-{ds[-1]}"
    return ", ".join(map(str, ds))


def _x_limits(panels: Sequence[QuantPanel]) -> tuple[float, float]:
    params = np.concatenate([p.table["decoder_params"].to_numpy(np.float64) for p in panels])
    lo, hi = np.log10(params.min()), np.log10(params.max())
    span = max(hi - lo, 0.3) * 1.3
    centre = 0.5 * (lo + hi)
    return 10 ** (centre - span / 2), 10 ** (centre + span / 2)


def _values(p: QuantPanel, stem: str) -> np.ndarray:
    return np.concatenate(
        [p.table[f"{stem}{s}"].to_numpy(np.float64) for s in ("_mean", "_ci_lo", "_ci_hi")]
    )


def _draw(ax, table: pd.DataFrame, stem: str) -> None:
    for depth in sorted(table["n_hidden_layers"].astype(int).unique()):
        colour, marker = depth_style(depth)
        rows = table[table["n_hidden_layers"].astype(int) == depth].sort_values(
            "decoder_params", kind="stable"
        )
        x = rows["decoder_params"].to_numpy(np.float64)
        mean = rows[f"{stem}_mean"].to_numpy(np.float64)
        lo = rows[f"{stem}_ci_lo"].to_numpy(np.float64)
        hi = rows[f"{stem}_ci_hi"].to_numpy(np.float64)
        ax.plot(
            x,
            mean,
            color=colour,
            marker=marker,
            ms=5,
            lw=1.0,
            alpha=0.9,
            label=depth_label(depth),
            zorder=3,
        )
        has = np.isfinite(lo) & np.isfinite(hi) & np.isfinite(mean)
        if has.any():
            # the mean lies inside its percentile interval; clip only rounding
            yerr = np.vstack(
                [np.clip(mean[has] - lo[has], 0, None), np.clip(hi[has] - mean[has], 0, None)]
            )
            ax.errorbar(
                x[has],
                mean[has],
                yerr=yerr,
                fmt="none",
                ecolor=colour,
                elinewidth=1.1,
                capsize=2.5,
                capthick=1.0,
                zorder=2,
            )


def plot_quant(
    panels: Sequence[QuantPanel],
    *,
    level: float,
    n_resamples: int,
    metrics: Sequence[Metric] = METRICS,
    title: str | None = None,
) -> Figure:
    """One block of small multiples per metric (default :data:`METRICS`), one panel per entry
    of ``panels`` each, sharing a log x axis of decoder parameter counts. ``title``: the
    figure's title (default: Figure 4, quantified), wrapped to the figure's width, with
    ``{seeds}`` replaced by :func:`seeds_text` (e.g. "3 seeds")."""
    if not panels:
        raise ValueError("no panels to draw")
    bad = [m.axis for m in metrics if m.axis not in AXES]
    if bad:
        raise ValueError(f"unknown axis kinds {bad} (known: {', '.join(AXES)})")
    n = len(panels)
    ncols = min(n, MAX_COLS)
    nrows = -(-n // ncols)
    fig_w = max(ncols * PANEL_W_IN + 0.9, MIN_W_IN)
    block_h = nrows * PANEL_H_IN + 0.55
    if title is None:
        title = (
            rf"Figure 4, quantified: VAEs trained on {dataset()}$^{{tr}}$ without the "
            "held-out "
            f"digit d, by depth and decoder size (means over {seeds_text(panels)})"
        )
    title = wrap_text(title.replace("{seeds}", seeds_text(panels)), fig_w, 10)
    header_h = 0.45 + 0.2 * (title.count("\n") + 1)
    fig = Figure(figsize=(fig_w, header_h + len(metrics) * block_h + 0.35), layout="constrained")
    header, *blocks = fig.subfigures(
        1 + len(metrics), 1, height_ratios=[header_h] + [block_h] * len(metrics), squeeze=False
    )[:, 0]
    xlim = _x_limits(panels)
    ticks = count_ticks(*xlim)
    depths = sorted({int(d) for p in panels for d in p.table["n_hidden_layers"]})
    for block, metric in zip(blocks, metrics):
        stem, ylabel, block_title = metric.stem, metric.ylabel, metric.title
        axes = block.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True)
        values = np.concatenate([_values(p, stem) for p in panels])
        values = values[np.isfinite(values)]
        top = float(values.max()) if len(values) else 1.0
        for i, ax in enumerate(axes.flat):
            if i >= n:
                ax.remove()
                continue
            p = panels[i]
            _draw(ax, p.table, stem)
            ax.set_title(p.title, fontsize=8, pad=3)
            ax.set_xscale("log")
            ax.set_xlim(*xlim)
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_xticks(ticks, [format_count(t) for t in ticks])
            ax.tick_params(labelsize=7)
            ax.grid(True, which="major", color="0.92", lw=0.6)
            ax.set_axisbelow(True)
            if metric.ref is not None:
                ax.axhline(metric.ref, color="0.55", lw=0.8, ls=":", zorder=1)
            if metric.axis in ("share", "signed"):
                ax.set_ylim(*_linear_limits(values, metric))
            elif metric.axis == "fraction":
                ax.set_ylim(-0.04, 1.04)
            elif top >= LOG_Y_RATIO:
                ax.set_yscale("log")
                ax.set_ylim(0.9, top * 1.35)
                ax.yaxis.set_minor_locator(NullLocator())
                ax.set_yticks(count_ticks(1.0, top * 1.3))
                ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            else:
                ax.set_ylim(0.95, max(top, 1.0) * 1.08 + 0.05)
            row, col = divmod(i, ncols)
            if col == 0:
                ax.set_ylabel(ylabel, fontsize=8)
            if row == nrows - 1 or i + ncols >= n:
                ax.set_xlabel("decoder parameters", fontsize=7.5)
                ax.tick_params(axis="x", labelbottom=True)
        block.suptitle(wrap_text(block_title.format(data=dataset()), fig_w, 9), fontsize=9)
    header.suptitle(title, fontsize=10)
    handles = [
        Line2D(
            [],
            [],
            color=depth_style(d)[0],
            marker=depth_style(d)[1],
            ms=5,
            lw=1.0,
            label=depth_label(d),
        )
        for d in depths
    ]
    header.legend(
        handles=handles,
        loc="lower center",
        ncols=len(handles),
        fontsize=8,
        frameon=False,
        borderaxespad=0.1,
    )
    # a footnote that constrained layout makes room for
    fig.supxlabel(
        wrap_text(
            f"Error bars: {level:.0%} bootstrap percentile interval of the "
            f"mean over seeds ({n_resamples} resamples of the seeds); no bar "
            f"where a configuration has one seed. x: decoder parameter count "
            f"(log scale).",
            fig_w,
            7,
        ),
        fontsize=7,
        color="0.3",
    )
    return fig


def _linear_limits(values: np.ndarray, metric: Metric) -> tuple[float, float]:
    """y limits of a "share" axis (from 0 to the largest value) or a "signed" one (from the
    smallest to the largest value, always showing 0), each with the reference line and a
    margin of 6% of the span."""
    pts = list(values) + [0.0] + ([metric.ref] if metric.ref is not None else [])
    lo, hi = float(min(pts)), float(max(pts))
    if metric.axis == "share":
        lo = 0.0
    pad = 0.06 * ((hi - lo) or 1.0)
    return lo - pad, hi + pad


def seeds_text(panels: Sequence[QuantPanel]) -> str:
    """How many seeds the panels' means are over: "3 seeds", "2-3 seeds", "1 seed"."""
    n = sorted({int(s) for p in panels if "n_seeds" in p.table for s in p.table["n_seeds"]})
    if not n:
        return "seeds"
    return (f"{n[0]}" if len(n) == 1 else f"{n[0]}-{n[-1]}") + (" seed" if n == [1] else " seeds")


def wrap_text(text: str, width_in: float, fontsize: float) -> str:
    """Break ``text`` at spaces into lines that fit ``width_in`` inches at ``fontsize``
    points (about 0.5 em per character), never inside a ``$...$`` math span."""
    words: list[str] = []
    for token in text.split(" "):
        if words and words[-1].count("$") % 2:
            words[-1] += " " + token  # still inside a math span
        else:
            words.append(token)
    limit = max(20, int(width_in * 72 / (0.52 * fontsize)))

    def visible(word: str) -> int:
        return len(re.sub(r"\\[a-zA-Z]+|[${}^_\\]", "", word))

    lines, line, used = [], [], 0
    for w in words:
        if line and used + 1 + visible(w) > limit:
            lines.append(" ".join(line))
            line, used = [], 0
        used += visible(w) + (1 if line else 0)
        line.append(w)
    lines.append(" ".join(line))
    return "\n".join(lines)


def check_columns(by_config: pd.DataFrame, metrics: Sequence[Metric], source: str) -> None:
    """Refuse a seed summary without the mean and interval columns of every metric."""
    missing = [
        f"{m.stem}{s}"
        for m in metrics
        for s in ("_mean", "_ci_lo", "_ci_hi")
        if f"{m.stem}{s}" not in by_config.columns
    ]
    if missing:
        raise ValueError(
            f"{source}: no column(s) {', '.join(missing)} (made before the stage "
            f"that computes them was run?)"
        )


def quant_from_files(
    by_config_path,
    summary_path,
    digits: Sequence[int],
    *,
    level: float,
    n_resamples: int,
    seed: int,
    metrics: Sequence[Metric] = METRICS,
    title: str | None = None,
) -> Figure:
    """The figure from ``summary_by_config.csv`` (per-digit panels) and ``summary.csv`` (the
    all-digit panel, resampled over seeds with the same settings)."""
    from ..seeds import pool_heldout, summarise_seeds

    by_config = pd.read_csv(by_config_path)
    check_columns(by_config, metrics, str(by_config_path))
    pooled = None
    if len(digits) > 1:
        pooled = summarise_seeds(
            pool_heldout(pd.read_csv(summary_path), digits, source=str(summary_path)),
            n_resamples=n_resamples,
            level=level,
            seed=seed,
            statistics=[m.stem for m in metrics],
            source=str(summary_path),
        )
    panels = digit_panels(by_config, sorted(int(d) for d in digits), pooled)
    return plot_quant(panels, level=level, n_resamples=n_resamples, metrics=metrics, title=title)
