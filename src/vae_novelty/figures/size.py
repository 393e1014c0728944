"""The size sweep's figure (issue 20): every measure against the training-set size N (log
axis), one line per architecture (mean over halves and seeds) with a band from the lowest to
the highest model, and the transition sizes (:mod:`vae_novelty.size_table`) marked and
printed."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .common import figure_text

PANELS = (
    ("frac_closer_to_mu", "test reconstructions closer to mu", False),
    ("copy_fraction", "samples that are copies (d1/d2 < 1/3)", False),
    (
        "agreement",
        "cross-half agreement (A and B closer\nto each other than to own training)",
        False,
    ),
    ("median_perplexity", "median perplexity of the weights", True),
    ("train_neg_elbo", "-ELBO: training (dashed) and test (solid)", False),
    ("elbo_gap", "-ELBO gap (test - training)", False),
    ("c_t", "C_T (data copying)", False),
)
COLOURS = ("tab:blue", "tab:green", "tab:orange", "tab:red", "tab:purple", "tab:brown")


def _band(ax, df: pd.DataFrame, column: str, colour: str, label: str | None, style="-"):
    stats = df.groupby("n_train")[column].agg(["mean", "min", "max"]).dropna()
    if stats.empty:
        return False
    ax.plot(stats.index, stats["mean"], style, color=colour, marker="o", ms=3, label=label)
    ax.fill_between(stats.index, stats["min"], stats["max"], color=colour, alpha=0.2, lw=0)
    return True


def plot_size_sweep(
    table: pd.DataFrame,
    transitions: pd.DataFrame,
    *,
    roles: dict[str, str] | None = None,
    threshold: float = 0.9,
) -> Figure:
    """The figure from the combined table and the transition sizes; ``roles``: arch ->
    a label such as "shallow" (default: the hidden widths)."""
    archs = list(dict.fromkeys(table.arch))
    roles = roles or {}
    fig = Figure(figsize=(13, 7.4))
    axes = fig.subplots(2, 4).ravel()
    for ax, (column, title, log_y) in zip(axes, PANELS):
        drawn = False
        for arch, colour in zip(archs, COLOURS):
            of_arch = table[table.arch == arch]
            hidden = of_arch.hidden.iloc[0]
            label = f"{roles.get(arch, arch)} ({hidden})"
            if column == "train_neg_elbo":  # training dashed, test solid
                drawn |= _band(ax, of_arch, "test_neg_elbo", colour, label)
                _band(ax, of_arch, column, colour, None, style="--")
            else:
                drawn |= _band(ax, of_arch, column, colour, label)
            row = transitions[(transitions.arch == arch) & (transitions.measure == column)]
            if len(row) and not np.isnan(row.n_mean_curve.iloc[0]):
                ax.axvline(row.n_mean_curve.iloc[0], color=colour, ls=":", lw=1)
        if column in ("frac_closer_to_mu", "copy_fraction", "agreement"):
            ax.axhline(threshold if column != "agreement" else 0.5, color="grey", lw=0.6)
            ax.set_ylim(-0.03, 1.03)
        if not drawn:
            ax.text(
                0.5,
                0.5,
                "not computed\n(hook for the C_T module)",
                ha="center",
                va="center",
                transform=ax.transAxes,
                fontsize=8,
                color="grey",
            )
        ax.set_xscale("log")
        if log_y and drawn:
            ax.set_yscale("log")
        ax.set_title(title, fontsize=8.5)
        ax.set_xlabel("training images N (per half)", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=7, loc="lower left")
    ax = axes[-1]
    ax.axis("off")
    lines = [f"largest N with >= {threshold:.0%}", "(mean curve; models' range)", ""]
    for _, r in transitions.iterrows():
        who = roles.get(r.arch, r.arch)
        what = "closer to mu" if r.measure == "frac_closer_to_mu" else "copies (EMM)"
        lines.append(f"{who}, {what}: {r.reading}")
    ax.text(
        0.0, 1.0, "\n".join(lines), va="top", fontsize=8, family="monospace", transform=ax.transAxes
    )
    seeds = sorted(int(s) for s in table.seed.unique())
    figure_text(
        fig,
        f"Lines: mean over halves A, B and seeds {seeds}; bands: lowest to highest "
        f"model; dotted verticals: transition sizes of the mean curves. One "
        f"step budget for every N; one fixed test set.",
    )
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig
