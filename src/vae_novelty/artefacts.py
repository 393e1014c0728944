"""The per-model artefact format: how every file made for one model records whose it is.

Each per-model table (posteriors, Theorem 1, ELBO; Parquet) carries JSON under the schema
metadata key :data:`META_KEY`, with at least the model id (``model_id``) and the fingerprint of
the MNIST arrays it was made from (``data``, :func:`vae_novelty.data.data_fingerprint`); the
Theorem 1 images (npz) carry the same two values as arrays. This module is the one home of that
format: the key and the JSON encoding (:func:`with_meta`, :func:`table_meta`), the atomic
writes (:func:`write_table`, :func:`write_npz`), and the check every reader applies
(:func:`check_model`): a file of another model or made from other data is refused with a
message naming both.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .data import check_fingerprint
from .io import atomic_path

META_KEY = b"vae_novelty"


def encode_meta(meta: dict) -> bytes:
    """``meta`` as the bytes stored under :data:`META_KEY` (sorted keys; other values as
    ``str``)."""
    return json.dumps(meta, sort_keys=True, default=str).encode()


def with_meta(table: pa.Table, meta: dict) -> pa.Table:
    """``table`` with ``meta`` as its only schema metadata (under :data:`META_KEY`)."""
    return table.replace_schema_metadata({META_KEY: encode_meta(meta)})


def table_meta(table: pa.Table) -> dict:
    """The metadata a table records under :data:`META_KEY` (``{}`` for none)."""
    raw = (table.schema.metadata or {}).get(META_KEY)
    return json.loads(raw) if raw else {}


def write_table(table: pa.Table, path: Path | str) -> None:
    """Write ``table`` as Parquet atomically (no partial file under ``path``, ever)."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def write_npz(path: Path | str, *, compressed: bool = False, **arrays) -> None:
    """Write ``arrays`` as an npz archive atomically (``np.savez`` or ``np.savez_compressed``)."""
    save = np.savez_compressed if compressed else np.savez
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            save(fh, **arrays)


def check_model_id(recorded, expected: str, where, allow_missing: bool = False) -> None:
    """Refuse a file that holds another model than ``expected`` (``recorded``: the id it
    records; a file recording none passes only with ``allow_missing``)."""
    if recorded == expected or (allow_missing and recorded is None):
        return
    raise ValueError(
        f"{where}: holds model {recorded!r}, expected {expected!r} (inputs out of order?)"
    )


def check_model(
    meta: dict,
    where,
    expect_model_id: str | None = None,
    expect_data: str | None = None,
    allow_missing_id: bool = False,
) -> None:
    """The check every reader of a per-model file applies to its metadata: it holds
    ``expect_model_id`` and was made from data ``expect_data`` (each checked when given)."""
    if expect_model_id is not None:
        check_model_id(meta.get("model_id"), expect_model_id, where, allow_missing_id)
    if expect_data is not None:
        check_fingerprint(meta.get("data"), expect_data, where)


def read_model_table(
    path, expect_model_id: str | None = None, expect_data: str | None = None, expect_columns=None
):
    """A per-model Parquet table and its metadata, checked by :func:`check_model`, with exactly
    the columns ``expect_columns`` (any order) when given. A file that cannot be read as
    Parquet (truncated, corrupt) or has other columns is a ValueError naming it; a missing file
    stays a FileNotFoundError."""
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(
            f"{path}: cannot read the table (truncated, corrupt or not a Parquet "
            f"file: {type(exc).__name__}: {exc})"
        ) from exc
    if expect_columns is not None:
        names = table.column_names
        missing = [c for c in expect_columns if c not in names]
        extra = [c for c in names if c not in expect_columns]
        if missing or extra:
            raise ValueError(
                f"{path}: missing column(s) {missing}, unexpected column(s) {extra}; "
                f"expected {list(expect_columns)}"
            )
    meta = table_meta(table)
    check_model(meta, path, expect_model_id, expect_data)
    return table, meta
