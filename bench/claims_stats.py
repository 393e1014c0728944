"""bench/claims.py's statistics: the seed interval of a configuration (:class:`Est`), the
per-model and sweep numbers, and the verdict rules. Imported by bench/claims.py (which puts
src/ and bench/ on the path)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from vae_novelty.seeds import bootstrap_interval, config_rng

BOOTSTRAP, LEVEL, CI_SEED = 2000, 0.95, 0  # as seeds_ci's defaults
DIGIT = 9
SPLIT = {"full": "MNIST^tr", "no9": "MNIST^tr without 9"}


class Est:
    """A statistic of one configuration over its seeds: the mean, its bootstrap interval (as
    summary_by_config.csv: :func:`vae_novelty.seeds.bootstrap_interval`, the configuration's
    own stream) and the per-seed values."""

    def __init__(self, values, key: tuple[str, str]):
        self.values = np.asarray(values, dtype=np.float64)
        self.mean, self.lo, self.hi = bootstrap_interval(
            self.values, BOOTSTRAP, LEVEL, config_rng(CI_SEED, *key)
        )
        self.n = len(self.values)

    def whole(self, side) -> bool:
        """The whole interval (with one seed: the value) satisfies ``side``."""
        if self.n < 2:
            return bool(side(self.mean))
        return bool(side(self.lo) and side(self.hi))

    def text(self, pct: bool = False, digits: int = 2) -> str:
        f = (lambda v: f"{100 * v:.1f}%") if pct else (lambda v: f"{v:.{digits}f}")
        if self.n < 2:
            return f"{f(self.mean)} (one seed)"
        return (
            f"{f(self.mean)} [{f(self.lo)}, {f(self.hi)}; seeds {f(self.values.min())}"
            f"-{f(self.values.max())}]"
        )


def per_model(d: pd.DataFrame) -> dict:
    counts, edges = np.histogram(d.perplexity, bins=30, range=(0.0, 6.0))
    return {
        "n": len(d),
        "median BCE(x, x_hat)": d.bce_x_xhat.median(),
        "median BCE(mu, x_hat)": d.bce_mu_xhat.median(),
        "closer to mu": (d.bce_mu_xhat < d.bce_x_xhat).mean(),
        "median perplexity": d.perplexity.median(),
        "perplexity < 1.5": (d.perplexity < 1.5).mean(),
        "tallest bin": float(edges[counts.argmax()]),
    }


STATS = (
    "median BCE(x, x_hat)",
    "median BCE(mu, x_hat)",
    "closer to mu",
    "median perplexity",
    "perplexity < 1.5",
)


def fmt_table(df: pd.DataFrame, cols: list[str], percent: set[str] | None = None) -> str:
    percent = PERCENT if percent is None else percent
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        cells = []
        for c in cols:
            v = r[c]
            if isinstance(v, Est):
                cells.append(v.text(pct=c in percent))
            elif isinstance(v, float):
                cells.append(f"{100 * v:.1f}%" if c in percent else f"{v:.2f}")
            elif isinstance(v, list):
                cells.append(", ".join(f"[{e:.1f}, {e + 0.2:.1f})" for e in v))
            else:
                cells.append(str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


PERCENT = {"closer to mu", "perplexity < 1.5", "mean closer to mu"}


def sweep(t1: pd.DataFrame) -> pd.DataFrame:
    """Per architecture trained without 9: closer to mu and median perplexity per seed
    (``seed_values``) and as :class:`Est` over seeds."""
    d = t1[(t1.split == "no9") & (t1.label == DIGIT)]
    rows = []
    for (arch, layers, params), g in d.groupby(["arch", "n_hidden_layers", "decoder_params"]):
        per = {seed: per_model(m) for seed, m in g.groupby("seed")}
        closer = [p["closer to mu"] for p in per.values()]
        rows.append(
            {
                "arch": arch,
                "n_hidden_layers": layers,
                "decoder_params": params,
                "seeds": len(per),
                "seed_values": closer,
                "closer to mu": Est(closer, (arch, "no9")),
                "median perplexity": Est(
                    [p["median perplexity"] for p in per.values()], (arch, "no9")
                ),
            }
        )
    return pd.DataFrame(rows).sort_values(["n_hidden_layers", "decoder_params"])


def depth_groups(sw: pd.DataFrame, n_resamples: int = BOOTSTRAP) -> pd.DataFrame:
    """Closer to mu by depth over architectures and seeds: the mean of every model of that
    depth, the architecture means' range, the per-model range, and a two-level bootstrap
    interval of the depth mean (architectures resampled, then each one's seeds)."""
    rng = np.random.default_rng(np.random.SeedSequence([CI_SEED, DIGIT]))
    rows = []
    for layers, g in sw.groupby("n_hidden_layers"):
        values = [np.asarray(v, dtype=np.float64) for v in g.seed_values]
        means = np.empty(n_resamples)
        for b in range(n_resamples):
            picks = rng.integers(0, len(values), size=len(values))
            means[b] = np.mean(
                [
                    values[i][rng.integers(0, len(values[i]), size=len(values[i]))].mean()
                    for i in picks
                ]
            )
        lo, hi = np.quantile(means, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
        arch_means = [v.mean() for v in values]
        every = np.concatenate(values)
        rows.append(
            {
                "layers": int(layers),
                "archs": len(values),
                "models": len(every),
                "mean": float(np.mean(arch_means)),
                "lo": float(lo),
                "hi": float(hi),
                "arch_min": float(min(arch_means)),
                "arch_max": float(max(arch_means)),
                "model_min": float(every.min()),
                "model_max": float(every.max()),
            }
        )
    return pd.DataFrame(rows).set_index("layers")


def spearman(a, b) -> float:
    ra, rb = pd.Series(a).rank(), pd.Series(b).rank()
    return float(np.corrcoef(ra, rb)[0, 1]) if len(ra) > 2 else float("nan")


def mini_numbers(results: Path, grid: int = 600, extent: float = 5.0) -> dict:
    from vae_novelty.posterior import read_posteriors
    from vae_novelty.theorem1 import max_weight_grid

    train, _, _ = read_posteriors(results / "posteriors" / "mini" / "mini_s0.parquet")
    axis = np.linspace(-extent, extent, grid)
    points = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2)
    w = max_weight_grid(train["z_mean"], train["z_logvar"], points, chunk_mb=256)
    sd = np.exp(0.5 * train["z_logvar"].astype(np.float64))
    return {
        "grid": grid,
        "extent": extent,
        "w_max_099": float((w > 0.99).mean()),
        "w_max_05": float((w > 0.5).mean()),
        "sd_median": float(np.median(sd)),
        "sd_max": float(sd.max()),
        "n": len(sd),
    }


def verdict(ok: bool, partly: bool = False) -> str:
    return "**holds**" if ok else ("**holds partly**" if partly else "**does not hold**")


def interval_verdict(est: Est, side, partly_side=None) -> str:
    """``side`` (and a weaker ``partly_side``) applied to the interval: holds when the whole
    interval satisfies ``side``; partly when the mean does, or the whole interval satisfies
    ``partly_side``; else does not hold."""
    partly = bool(side(est.mean)) or (partly_side is not None and est.whole(partly_side))
    return verdict(est.whole(side), partly=partly)


def seeds_note(n: int) -> str:
    return (
        "one seed, so the rule is applied to the value"
        if n < 2
        else (f"{n} seeds: mean [95% bootstrap interval; per-seed range]")
    )
