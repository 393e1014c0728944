"""From the pipeline's files to a Figure: what each figure rule's script calls.

Each function reads only small outputs of earlier stages (Theorem 1 tables and image arrays,
the mini-MNIST posteriors and model) and returns a matplotlib Figure; saving is the caller's.
Every file is checked to hold the model the caller expects (``model_id`` of each model dict,
or ``model_ids``) made from the run's data (``data``: its fingerprint), when given.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from matplotlib.figure import Figure

from ..artefacts import check_model
from .figure1 import plot_figure1
from .figure2 import BcePanel, plot_figure2
from .figure3 import Figure3Data, WeightsFn, figure3_data, plot_figure3
from .figure14 import plot_figure14, sample_block
from .loaders import (
    SAMPLES_COLUMNS,
    load_model_images,
    read_sample_arrays,
    read_table,
    read_train_images,
)
from .selection import digit_rows
from .sweep import plot_sweep


def model_grid(models: Sequence[dict], paths: Sequence) -> tuple[list[str], list[list]]:
    """Arrange ``paths`` (one per model, same order as ``models``) by role (rows, in order of
    first appearance) and training split (columns). ``models``: dicts with role and split."""
    roles = list(dict.fromkeys(m["role"] for m in models))
    splits = list(dict.fromkeys(m["split"] for m in models))
    grid = [[None] * len(splits) for _ in roles]
    for m, p in zip(models, paths, strict=True):
        grid[roles.index(m["role"])][splits.index(m["split"])] = p
    return roles, [[p for p in row if p is not None] for row in grid]


def _titles(models: Sequence[dict], roles: list[str]) -> list[str]:
    return [next(m["title"] for m in models if m["role"] == r) for r in roles]


def figure1_from_files(
    models: Sequence[dict],
    tables: Sequence[str],
    arrays: Sequence[str],
    mnist: str,
    digit: int,
    test_images: Sequence[int],
    hist_bins: int,
    hist_max: float,
    top: int = 3,
    data: str | None = None,
) -> Figure:
    """``models``: dicts with role, title, split (and model_id), in the order of
    ``tables``/``arrays``."""
    train = read_train_images(mnist)
    panels = [
        load_model_images(
            t,
            a,
            digit,
            test_images,
            train,
            top,
            expect_model_id=m.get("model_id"),
            expect_data=data,
        )
        for m, t, a in zip(models, tables, arrays, strict=True)
    ]
    roles, blocks = model_grid(models, panels)
    return plot_figure1(blocks, _titles(models, roles), roles, digit, hist_bins, hist_max)


def figure2_from_files(
    models: Sequence[dict],
    tables: Sequence[str],
    digit: int,
    bce_max: float,
    bins: int,
    data: str | None = None,
) -> Figure:
    panels = []
    for m, path in zip(models, tables, strict=True):
        rows = digit_rows(read_table(path, m.get("model_id"), data), digit)
        panels.append(
            BcePanel(
                m["title"],
                m["role"],
                m["split"],
                rows["bce_x_xhat"].to_numpy(),
                rows["bce_mu_xhat"].to_numpy(),
            )
        )
    roles, grid = model_grid(models, panels)
    return plot_figure2(grid, digit, bce_max, bins)


def figure14_from_files(
    models: Sequence[dict],
    tables: Sequence[str],
    arrays: Sequence[str],
    mnist: str,
    n_samples: int,
    data: str | None = None,
) -> Figure:
    """Figure 14 from the samples stage's files of the models of Figures 1-2 (``models``:
    dicts with role, title, split and model_id, in the order of ``tables``/``arrays``: each
    model's ``samples/{arch}/{split}_s{seed}.parquet`` and ``.npz``)."""
    train = read_train_images(mnist)
    blocks = []
    for m, table, array in zip(models, tables, arrays, strict=True):
        rows = read_table(table, m.get("model_id"), data, columns=SAMPLES_COLUMNS)
        images = read_sample_arrays(array, m.get("model_id"), data)
        blocks.append(
            sample_block(
                rows,
                images,
                n_samples,
                train,
                m.get("model_id") or str(table),
                m["split"],
                what=str(table),
            )
        )
    roles, grid = model_grid(models, blocks)
    return plot_figure14(grid, _titles(models, roles), roles)


def mini_weights(
    train_mean: np.ndarray, train_logvar: np.ndarray, chunk_mb: float = 256.0
) -> WeightsFn:
    """The Theorem 1 engine on the mini-MNIST training posteriors (CPU, float64)."""
    from ..theorem1 import weight_stats

    def weights(points: np.ndarray):
        stats = weight_stats(
            points, train_mean, train_logvar, None, top_k=1, chunk_mb=chunk_mb, device="cpu"
        )
        return stats.w_max, stats.log_norm

    return weights


def mini_decoder(
    model_path: str, hidden: Sequence[int], z_dim: int, model_id: str | None = None
) -> Callable:
    import torch

    from ..model import load_model

    model, _ = load_model(
        model_path, expect_hidden=list(hidden), expect_z_dim=z_dim, expect_model_id=model_id
    )

    def decode(z: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model.decode(torch.as_tensor(z, dtype=torch.float32)).numpy()

    return decode


def figure3_from_files(
    posteriors: str,
    model: str,
    hidden: Sequence[int],
    z_dim: int,
    grid_size: int,
    extent: float,
    cmap: str,
    samples_per_digit: int,
    sample_seed: int,
    model_id: str | None = None,
    data: str | None = None,
) -> tuple[Figure, Figure3Data]:
    from ..posterior import read_posteriors

    train, _, meta = read_posteriors(posteriors, expect_z_dim=z_dim)
    check_model(meta, posteriors, model_id, data)
    data = figure3_data(
        train["z_mean"],
        train["z_logvar"],
        train["label"],
        mini_weights(train["z_mean"], train["z_logvar"]),
        mini_decoder(model, hidden, z_dim, model_id),
        grid_size,
        extent,
        samples_per_digit,
        sample_seed,
    )
    return plot_figure3(data, cmap), data


def sweep_from_files(
    tables: Sequence[str],
    arrays: Sequence[str],
    digit: int,
    test_image: int,
    model_ids: Sequence[str] | None = None,
    data: str | None = None,
) -> Figure:
    """Figures 4-13: one model per architecture, all trained without ``digit``."""
    ids = list(model_ids) if model_ids is not None else [None] * len(tables)
    entries = [
        load_model_images(
            t, a, digit, [test_image], None, top=0, expect_model_id=i, expect_data=data
        )
        for t, a, i in zip(tables, arrays, ids, strict=True)
    ]
    first = entries[0]
    for e in entries[1:]:
        if int(e.rows["mnist_index"].iloc[0]) != int(first.rows["mnist_index"].iloc[0]):
            raise ValueError(
                f"{e.model_id} and {first.model_id} select different test images "
                f"at position {test_image} (evaluated on different test sets?)"
            )
    return plot_sweep(entries, digit, first.x[0], int(first.rows["mnist_index"].iloc[0]))
