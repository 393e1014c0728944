"""Tables over all models: the Theorem 1 rows of every model, a per-model summary, and the
training histories.

- ``results/tables/theorem1.parquet``: the per-model tables (schema
  :func:`vae_novelty.theorem1.table_schema`) concatenated in model-grid order.
- ``results/tables/summary.csv``: one row per model, columns :data:`SUMMARY_COLUMNS`.
  Quantiles are numpy's default (linear interpolation between order statistics).
  ``frac_closer_to_mu`` is the fraction of test images with BCE(mu, x_hat) < BCE(x, x_hat)
  (ties count as not closer; :func:`frac_closer_to_mu`);
  ``frac_perplexity_lt_1_5`` the fraction with perplexity < 1.5;
  ``frac_xhat_closer_to_train`` the fraction with xhat_nn_bce < bce_x_xhat (the reconstruction
  is closer, in BCE, to some training image than to its own input); ``nn_ratio_median`` the
  median of nn_ratio (latent nearest / second-nearest training code distance; NaN values, from
  a single training row, left out). ``final_*_neg_elbo`` are taken from the history row with
  the largest epoch. From the model's ELBO table (``results/elbo/``, when given):
  ``elbo_decoder_mean`` and ``elbo_optimal_mean``, the mean test ELBO with the trained and
  with the optimal (Theorem 1) decoder, and ``elbo_gap_mean``, the mean of
  elbo_optimal - elbo_decoder; NaN without an ELBO table.
  From the model's samples table (``results/samples/``, when given; :mod:`vae_novelty.samples`),
  over its ``samples.n`` prior samples: ``sample_copy_frac``, the fraction whose distance ratio
  nn1_dist / nn2_dist (nearest over second-nearest training image, pixel L2; 1 where
  nn2_dist = 0) is below 1/3 (the copy criterion of Gu et al., TMLR 2025);
  ``sample_dist_ratio_median``, the median of that ratio; ``sample_perplexity_median`` and
  ``sample_frac_wmax_gt_0_99``, the median Theorem 1 perplexity at z and the fraction with
  w_max > 0.99; ``sample_ct``, the model's C_T (:mod:`vae_novelty.ct`; NaN when no cell has
  enough samples); ``sample_heldout_frac``, for a model trained without digit d the fraction
  of samples the classifier calls d (NaN for other models); ``sample_digit_frac_0`` ...
  ``_9``, the class histogram. All NaN without a samples table.
- ``results/tables/training.csv``: every model's per-epoch history with model_id, arch, split
  and seed columns in front.

Non-finite values are refused, never summarised (a NaN compares False, so a NaN bce_mu_xhat
would count as "not closer to mu"): :func:`write_tables` stops with an error naming the file
and the column; the checks and the documented exceptions are in
:mod:`vae_novelty.table_checks`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .config import model_id
from .artefacts import read_model_table, with_meta, write_table
from .samples_table import table_schema as samples_schema
from .table_checks import (
    check_elbo_table,
    check_history,
    check_samples_table,
    check_theorem1_table,
    refuse_non_finite,
)
from .theorem1_table import MODEL_COLUMNS, frac_closer_to_mu, table_schema

STAT_COLUMNS = ("bce_x_xhat", "bce_mu_xhat", "perplexity")
QUANTILES = (("median", 0.5), ("q25", 0.25), ("q75", 0.75))
SUMMARY_COLUMNS = (
    [c for c in MODEL_COLUMNS if c != "decoder_params"]
    + ["n_test", "decoder_params"]
    + [f"{c}_{name}" for c in STAT_COLUMNS for name, _ in QUANTILES]
    + [
        "frac_closer_to_mu",
        "frac_perplexity_lt_1_5",
        "frac_xhat_closer_to_train",
        "nn_ratio_median",
        "final_train_neg_elbo",
        "final_test_neg_elbo",
        "elbo_decoder_mean",
        "elbo_optimal_mean",
        "elbo_gap_mean",
    ]
    + [
        "sample_copy_frac",
        "sample_dist_ratio_median",
        "sample_perplexity_median",
        "sample_frac_wmax_gt_0_99",
        "sample_ct",
        "sample_heldout_frac",
    ]
    + [f"sample_digit_frac_{d}" for d in range(10)]
)
SAMPLE_COLUMNS = tuple(c for c in SUMMARY_COLUMNS if c.startswith("sample_"))
COPY_RATIO = 1.0 / 3.0
HISTORY_KEYS = ("model_id", "arch", "split", "seed")


def distance_ratio(nn1, nn2) -> np.ndarray:
    """nn1 / nn2 per sample; 1 where nn2 == 0 (two training images on top of x_hat)."""
    nn1, nn2 = np.asarray(nn1, np.float64), np.asarray(nn2, np.float64)
    return np.divide(nn1, nn2, out=np.ones_like(nn1), where=nn2 > 0)


def samples_stats(frame: pd.DataFrame | None, meta: dict | None, heldout_digit: int) -> dict:
    """The ``sample_*`` summary columns of one model (module docstring); all NaN without a
    samples table (``frame`` None)."""
    out = {c: np.nan for c in SAMPLE_COLUMNS}
    if frame is None or not len(frame):
        return out
    ratio = distance_ratio(frame.nn1_dist, frame.nn2_dist)
    digit = frame.digit.to_numpy(np.int64)
    out.update(
        {
            "sample_copy_frac": float((ratio < COPY_RATIO).mean()),
            "sample_dist_ratio_median": float(np.median(ratio)),
            "sample_perplexity_median": float(frame.perplexity.median()),
            "sample_frac_wmax_gt_0_99": float((frame.w_max > 0.99).mean()),
            "sample_ct": float((meta or {}).get("ct", {}).get("ct", np.nan)),
            "sample_heldout_frac": (
                float((digit == heldout_digit).mean())
                if heldout_digit is not None and heldout_digit >= 0
                else np.nan
            ),
        }
    )
    for d in range(10):
        out[f"sample_digit_frac_{d}"] = float((digit == d).mean())
    return out


def read_theorem1(path, expect_model_id: str | None = None, expect_data: str | None = None):
    """A per-model Theorem 1 table and its metadata (JSON under the ``vae_novelty`` key),
    checked by :func:`~vae_novelty.artefacts.read_model_table`, with exactly the columns of
    :func:`vae_novelty.theorem1_table.table_schema`."""
    return read_model_table(path, expect_model_id, expect_data, expect_columns=table_schema().names)


def summary_row(
    info: dict,
    frame: pd.DataFrame,
    history: pd.DataFrame | None,
    elbo: pd.DataFrame | None = None,
    samples: pd.DataFrame | None = None,
    samples_meta: dict | None = None,
) -> dict:
    """One summary row: ``info`` (the per-model columns), statistics of ``frame`` (one model's
    Theorem 1 rows), the final negative ELBOs of ``history`` and the means of ``elbo`` (one
    model's ELBO rows)."""
    row = {c: info[c] for c in MODEL_COLUMNS}
    for col in STAT_COLUMNS:  # a NaN would count as "not closer" / "not below 1.5"
        refuse_non_finite(frame[col].to_numpy(np.float64), info.get("model_id", "model"), col)
    row["n_test"] = int(len(frame))
    for col in STAT_COLUMNS:
        values = frame[col].to_numpy(np.float64)
        for name, q in QUANTILES:
            row[f"{col}_{name}"] = float(np.quantile(values, q)) if len(values) else np.nan
    n = len(frame)
    row["frac_closer_to_mu"] = frac_closer_to_mu(frame.bce_mu_xhat, frame.bce_x_xhat)
    row["frac_perplexity_lt_1_5"] = float((frame.perplexity < 1.5).mean()) if n else np.nan
    row["frac_xhat_closer_to_train"] = (
        float((frame.xhat_nn_bce < frame.bce_x_xhat).mean())
        if n and "xhat_nn_bce" in frame and frame.xhat_nn_bce.notna().all()
        else np.nan
    )
    ratio = frame.nn_ratio.to_numpy(np.float64) if "nn_ratio" in frame else np.zeros(0)
    ratio = ratio[~np.isnan(ratio)]
    row["nn_ratio_median"] = float(np.median(ratio)) if len(ratio) else np.nan
    last = history.loc[history.epoch.idxmax()] if history is not None and len(history) else None
    row["final_train_neg_elbo"] = float(last.train_neg_elbo) if last is not None else np.nan
    row["final_test_neg_elbo"] = float(last.test_neg_elbo) if last is not None else np.nan
    m = len(elbo) if elbo is not None else 0
    row["elbo_decoder_mean"] = float(elbo.elbo_decoder.mean()) if m else np.nan
    row["elbo_optimal_mean"] = float(elbo.elbo_optimal.mean()) if m else np.nan
    row["elbo_gap_mean"] = float((elbo.elbo_optimal - elbo.elbo_decoder).mean()) if m else np.nan
    row.update(samples_stats(samples, samples_meta, info.get("heldout_digit")))
    return {c: row[c] for c in SUMMARY_COLUMNS}


def stack_histories(histories: Sequence[tuple[dict, pd.DataFrame]]) -> pd.DataFrame:
    """Per-epoch histories stacked, each prefixed with its model's id, arch, split and seed."""
    parts = []
    for keys, hist in histories:
        part = hist.copy()
        for i, k in enumerate(HISTORY_KEYS):
            part.insert(i, k, keys[k])
        parts.append(part)
    if not parts:
        return pd.DataFrame(columns=list(HISTORY_KEYS))
    return pd.concat(parts, ignore_index=True)


def write_tables(
    theorem1_paths: Sequence,
    history_paths: Sequence,
    models: Sequence,
    *,
    table_path,
    summary_path,
    training_path,
    elbo_paths: Sequence | None = None,
    samples_paths: Sequence | None = None,
    expect_data: str | None = None,
) -> pd.DataFrame:
    """Read every model's Theorem 1 table, history and (optionally) ELBO table (the lists in
    the order of ``models``, a list of ``(arch, split, seed)``), write the three tables
    atomically, return the summary. An ELBO table must list the Theorem 1 table's test images
    in the same order. ``expect_data``: the run's data fingerprint, which every per-model
    table must record (:func:`vae_novelty.data.read_fingerprint` of ``results/data/mnist.npz``)."""
    import pyarrow as pa

    from .io import atomic_path, provenance

    if not len(theorem1_paths) == len(history_paths) == len(models):
        raise ValueError(
            f"{len(theorem1_paths)} Theorem 1 tables, {len(history_paths)} "
            f"histories and {len(models)} models: the lists must match"
        )
    for what, paths in (("ELBO", elbo_paths), ("samples", samples_paths)):
        if paths is not None and len(paths) != len(models):
            raise ValueError(
                f"{len(paths)} {what} tables and {len(models)} models: the lists must match"
            )
    tables, rows, histories = [], [], []
    for k, (path, hist_path, (arch, split, seed)) in enumerate(
        zip(theorem1_paths, history_paths, models)
    ):
        mid = model_id(arch, split, seed)
        table, meta = read_theorem1(path, expect_model_id=mid, expect_data=expect_data)
        table = table.replace_schema_metadata(None)
        check_theorem1_table(table, path)
        tables.append(table)
        history = pd.read_csv(hist_path)
        check_history(history, hist_path, n_test=table.num_rows)
        histories.append(
            ({"model_id": mid, "arch": arch, "split": split, "seed": int(seed)}, history)
        )
        elbo = None
        if elbo_paths is not None:
            from .elbo import read_elbo

            elbo_table = read_elbo(elbo_paths[k], expect_model_id=mid, expect_data=expect_data)[0]
            check_elbo_table(elbo_table, elbo_paths[k])
            elbo = elbo_table.to_pandas()
            if not np.array_equal(
                elbo.mnist_index.to_numpy(), table.column("mnist_index").to_numpy()
            ):
                raise ValueError(f"{elbo_paths[k]}: test images differ from those of {path}")
        samples = samples_meta = None
        if samples_paths is not None:
            samples_table, samples_meta = read_model_table(
                samples_paths[k],
                expect_model_id=mid,
                expect_data=expect_data,
                expect_columns=samples_schema(1).names,
            )
            check_samples_table(samples_table, samples_paths[k])
            samples = samples_table.select(
                ["digit", "nn1_dist", "nn2_dist", "perplexity", "w_max"]
            ).to_pandas()
        rows.append(summary_row(meta, table.to_pandas(), history, elbo, samples, samples_meta))
    combined = pa.concat_tables(tables) if tables else table_schema().empty_table()
    combined = with_meta(
        combined, provenance(models=[model_id(*m) for m in models], data=expect_data)
    )
    summary = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    training = stack_histories(histories)
    for path in (table_path, summary_path, training_path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_table(combined, table_path)
    with atomic_path(summary_path) as tmp:
        summary.to_csv(tmp, index=False)
    with atomic_path(training_path) as tmp:
        training.to_csv(tmp, index=False)
    return summary
