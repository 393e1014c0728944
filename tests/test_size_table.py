"""The size sweep's table and transition sizes, on hand-made tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vae_novelty.size_table import TABLE_COLUMNS, largest_n_at_least, read_tables, transition_sizes


def table(values: dict) -> pd.DataFrame:
    """values: (arch, half, seed) -> list of (n, frac_closer_to_mu, copy_fraction)."""
    rows = []
    for (arch, half, seed), points in values.items():
        for n, closer, copies in points:
            row = {c: 0.0 for c in TABLE_COLUMNS}
            row.update(
                model_id=f"{arch}.{half}{n}.s{seed}",
                arch=arch,
                hidden="4",
                n_train=n,
                half=half,
                seed=seed,
                frac_closer_to_mu=closer,
                copy_fraction=copies,
            )
            rows.append(row)
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))


def test_largest_n_at_least():
    n = np.array([100, 300, 1000, 3000])
    assert largest_n_at_least(n, [1.0, 0.95, 0.5, 0.91], 0.9) == 3000  # not "first drop"
    assert largest_n_at_least(n, [0.95, 0.9, 0.2, np.nan], 0.9) == 300  # 0.9 counts
    assert np.isnan(largest_n_at_least(n, [0.5, 0.4, 0.3, 0.2], 0.9))


def test_transition_sizes_mean_curve_and_model_range():
    df = table(
        {
            ("s", "A", 0): [(100, 1.0, 1.0), (300, 0.95, 0.92), (1000, 0.5, 0.1)],
            ("s", "B", 0): [(100, 1.0, 0.95), (300, 0.87, 0.5), (1000, 0.4, 0.0)],
            ("d", "A", 0): [(100, 0.8, 0.2), (300, 0.1, 0.0), (1000, 0.0, 0.0)],
            ("d", "B", 0): [(100, 0.7, 0.95), (300, 0.1, 0.0), (1000, 0.0, 0.0)],
        }
    )
    t = transition_sizes(df, 0.9).set_index(["arch", "measure"])
    closer = t.loc[("s", "frac_closer_to_mu")]
    # mean at 300 is 0.91: reached; per model 300 (A) and 100 (B)
    assert (closer.n_mean_curve, closer.n_low, closer.n_high) == (300, 100, 300)
    assert closer.reading == "300 (models: 100 to 300)" and closer.models == 2
    copies = t.loc[("s", "copy_fraction")]
    assert (copies.n_mean_curve, copies.n_low, copies.n_high) == (100, 100, 300)
    deep = t.loc[("d", "frac_closer_to_mu")]
    assert np.isnan(deep.n_mean_curve) and deep.reading == "< 100 (every model)"
    deep_copies = t.loc[("d", "copy_fraction")]  # one model reaches 0.95 at 100, the mean not
    assert np.isnan(deep_copies.n_mean_curve) and np.isnan(deep_copies.n_low)
    assert deep_copies.n_high == 100 and deep_copies.reading == "< 100 (models: < 100 to 100)"


def test_read_tables_refuses_foreign_files_and_duplicates(tmp_path):
    df = table({("s", "A", 0): [(100, 1.0, 1.0)]})
    good, bad = tmp_path / "s.csv", tmp_path / "bad.csv"
    df.to_csv(good, index=False)
    df.drop(columns=["copy_fraction"]).to_csv(bad, index=False)
    assert len(read_tables([good])) == 1
    with pytest.raises(ValueError, match="missing columns"):
        read_tables([good, bad])
    with pytest.raises(ValueError, match="more than one table"):
        read_tables([good, good])
