"""Readers of the Theorem 1 outputs that the figures draw (small tables and image arrays),
checked as every reader of a per-model file is: the model it holds and the data it was made
from, when the caller names the ones it expects."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .selection import digit_rows, lookup_rows, select_positions

IMAGE_KEYS = ("x", "mu", "x_hat")
ARRAY_KEYS = ("model_id", "data", "mnist_index", *IMAGE_KEYS)
# The columns of a Theorem 1 table (vae_novelty.theorem1_table.table_schema, which imports
# torch; a test keeps the two equal)
THEOREM1_COLUMNS = (
    "model_id", "arch", "hidden", "n_hidden_layers", "z_dim", "split", "heldout_digit", "seed",
    "decoder_params", "mnist_index", "label", "bce_x_xhat", "bce_mu_xhat", "perplexity",
    "entropy", "w_max", "log_norm", "topk_index", "topk_weight", "nn_index", "nn_dist",
    "nn_ratio", "xhat_nn_index", "xhat_nn_bce")


def read_table(path: str | Path, expect_model_id: str | None = None,
               expect_data: str | None = None) -> pd.DataFrame:
    """A model's Theorem 1 table (checked by :func:`vae_novelty.io.read_model_table`)."""
    from ..io import read_model_table

    return read_model_table(path, expect_model_id, expect_data,
                            expect_columns=THEOREM1_COLUMNS)[0].to_pandas()


def read_arrays(path: str | Path, expect_model_id: str | None = None,
                expect_data: str | None = None) -> dict[str, np.ndarray]:
    """A model's ``.npz`` of test images: mnist_index, and x, mu, x_hat as float32 (T, 784),
    refused when it holds another model than ``expect_model_id`` or was made from other data
    than ``expect_data`` (each checked when given)."""
    from ..data import check_fingerprint, read_npz

    # a truncated or corrupt archive, or a missing array: a DataError naming the file
    npz = read_npz(path, "Theorem 1 image arrays", ARRAY_KEYS, article="a")
    held = str(npz["model_id"])
    if expect_model_id is not None and held != expect_model_id:
        raise ValueError(f"{path}: holds model {held!r}, expected {expect_model_id!r} "
                         f"(inputs out of order?)")
    if expect_data is not None:
        check_fingerprint(str(npz["data"]), expect_data, path)
    out = {"mnist_index": npz["mnist_index"].astype(np.int64)}
    for key in IMAGE_KEYS:
        out[key] = npz[key].astype(np.float32)
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
    rows: pd.DataFrame          # the selected rows of the Theorem 1 table
    x: np.ndarray               # (n, 784) inputs
    x_hat: np.ndarray           # (n, 784) decoder outputs
    mu: np.ndarray              # (n, 784) weighted averages
    top_images: np.ndarray      # (n, k, 784) training images with the largest weights
    top_weights: np.ndarray     # (n, k)
    perplexity: np.ndarray      # perplexity of every evaluated test image of the digit


def model_images(table: pd.DataFrame, arrays: dict[str, np.ndarray], digit: int,
                 positions: Sequence[int], train_images: np.ndarray | None = None,
                 top: int = 3) -> ModelImages:
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
        model_id=what, arch=str(first["arch"]), hidden=str(first["hidden"]),
        n_hidden_layers=int(first["n_hidden_layers"]), decoder_params=int(first["decoder_params"]),
        split=str(first["split"]), digit=int(digit), rows=rows,
        x=arrays["x"][at], x_hat=arrays["x_hat"][at], mu=arrays["mu"][at],
        top_images=tops, top_weights=wts,
        perplexity=digit_rows(table, digit)["perplexity"].to_numpy(dtype=np.float64))


def load_model_images(parquet: str | Path, npz: str | Path, digit: int, positions: Sequence[int],
                      train_images: np.ndarray | None = None, top: int = 3, *,
                      expect_model_id: str | None = None,
                      expect_data: str | None = None) -> ModelImages:
    """:func:`model_images` of one model's files, each checked to hold ``expect_model_id``
    made from ``expect_data`` (when given)."""
    return model_images(read_table(parquet, expect_model_id, expect_data),
                        read_arrays(npz, expect_model_id, expect_data), digit, positions,
                        train_images, top)
