"""Plotting functions and selection helpers of Figures 1-13, on small synthetic inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from vae_novelty.figures import build, common, figure1, figure2, figure3, selection, sweep
from vae_novelty.figures.loaders import model_images, read_arrays
from vae_novelty.figures.summary import summary_html

RNG = np.random.default_rng(0)


# --------------------------------------------------------------------------- synthetic data


def marker_image() -> np.ndarray:
    """A flat 784-pixel image, dark except for a bright block in its top-right corner
    (rows 1-7, columns 20-27): upright it stays top right; transposed it moves to the bottom
    left, flipped vertically to the bottom right, mirrored to the top left."""
    img = np.zeros((28, 28), np.float32)
    img[1:8, 20:28] = 1.0
    return img.reshape(-1)


def theorem1_table(
    model_id="h4.no9.s0",
    arch="h4",
    hidden="4",
    split="no9",
    labels=(9,),
    per_label=5,
    decoder_params=1000,
    n_train=50,
    seed=0,
) -> pd.DataFrame:
    """Rows in the agreed Theorem 1 format, shuffled (the figures must sort by mnist_index)."""
    rng = np.random.default_rng(seed)
    rows = []
    for d in labels:
        for j in range(per_label):
            top = rng.choice(n_train, 3, replace=False)
            w = np.sort(rng.dirichlet(np.ones(3)))[::-1]
            rows.append(
                dict(
                    model_id=model_id,
                    arch=arch,
                    hidden=hidden,
                    n_hidden_layers=len(hidden.split("-")),
                    z_dim=2,
                    split=split,
                    heldout_digit=int(split[2:]) if split.startswith("no") else -1,
                    seed=0,
                    decoder_params=decoder_params,
                    mnist_index=100 * d + 7 * j,
                    label=d,
                    bce_x_xhat=float(rng.gamma(5, 10)),
                    bce_mu_xhat=float(rng.gamma(5, 12)),
                    perplexity=float(1 + rng.exponential(0.5)),
                    entropy=0.1,
                    w_max=0.9,
                    log_norm=0.0,
                    topk_index=top.tolist(),
                    topk_weight=w.tolist(),
                    # memorisation measures not computed: null, as the stage writes
                    nn_index=None,
                    nn_dist=None,
                    nn_ratio=None,
                    xhat_nn_index=None,
                    xhat_nn_bce=None,
                )
            )
    return pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def arrays_for(table: pd.DataFrame) -> dict[str, np.ndarray]:
    """npz-like arrays in increasing mnist_index order; pixel 0 of x encodes the MNIST row."""
    idx = np.sort(table["mnist_index"].to_numpy())
    x = RNG.random((len(idx), 784)).astype(np.float32)
    x[:, 0] = idx / 10000.0
    return {"mnist_index": idx, "x": x, "mu": x * 0.5, "x_hat": x * 0.25}


DATA = "feedfacefeedface"  # the data fingerprint the model files below record


def write_model_files(table: pd.DataFrame, stem, data: str = DATA) -> tuple[str, str]:
    """``table`` and its images as the evaluate stage writes them (Parquet with the
    ``vae_novelty`` metadata, npz with model id and data): ``(parquet, npz)`` paths."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    model_id = str(table["model_id"].iloc[0])
    meta = json.dumps({"model_id": model_id, "data": data}).encode()
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    pq.write_table(arrow.replace_schema_metadata({b"vae_novelty": meta}), f"{stem}.parquet")
    a = arrays_for(table)
    np.savez(
        f"{stem}.npz",
        model_id=np.array(model_id),
        data=np.array(data),
        mnist_index=a["mnist_index"],
        **{k: a[k].astype(np.float16) for k in ("x", "mu", "x_hat")},
    )
    return f"{stem}.parquet", f"{stem}.npz"


def train_images(n=50) -> np.ndarray:
    imgs = np.zeros((n, 784), np.uint8)
    imgs[:, 0] = np.arange(n)  # pixel 0 encodes the training row
    return imgs


def rendered(fig: Figure) -> np.ndarray:
    """The figure as an RGB array (row 0 at the top), drawn by the Agg backend."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].astype(float)


def brightness_at(
    fig: Figure, pixels: np.ndarray, ax, x: float, y: float, transform="axes"
) -> float:
    """Mean brightness of the rendered pixel at (x, y) in axes fractions (or data units)."""
    tr = ax.transAxes if transform == "axes" else ax.transData
    px, py = tr.transform((x, y))
    row = int(round(pixels.shape[0] - py))
    return float(pixels[row, int(round(px))].mean())


# --------------------------------------------------------------------------- common helpers


def test_digit_is_drawn_upright_not_transposed_or_flipped():
    fig = Figure(figsize=(2.8, 2.8), dpi=50)
    ax = fig.add_axes((0, 0, 1, 1))
    common.show_digit(ax, marker_image())
    px = rendered(fig)
    corners = {
        name: brightness_at(fig, px, ax, x, y)
        for name, (x, y) in {
            "top right": (0.85, 0.85),
            "top left": (0.15, 0.85),
            "bottom right": (0.85, 0.15),
            "bottom left": (0.15, 0.15),
        }.items()
    }
    assert corners["top right"] > 200
    assert max(v for k, v in corners.items() if k != "top right") < 50


def test_as_image_is_row_major():
    flat = np.arange(784, dtype=np.float32)
    img = common.as_image(flat)
    assert img.shape == (28, 28) and img[0, 1] == 1 and img[1, 0] == 28
    with pytest.raises(ValueError):
        common.as_image(np.zeros(100))


def test_output_paths_put_png_first_once():
    assert common.output_paths("r/fig", ["pdf", "png", "svg"]) == [
        "r/fig.png",
        "r/fig.pdf",
        "r/fig.svg",
    ]
    assert common.output_paths("r/fig", ["png"]) == ["r/fig.png"]


def test_save_figure_writes_every_format_readable(tmp_path):
    fig = Figure(figsize=(1, 1))
    fig.add_subplot().plot([0, 1])
    paths = [tmp_path / "f.png", tmp_path / "f.pdf", tmp_path / "f.svg"]
    common.save_figure(fig, paths, dpi=40)
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths[1].read_bytes()[:5] == b"%PDF-"
    assert b"<svg" in paths[2].read_bytes()[:500]
    assert all(p.stat().st_mode & 0o044 for p in paths)  # not private to the owner
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.pdf", "f.png", "f.svg"]


def test_labels():
    assert common.format_weight(0.9987) == "1.00"
    assert common.format_weight(0.37) == "0.37"
    assert common.format_weight(0.0003) == "3e-04"
    assert common.split_label("no9") == r"MNIST$^{tr}_{\setminus 9}$"
    assert common.hidden_label([400, 200, 100]) == "400-200-100"


# --------------------------------------------------------------------------- selection


def test_figure1_selects_positions_within_the_digit_in_test_file_order():
    table = pd.DataFrame({"mnist_index": [40, 5, 10, 30, 1, 12], "label": [9, 3, 9, 9, 3, 7]})
    assert selection.digit_rows(table, 9)["mnist_index"].tolist() == [10, 30, 40]
    assert selection.select_positions(table, 9, [0, 2])["mnist_index"].tolist() == [10, 40]
    assert selection.select_positions(table, 9, [2, 0])["mnist_index"].tolist() == [40, 10]
    assert selection.select_positions(table, 3, [1])["mnist_index"].tolist() == [5]
    with pytest.raises(selection.SelectionError, match=r"positions \[3\].*3 evaluated"):
        selection.select_positions(table, 9, [0, 3])


def test_lookup_rows():
    index = np.array([30, 10, 20])
    assert selection.lookup_rows(index, [20, 30, 10]).tolist() == [2, 0, 1]
    with pytest.raises(selection.SelectionError, match=r"\[25\]"):
        selection.lookup_rows(index, [10, 25])


def test_model_images_match_rows_images_and_top_training_images():
    table = theorem1_table(split="full", labels=(3, 9), per_label=6)
    arrays = arrays_for(table)
    panel = model_images(table, arrays, 9, [0, 4], train_images(), top=3)
    assert panel.rows["mnist_index"].tolist() == [900, 928]  # 9's rows: 900, 907, ..., 935
    assert np.allclose(panel.x[:, 0] * 10000, [900, 928])
    assert np.allclose(panel.mu, panel.x * 0.5) and np.allclose(panel.x_hat, panel.x * 0.25)
    want_top = np.array(panel.rows["topk_index"].tolist())
    assert np.allclose(panel.top_images[:, :, 0] * 255, want_top)
    assert np.allclose(panel.top_weights, np.array(panel.rows["topk_weight"].tolist()))
    assert len(panel.perplexity) == 6  # every 9, none of the 3s
    assert panel.split == "full" and panel.decoder_params == 1000


def test_stratified_samples_one_stratum_per_digit():
    labels = np.repeat(np.arange(10), 4)
    mean = np.column_stack([labels * 10.0, -labels * 10.0])
    logvar = np.full_like(mean, np.log(1e-6))
    s = selection.stratified_samples(mean, logvar, labels, per_class=2, seed=3)
    assert s.label.tolist() == [d for d in range(10) for _ in range(2)]
    assert np.array_equal(labels[s.source], s.label)
    assert np.allclose(s.z, mean[s.source], atol=0.01)  # z ~ q(z|x) with sd 1e-3
    again = selection.stratified_samples(mean, logvar, labels, per_class=2, seed=3)
    assert np.array_equal(s.z, again.z)
    other = selection.stratified_samples(mean, logvar, labels, per_class=2, seed=4)
    assert not np.array_equal(s.source, other.source) or not np.array_equal(s.z, other.z)


def test_latent_grid_rows_go_up_z2_and_columns_along_z1():
    grid = selection.latent_grid(5, 2.0)
    assert np.allclose(grid.axis, [-2, -1, 0, 1, 2])
    z1 = grid.as_image(grid.points[:, 0])
    z2 = grid.as_image(grid.points[:, 1])
    assert np.allclose(z1[0], grid.axis) and np.allclose(z1[:, 0], -2)  # columns: z_1
    assert np.allclose(z2[:, 0], grid.axis) and np.allclose(z2[0], -2)  # rows: z_2, row 0 low
    assert grid.image_extent == (-2.5, 2.5, -2.5, 2.5)


# --------------------------------------------------------------------------- Figure 1


def fig1_blocks(n_images=3):
    blocks = []
    for role, hidden in (("shallow", "4"), ("deep", "4-3-2")):
        row = []
        for split, labels in (("full", (0, 9)), ("no9", (9,))):
            t = theorem1_table(f"a.{split}.s0", "a", hidden, split, labels, per_label=6)
            row.append(model_images(t, arrays_for(t), 9, list(range(n_images)), train_images()))
        blocks.append(row)
    return blocks


def test_figure1_panels():
    n = 3
    fig = figure1.plot_figure1(
        fig1_blocks(n),
        ["shallow VAE (4)", "deep VAE (4-3-2)"],
        ["shallow", "deep"],
        digit=9,
        hist_bins=12,
        hist_max=3.0,
    )
    assert isinstance(fig, Figure)
    axes = [ax for sub in fig.subfigs for ax in sub.axes]
    images = [ax for ax in axes if ax.images]
    hists = [ax for ax in axes if not ax.images]
    assert len(images) == 4 * n * (3 + 3) and len(hists) == 4
    titles = [ax.get_title() for ax in images]
    assert sum(t.startswith("#") for t in titles) == 4 * n  # inputs: MNIST test rows
    assert sum(t[:1].isdigit() for t in titles) == 4 * n * 3  # weights above top-3
    assert all(ax.get_xlim() == (0.0, 3.0) for ax in hists)
    assert len({ax.get_ylim() for ax in hists}) == 1  # shared counts axis
    assert any(
        "trained on" in sub._suptitle.get_text() for sub in fig.subfigs if sub._suptitle is not None
    )


def test_figure1_shared_histogram_axis_shows_the_tallest_bar_of_any_panel():
    # The shallow VAE without 9s (second panel) has every perplexity at 1: its bar is the
    # tallest and must not be clipped by the first panel's limit.
    blocks = fig1_blocks(3)
    blocks[0][0].perplexity[:] = np.linspace(1.0, 3.0, len(blocks[0][0].perplexity))
    peaked = blocks[0][1]
    peaked.perplexity[:] = 1.0
    fig = figure1.plot_figure1(
        blocks,
        ["shallow VAE (4)", "deep VAE (4-3-2)"],
        ["shallow", "deep"],
        digit=9,
        hist_bins=12,
        hist_max=3.0,
    )
    hists = [ax for sub in fig.subfigs for ax in sub.axes if not ax.images]
    assert all(ax.get_ylim()[1] >= len(peaked.perplexity) for ax in hists)


def test_perplexity_histogram_counts_values_beyond_the_axis():
    fig = Figure()
    counts, beyond = figure1.perplexity_histogram(
        fig.add_subplot(), np.array([1.0, 1.1, 2.5, 9.0]), bins=6, hist_max=3.0
    )
    assert counts.tolist() == [0, 0, 2, 0, 0, 1] and beyond == 1


# --------------------------------------------------------------------------- Figure 2


def test_figure2_panels_and_line():
    panels = [
        [
            figure2.BcePanel(f"{role} VAE", role, split, RNG.gamma(5, 10, 50), RNG.gamma(5, 12, 50))
            for split in ("full", "no9")
        ]
        for role in ("shallow", "deep")
    ]
    fig = figure2.plot_figure2(panels, digit=9, bce_max=200.0, bins=20)
    plots = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(plots) == 4 and len(fig.axes) == 8  # each with a colour bar
    for ax in plots:
        assert ax.get_xlim() == (0.0, 200.0) and ax.get_ylim() == (0.0, 200.0)
        xs, ys = ax.lines[0].get_data()
        assert list(xs) == list(ys) == [0, 200.0]  # y = x
    assert all(
        cb.get_xlabel() or cb.get_ylabel() for cb in fig.axes if cb.get_label() == "<colorbar>"
    )


def test_bce_summary():
    s = figure2.bce_summary(
        np.array([1.0, 5.0, 2.0, 300.0]), np.array([2.0, 4.0, 3.0, 1.0]), bce_max=250.0
    )
    assert s == {"n": 4, "frac_below": 0.5, "outside": 1}


# --------------------------------------------------------------------------- Figure 3


def reference_weights(mean, logvar):
    """Float64 reference: max_i w_i(z) and logsumexp_i log q(z|x_i)."""

    def weights(points):
        var = np.exp(logvar)
        d = points[:, None, :] - mean[None]
        logq = -0.5 * (d**2 / var + logvar + np.log(2 * np.pi)).sum(-1)
        top = logq.max(1, keepdims=True)
        s = np.exp(logq - top).sum(1)
        return 1.0 / s, top[:, 0] + np.log(s)

    return weights


def mini_posteriors():
    labels = np.repeat(np.arange(10), 3)
    angle = labels * 2 * np.pi / 10 + RNG.normal(0, 0.05, len(labels))
    mean = np.column_stack([2.5 * np.cos(angle), 2.5 * np.sin(angle)])
    logvar = np.full_like(mean, np.log(0.05**2))
    return mean, logvar, labels


def test_engine_weights_match_a_float64_reference():
    mean, logvar, _ = mini_posteriors()
    pts = selection.latent_grid(15, 4.0).points
    w, lognorm = build.mini_weights(mean, logvar)(pts)
    w_ref, lognorm_ref = reference_weights(mean, logvar)(pts)
    assert np.allclose(w, w_ref, rtol=1e-10, atol=1e-12)
    assert np.allclose(lognorm, lognorm_ref, rtol=1e-10)


def test_figure3_data_and_panels():
    mean, logvar, labels = mini_posteriors()
    decode = lambda z: np.tile(marker_image(), (len(z), 1))  # noqa: E731
    data = figure3.figure3_data(
        mean,
        logvar,
        labels,
        reference_weights(mean, logvar),
        decode,
        grid_size=20,
        extent=4.0,
        samples_per_digit=1,
        sample_seed=0,
    )
    assert data.max_w.shape == (400,) and data.sample_images.shape == (10, 784)
    assert np.all((data.max_w > 0) & (data.max_w <= 1 + 1e-12))
    # aggregate posterior = mean of the N densities
    w_ref, lognorm = reference_weights(mean, logvar)(data.grid.points)
    assert np.allclose(data.log_q, lognorm - np.log(len(mean)))
    fig = figure3.plot_figure3(data, cmap="magma")
    maps = [ax for ax in fig.axes if len(ax.images) == 1 and ax.images[0].origin == "lower"]
    digits = [ax for ax in fig.axes if ax.images and ax.images[0].origin == "upper"]
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(maps) == 2 and len(digits) == 10 and len(bars) == 2
    assert all(cb.get_xlabel() for cb in bars)  # labelled colour bars
    assert all(m.images[0].get_cmap().name == "magma" for m in maps)
    assert all(m.get_xlabel() == "$z_1$" for m in maps) and maps[0].get_ylabel() == "$z_2$"
    assert figure3.sample_names(data.samples) == [str(d) for d in range(10)]


@pytest.mark.parametrize("axis", [0, 1])
def test_figure3_maps_are_drawn_with_z1_right_and_z2_up(axis):
    """Max weight 1 where z_axis > 0, else 0: the bright half must be right (z_1) or top (z_2)."""
    mean = np.array([[0.0, 0.0], [0.1, 0.0]])
    logvar = np.full_like(mean, np.log(1e-4))
    labels = np.array([0, 1])

    def weights(points):
        return (points[:, axis] > 0).astype(float), np.zeros(len(points))

    data = figure3.figure3_data(
        mean,
        logvar,
        labels,
        weights,
        lambda z: np.zeros((len(z), 784)),
        grid_size=40,
        extent=4.0,
        samples_per_digit=1,
        sample_seed=0,
    )
    fig = figure3.plot_figure3(data, cmap="gray")
    ax = next(a for a in fig.axes if a.images and a.images[0].origin == "lower")
    px = rendered(fig)
    pos, neg = [3.0, -3.0], [-3.0, 3.0]  # bright point, dark point (z_1, z_2)
    if axis == 1:
        pos, neg = [-3.0, 3.0], [-3.0, -3.0]
    assert brightness_at(fig, px, ax, *pos, transform="data") > 200
    assert brightness_at(fig, px, ax, *neg, transform="data") < 50


# --------------------------------------------------------------------------- Figures 4-13


def test_sweep_figure_numbers():
    assert sweep.sweep_figure_number(9) == 4
    assert [sweep.sweep_figure_number(d) for d in range(9)] == list(range(5, 14))


def test_spread_positions():
    assert np.allclose(sweep.spread_positions([0.2, 0.5, 0.8], 0.1, 0, 1), [0.2, 0.5, 0.8])
    assert np.allclose(sweep.spread_positions([0.5, 0.5], 0.1, 0, 1), [0.45, 0.55])
    assert np.allclose(sweep.spread_positions([0.52, 0.5], 0.1, 0, 1), [0.56, 0.46])  # order kept
    out = sweep.spread_positions([0.0, 0.01, 0.02, 0.9], 0.1, 0.05, 0.95)
    assert np.all(np.diff(out) >= 0.1 - 1e-12) and out[0] >= 0.05 and out[-1] <= 0.95
    crowded = sweep.spread_positions(np.full(5, 0.5), 0.5, 0.0, 1.0)  # cannot fit: gap shrinks
    assert np.allclose(crowded, [0, 0.25, 0.5, 0.75, 1.0])


def test_count_ticks():
    assert sweep.count_ticks(9e4, 7e5) == [1e5, 2e5, 5e5]
    assert sweep.format_count(2e5) == "200k" and sweep.format_count(1.5e6) == "1.5M"


def sweep_entries():
    hiddens = ["100", "400", "200-100", "100-100-100", "400-200-100", "400-200-200"]
    entries = []
    for i, hidden in enumerate(hiddens):
        widths = [int(w) for w in hidden.split("-")]
        from vae_novelty.model import decoder_param_count

        t = theorem1_table(
            f"h{hidden}.no9.s0",
            f"h{hidden}",
            hidden,
            "no9",
            (9,),
            per_label=3,
            decoder_params=decoder_param_count(widths, 50),
            seed=i,
        )
        entries.append(model_images(t, arrays_for(t), 9, [1], None, top=0))
    return entries


def test_sweep_places_every_architecture_by_parameters_and_depth():
    entries = sweep_entries()
    fig = sweep.plot_sweep(entries, 9, entries[0].x[0], 907)
    main = fig.axes[0]
    assert main.get_xscale() == "log"
    assert [t.get_text() for t in main.get_yticklabels()][0].startswith("1 hidden")
    insets = main.child_axes
    assert len(insets) == 2 * len(entries)
    names = [ax.get_title() for ax in insets if ax.get_title()]
    assert sorted(names) == sorted(e.hidden for e in entries)  # one label per pair (top image)
    # the two 3-layer pairs with nearly equal counts must not overlap, and keep their order
    boxes = {ax.get_title(): ax.get_position() for ax in insets if ax.get_title()}
    rendered(fig)
    x = {
        name: ax.get_window_extent()
        for name, ax in ((ax.get_title(), ax) for ax in insets if ax.get_title())
    }
    assert x["400-200-100"].x1 <= x["400-200-200"].x0 + 1e-6
    assert x["100"].x0 < x["400"].x0
    assert boxes  # every pair has a titled top image
    input_ax = fig.axes[-1]
    assert "#907" in input_ax.get_title()


def test_sweep_from_files_checks_the_same_input(tmp_path):
    paths = []
    for i, split_labels in enumerate([(9,), (9,)]):
        t = theorem1_table(
            f"m{i}.no9.s0",
            f"m{i}",
            "4" if i == 0 else "4-4",
            "no9",
            split_labels,
            per_label=4,
            decoder_params=1000 * (i + 1),
            seed=i,
        )
        paths.append(write_model_files(t, tmp_path / f"m{i}"))
    tables, arrays = [p for p, _ in paths], [n for _, n in paths]
    fig = build.sweep_from_files(
        tables, arrays, 9, 2, model_ids=["m0.no9.s0", "m1.no9.s0"], data=DATA
    )
    assert isinstance(fig, Figure)
    assert read_arrays(paths[0][1])["x"].dtype == np.float32
    with pytest.raises(
        ValueError,
        match=r"m0\.parquet: holds model 'm0\.no9\.s0', expected "
        r"'m1\.no9\.s0'",
    ):
        build.sweep_from_files(tables, arrays, 9, 2, model_ids=["m1.no9.s0", "m0.no9.s0"])
    with pytest.raises(
        ValueError,
        match=r"m1\.npz: holds model 'm1\.no9\.s0', expected "
        r"'m0\.no9\.s0'",
    ):  # images swapped
        build.sweep_from_files(tables, arrays[::-1], 9, 2, model_ids=["m0.no9.s0", "m1.no9.s0"])


def test_figures_refuse_files_made_from_other_data(tmp_path):
    from vae_novelty.data import DataError

    t = theorem1_table("m0.no9.s0", "m0", "4", "no9", (9,), per_label=4)
    table, arrays = write_model_files(t, tmp_path / "m0", data="0123456789abcdef")
    for kwargs in ({}, {"model_ids": ["m0.no9.s0"]}):
        with pytest.raises(
            DataError,
            match=rf"m0\.parquet: made from data 0123456789abcdef, but "
            rf"this run's data is {DATA}",
        ):
            build.sweep_from_files([table], [arrays], 9, 0, data=DATA, **kwargs)
    with pytest.raises(DataError, match=r"m0\.npz: made from data 0123456789abcdef"):
        read_arrays(arrays, "m0.no9.s0", DATA)
    models = [{"role": "shallow", "split": "no9", "title": "s", "model_id": "m0.no9.s0"}]
    with pytest.raises(DataError, match="made from data 0123456789abcdef"):
        build.figure2_from_files(models, [table], 9, 250.0, 30, data=DATA)


# --------------------------------------------------------------------------- from files


def test_figure1_and_2_from_files(tmp_path):
    models, tables, arrays = [], [], []
    for role, hidden in (("shallow", "4"), ("deep", "4-3-2")):
        for split, labels in (("full", (3, 9)), ("no9", (9,))):
            t = theorem1_table(f"{role}.{split}.s0", role, hidden, split, labels, per_label=4)
            table, array = write_model_files(t, tmp_path / f"{role}_{split}")
            models.append(
                {
                    "role": role,
                    "split": split,
                    "title": f"{role} VAE ({hidden})",
                    "model_id": f"{role}.{split}.s0",
                }
            )
            tables.append(table)
            arrays.append(array)
    np.savez(tmp_path / "mnist.npz", train_images=train_images())
    fig1 = build.figure1_from_files(
        models,
        tables,
        arrays,
        tmp_path / "mnist.npz",
        9,
        [0, 3],
        hist_bins=10,
        hist_max=4.0,
        data=DATA,
    )
    assert len(fig1.subfigs) == 2 * 3  # a title row, then 2 x 2 blocks
    with pytest.raises(
        ValueError,
        match=r"holds model 'shallow\.no9\.s0', expected "
        r"'shallow\.full\.s0'",
    ):  # two swapped
        build.figure1_from_files(
            models,
            [tables[1], tables[0], *tables[2:]],
            arrays,
            tmp_path / "mnist.npz",
            9,
            [0, 3],
            hist_bins=10,
            hist_max=4.0,
        )
    fig2 = build.figure2_from_files(models, tables, 9, 250.0, 30, data=DATA)
    titles = [ax.get_title() for ax in fig2.axes if ax.get_label() != "<colorbar>"]
    assert titles[0].startswith("shallow") and "MNIST$^{tr}$" in titles[0]
    assert titles[3].startswith("deep") and "setminus 9" in titles[3]


def test_model_grid_orders_rows_by_role_and_columns_by_split():
    models = [{"role": r, "split": s} for r in ("shallow", "deep") for s in ("full", "no9")]
    roles, grid = build.model_grid(models, ["a", "b", "c", "d"])
    assert roles == ["shallow", "deep"] and grid == [["a", "b"], ["c", "d"]]
    roles, grid = build.model_grid(models[1::2], ["b", "d"])  # include_full: false
    assert grid == [["b"], ["d"]]


def test_figure3_from_files_with_a_real_model(tmp_path):
    import torch

    from vae_novelty.model import VAE, save_model
    from vae_novelty.posterior import build_table, write_table

    torch.manual_seed(0)
    model = VAE([8], 2)
    save_model(model, tmp_path / "mini.pt", model_id="mini.mini.s0")
    mean, logvar, labels = mini_posteriors()
    idx = np.arange(len(mean))
    write_table(
        build_table(
            idx,
            labels,
            mean,
            logvar,
            idx[:0],
            labels[:0],
            mean[:0],
            logvar[:0],
            {"model_id": "mini.mini.s0"},
        ),
        tmp_path / "mini.parquet",
    )
    fig, data = build.figure3_from_files(
        tmp_path / "mini.parquet",
        tmp_path / "mini.pt",
        [8],
        2,
        grid_size=12,
        extent=3.0,
        cmap="viridis",
        samples_per_digit=2,
        sample_seed=1,
    )
    with torch.inference_mode():
        want = model.decode(torch.as_tensor(data.samples.z, dtype=torch.float32)).numpy()
    assert np.allclose(data.sample_images, want, atol=1e-6)
    assert len(data.samples.z) == 20 and isinstance(fig, Figure)
    assert figure3.sample_names(data.samples)[:2] == ["0a", "0b"]


# --------------------------------------------------------------------------- summary table


def test_summary_html_lists_every_model_and_column():
    df = pd.DataFrame(
        {
            "model_id": ["h4.no9.s0", "h4.full.s0"],
            "decoder_params": [123456, 5],
            "bce_x_xhat_median": [12.3456, np.nan],
            "note": ["<b>", "x"],
        }
    )
    page = summary_html(df, "Summary")
    assert page.count("<tr>") == 3 and all(c in page for c in df.columns)
    assert "123,456" in page and "12.3" in page and "&lt;b&gt;" in page


def test_labels_name_the_dataset():
    from vae_novelty.figures.common import dataset_name, split_label, test_set_label

    assert split_label("no9") == r"MNIST$^{tr}_{\setminus 9}$"
    with dataset_name("Fashion-MNIST"):
        assert split_label("full") == r"Fashion-MNIST$^{tr}$"
        assert split_label("mini") == "mini-Fashion-MNIST"
        assert test_set_label(3) == r"Fashion-MNIST$^{te}_{3}$"
    assert test_set_label(3) == r"MNIST$^{te}_{3}$"


def test_role_models_are_shallow_then_deep_full_then_held_out():
    from vae_novelty.figures.plan import role_models

    cfg = {
        "splits": {"include_full": True},
        "model": {
            "shallow": "h4",
            "deep": "h4-2",
            "mini": {"hidden": [3], "z_dim": 2},
            "architectures": {"h4": [4], "h4-2": [4, 2]},
        },
    }
    got = role_models(cfg, 7, 3)
    assert [(m["role"], m["arch"], m["split"], m["model_id"]) for m in got] == [
        ("shallow", "h4", "full", "h4.full.s3"),
        ("shallow", "h4", "no7", "h4.no7.s3"),
        ("deep", "h4-2", "full", "h4-2.full.s3"),
        ("deep", "h4-2", "no7", "h4-2.no7.s3"),
    ]
    assert got[0]["title"] == "shallow VAE (4)" and got[2]["title"] == "deep VAE (4-2)"
    cfg["splits"]["include_full"] = False
    assert [m["split"] for m in role_models(cfg, 7, 3)] == ["no7", "no7"]
