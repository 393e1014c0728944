"""Seeds with confidence intervals: the per-model summary reduced to one row per configuration.

``results/tables/summary.csv`` has one row per trained model (architecture, training split,
seed). :func:`summarise_seeds` groups it by configuration ``(arch, split)`` and writes, for
every statistic, the mean over seeds and a bootstrap percentile interval for that mean:

- Resampling unit: the seed. Each of ``n_resamples`` resamples draws k seeds with replacement
  from the configuration's k seeds (``rng.integers(0, k, size=(n_resamples, k))``) and takes
  their mean; the interval is the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the
  resample means (numpy's default, linear interpolation). It describes how much the mean moves
  between seeds (initial weights, data order, sampling noise), nothing else: the test images
  are the same for every seed.
- One random stream per configuration: ``SeedSequence([seed, crc32("arch/split")])``, created
  afresh for every statistic, so every statistic of a configuration uses the same resamples
  of its seeds, and a configuration's interval does not depend on which other configurations
  the table holds.
- With one seed the interval is undefined: ``_ci_lo`` and ``_ci_hi`` are NaN (the mean is that
  seed's value). With identical values over seeds the interval is exactly that value.
- Non-finite statistics: an infinite value is refused, and so is a NaN for some but not all
  seeds of a configuration (the error names the file, the column and the models). The NaNs
  that summary.csv holds by design (no ELBO table, no test images, a single training row,
  memorisation measures not computed; see :mod:`vae_novelty.tables`) are the same for every
  seed of a configuration: such a statistic's mean and interval are NaN. Leaving one seed's NaN
  out would silently report the mean of the others.

Statistics are every numeric column of the summary other than the configuration's own
(:data:`CONFIG_COLUMNS`, constant over seeds and copied once), ``seed`` and ``model_id``;
columns added to the summary later are picked up without a change here. Output columns:
``arch, split``, the configuration columns present, ``n_seeds``, ``seeds`` (space-separated),
then ``{stat}_mean, {stat}_ci_lo, {stat}_ci_hi`` for every statistic in summary order.

:func:`pool_heldout` averages each seed's statistics over the held-out digits (one row per
architecture and seed), for the all-digit panel of ``figure_quant``; its output goes through
:func:`summarise_seeds` like the per-digit rows. It refuses non-finite values the same way (a
NaN for some but not all digits of an architecture and seed).
"""

from __future__ import annotations

import zlib
from typing import Sequence

import numpy as np
import pandas as pd

KEY_COLUMNS = ("arch", "split")
# Properties of a configuration, the same for each of its seeds: copied, not summarised.
CONFIG_COLUMNS = (
    "hidden",
    "n_hidden_layers",
    "z_dim",
    "heldout_digit",
    "decoder_params",
    "n_test",
    "n_digits",
)
NOT_STATISTICS = {"model_id", "seed", *KEY_COLUMNS, *CONFIG_COLUMNS}
SUFFIXES = ("_mean", "_ci_lo", "_ci_hi")
POOLED_SPLIT = "heldout"
# Statistics that are never NaN for a model that was trained and evaluated (every model has
# test images and at least one training image): a NaN is a fault, refused even when every seed
# of a configuration has it (the documented NaNs, e.g. no ELBO table, one training row, are
# in the other columns).
NEVER_NAN = tuple(
    [
        f"{c}_{q}"
        for c in ("bce_x_xhat", "bce_mu_xhat", "perplexity")
        for q in ("median", "q25", "q75")
    ]
    + ["frac_closer_to_mu", "frac_perplexity_lt_1_5", "final_train_neg_elbo"]
)


def config_rng(seed: int, arch: str, split: str) -> np.random.Generator:
    """The bootstrap stream of one configuration."""
    key = zlib.crc32(f"{arch}/{split}".encode())
    return np.random.default_rng(np.random.SeedSequence([int(seed), key]))


def _check(n_resamples: int, level: float) -> None:
    if int(n_resamples) < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")


def bootstrap_interval(
    values, n_resamples: int, level: float, rng: np.random.Generator
) -> tuple[float, float, float]:
    """``(mean, lo, hi)``: the mean of ``values`` and its bootstrap percentile interval.

    NaN values are left out. No values: all NaN. One value (or after leaving out NaN): the
    value and a NaN interval. Identical values c: exactly ``(c, c, c)``, no draw.
    """
    _check(n_resamples, level)
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    v = v[~np.isnan(v)]
    k = len(v)
    if k == 0:
        return np.nan, np.nan, np.nan
    if np.all(v == v[0]):
        c = float(v[0])
        return (c, np.nan, np.nan) if k == 1 else (c, c, c)
    idx = rng.integers(0, k, size=(int(n_resamples), k))
    means = v[idx].mean(axis=1)
    lo, hi = np.quantile(means, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return float(v.mean()), float(lo), float(hi)


def _row_names(frame: pd.DataFrame) -> list[str]:
    """How the error messages name rows: their model ids, or ``arch/split seed``."""
    if "model_id" in frame.columns:
        return [str(m) for m in frame["model_id"]]
    return [
        f"{a}/{s} seed {int(k)}" for a, s, k in zip(frame["arch"], frame["split"], frame["seed"])
    ]


def check_statistics(
    summary: pd.DataFrame,
    stats: Sequence[str],
    groups: Sequence[str],
    source: str = "summary",
    group_name: str = "seeds of {0}/{1}",
) -> None:
    """Refuse an infinite value of any statistic in ``stats``, and a statistic that is NaN in
    some but not all rows of a group (``groups``: the columns that define one; none: only
    the infinite values are checked; ``group_name``: how a group is called, formatted with its
    key)."""
    for c in stats:
        values = summary[c].to_numpy(np.float64)
        bad = np.isinf(values)
        if bad.any():
            names = [n for n, b in zip(_row_names(summary), bad) if b]
            raise ValueError(
                f"{source}: column {c} is infinite for {', '.join(names)}; refusing to summarise it"
            )
    if not groups:
        return
    for key, group in summary.groupby(list(groups), sort=False):
        names = _row_names(group)
        for c in stats:
            nan = group[c].isna().to_numpy()
            if nan.any() and not nan.all():
                label = group_name.format(*(key if isinstance(key, tuple) else (key,)))
                raise ValueError(
                    f"{source}: column {c} is NaN for "
                    f"{', '.join(n for n, b in zip(names, nan) if b)} but not for "
                    f"{', '.join(n for n, b in zip(names, nan) if not b)} (the other "
                    f"{label}); a statistic may be NaN for all of them or for none "
                    f"(rerun the jobs of the NaN models)"
                )
    for c in stats:
        nan = summary[c].isna().to_numpy()
        if c in NEVER_NAN and nan.any():
            names = [n for n, b in zip(_row_names(summary), nan) if b]
            raise ValueError(
                f"{source}: column {c} is NaN for {', '.join(names)}; it is never "
                f"NaN for a trained and evaluated model (a fault of the job that "
                f"wrote it: rerun it); refusing to summarise it"
            )


def statistic_columns(summary: pd.DataFrame) -> list[str]:
    """The summary's numeric columns that are summarised over seeds, in table order."""
    return [
        c
        for c in summary.columns
        if c not in NOT_STATISTICS and pd.api.types.is_numeric_dtype(summary[c])
    ]


def summarise_seeds(
    summary: pd.DataFrame,
    n_resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    statistics: Sequence[str] | None = None,
    source: str = "summary",
) -> pd.DataFrame:
    """One row per ``(arch, split)`` (in order of first appearance) with ``n_seeds``, and for
    every statistic the mean over seeds and its bootstrap percentile interval (module doc).
    ``source`` names the summary in error messages (its file)."""
    _check(n_resamples, level)
    missing = [c for c in ("seed", *KEY_COLUMNS) if c not in summary.columns]
    if missing:
        raise ValueError(f"the summary has no column(s) {missing}")
    stats = list(statistics) if statistics is not None else statistic_columns(summary)
    unknown = [c for c in stats if c not in summary.columns]
    if unknown:
        raise ValueError(f"statistics not in the summary: {unknown}")
    carried = [c for c in CONFIG_COLUMNS if c in summary.columns]
    check_statistics(summary, stats, KEY_COLUMNS, source)
    rows = []
    for (arch, split), group in summary.groupby(list(KEY_COLUMNS), sort=False):
        seeds = group["seed"].astype(int).tolist()
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"{arch}/{split}: seeds {seeds} repeat")
        row = {"arch": arch, "split": split}
        for c in carried:
            if group[c].nunique(dropna=False) > 1:
                raise ValueError(f"{arch}/{split}: {c} differs between seeds ({group[c].tolist()})")
            row[c] = group[c].iloc[0]
        row["n_seeds"] = len(seeds)
        row["seeds"] = " ".join(map(str, seeds))
        for c in stats:
            mean, lo, hi = bootstrap_interval(
                group[c].to_numpy(np.float64), n_resamples, level, config_rng(seed, arch, split)
            )
            row.update({f"{c}_mean": mean, f"{c}_ci_lo": lo, f"{c}_ci_hi": hi})
        rows.append(row)
    columns = (
        list(KEY_COLUMNS)
        + carried
        + ["n_seeds", "seeds"]
        + [f"{c}{s}" for c in stats for s in SUFFIXES]
    )
    return pd.DataFrame(rows, columns=columns)


def pool_heldout(
    summary: pd.DataFrame, digits: Sequence[int] | None = None, source: str = "summary"
) -> pd.DataFrame:
    """Per architecture and seed, every statistic averaged over the held-out digits' models
    (splits ``no{d}``, ``d`` in ``digits``, default all), with ``split`` = ``"heldout"`` and
    ``n_digits``; the configuration columns that vary with the digit are dropped."""
    held = summary[summary["split"].astype(str).str.fullmatch(r"no[0-9]")]
    if digits is not None:
        held = held[held["split"].isin([f"no{int(d)}" for d in digits])]
    stats = statistic_columns(summary)
    check_statistics(summary, stats, (), source)  # infinite values anywhere
    check_statistics(held, stats, ("arch", "seed"), source, "held-out digits of {0} seed {1}")
    keep = [
        c for c in ("hidden", "n_hidden_layers", "z_dim", "decoder_params") if c in summary.columns
    ]
    rows = []
    for (arch, seed), group in held.groupby(["arch", "seed"], sort=False):
        row = {"arch": arch, "split": POOLED_SPLIT, "seed": int(seed)}
        row.update({c: group[c].iloc[0] for c in keep})
        row["n_digits"] = int(group["split"].nunique())
        row.update({c: float(group[c].astype(np.float64).mean()) for c in stats})
        rows.append(row)
    return pd.DataFrame(rows, columns=["arch", "split", "seed", *keep, "n_digits", *stats])


def interval_text(mean: float, lo: float, hi: float) -> str:
    """``0.512 [0.43, 0.6]`` (3 significant digits); the mean alone when the interval is NaN;
    empty when the mean is NaN."""
    if np.isnan(mean):
        return ""
    text = f"{mean:.3g}"
    if not (np.isnan(lo) or np.isnan(hi)):
        text += f" [{lo:.3g}, {hi:.3g}]"
    return text


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """The configuration columns, then one ``mean [lo, hi]`` text column per statistic."""
    stats = [
        c[: -len("_mean")]
        for c in table.columns
        if c.endswith("_mean") and f"{c[: -len('_mean')]}_ci_lo" in table.columns
    ]
    fixed = [
        c for c in table.columns if not any(c == f"{s}{suf}" for s in stats for suf in SUFFIXES)
    ]
    out = table[fixed].copy()
    for s in stats:
        out[s] = [
            interval_text(m, lo, hi)
            for m, lo, hi in zip(table[f"{s}_mean"], table[f"{s}_ci_lo"], table[f"{s}_ci_hi"])
        ]
    return out
