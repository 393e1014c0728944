"""The samples stage's per-model files (:mod:`vae_novelty.samples` computes what they hold):
``results/samples/{arch}/{split}_s{seed}.parquet``, one row per sample (schema
:func:`table_schema`, format :data:`TABLE_FORMAT`, metadata under the ``vae_novelty`` key), and
the ``.npz`` beside it with the first samples' images; built, written atomically and read back
checked.
"""

from __future__ import annotations

import numpy as np

from . import theorem1 as t1
from .artefacts import read_model_table, with_meta, write_npz, write_table

TABLE_FORMAT = "vae-novelty-samples/1"


def table_schema(z_dim: int):
    import pyarrow as pa

    return pa.schema(
        [
            ("model_id", pa.string()),
            ("sample", pa.int64()),
            ("z", pa.list_(pa.float32(), int(z_dim))),
            ("perplexity", pa.float64()),
            ("w_max", pa.float64()),
            ("top_rows", pa.list_(pa.int64())),
            ("top_weights", pa.list_(pa.float64())),
            ("bce_mu_xhat", pa.float64()),
            ("nn1_row", pa.int64()),
            ("nn1_dist", pa.float64()),
            ("nn2_row", pa.int64()),
            ("nn2_dist", pa.float64()),
            ("test_nn_row", pa.int64()),
            ("test_nn_dist", pa.float64()),
            ("digit", pa.int8()),
            ("digit_prob", pa.float64()),
        ]
    )


def build_table(
    model_id: str,
    z,
    stats: t1.WeightStats,
    top_rows,
    bce_mu,
    nn_rows,
    nn_dist,
    test_rows,
    test_dist,
    digit,
    digit_prob,
    meta: dict,
):
    import pyarrow as pa

    z = np.asarray(z, np.float32)
    n, dim = z.shape
    schema = table_schema(dim)

    def lists(values, typ):
        values = np.asarray(values)
        offsets = np.arange(
            0, values.size + 1, max(values.shape[1], 1) if values.ndim == 2 else 1, dtype=np.int32
        )
        return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values.reshape(-1), typ))

    cols = {
        "model_id": pa.array([model_id] * n, pa.string()),
        "sample": pa.array(np.arange(n, dtype=np.int64)),
        "z": pa.FixedSizeListArray.from_arrays(pa.array(z.reshape(-1), pa.float32()), dim),
        "perplexity": pa.array(stats.perplexity.astype(np.float64)),
        "w_max": pa.array(stats.w_max.astype(np.float64)),
        "top_rows": lists(np.asarray(top_rows, np.int64), pa.int64()),
        "top_weights": lists(np.asarray(stats.topk_weight, np.float64), pa.float64()),
        "bce_mu_xhat": pa.array(np.asarray(bce_mu, np.float64)),
        "nn1_row": pa.array(np.asarray(nn_rows[:, 0], np.int64)),
        "nn1_dist": pa.array(np.asarray(nn_dist[:, 0], np.float64)),
        "nn2_row": pa.array(np.asarray(nn_rows[:, 1], np.int64)),
        "nn2_dist": pa.array(np.asarray(nn_dist[:, 1], np.float64)),
        "test_nn_row": pa.array(np.asarray(test_rows, np.int64)),
        "test_nn_dist": pa.array(np.asarray(test_dist, np.float64)),
        "digit": pa.array(np.asarray(digit, np.int8)),
        "digit_prob": pa.array(np.asarray(digit_prob, np.float64)),
    }
    return with_meta(pa.table(cols, schema=schema), meta)


def write_result(table, parquet_path, npz_path, z, x_hat, mu, m: int, meta: dict) -> None:
    """The table (Parquet) and the first ``m`` samples' images (npz, float32), atomically."""
    m = int(min(m, len(z)))
    write_table(table, parquet_path)
    write_npz(
        npz_path,
        compressed=True,
        model_id=np.array(meta["model_id"]),
        data=np.array(meta["data"]),
        sample=np.arange(m, dtype=np.int64),
        z=np.asarray(z[:m], np.float32),
        x_hat=np.asarray(x_hat[:m], np.float32),
        mu=np.asarray(mu[:m], np.float32),
    )


def read_samples(path, expect_model_id: str | None = None, expect_data: str | None = None):
    """A per-model samples table and its metadata (checked by
    :func:`vae_novelty.artefacts.read_model_table`, with exactly the columns of
    :func:`table_schema`)."""
    return read_model_table(
        path, expect_model_id, expect_data, expect_columns=table_schema(1).names
    )
