"""The checks of the tables stage's inputs: the per-model Theorem 1, ELBO and samples tables
and the training histories, before :mod:`vae_novelty.tables` summarises them.

Non-finite values are refused, never summarised (a NaN compares False, so a NaN bce_mu_xhat
would count as "not closer to mu"): :func:`vae_novelty.tables.write_tables` stops with an
error naming the file and the column (:func:`check_theorem1_table`, :func:`check_history`,
:func:`check_elbo_table`) for NaN, infinite or missing values, except the documented ones:

- ``nn_ratio`` is NaN for a model with a single training row (no second-nearest training code;
  see :mod:`vae_novelty.theorem1`), recognised by its top-k lists of one entry;
- the memorisation columns (:data:`~vae_novelty.theorem1.NEIGHBOUR_COLUMNS`) are null in every
  row when they were not computed (all or none: a partly null column is refused);
- a history's ``test_neg_elbo`` is NaN for a model without test images
  (:func:`vae_novelty.train.mean_neg_elbo` of no images).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .theorem1_table import NEIGHBOUR_COLUMNS

# Columns of a samples table that must hold a finite number in every row.
SAMPLES_FINITE = (
    "perplexity",
    "w_max",
    "top_weights",
    "bce_mu_xhat",
    "nn1_dist",
    "nn2_dist",
    "digit_prob",
)
# Columns that must hold a finite number in every row.
THEOREM1_FINITE = (
    "bce_x_xhat",
    "bce_mu_xhat",
    "perplexity",
    "entropy",
    "w_max",
    "log_norm",
    "topk_weight",
)
NEIGHBOUR_FINITE = ("nn_dist", "nn_ratio", "xhat_nn_bce")
HISTORY_COLUMNS = ("epoch", "train_neg_elbo", "test_neg_elbo")
ELBO_FINITE = ("elbo_decoder", "elbo_optimal", "kl", "clamped_fraction")


def refuse_non_finite(
    values, where, column: str, *, allow_nan: bool = False, why: str = ""
) -> None:
    """Raise a ValueError naming ``where`` (a file or model) and ``column`` when ``values``
    hold NaN (unless ``allow_nan``) or infinity, with the count and the first rows."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    nan, inf = np.isnan(v), np.isinf(v)
    for kind, bad in (("infinite", inf), ("NaN", np.zeros_like(nan) if allow_nan else nan)):
        if bad.any():
            rows = np.flatnonzero(bad)
            more = ", ..." if len(rows) > 5 else ""
            raise ValueError(
                f"{where}: column {column} has {len(rows)} {kind} value(s) (rows "
                f"{', '.join(map(str, rows[:5]))}{more}){why}; refusing to "
                f"summarise it (rerun the job that wrote it)"
            )


def _floats(table, column: str):
    """A float column of an Arrow table as float64 (nulls as NaN) and its null count; list
    columns are flattened."""
    import pyarrow as pa
    import pyarrow.compute as pc

    col = table.column(column)
    if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
        nulls = col.null_count
        col = pc.list_flatten(col)
        nulls += col.null_count
    else:
        nulls = col.null_count
    return col.to_numpy(zero_copy_only=False).astype(np.float64), nulls


def _refuse_nulls(nulls: int, where, column: str, why: str = "") -> None:
    if nulls:
        raise ValueError(
            f"{where}: column {column} has {nulls} missing (null) value(s){why}; "
            f"refusing to summarise it (rerun the job that wrote it)"
        )


def check_theorem1_table(table, where) -> None:
    """Refuse NaN, infinite and missing values in a per-model Theorem 1 table (an Arrow table
    read from ``where``), apart from the documented ones (module docstring)."""
    n = table.num_rows
    for column in THEOREM1_FINITE:
        values, nulls = _floats(table, column)
        _refuse_nulls(nulls, where, column)
        refuse_non_finite(values, where, column)
    present = [c for c in NEIGHBOUR_COLUMNS if c in table.column_names]
    if not present or all(table.column(c).null_count == n for c in present):
        return  # memorisation measures not computed: every row null
    lengths = (
        table.column("topk_index").combine_chunks().value_lengths().to_numpy(zero_copy_only=False)
        if n
        else np.zeros(0)
    )
    single_row = n > 0 and bool(np.all(lengths == 1))
    for column in present:
        values, nulls = _floats(table, column)
        _refuse_nulls(
            nulls, where, column, " (the memorisation columns are null in every row or in none)"
        )
        if column in NEIGHBOUR_FINITE:
            # nn_ratio = d1 / d2 is NaN by design with a single training row (no d2)
            refuse_non_finite(
                values,
                where,
                column,
                allow_nan=column == "nn_ratio" and single_row,
                why=" (NaN only for a model with a single training row)"
                if column == "nn_ratio"
                else "",
            )


def check_history(history: pd.DataFrame, where, n_test: int | None = None) -> None:
    """Refuse a training history without epochs, without one of :data:`HISTORY_COLUMNS`, or
    with a NaN or infinite value; ``test_neg_elbo`` may be NaN when the model has no test
    images (``n_test == 0``)."""
    missing = [c for c in HISTORY_COLUMNS if c not in history.columns]
    if missing:
        raise ValueError(
            f"{where}: missing column(s) {missing}; a training history has {list(HISTORY_COLUMNS)}"
        )
    if not len(history):
        raise ValueError(f"{where}: no epochs (an empty training history)")
    for column in HISTORY_COLUMNS:
        try:
            values = history[column].to_numpy(np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: column {column} holds non-numbers ({exc})") from exc
        refuse_non_finite(
            values,
            where,
            column,
            allow_nan=column == "test_neg_elbo" and n_test == 0,
            why=" (NaN only for a model without test images)" if column == "test_neg_elbo" else "",
        )


def check_elbo_table(table, where) -> None:
    """Refuse NaN, infinite and missing values in a per-model ELBO table (an Arrow table)."""
    for column in ELBO_FINITE:
        values, nulls = _floats(table, column)
        _refuse_nulls(nulls, where, column)
        refuse_non_finite(values, where, column)


def check_samples_table(table, where) -> None:
    """Refuse NaN, infinite and missing values in a per-model samples table (Arrow)."""
    for column in SAMPLES_FINITE:
        values, nulls = _floats(table, column)
        _refuse_nulls(nulls, where, column)
        refuse_non_finite(values, where, column)
