"""Seeds with confidence intervals (vae_novelty.seeds): the bootstrap against a plain-loop
reference, its properties, a hand-computed example, and the summary over seeds."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from vae_novelty import config as vcfg
from vae_novelty.seeds import (
    bootstrap_interval,
    config_rng,
    display_table,
    interval_text,
    pool_heldout,
    statistic_columns,
    summarise_seeds,
)


def rng(seed=0):
    return np.random.default_rng(seed)


# --------------------------------------------------------------------------- reference


def reference_interval(values, n_resamples, level, seed):
    """Plain Python: the same index draws, then per resample a loop mean, and the percentile
    by sorting and interpolating between order statistics by hand."""
    v = [float(x) for x in values]
    k = len(v)
    idx = np.random.default_rng(seed).integers(0, k, size=(n_resamples, k))
    means = []
    for row in idx:
        total = 0.0
        for i in row:
            total += v[int(i)]
        means.append(total / k)
    means.sort()

    def percentile(q):
        pos = q * (len(means) - 1)
        lo = math.floor(pos)
        hi = min(lo + 1, len(means) - 1)
        return means[lo] + (pos - lo) * (means[hi] - means[lo])

    return sum(v) / k, percentile((1 - level) / 2), percentile((1 + level) / 2)


@pytest.mark.parametrize("k, n_resamples, level", [(2, 50, 0.95), (3, 401, 0.9), (7, 1000, 0.5)])
def test_bootstrap_matches_a_plain_loop_reference(k, n_resamples, level):
    values = rng(k).normal(3.0, 2.0, k)
    got = bootstrap_interval(values, n_resamples, level, rng(11))
    want = reference_interval(values, n_resamples, level, 11)
    assert np.allclose(got, want, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- hand-computed


def test_hand_computed_two_seeds():
    # Two seeds, values 0 and 1: a resample mean is 0 (both draws 0, probability 1/4), 0.5
    # (1/2) or 1 (1/4). With 2000 resamples about 500 are 0 and 500 are 1, far more than the
    # 2.5% in each tail: the 95% interval is exactly [0, 1], and the mean is 0.5.
    mean, lo, hi = bootstrap_interval([0.0, 1.0], 2000, 0.95, rng(0))
    assert (mean, lo, hi) == (0.5, 0.0, 1.0)
    # At level 0.4 the quantiles 0.3 and 0.7 both fall among the 0.5s.
    assert bootstrap_interval([0.0, 1.0], 2000, 0.4, rng(0)) == (0.5, 0.5, 0.5)


def test_hand_computed_resamples():
    # Three resamples fixed by the generator: the interval is their 0 and 100% quantiles.
    values = np.array([1.0, 2.0, 4.0])
    idx = rng(5).integers(0, 3, size=(3, 3))
    means = sorted(values[row].sum() / 3 for row in idx)
    mean, lo, hi = bootstrap_interval(values, 3, 1 - 1e-12, rng(5))
    assert mean == pytest.approx(7 / 3)
    assert lo == pytest.approx(means[0]) and hi == pytest.approx(means[-1])


# --------------------------------------------------------------------------- properties


def test_one_seed_is_degenerate():
    mean, lo, hi = bootstrap_interval([0.37], 2000, 0.95, rng())
    assert mean == 0.37 and math.isnan(lo) and math.isnan(hi)
    assert all(math.isnan(x) for x in bootstrap_interval([], 10, 0.95, rng()))


@pytest.mark.parametrize("value, k", [(0.1, 3), (1.7, 5), (-2.3, 2)])
def test_identical_seeds_give_exactly_that_value(value, k):
    # 0.1 summed three times and divided by 3 is not 0.1 in floating point: exact by design.
    assert bootstrap_interval([value] * k, 500, 0.95, rng()) == (value, value, value)


@pytest.mark.parametrize("seed", range(5))
def test_symmetric_data_interval_contains_the_mean_symmetrically(seed):
    half = rng(seed).exponential(1.0, 4)
    values = np.concatenate([5.0 + half, 5.0 - half])  # symmetric about 5
    mean, lo, hi = bootstrap_interval(values, 4000, 0.95, rng(seed + 100))
    assert mean == pytest.approx(5.0)
    assert lo < mean < hi
    assert (mean - lo) == pytest.approx(hi - mean, rel=0.15)


def test_width_shrinks_with_more_seeds():
    population = rng(1).normal(0.0, 1.0, 400)
    widths = []
    for k in (4, 16, 64, 256):
        _, lo, hi = bootstrap_interval(population[:k], 2000, 0.95, rng(2))
        widths.append(hi - lo)
        if k >= 16:
            # close to the normal approximation 2 z_0.975 sd / sqrt(k) (sd with ddof 0: the
            # bootstrap's own spread), i.e. shrinking as 1/sqrt(k)
            sd = np.std(population[:k])
            assert hi - lo == pytest.approx(2 * 1.959964 * sd / np.sqrt(k), rel=0.1)
    assert all(a > b for a, b in zip(widths, widths[1:]))


def test_higher_level_is_wider_and_nan_values_are_left_out():
    values = [1.0, 3.0, 2.0, 7.0, 4.0]
    _, lo90, hi90 = bootstrap_interval(values, 3000, 0.9, rng())
    _, lo99, hi99 = bootstrap_interval(values, 3000, 0.99, rng())
    assert lo99 <= lo90 < hi90 <= hi99
    assert bootstrap_interval(values + [np.nan], 300, 0.9, rng(3)) == bootstrap_interval(
        values, 300, 0.9, rng(3)
    )


@pytest.mark.parametrize("n_resamples, level", [(0, 0.95), (100, 0.0), (100, 1.0)])
def test_bad_settings_are_rejected(n_resamples, level):
    with pytest.raises(ValueError):
        bootstrap_interval([1.0, 2.0], n_resamples, level, rng())


# --------------------------------------------------------------------------- the table


def summary_frame(
    seeds=(0, 1, 2),
    archs=(("h100", "100", 1, 79_284), ("h3", "100-100-100", 3, 99_484)),
    splits=("full", "no9", "no3"),
    extra=True,
) -> pd.DataFrame:
    """A summary.csv-like frame: per (arch, split, seed) a deterministic value per column."""
    r = rng(42)
    rows = []
    for arch, hidden, layers, params in archs:
        for split in splits:
            for s in seeds:
                row = dict(
                    model_id=f"{arch}.{split}.s{s}",
                    arch=arch,
                    hidden=hidden,
                    n_hidden_layers=layers,
                    z_dim=50,
                    split=split,
                    heldout_digit=int(split[2:]) if split.startswith("no") else None,
                    seed=s,
                    n_test=12,
                    decoder_params=params,
                    bce_x_xhat_median=float(r.normal(80, 5)),
                    perplexity_median=float(1 + r.exponential(1.0)),
                    frac_closer_to_mu=float(r.uniform()),
                    final_test_neg_elbo=float(r.normal(100, 3)),
                )
                if extra:
                    row["some_new_stat"] = float(r.normal())  # added by someone else later
                    row["note"] = "text"  # non-numeric: not a statistic
                rows.append(row)
    return pd.DataFrame(rows)


def test_statistic_columns_are_the_numeric_non_config_columns():
    assert statistic_columns(summary_frame()) == [
        "bce_x_xhat_median",
        "perplexity_median",
        "frac_closer_to_mu",
        "final_test_neg_elbo",
        "some_new_stat",
    ]


def test_summary_over_seeds_one_row_per_config(tmp_path):
    df = summary_frame()
    path = tmp_path / "summary.csv"
    df.to_csv(path, index=False)
    df = pd.read_csv(path)  # as the rule reads it (heldout_digit: NaN, float)
    out = summarise_seeds(df, n_resamples=500, level=0.9, seed=7)
    assert len(out) == 6
    assert out[["arch", "split"]].values.tolist() == [
        [a, s] for a in ("h100", "h3") for s in ("full", "no9", "no3")
    ]
    assert out.n_seeds.tolist() == [3] * 6 and out.seeds.tolist() == ["0 1 2"] * 6
    assert list(out.columns[:10]) == [
        "arch",
        "split",
        "hidden",
        "n_hidden_layers",
        "z_dim",
        "heldout_digit",
        "decoder_params",
        "n_test",
        "n_seeds",
        "seeds",
    ]
    for stat in statistic_columns(df):
        assert {f"{stat}_mean", f"{stat}_ci_lo", f"{stat}_ci_hi"} <= set(out.columns)
    assert "note_mean" not in out.columns and "seed_mean" not in out.columns
    # each row against bootstrap_interval on that config's values with its own stream
    for _, row in out.iterrows():
        g = df[(df.arch == row.arch) & (df.split == row.split)]
        for stat in ("frac_closer_to_mu", "some_new_stat"):
            want = bootstrap_interval(
                g[stat].to_numpy(), 500, 0.9, config_rng(7, row.arch, row.split)
            )
            assert (
                row[f"{stat}_mean"],
                row[f"{stat}_ci_lo"],
                row[f"{stat}_ci_hi"],
            ) == pytest.approx(want)
            assert row[f"{stat}_ci_lo"] <= row[f"{stat}_mean"] <= row[f"{stat}_ci_hi"]
    assert math.isnan(out.heldout_digit[0]) and out.heldout_digit[1] == 9


def test_a_config_does_not_depend_on_the_other_rows_or_their_order():
    df = summary_frame()
    full = summarise_seeds(df, 300, 0.95, 0).set_index(["arch", "split"])
    alone = summarise_seeds(
        df[(df.arch == "h3") & (df.split == "no9")].iloc[::-1], 300, 0.95, 0
    ).set_index(["arch", "split"])
    cols = [c for c in alone.columns if c != "seeds"]
    pd.testing.assert_series_equal(full.loc[("h3", "no9"), cols], alone.loc[("h3", "no9"), cols])
    other = summarise_seeds(df, 300, 0.95, 1).set_index(["arch", "split"])
    assert not np.allclose(other["frac_closer_to_mu_ci_lo"], full["frac_closer_to_mu_ci_lo"])


def test_one_seed_gives_nan_intervals():
    out = summarise_seeds(summary_frame(seeds=(4,)), 200, 0.95, 0)
    assert out.n_seeds.tolist() == [1] * 6
    assert out.filter(like="_ci_").isna().all().all()
    assert out.filter(like="_mean").notna().all().all()


def test_config_columns_must_agree_between_seeds():
    df = summary_frame()
    df.loc[1, "decoder_params"] = 5
    with pytest.raises(ValueError, match="decoder_params differs between seeds"):
        summarise_seeds(df, 100, 0.95, 0)
    dup = summary_frame()
    dup.loc[1, "seed"] = 0
    with pytest.raises(ValueError, match="repeat"):
        summarise_seeds(dup, 100, 0.95, 0)


def test_pool_heldout_averages_each_seed_over_the_digits():
    df = summary_frame(seeds=(0, 1))
    pooled = pool_heldout(df)
    assert len(pooled) == 4 and set(pooled.split) == {"heldout"}
    assert pooled.n_digits.tolist() == [2] * 4
    row = pooled[(pooled.arch == "h3") & (pooled.seed == 1)].iloc[0]
    g = df[(df.arch == "h3") & (df.seed == 1) & df.split.isin(["no9", "no3"])]
    assert row.frac_closer_to_mu == pytest.approx(g.frac_closer_to_mu.mean())
    assert row.decoder_params == 99_484 and row.n_hidden_layers == 3
    out = summarise_seeds(pooled, 100, 0.95, 0)
    assert out.n_seeds.tolist() == [2, 2] and out.n_digits.tolist() == [2, 2]
    assert len(pool_heldout(df, digits=[9])) == 4
    assert (pool_heldout(df, digits=[9]).n_digits == 1).all()


def test_display_table_writes_mean_and_interval():
    assert interval_text(0.5123, 0.4311, 0.6) == "0.512 [0.431, 0.6]"
    assert interval_text(0.5, np.nan, np.nan) == "0.5"
    assert interval_text(np.nan, np.nan, np.nan) == ""
    out = summarise_seeds(summary_frame(), 100, 0.95, 0)
    shown = display_table(out)
    assert "frac_closer_to_mu" in shown.columns and "frac_closer_to_mu_mean" not in shown.columns
    assert shown.n_seeds.tolist() == out.n_seeds.tolist()
    assert all(t.count("[") == 1 for t in shown.frac_closer_to_mu)


def test_config_section_defaults_and_limits():
    import copy

    import yaml

    from conftest import REPO

    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    assert vcfg.load_config(cfg)["seeds_ci"] == {"bootstrap": 2000, "level": 0.95, "seed": 0}
    without = {k: v for k, v in cfg.items() if k != "seeds_ci"}
    assert vcfg.load_config(without)["seeds_ci"] == vcfg.DEFAULTS["seeds_ci"]
    for key, value in (("level", 1.0), ("level", 0), ("bootstrap", 0), ("seed", -1)):
        bad = copy.deepcopy(cfg)
        bad["seeds_ci"][key] = value
        with pytest.raises(vcfg.ConfigError, match=rf"seeds_ci\.{key}"):
            vcfg.load_config(bad)


# --------------------------------------------------------------------------- non-finite values


def test_infinite_statistic_is_refused_naming_file_column_and_model():
    df = summary_frame()
    df.loc[4, "perplexity_median"] = np.inf
    with pytest.raises(
        ValueError,
        match=r"results/tables/summary\.csv: column perplexity_median "
        r"is infinite for h100\.no9\.s1",
    ):
        summarise_seeds(df, 100, 0.95, 0, source="results/tables/summary.csv")
    with pytest.raises(ValueError, match=r"summary: column perplexity_median is infinite"):
        pool_heldout(df)


def test_nan_for_only_some_seeds_of_a_configuration_is_refused():
    """Legitimate NaNs (no ELBO table, no test images, one training row, memorisation not
    computed) are the same for every seed of a configuration; a NaN for one seed only is a
    fault, and leaving it out would silently average the other seeds."""
    df = summary_frame()
    df.loc[4, "frac_closer_to_mu"] = np.nan
    with pytest.raises(
        ValueError,
        match=r"s\.csv: column frac_closer_to_mu is NaN for "
        r"h100\.no9\.s1 but not for h100\.no9\.s0, "
        r"h100\.no9\.s2",
    ):
        summarise_seeds(df, 100, 0.95, 0, source="s.csv")


def test_nan_for_only_some_heldout_digits_is_refused_when_pooling():
    df = summary_frame(seeds=(0, 1))
    df.loc[(df.model_id == "h3.no3.s1"), "frac_closer_to_mu"] = np.nan
    with pytest.raises(
        ValueError,
        match=r"column frac_closer_to_mu is NaN for h3\.no3\.s1 but "
        r"not for h3\.no9\.s1",
    ):
        pool_heldout(df, source="s.csv")


def test_nan_for_every_seed_of_a_configuration_is_kept():
    df = summary_frame()
    df["elbo_gap_mean"] = 1.0 + df.index
    df.loc[df.split == "full", "elbo_gap_mean"] = np.nan  # e.g. no ELBO table for them
    out = summarise_seeds(df, 100, 0.95, 0)
    full = out[out.split == "full"]
    assert full.elbo_gap_mean_mean.isna().all() and full.elbo_gap_mean_ci_lo.isna().all()
    assert out[out.split != "full"].elbo_gap_mean_mean.notna().all()
    pooled = pool_heldout(df)
    assert pooled.elbo_gap_mean.notna().all()


# found by mutation testing (bench/mutation.sh seeds; docs/benchmarks/mutation.md)


def test_pool_heldout_names_its_source_for_an_infinite_value_outside_the_heldout_splits():
    df = summary_frame(seeds=(0, 1))
    df.loc[df.model_id == "h3.full.s1", "perplexity_median"] = np.inf  # not a held-out split
    with pytest.raises(
        ValueError,
        match=r"^s\.csv: column perplexity_median is infinite for "
        r"h3\.full\.s1",
    ):
        pool_heldout(df, source="s.csv")


def test_interval_text_needs_both_ends_of_the_interval():
    assert interval_text(0.5, np.nan, 0.6) == "0.5"
    assert interval_text(0.5, 0.4, np.nan) == "0.5"


def test_display_table_keeps_a_mean_column_without_an_interval():
    table = pd.DataFrame(
        {"arch": ["h3"], "x_mean": [0.5], "x_ci_lo": [0.4], "x_ci_hi": [0.6], "other_mean": [7.0]}
    )
    out = display_table(table)
    assert out.columns.tolist() == ["arch", "other_mean", "x"]
    assert out.other_mean.tolist() == [7.0] and out.x.tolist() == ["0.5 [0.4, 0.6]"]
