"""Tables of the size sweep (issue 20): every model's row in one table, and the transition
sizes read off it.

A transition size is the largest training-set size N at which a measure is at least a
threshold (0.9): for the fraction of test reconstructions closer to the weighted average mu
(the Theorem 1 yardstick) and for the copy fraction of generated samples (Gu et al.'s
effective model memorisation, EMM). It is read per model (each half and seed: its own curve
over N) and from the mean curve (per N, the mean over halves and seeds); the interval is the
smallest and largest per-model reading. The sizes form a grid, so the true crossing lies
between the size read and the next one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

# One row per model (size_evaluate's CSV; the combined table).
TABLE_COLUMNS = (
    "model_id",
    "arch",
    "hidden",
    "n_hidden_layers",
    "n_train",
    "half",
    "seed",
    "epochs",
    "steps",
    "frac_closer_to_mu",
    "median_perplexity",
    "train_neg_elbo",
    "test_neg_elbo",
    "elbo_gap",
    "copy_fraction",
    "median_copy_ratio",
    "c_t",
    "agreement",
    "median_pair_dist",
    "median_own_nn_dist",
)
TRANSITION_MEASURES = {"frac_closer_to_mu": "closer to mu", "copy_fraction": "copies"}
TRANSITION_COLUMNS = (
    "arch",
    "hidden",
    "measure",
    "threshold",
    "n_mean_curve",
    "n_low",
    "n_high",
    "models",
    "largest_n",
    "reading",
)


def read_tables(paths) -> pd.DataFrame:
    """The architectures' tables (size_evaluate's CSVs) as one, sorted; a table without the
    expected columns or with a model twice is refused naming the file."""
    frames = []
    for path in paths:
        df = pd.read_csv(path)
        missing = [c for c in TABLE_COLUMNS if c not in df.columns]
        if missing:
            raise ValueError(f"{path}: not a size-sweep table (missing columns {missing})")
        frames.append(df[list(TABLE_COLUMNS)])
    table = pd.concat(frames, ignore_index=True)
    twice = table.model_id[table.model_id.duplicated()].tolist()
    if twice:
        raise ValueError(f"models in more than one table: {twice[:5]}")
    return table.sort_values(["arch", "n_train", "half", "seed"]).reset_index(drop=True)


def largest_n_at_least(n: np.ndarray, values: np.ndarray, threshold: float) -> float:
    """The largest ``n`` whose value is >= ``threshold`` (NaN values never are); NaN if none."""
    n, values = np.asarray(n, float), np.asarray(values, float)
    ok = values >= threshold
    return float(n[ok].max()) if ok.any() else float("nan")


def transition_sizes(table: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Per architecture and measure (:data:`TRANSITION_MEASURES`): the transition size of the
    mean curve, the lowest and highest per-model reading, the number of models, and a reading
    in words (``"1000 (300-1000)"``; ``"< 100"`` when no N reaches the threshold)."""
    rows = []
    for arch, of_arch in table.groupby("arch", sort=False):
        for measure in TRANSITION_MEASURES:
            mean = of_arch.groupby("n_train")[measure].mean()
            n_mean = largest_n_at_least(mean.index.values, mean.values, threshold)
            per_model = [
                largest_n_at_least(g.n_train.values, g[measure].values, threshold)
                for _, g in of_arch.groupby(["half", "seed"])
            ]
            finite = [v for v in per_model if not np.isnan(v)]
            smallest, largest = int(of_arch.n_train.min()), int(of_arch.n_train.max())
            n_low = min(per_model) if not np.isnan(per_model).any() else float("nan")
            n_high = max(finite) if finite else float("nan")
            rows.append(
                {
                    "arch": arch,
                    "hidden": of_arch.hidden.iloc[0],
                    "measure": measure,
                    "threshold": threshold,
                    "n_mean_curve": n_mean,
                    "n_low": n_low,
                    "n_high": n_high,
                    "models": len(per_model),
                    "largest_n": largest,
                    "reading": _reading(n_mean, n_low, n_high, smallest),
                }
            )
    return pd.DataFrame(rows, columns=list(TRANSITION_COLUMNS))


def _reading(n_mean: float, n_low: float, n_high: float, smallest: int) -> str:
    def word(v):
        return f"< {smallest}" if np.isnan(v) else str(int(v))

    if np.isnan(n_mean) and np.isnan(n_high):
        return f"< {smallest} (every model)"
    return f"{word(n_mean)} (models: {word(n_low)} to {word(n_high)})"


def write_tables(paths, table_path, transitions_path, threshold: float) -> pd.DataFrame:
    """The combined table and the transition sizes (CSV, atomically); returns the latter."""
    from .io import atomic_path

    table = read_tables(paths)
    transitions = transition_sizes(table, threshold)
    for df, path in ((table, table_path), (transitions, transitions_path)):
        with atomic_path(Path(path)) as tmp:
            df.to_csv(tmp, index=False)
    return transitions
