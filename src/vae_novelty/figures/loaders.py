"""Readers of the Theorem 1 outputs that the figures draw (small tables and image arrays),
checked as every reader of a per-model file is: the model it holds and the data it was made
from, when the caller names the ones it expects."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..artefacts import check_model, read_model_table
from ..data import open_npz, read_npz
from .selection import digit_rows, lookup_rows, select_positions

IMAGE_KEYS = ("x", "mu", "x_hat")
ARRAY_KEYS = ("model_id", "data", "mnist_index", *IMAGE_KEYS)
SAMPLE_IMAGE_KEYS = ("x_hat", "mu")  # of the samples stage's .npz (samples/{arch}/...)
# The columns of a Theorem 1 table (vae_novelty.theorem1_table.table_schema, which imports
# torch; a test keeps the two equal)
THEOREM1_COLUMNS = (
    "model_id",
    "arch",
    "hidden",
    "n_hidden_layers",
    "z_dim",
    "split",
    "heldout_digit",
    "seed",
    "decoder_params",
    "mnist_index",
    "label",
    "bce_x_xhat",
    "bce_mu_xhat",
    "perplexity",
    "entropy",
    "w_max",
    "log_norm",
    "topk_index",
    "topk_weight",
    "nn_index",
    "nn_dist",
    "nn_ratio",
    "xhat_nn_index",
    "xhat_nn_bce",
)
# The columns of a samples table (vae_novelty.samples_table.table_schema; a test keeps them equal)
SAMPLES_COLUMNS = (
    "model_id",
    "sample",
    "z",
    "perplexity",
    "w_max",
    "top_rows",
    "top_weights",
    "bce_mu_xhat",
    "nn1_row",
    "nn1_dist",
    "nn2_row",
    "nn2_dist",
    "test_nn_row",
    "test_nn_dist",
    "digit",
    "digit_prob",
)


def read_table(
    path: str | Path,
    expect_model_id: str | None = None,
    expect_data: str | None = None,
    columns: Sequence[str] = THEOREM1_COLUMNS,
) -> pd.DataFrame:
    """A model's Theorem 1 table (or, with ``columns`` :data:`SAMPLES_COLUMNS`, its samples
    table), checked by :func:`vae_novelty.artefacts.read_model_table`, with exactly the
    columns ``columns``."""
    return read_model_table(path, expect_model_id, expect_data, expect_columns=columns)[
        0
    ].to_pandas()


def read_checked_npz(
    path: str | Path,
    keys: Sequence[str],
    expect_model_id: str | None = None,
    expect_data: str | None = None,
    optional: Sequence[str] = (),
    what: str = "per-model image arrays",
) -> dict[str, np.ndarray]:
    """The arrays ``keys`` (and those of ``optional`` that it has) of a per-model ``.npz``
    (which also records ``model_id`` and ``data``), refused when it holds another model than
    ``expect_model_id`` or was made from other data than ``expect_data`` (each checked when
    given). A missing, truncated or corrupt archive, or one lacking one of ``keys``, is a
    :class:`~vae_novelty.data.DataError` naming the file (``what``: how it calls the content)."""
    with open_npz(path, what) as npz:
        present = [k for k in optional if k in npz.files]
    arrays = read_npz(path, what, ("model_id", "data", *keys, *present))
    check_model(
        {"model_id": str(arrays["model_id"]), "data": str(arrays["data"])},
        path,
        expect_model_id,
        expect_data,
    )
    return {k: arrays[k] for k in (*keys, *present)}


def read_arrays(
    path: str | Path, expect_model_id: str | None = None, expect_data: str | None = None
) -> dict[str, np.ndarray]:
    """A model's Theorem 1 ``.npz`` of test images: mnist_index, and x, mu, x_hat as float32
    (T, 784), checked by :func:`read_checked_npz`."""
    arrays = read_checked_npz(
        path, ARRAY_KEYS[2:], expect_model_id, expect_data, what="Theorem 1 image arrays"
    )
    out = {"mnist_index": arrays["mnist_index"].astype(np.int64)}
    for key in IMAGE_KEYS:
        out[key] = arrays[key].astype(np.float32)
    return out


def read_sample_arrays(
    path: str | Path, expect_model_id: str | None = None, expect_data: str | None = None
) -> dict[str, np.ndarray]:
    """A model's samples ``.npz``: x_hat and mu as float32 (m, 784) of its first m samples,
    and ``sample``, the sample number of each row (the file's own ``sample`` array when it has
    one, else 0..m-1), checked by :func:`read_checked_npz`."""
    arrays = read_checked_npz(
        path,
        SAMPLE_IMAGE_KEYS,
        expect_model_id,
        expect_data,
        optional=("sample",),
        what="sample image arrays",
    )
    out = {k: arrays[k].astype(np.float32) for k in SAMPLE_IMAGE_KEYS}
    if out["x_hat"].ndim != 2 or out["x_hat"].shape != out["mu"].shape:
        raise ValueError(
            f"{path}: x_hat {out['x_hat'].shape} and mu {out['mu'].shape} must be "
            f"two arrays of the same shape (samples, pixels)"
        )
    out["sample"] = np.asarray(arrays.get("sample", np.arange(len(out["x_hat"]))), np.int64)
    if out["sample"].shape != (len(out["x_hat"]),):
        raise ValueError(
            f"{path}: {out['sample'].shape} sample numbers for {len(out['x_hat'])} images"
        )
    return out


def read_train_images(path: str | Path) -> np.ndarray:
    """The MNIST training images (uint8, (60000, 784)) from ``results/data/mnist.npz``."""
    with np.load(path) as npz:
        return npz["train_images"]


@dataclass
class ModelImages:
    """What Figures 1 and 4-13 show for one model and a few test images of one digit."""

    model_id: str
    arch: str
    hidden: str
    n_hidden_layers: int
    decoder_params: int
    split: str
    digit: int
    rows: pd.DataFrame  # the selected rows of the Theorem 1 table
    x: np.ndarray  # (n, 784) inputs
    x_hat: np.ndarray  # (n, 784) decoder outputs
    mu: np.ndarray  # (n, 784) weighted averages
    top_images: np.ndarray  # (n, k, 784) training images with the largest weights
    top_weights: np.ndarray  # (n, k)
    perplexity: np.ndarray  # perplexity of every evaluated test image of the digit


def model_images(
    table: pd.DataFrame,
    arrays: dict[str, np.ndarray],
    digit: int,
    positions: Sequence[int],
    train_images: np.ndarray | None = None,
    top: int = 3,
) -> ModelImages:
    """Select test images of ``digit`` at ``positions`` (in MNIST test-file order) of one model.

    ``train_images`` (uint8 rows of the MNIST training file) is needed only for the top-``top``
    training images; without it they are left empty.
    """
    first = table.iloc[0] if len(table) else None
    what = str(first["model_id"]) if first is not None else "model"
    rows = select_positions(table, digit, positions, what=what)
    at = lookup_rows(arrays["mnist_index"], rows["mnist_index"].to_numpy(), what=what)
    n = len(rows)
    if train_images is not None and top > 0:
        idx = np.array([np.asarray(v, dtype=np.int64)[:top] for v in rows["topk_index"]])
        wts = np.array([np.asarray(v, dtype=np.float64)[:top] for v in rows["topk_weight"]])
        tops = train_images[idx.reshape(-1)].reshape(n, idx.shape[1], -1).astype(np.float32) / 255
    else:
        wts = np.zeros((n, 0))
        tops = np.zeros((n, 0, arrays["x"].shape[1]), np.float32)
    return ModelImages(
        model_id=what,
        arch=str(first["arch"]),
        hidden=str(first["hidden"]),
        n_hidden_layers=int(first["n_hidden_layers"]),
        decoder_params=int(first["decoder_params"]),
        split=str(first["split"]),
        digit=int(digit),
        rows=rows,
        x=arrays["x"][at],
        x_hat=arrays["x_hat"][at],
        mu=arrays["mu"][at],
        top_images=tops,
        top_weights=wts,
        perplexity=digit_rows(table, digit)["perplexity"].to_numpy(dtype=np.float64),
    )


def load_model_images(
    parquet: str | Path,
    npz: str | Path,
    digit: int,
    positions: Sequence[int],
    train_images: np.ndarray | None = None,
    top: int = 3,
    *,
    expect_model_id: str | None = None,
    expect_data: str | None = None,
) -> ModelImages:
    """:func:`model_images` of one model's files, each checked to hold ``expect_model_id``
    made from ``expect_data`` (when given)."""
    return model_images(
        read_table(parquet, expect_model_id, expect_data),
        read_arrays(npz, expect_model_id, expect_data),
        digit,
        positions,
        train_images,
        top,
    )
