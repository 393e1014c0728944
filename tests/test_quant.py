"""figure_quant (vae_novelty.figures.quant): Figure 4 as a measurement, on synthetic tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure

from vae_novelty.figures import quant
from vae_novelty.model import decoder_param_count
from vae_novelty.seeds import summarise_seeds

ARCHS = {
    "h100": [100],
    "h400": [400],
    "h200-100": [200, 100],
    "h400-200-100": [400, 200, 100],
    "h100-100-100": [100, 100, 100],
}


def summary(digits=(9,), seeds=(0, 1, 2), z_dim=50) -> pd.DataFrame:
    """summary.csv-like rows: deeper models closer to mu, with seed noise."""
    r = np.random.default_rng(0)
    rows = []
    for arch, widths in ARCHS.items():
        for d in digits:
            for s in seeds:
                depth = len(widths)
                rows.append(
                    dict(
                        model_id=f"{arch}.no{d}.s{s}",
                        arch=arch,
                        hidden="-".join(map(str, widths)),
                        n_hidden_layers=depth,
                        z_dim=z_dim,
                        split=f"no{d}",
                        heldout_digit=d,
                        seed=s,
                        n_test=20,
                        decoder_params=decoder_param_count(widths, z_dim),
                        perplexity_median=float(1 + 2 * (depth - 1) + r.exponential(0.5)),
                        frac_closer_to_mu=float(np.clip(0.2 * depth + r.normal(0, 0.05), 0, 1)),
                        final_test_neg_elbo=float(r.normal(100, 2)),
                    )
                )
    return pd.DataFrame(rows)


def by_config(df, n_resamples=300, level=0.95):
    return summarise_seeds(df, n_resamples=n_resamples, level=level, seed=0)


def panel_axes(fig: Figure) -> list:
    """The plotting axes of the two metric blocks (the first subfigure is the header)."""
    return [ax for sub in fig.subfigs[1:] for ax in sub.axes]


def test_one_panel_per_digit_and_metric_with_log_x_and_error_bars():
    table = by_config(summary(digits=(3, 9)))
    fig = quant.plot_quant(quant.digit_panels(table, [3, 9]), level=0.95, n_resamples=300)
    assert isinstance(fig, Figure)
    axes = panel_axes(fig)
    assert len(axes) == 2 * 2  # 2 digits x 2 metrics
    assert all(ax.get_xscale() == "log" for ax in axes)
    assert len({ax.get_xlim() for ax in axes}) == 1  # one size axis for every panel
    assert [ax.get_title() for ax in axes[:2]] == [
        "held-out 3: MNIST$^{te}_{3}$",
        "held-out 9: MNIST$^{te}_{9}$",
    ]
    for ax in axes:
        bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
        assert len(bars) == 3  # one per depth (1, 2, 3 layers)
        assert sum(len(c.lines[2][0].get_segments()) for c in bars) == len(ARCHS)
    assert axes[0].get_ylabel().startswith("fraction closer")
    assert axes[2].get_ylabel() == "median perplexity"


def test_points_are_coloured_and_shaped_by_depth_with_a_legend():
    table = by_config(summary())
    fig = quant.plot_quant(quant.digit_panels(table, [9]), level=0.95, n_resamples=300)
    ax = panel_axes(fig)[0]
    lines = {ln.get_label(): ln for ln in ax.lines if not ln.get_label().startswith("_")}
    assert set(lines) == {"1 hidden layer", "2 hidden layers", "3 hidden layers"}
    for depth in (1, 2, 3):
        ln = lines[quant.depth_label(depth)]
        assert ln.get_color() == quant.DEPTH_COLOURS[depth]
        assert ln.get_marker() == quant.DEPTH_MARKERS[depth]
        want = sorted(decoder_param_count(w, 50) for w in ARCHS.values() if len(w) == depth)
        assert list(ln.get_xdata()) == want  # joined in order of size
    for c in ax.containers:  # bars in the colour of their depth
        colour = c.lines[2][0].get_color()[0]
        assert any(np.allclose(colour, _rgba(quant.DEPTH_COLOURS[d])) for d in (1, 2, 3))
    legend = fig.subfigs[0].legends[0]
    assert [t.get_text() for t in legend.get_texts()] == [
        "1 hidden layer",
        "2 hidden layers",
        "3 hidden layers",
    ]


def _rgba(name):
    from matplotlib.colors import to_rgba

    return to_rgba(name)


def test_bars_span_the_interval_and_the_values_are_the_means():
    table = by_config(summary())
    fig = quant.plot_quant(quant.digit_panels(table, [9]), level=0.95, n_resamples=300)
    ax = panel_axes(fig)[0]
    row = table[table.arch == "h400"].iloc[0]
    segs = [s for c in ax.containers for s in c.lines[2][0].get_segments()]
    seg = next(s for s in segs if np.isclose(s[0, 0], row.decoder_params))
    assert sorted(seg[:, 1]) == pytest.approx(
        [row.frac_closer_to_mu_ci_lo, row.frac_closer_to_mu_ci_hi]
    )
    line = next(ln for ln in ax.lines if ln.get_label() == "1 hidden layer")
    i = list(line.get_xdata()).index(row.decoder_params)
    assert line.get_ydata()[i] == pytest.approx(row.frac_closer_to_mu_mean)


def test_one_seed_draws_no_error_bars():
    table = by_config(summary(seeds=(0,)))
    assert table.filter(like="_ci_").isna().all().all()
    fig = quant.plot_quant(quant.digit_panels(table, [9]), level=0.95, n_resamples=300)
    for ax in panel_axes(fig):
        assert not ax.containers
        assert sum(
            len(ln.get_xdata()) for ln in ax.lines if not ln.get_label().startswith("_")
        ) == len(ARCHS)


def test_many_digits_wrap_into_rows_and_the_pooled_panel_comes_last(tmp_path):
    df = summary(digits=tuple(range(10)), seeds=(0, 1))
    df.to_csv(tmp_path / "summary.csv", index=False)
    by_config(df).to_csv(tmp_path / "by_config.csv", index=False)
    fig = quant.quant_from_files(
        tmp_path / "by_config.csv",
        tmp_path / "summary.csv",
        list(range(10)),
        level=0.9,
        n_resamples=200,
        seed=0,
    )
    axes = panel_axes(fig)
    assert len(axes) == 2 * 11  # 10 digits + the mean over digits
    assert axes[10].get_title() == "mean over held-out 0-9"
    assert axes[21].get_title() == "mean over held-out 0-9"
    # the pooled points are the per-digit means averaged over digits
    pooled = next(ln for ln in axes[10].lines if ln.get_label() == "3 hidden layers")
    per_digit = df[df.n_hidden_layers == 3].groupby("decoder_params").frac_closer_to_mu.mean()
    assert list(pooled.get_ydata()) == pytest.approx(list(per_digit.sort_index()))
    assert axes[12].get_yscale() == "log"  # perplexity from 1 to about 6


def test_a_single_digit_has_no_pooled_panel(tmp_path):
    df = summary(digits=(4,))
    df.to_csv(tmp_path / "summary.csv", index=False)
    by_config(df).to_csv(tmp_path / "by_config.csv", index=False)
    fig = quant.quant_from_files(
        tmp_path / "by_config.csv",
        tmp_path / "summary.csv",
        [4],
        level=0.95,
        n_resamples=100,
        seed=0,
    )
    assert len(panel_axes(fig)) == 2


def test_missing_digit_is_an_error():
    with pytest.raises(ValueError, match="without 5"):
        quant.digit_panels(by_config(summary()), [5])


def test_wrap_text_keeps_math_spans_whole():
    text = r"Fraction of MNIST$^{te}_d$ whose $\hat{x}$ is closer to the weighted average $\mu$"
    wrapped = quant.wrap_text(text, 2.0, 10)
    assert wrapped.replace("\n", " ") == text and "\n" in wrapped
    assert all(line.count("$") % 2 == 0 for line in wrapped.split("\n"))
    assert quant.wrap_text("short", 10, 10) == "short"


def test_depth_styles_beyond_three_layers_are_distinct():
    styles = {quant.depth_style(d) for d in range(1, 8)}
    assert len(styles) == 7
