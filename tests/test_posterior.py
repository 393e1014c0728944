"""Posterior Parquet export: schema round trip, metadata, malformed files."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from vae_novelty.data import Mnist
from vae_novelty.model import VAE, save_model
from vae_novelty.posterior import (
    META_KEY,
    PosteriorFileError,
    build_table,
    encode,
    export_model,
    read_posteriors,
    write_table,
)
from vae_novelty.splits import make_split


def small_table(d=3, meta=None):
    rng = np.random.default_rng(0)
    return build_table(
        np.array([5, 9]),
        np.array([1, 2]),
        rng.normal(size=(2, d)),
        rng.normal(size=(2, d)),
        np.array([7]),
        np.array([9]),
        rng.normal(size=(1, d)),
        rng.normal(size=(1, d)),
        meta or {"z_dim": d},
    )


def test_round_trip(tmp_path):
    table = small_table()
    write_table(table, tmp_path / "p.parquet")
    train, test, meta = read_posteriors(tmp_path / "p.parquet", expect_z_dim=3)
    assert meta == {"z_dim": 3}
    assert train["mnist_index"].tolist() == [5, 9] and test["mnist_index"].tolist() == [7]
    assert train["label"].tolist() == [1, 2] and test["label"].tolist() == [9]
    assert train["z_mean"].shape == (2, 3) and train["z_mean"].dtype == np.float32
    schema = pq.read_schema(tmp_path / "p.parquet")
    assert schema.field("z_mean").type == pa.list_(pa.float32(), 3)
    assert schema.field("mnist_index").type == pa.int64()
    assert json.loads(schema.metadata[META_KEY]) == {"z_dim": 3}


def test_wrong_dim_and_missing_column(tmp_path):
    write_table(small_table(d=4), tmp_path / "p.parquet")
    with pytest.raises(PosteriorFileError, match=r"dim\(z\)=4, expected 50"):
        read_posteriors(tmp_path / "p.parquet", expect_z_dim=50)
    pq.write_table(small_table().drop_columns(["z_logvar"]), tmp_path / "q.parquet")
    with pytest.raises(PosteriorFileError, match=r"missing column\(s\) \['z_logvar'\]"):
        read_posteriors(tmp_path / "q.parquet")


def test_export_model_matches_encoder(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.arange(40) % 10
    mnist = Mnist(
        rng.integers(0, 256, (40, 784), dtype=np.uint8),
        labels.astype(np.uint8),
        rng.integers(0, 256, (20, 784), dtype=np.uint8),
        (np.arange(20) % 10).astype(np.uint8),
    )
    split = make_split("no3", mnist.train_labels, mnist.test_labels, [3])
    model = VAE([8], 2)
    save_model(model, tmp_path / "m.pt", model_id="h8.no3.s0", arch="h8", seed=0)
    table = export_model(
        tmp_path / "m.pt",
        mnist,
        split,
        tmp_path / "p.parquet",
        hidden=[8],
        z_dim=2,
        device=torch.device("cpu"),
    )
    assert table.num_rows == 36 + 2
    train, test, meta = read_posteriors(tmp_path / "p.parquet", expect_z_dim=2)
    assert meta["model_id"] == "h8.no3.s0" and meta["heldout_digit"] == 3
    assert meta["split"] == "no3" and meta["hidden"] == [8] and "versions" in meta
    assert not np.any(train["label"] == 3) and np.all(test["label"] == 3)
    mean, logvar = encode(
        model,
        mnist.train_images[train["mnist_index"]].astype(np.float32) / 255,
        torch.device("cpu"),
    )
    np.testing.assert_array_equal(train["z_mean"], mean)
    np.testing.assert_array_equal(train["z_logvar"], logvar)
