"""The per-model artefact format (vae_novelty.artefacts): metadata, atomic writes, the check."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vae_novelty import artefacts as A
from vae_novelty.data import DataError


def _table(meta: dict) -> pa.Table:
    return A.with_meta(pa.table({"x": pa.array([1, 2, 3], pa.int64())}), meta)


def test_metadata_is_sorted_json_under_the_one_key():
    meta = {
        "model_id": "h64.no9.s0",
        "data": "sha256:abc",
        "b": 1,
        "a": [1, 2],
        "path": Path("/x/y"),
    }
    table = _table(meta)
    assert list(table.schema.metadata) == [b"vae_novelty"] == [A.META_KEY]
    raw = table.schema.metadata[b"vae_novelty"]
    # written as json.dumps(sort_keys=True, default=str) would write it, byte for byte
    assert raw == json.dumps(meta, sort_keys=True, default=str).encode()
    assert list(json.loads(raw)) == sorted(meta)
    assert A.table_meta(table) == {**meta, "path": "/x/y"}
    assert A.table_meta(pa.table({"x": [1]})) == {}


def test_with_meta_replaces_other_metadata():
    table = pa.table({"x": [1]}).replace_schema_metadata({b"other": b"1"})
    assert list(A.with_meta(table, {"a": 1}).schema.metadata) == [b"vae_novelty"]


def test_write_table_round_trips_and_equals_a_plain_parquet_write(tmp_path):
    table = _table({"model_id": "m", "data": "d"})
    A.write_table(table, tmp_path / "sub" / "t.parquet")
    pq.write_table(table, tmp_path / "plain.parquet")
    assert (tmp_path / "sub" / "t.parquet").read_bytes() == (
        tmp_path / "plain.parquet"
    ).read_bytes()
    back, meta = A.read_model_table(tmp_path / "sub" / "t.parquet", "m", "d")
    assert back.equals(table) and meta == {"model_id": "m", "data": "d"}


def test_a_failed_write_leaves_no_file(tmp_path):
    with pytest.raises(Exception):
        A.write_table("not a table", tmp_path / "t.parquet")
    with pytest.raises(Exception):
        A.write_npz(tmp_path / "a.npz", x=np.zeros(2), bad=object.__new__(_Unpicklable))
    assert sorted(p.name for p in tmp_path.iterdir()) == []


class _Unpicklable:
    def __reduce__(self):
        raise TypeError("cannot be saved")


@pytest.mark.parametrize("compressed", [False, True])
def test_write_npz_equals_numpy_savez(tmp_path, compressed):
    arrays = {"model_id": np.array("m"), "x": np.arange(6, dtype=np.float16).reshape(2, 3)}
    A.write_npz(tmp_path / "a.npz", compressed=compressed, **arrays)
    with open(tmp_path / "b.npz", "wb") as fh:
        (np.savez_compressed if compressed else np.savez)(fh, **arrays)
    with np.load(tmp_path / "a.npz") as a, np.load(tmp_path / "b.npz") as b:
        assert a.files == b.files
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key])
    size = (tmp_path / "a.npz").stat().st_size
    assert size == (tmp_path / "b.npz").stat().st_size


def test_check_refuses_another_model_or_other_data(tmp_path):
    path = tmp_path / "t.parquet"
    A.write_table(_table({"model_id": "h64.no9.s0", "data": "sha256:aaa"}), path)
    A.read_model_table(path)  # nothing expected: nothing checked
    with pytest.raises(
        ValueError,
        match=r"t\.parquet: holds model 'h64\.no9\.s0', expected "
        r"'h64\.no9\.s1' \(inputs out of order\?\)",
    ):
        A.read_model_table(path, expect_model_id="h64.no9.s1")
    with pytest.raises(
        DataError,
        match=r"made from data sha256:aaa, but this run's data is "
        r"sha256:bbb",
    ):
        A.read_model_table(path, expect_data="sha256:bbb")


def test_a_missing_model_id_passes_only_when_allowed():
    A.check_model_id(None, "m", "f", allow_missing=True)
    with pytest.raises(ValueError, match="holds model None, expected 'm'"):
        A.check_model_id(None, "m", "f")
    with pytest.raises(ValueError, match="holds model 'n', expected 'm'"):
        A.check_model_id("n", "m", "f", allow_missing=True)
    with pytest.raises(DataError, match="records no data fingerprint"):
        A.check_model({"model_id": "m"}, "f", "m", "sha256:x")
