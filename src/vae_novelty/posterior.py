"""Export of a model's posteriors q(z|x) = N(z_mean, diag(exp(z_logvar))) to Parquet.

Schema (one row per image; see README "Posterior Parquet files"):

=============  ===========================  ==============================================
column         type                         meaning
=============  ===========================  ==============================================
role           string                       ``train`` (the model's training split) or ``test``
                                            (its evaluation images)
mnist_file     string                       ``train`` or ``t10k``: which MNIST file the row is in
mnist_index    int64                        row in that file
label          int8                         the digit
z_mean         fixed_size_list<float>[D]    posterior mean
z_logvar       fixed_size_list<float>[D]    posterior log-variance
=============  ===========================  ==============================================

Schema metadata key ``vae_novelty`` holds JSON: model id, architecture, hidden widths, dim(z),
split, held-out digit, seed, and provenance (code and package versions).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

# META_KEY and write_table are part of the posterior file's interface (re-exported)
from .artefacts import META_KEY, table_meta, with_meta, write_table  # noqa: F401
from .model import VAE

COLUMNS = ("role", "mnist_file", "mnist_index", "label", "z_mean", "z_logvar")


class PosteriorFileError(RuntimeError):
    """A posterior Parquet file is missing columns or has the wrong dim(z)."""


@torch.no_grad()
def encode(
    model: VAE, x: np.ndarray, device: torch.device, batch_size: int = 8192
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and log-variances (float32) of float images ``x`` (N, 784)."""
    model = model.to(device).eval()
    means, logvars = [], []
    for start in range(0, len(x), batch_size):
        xb = torch.from_numpy(x[start : start + batch_size]).to(device)
        mean, logvar = model.encode(xb)
        means.append(mean.float().cpu().numpy())
        logvars.append(logvar.float().cpu().numpy())
    z = model.z_dim
    return (
        np.concatenate(means) if means else np.zeros((0, z), np.float32),
        np.concatenate(logvars) if logvars else np.zeros((0, z), np.float32),
    )


def _fixed_list(values: np.ndarray) -> pa.FixedSizeListArray:
    values = np.ascontiguousarray(values, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])


def build_table(
    train_idx,
    train_labels,
    train_mean,
    train_logvar,
    test_idx,
    test_labels,
    test_mean,
    test_logvar,
    meta: dict,
) -> pa.Table:
    n_tr, n_te = len(train_idx), len(test_idx)
    table = pa.table(
        {
            "role": pa.array(["train"] * n_tr + ["test"] * n_te, pa.string()),
            "mnist_file": pa.array(["train"] * n_tr + ["t10k"] * n_te, pa.string()),
            "mnist_index": pa.array(np.concatenate([train_idx, test_idx]).astype(np.int64)),
            "label": pa.array(np.concatenate([train_labels, test_labels]).astype(np.int8)),
            "z_mean": _fixed_list(np.concatenate([train_mean, test_mean])),
            "z_logvar": _fixed_list(np.concatenate([train_logvar, test_logvar])),
        }
    )
    return with_meta(table, meta)


def read_posteriors(path: Path | str, expect_z_dim: int | None = None):
    """Read a posterior file; return ``(train, test, meta)``.

    ``train`` and ``test`` are dicts of numpy arrays: ``mnist_index``, ``label``, ``z_mean``
    (N, D) and ``z_logvar`` (N, D). Raises :class:`PosteriorFileError` for a malformed file.
    """
    try:
        table = pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several kinds
        raise PosteriorFileError(f"{path}: cannot read Parquet file ({exc})") from exc
    return posterior_arrays(table, path, expect_z_dim)


def posterior_arrays(
    table: pa.Table, path: Path | str = "posterior table", expect_z_dim: int | None = None
):
    """:func:`read_posteriors` of a table in memory (``path`` names it in errors)."""
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise PosteriorFileError(f"{path}: missing column(s) {missing}; expected {list(COLUMNS)}")
    meta = table_meta(table)
    out = {}
    role = table.column("role").to_numpy(zero_copy_only=False)
    for part in ("train", "test"):
        sel = np.flatnonzero(role == part)
        sub = table.take(pa.array(sel))
        arrays = {
            "mnist_index": sub.column("mnist_index").to_numpy(),
            "label": sub.column("label").to_numpy(),
        }
        for col in ("z_mean", "z_logvar"):
            arr = sub.column(col).combine_chunks()
            dim = arr.type.list_size if pa.types.is_fixed_size_list(arr.type) else None
            if dim is None:
                raise PosteriorFileError(f"{path}: column {col} must be a fixed-size list")
            if expect_z_dim is not None and dim != expect_z_dim:
                raise PosteriorFileError(f"{path}: {col} has dim(z)={dim}, expected {expect_z_dim}")
            arrays[col] = arr.flatten().to_numpy().reshape(len(sub), dim)
        out[part] = arrays
    return out["train"], out["test"], meta


def posterior_table(
    model: VAE, model_meta: dict, mnist, split, *, hidden, z_dim: int, device: torch.device
) -> pa.Table:
    """The posterior table of a loaded model: its training split and evaluation images."""
    from .data import to_float
    from .io import provenance
    from .model import decoder_param_count

    train_mean, train_logvar = encode(model, to_float(mnist.train_images[split.train_idx]), device)
    test_mean, test_logvar = encode(model, to_float(mnist.test_images[split.test_idx]), device)
    meta = {
        "model_id": model_meta.get("model_id"),
        "arch": model_meta.get("arch"),
        "hidden": list(hidden),
        "z_dim": z_dim,
        "split": split.name,
        "heldout_digit": split.heldout_digit,
        "seed": model_meta.get("seed"),
        "decoder_params": decoder_param_count(hidden, z_dim),
        "schema": "vae-novelty-posteriors/2",
        "data": mnist.fingerprint,
        **provenance(model_code_version=model_meta.get("code_version")),
    }
    return build_table(
        split.train_idx,
        mnist.train_labels[split.train_idx],
        train_mean,
        train_logvar,
        split.test_idx,
        mnist.test_labels[split.test_idx],
        test_mean,
        test_logvar,
        meta,
    )


def export_model(
    model_path: Path | str,
    mnist,
    split,
    out_path: Path | str,
    *,
    hidden,
    z_dim: int,
    device: torch.device,
) -> pa.Table:
    """Encode a model's training split and evaluation images and write the Parquet file."""
    from .model import load_model

    model, model_meta = load_model(model_path, expect_hidden=hidden, expect_z_dim=z_dim)
    table = posterior_table(
        model, model_meta, mnist, split, hidden=hidden, z_dim=z_dim, device=device
    )
    write_table(table, out_path)
    return table
