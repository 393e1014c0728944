"""Figures 14 and 15 (generated samples), on synthetic files in the samples stage's format."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from matplotlib.colors import to_rgba
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure

from vae_novelty.data import DataError
from vae_novelty.figures import build, figure14, figure15, quant
from vae_novelty.figures.loaders import read_sample_arrays
from vae_novelty.figures.selection import SelectionError
from vae_novelty.model import decoder_param_count
from vae_novelty.seeds import summarise_seeds

DATA = "feedfacefeedface"
N_TRAIN = 60


# --------------------------------------------------------------------------- synthetic files


def samples_table(model_id="a.no9.s0", split="no9", n=40, seed=0) -> pd.DataFrame:
    """Rows in the samples stage's format, shuffled (the figure must sort by ``sample``).
    Sample 0 is a copy (ratio 0.1), sample 1 sits exactly at the threshold 1/3 (not a copy),
    sample 2 is classified 9 and sample 3 is equidistant (0 / 0)."""
    rng = np.random.default_rng(seed)
    nn1 = rng.uniform(2.0, 6.0, n)
    nn2 = nn1 * rng.uniform(1.0, 4.0, n)
    nn1[0], nn2[0] = 1.0, 10.0
    nn1[1], nn2[1] = 2.0, 6.0
    nn1[3], nn2[3] = 0.0, 0.0
    digit = rng.integers(0, 9, n).astype(np.int8)  # never 9 ...
    digit[2] = 9  # ... except sample 2
    rows = pd.DataFrame(
        {
            "model_id": [model_id] * n,
            "sample": np.arange(n, dtype=np.int64),
            "z": [rng.standard_normal(4).astype(np.float32).tolist() for _ in range(n)],
            "perplexity": 1.0 + rng.exponential(2.0, n),
            "w_max": rng.uniform(0.2, 1.0, n),
            "top_rows": [rng.choice(N_TRAIN, 3, replace=False).tolist() for _ in range(n)],
            "top_weights": [[0.6, 0.3, 0.1]] * n,
            "bce_mu_xhat": rng.gamma(5, 10, n),
            "nn1_row": rng.integers(0, N_TRAIN, n),
            "nn1_dist": nn1,
            "nn2_row": rng.integers(0, N_TRAIN, n),
            "nn2_dist": nn2,
            "test_nn_row": rng.integers(0, 100, n),
            "test_nn_dist": rng.uniform(2, 6, n),
            "digit": digit,
            "digit_prob": rng.uniform(0.5, 1.0, n),
        }
    )
    rows.attrs["model_id"], rows.attrs["split"] = model_id, split
    return rows.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def sample_images(samples: np.ndarray) -> dict[str, np.ndarray]:
    """x_hat and mu whose pixel 0 encodes the sample number (mu: negative, x_hat: positive)."""
    x_hat = np.full((len(samples), 784), 0.5, np.float32)
    x_hat[:, 0] = samples / 1000.0
    return {"x_hat": x_hat, "mu": x_hat * 0.5}


def write_sample_files(
    table: pd.DataFrame, stem, data: str = DATA, m: int = 12, with_sample: bool = False
) -> tuple[str, str]:
    """``table`` as samples/{arch}/{split}_s{seed}.parquet and the images of its first ``m``
    samples as the .npz beside it (with an explicit, shuffled ``sample`` array if asked)."""
    model_id = table.attrs["model_id"]
    meta = json.dumps({"model_id": model_id, "data": data}).encode()
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    pq.write_table(arrow.replace_schema_metadata({b"vae_novelty": meta}), f"{stem}.parquet")
    samples = np.arange(m)
    extra = {}
    if with_sample:
        samples = samples[::-1].copy()
        extra["sample"] = samples
    np.savez(
        f"{stem}.npz",
        model_id=np.array(model_id),
        data=np.array(data),
        **{k: v.astype(np.float16) for k, v in sample_images(samples).items()},
        **extra,
    )
    return f"{stem}.parquet", f"{stem}.npz"


def train_images() -> np.ndarray:
    imgs = np.zeros((N_TRAIN, 784), np.uint8)
    imgs[:, 0] = np.arange(N_TRAIN)  # pixel 0 encodes the training row
    return imgs


# --------------------------------------------------------------------------- Figure 14


def test_distance_ratio_against_a_loop():
    d1 = [0.0, 1.0, 2.0, 3.0, 0.0]
    d2 = [0.0, 3.0, 2.0, 12.0, 5.0]
    want = []
    for a, b in zip(d1, d2):
        want.append(1.0 if b == 0 else a / b)
    assert figure14.distance_ratio(d1, d2).tolist() == want
    with pytest.raises(ValueError, match="nn1_dist <= nn2_dist"):
        figure14.distance_ratio([2.0], [1.0])


def test_block_stats_against_a_loop():
    t = samples_table(n=40)
    copies = ratios = held = 0
    ratio_list = []
    for _, row in t.iterrows():
        r = 1.0 if row.nn2_dist == 0 else row.nn1_dist / row.nn2_dist
        ratio_list.append(r)
        copies += r < 1 / 3
        held += int(row.digit) == 9
        ratios += 1
    stats = figure14.block_stats(t, 9)
    assert stats.n == 40
    assert stats.copy_frac == pytest.approx(copies / 40)
    assert stats.ratio_median == pytest.approx(float(np.median(ratio_list)))
    assert stats.perplexity_median == pytest.approx(float(np.median(t.perplexity)))
    assert stats.heldout_frac == pytest.approx(1 / 40)  # sample 2 only
    assert np.isnan(figure14.block_stats(t, None).heldout_frac)
    # the threshold is strict: sample 1 (ratio exactly 1/3) is no copy, sample 0 (0.1) is
    one = t[t["sample"].isin([0, 1])]
    assert figure14.block_stats(one, 9).copy_frac == 0.5


@pytest.mark.parametrize("with_sample", [False, True])
def test_sample_block_shows_the_first_samples_and_their_nearest_images(tmp_path, with_sample):
    t = samples_table()
    _, npz = write_sample_files(t, tmp_path / "m", with_sample=with_sample)
    block = figure14.sample_block(t, read_sample_arrays(npz), 5, train_images(), "a.no9.s0", "no9")
    assert block.rows["sample"].tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(block.x_hat[:, 0], np.arange(5) / 1000.0, atol=1e-4)
    np.testing.assert_allclose(block.mu[:, 0], np.arange(5) / 2000.0, atol=1e-4)
    assert (block.nearest[:, 0] * 255).round().astype(int).tolist() == block.rows[
        "nn1_row"
    ].tolist()
    assert block.ratio[:4].tolist() == pytest.approx([0.1, 1 / 3, block.ratio[2], 1.0])
    assert block.heldout == 9 and block.stats.n == len(t)


def test_sample_block_refuses_what_the_files_do_not_hold(tmp_path):
    t = samples_table(n=20)
    _, npz = write_sample_files(t, tmp_path / "m", m=6)
    arrays = read_sample_arrays(npz)
    with pytest.raises(
        SelectionError,
        match=r"m\.parquet: 21 samples asked for, the table "
        r"holds 20",
    ):
        figure14.sample_block(t, arrays, 21, train_images(), "a", "no9", what="m.parquet")
    with pytest.raises(
        SelectionError,
        match=r"samples \[6, 7\] have no images \(the image "
        r"file holds 6 samples\)",
    ):
        figure14.sample_block(t, arrays, 8, train_images(), "a", "no9")
    with pytest.raises(SelectionError, match="nearest training rows"):
        figure14.sample_block(t, arrays, 3, train_images()[:1], "a", "no9")
    with pytest.raises(KeyError, match=r"missing columns \['nn2_dist'\]"):
        figure14.sample_block(t.drop(columns="nn2_dist"), arrays, 3, train_images(), "a", "no9")


def fig14_inputs(tmp_path, data=DATA):
    models, tables, arrays = [], [], []
    for role, hidden in (("shallow", "4"), ("deep", "4-3-2")):
        for split in ("full", "no9"):
            mid = f"{role}.{split}.s0"
            t = samples_table(mid, split, seed=len(models))
            t.attrs["model_id"] = mid
            table, array = write_sample_files(t, tmp_path / f"{role}_{split}", data=data)
            models.append(
                {"role": role, "split": split, "title": f"{role} VAE ({hidden})", "model_id": mid}
            )
            tables.append(table)
            arrays.append(array)
    np.savez(tmp_path / "mnist.npz", train_images=train_images())
    return models, tables, arrays, tmp_path / "mnist.npz"


def image_axes(sub) -> list:
    return [ax for ax in sub.axes if ax.images]


def test_figure14_panels(tmp_path):
    models, tables, arrays, mnist = fig14_inputs(tmp_path)
    n = 4
    fig = build.figure14_from_files(models, tables, arrays, mnist, n, data=DATA)
    assert isinstance(fig, Figure)
    assert len(fig.subfigs) == 2 * 3  # a title row, then 2 x 2 blocks
    blocks = fig.subfigs[2:]
    titles = [sub._suptitle.get_text() for sub in blocks]
    assert titles[0].startswith("shallow VAE (4), trained on MNIST$^{tr}$")
    assert titles[3].startswith("deep VAE (4-3-2)") and "setminus 9" in titles[3]
    for sub, m in zip(blocks, models):
        axes = image_axes(sub)
        assert len(axes) == 3 * n  # x_hat, mu, nearest per sample
        # column by column: x_hat (digit and probability), mu (perplexity), nearest (ratio)
        x_hat, mu, nearest = axes[0::3], axes[1::3], axes[2::3]
        assert [ax.get_title()[:2] for ax in mu] == ["pp"] * n
        assert [ax.get_title() for ax in nearest[:2]] == ["r 0.10", "r 0.33"]
        assert nearest[0].spines["top"].get_visible()  # a copy: framed
        assert to_rgba(nearest[0].spines["top"].get_edgecolor()) == to_rgba(figure14.COPY_COLOUR)
        assert not nearest[1].spines["top"].get_visible()  # exactly 1/3: no copy
        assert nearest[3].get_title() == "r 1.00"  # equidistant 0 / 0
        assert x_hat[2].get_title().startswith("9 (")
        held = to_rgba(x_hat[2].title.get_color()) == to_rgba(figure14.COPY_COLOUR)
        assert held == (m["split"] == "no9")  # red only where 9 was held out
        # the images are the first samples' and their nearest training images
        for col in range(n):
            assert x_hat[col].images[0].get_array()[0, 0] == pytest.approx(col / 1000, abs=1e-4)
        notes = [
            t.get_text().replace("\n", " ") for ax in sub.axes if not ax.images for t in ax.texts
        ]
        assert notes and notes[0].startswith("over all 40 samples: copies (r < 1/3)")
        assert ("classified as 9" in notes[0]) == (m["split"] == "no9")
    nearest_row = tables[0]
    rows = pd.read_parquet(nearest_row).sort_values("sample")
    first = image_axes(blocks[0])[2].images[0].get_array()[0, 0]
    assert round(first * 255) == int(rows["nn1_row"].iloc[0])


def test_figure14_refuses_files_of_another_model_or_data(tmp_path):
    models, tables, arrays, mnist = fig14_inputs(tmp_path)
    with pytest.raises(
        ValueError,
        match=r"shallow_no9\.parquet: holds model "
        r"'shallow\.no9\.s0', expected 'shallow\.full\.s0'",
    ):
        build.figure14_from_files(models, [tables[1], tables[0], *tables[2:]], arrays, mnist, 3)
    with pytest.raises(
        ValueError,
        match=r"shallow_no9\.npz: holds model 'shallow\.no9\.s0', "
        r"expected 'shallow\.full\.s0'",
    ):
        build.figure14_from_files(models, tables, [arrays[1], arrays[0], *arrays[2:]], mnist, 3)
    other = tmp_path / "other"
    other.mkdir()
    _, tables2, arrays2, _ = fig14_inputs(other, data="0123456789abcdef")
    with pytest.raises(
        DataError,
        match=r"shallow_full\.parquet: made from data "
        rf"0123456789abcdef, but this run's data is {DATA}",
    ):
        build.figure14_from_files(models, tables2, arrays, mnist, 3, data=DATA)
    with pytest.raises(DataError, match=r"shallow_full\.npz: made from data 0123456789abcdef"):
        build.figure14_from_files(models, tables, arrays2, mnist, 3, data=DATA)


def test_read_sample_arrays_checks_its_arrays(tmp_path):
    np.savez(
        tmp_path / "bad.npz", model_id=np.array("a"), data=np.array(DATA), x_hat=np.zeros((3, 784))
    )
    with pytest.raises(
        DataError,
        match=r"bad\.npz: not a sample image arrays file: missing "
        r"array\(s\) \['mu'\]",
    ):
        read_sample_arrays(tmp_path / "bad.npz")
    np.savez(
        tmp_path / "cut.npz",
        model_id=np.array("a"),
        data=np.array(DATA),
        x_hat=np.zeros((3, 784)),
        mu=np.zeros((3, 784)),
    )
    assert read_sample_arrays(tmp_path / "cut.npz")["x_hat"].shape == (3, 784)
    data = (tmp_path / "cut.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cut\.npz: cannot read the sample image arrays"):
        read_sample_arrays(tmp_path / "cut.npz")
    np.savez(
        tmp_path / "odd.npz",
        model_id=np.array("a"),
        data=np.array(DATA),
        x_hat=np.zeros((3, 784)),
        mu=np.zeros((2, 784)),
    )
    with pytest.raises(ValueError, match=r"odd\.npz: x_hat \(3, 784\) and mu \(2, 784\)"):
        read_sample_arrays(tmp_path / "odd.npz")


# --------------------------------------------------------------------------- Figure 15

ARCHS = {"h100": [100], "h400": [400], "h200-100": [200, 100], "h400-200-100": [400, 200, 100]}


def summary(digits=(9,), seeds=(0, 1, 2)) -> pd.DataFrame:
    """summary.csv-like rows with the samples stage's columns: deeper models copy more, C_T
    from negative (deep) to positive (shallow)."""
    r = np.random.default_rng(1)
    rows = []
    for arch, widths in ARCHS.items():
        for d in digits:
            for s in seeds:
                depth = len(widths)
                row = dict(
                    model_id=f"{arch}.no{d}.s{s}",
                    arch=arch,
                    hidden="-".join(map(str, widths)),
                    n_hidden_layers=depth,
                    z_dim=50,
                    split=f"no{d}",
                    heldout_digit=d,
                    seed=s,
                    n_test=20,
                    decoder_params=decoder_param_count(widths, 50),
                    perplexity_median=1.0,
                    frac_closer_to_mu=0.5,
                    sample_copy_frac=float(np.clip(0.25 * depth + r.normal(0, 0.05), 0, 1)),
                    sample_dist_ratio_median=0.6,
                    sample_perplexity_median=1.5,
                    sample_frac_wmax_gt_0_99=0.4,
                    sample_ct=float(6.0 - 4.0 * depth + r.normal(0, 0.5)),
                    sample_heldout_frac=float(0.002 * depth + r.uniform(0, 0.004)),
                )
                row.update({f"sample_digit_frac_{k}": 0.1 for k in range(10)})
                rows.append(row)
    return pd.DataFrame(rows)


def write_tables(tmp_path, df):
    df.to_csv(tmp_path / "summary.csv", index=False)
    summarise_seeds(df, n_resamples=200, level=0.95, seed=0).to_csv(
        tmp_path / "by_config.csv", index=False
    )
    return tmp_path / "by_config.csv", tmp_path / "summary.csv"


def draw15(tmp_path, df, digits):
    by_config, summ = write_tables(tmp_path, df)
    return figure15.figure15_from_files(
        by_config, summ, digits, level=0.95, n_resamples=200, seed=0
    )


def test_figure15_one_panel_per_digit_and_metric_with_seed_intervals(tmp_path):
    fig = draw15(tmp_path, summary(digits=(3, 9)), [3, 9])
    blocks = fig.subfigs[1:]
    assert len(blocks) == 3  # copy, held-out digit, C_T
    axes = [ax for sub in blocks for ax in sub.axes]
    assert len(axes) == 3 * 3  # 2 digits + their mean, 3 metrics
    assert [ax.get_title() for ax in axes[:3]] == [
        "held-out 3: MNIST$^{te}_{3}$",
        "held-out 9: MNIST$^{te}_{9}$",
        "mean over held-out 3, 9",
    ]
    assert [ax.get_ylabel() for ax in axes[0::3]] == [
        "copy fraction",
        "fraction classified d",
        "$C_T$",
    ]
    assert all(ax.get_xscale() == "log" for ax in axes)
    for ax in axes:
        bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
        assert len(bars) == 3  # one per depth
        assert sum(len(c.lines[2][0].get_segments()) for c in bars) == len(ARCHS)
    assert "Figure 15" in fig.subfigs[0]._suptitle.get_text()
    assert "3 seeds" in fig.subfigs[0]._suptitle.get_text()


def test_figure15_plots_the_means_and_its_axes_show_every_value(tmp_path):
    df = summary(digits=(3, 9))
    fig = draw15(tmp_path, df, [3, 9])
    by_config = pd.read_csv(tmp_path / "by_config.csv")
    copy_ax, held_ax, ct_ax = (sub.axes[1] for sub in fig.subfigs[1:])  # held-out 9
    for ax, stem in (
        (copy_ax, "sample_copy_frac"),
        (held_ax, "sample_heldout_frac"),
        (ct_ax, "sample_ct"),
    ):
        line = next(ln for ln in ax.lines if ln.get_label() == "3 hidden layers")
        row = by_config[(by_config.arch == "h400-200-100") & (by_config.split == "no9")].iloc[0]
        assert line.get_ydata()[0] == pytest.approx(row[f"{stem}_mean"])
        lo, hi = ax.get_ylim()
        values = by_config[[f"{stem}{s}" for s in ("_mean", "_ci_lo", "_ci_hi")]].to_numpy()
        assert lo <= values.min() and values.max() <= hi
    assert copy_ax.get_ylim() == pytest.approx((-0.04, 1.04))
    # held-out fractions near 0.01: the axis runs from 0 to just above the 1/10 line
    assert held_ax.get_ylim()[0] < 0 < 0.1 < held_ax.get_ylim()[1] < 0.12
    refs = [ln.get_ydata()[0] for ln in held_ax.lines if ln.get_linestyle() == ":"]
    assert refs == [0.1]
    # C_T spans negative and positive values, with the line at 0
    assert ct_ax.get_ylim()[0] < -5 and ct_ax.get_ylim()[1] > 1
    assert [ln.get_ydata()[0] for ln in ct_ax.lines if ln.get_linestyle() == ":"] == [0.0]
    # the pooled panel: each seed's mean over the digits, then over seeds
    pooled = next(ln for ln in fig.subfigs[3].axes[2].lines if ln.get_label() == "1 hidden layer")
    want = df[df.n_hidden_layers == 1].groupby("decoder_params").sample_ct.mean().sort_index()
    assert list(pooled.get_ydata()) == pytest.approx(list(want))


def test_figure15_names_the_file_without_the_samples_columns(tmp_path):
    df = summary().drop(columns=["sample_ct"])
    by_config, summ = write_tables(tmp_path, df)
    with pytest.raises(
        ValueError,
        match=r"by_config\.csv: no column\(s\) sample_ct_mean, "
        r"sample_ct_ci_lo, sample_ct_ci_hi",
    ):
        figure15.figure15_from_files(by_config, summ, [9], level=0.95, n_resamples=100, seed=0)


def test_unknown_axis_kind_is_refused():
    table = summarise_seeds(summary(), n_resamples=50, seed=0)
    with pytest.raises(ValueError, match="unknown axis kinds"):
        quant.plot_quant(
            quant.digit_panels(table, [9]),
            level=0.95,
            n_resamples=50,
            metrics=[quant.Metric("sample_ct", "C_T", "t", "wobbly")],
        )


def test_figure15_c_t_axis_shows_0_when_every_value_is_positive():
    df = summary()
    df["sample_ct"] = df["sample_ct"].abs() + 3.0  # all underfitting
    table = summarise_seeds(df, n_resamples=50, seed=0)
    fig = quant.plot_quant(
        quant.digit_panels(table, [9]), level=0.95, n_resamples=50, metrics=figure15.METRICS
    )
    ct_ax = fig.subfigs[3].axes[0]
    lo, hi = ct_ax.get_ylim()
    assert lo < 0.0 and hi > df["sample_ct"].max()  # the line at 0 is in view
    assert hi - df["sample_ct"].max() < 0.1 * (hi - lo)  # a margin, not a wasted half


def test_samples_columns_of_the_figures_equal_the_table_schema():
    from vae_novelty.figures.loaders import SAMPLES_COLUMNS
    from vae_novelty.samples_table import table_schema

    assert SAMPLES_COLUMNS == tuple(table_schema(4).names)


def test_a_samples_table_with_a_missing_or_extra_column_is_refused_by_name(tmp_path):
    """Figure 14 and the tables rule read a samples table with exactly its columns."""
    from vae_novelty.figures.loaders import SAMPLES_COLUMNS
    from vae_novelty.figures.loaders import read_table
    from vae_novelty.samples_table import read_samples

    table, _ = write_sample_files(samples_table(), tmp_path / "m")
    assert list(read_table(table, "a.no9.s0", DATA, columns=SAMPLES_COLUMNS).columns) == list(
        SAMPLES_COLUMNS
    )
    read_samples(table, "a.no9.s0", DATA)
    arrow = pq.read_table(table)
    meta = arrow.schema.metadata
    pq.write_table(arrow.drop_columns(["w_max"]).replace_schema_metadata(meta), table)
    want = r"m\.parquet: missing column\(s\) \['w_max'\], unexpected column\(s\) \[\]"
    with pytest.raises(ValueError, match=want):
        read_table(table, "a.no9.s0", DATA, columns=SAMPLES_COLUMNS)
    with pytest.raises(ValueError, match=want):
        read_samples(table, "a.no9.s0", DATA)
