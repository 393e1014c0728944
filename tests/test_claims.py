"""bench/claims.py: the verdicts on seed intervals, checked on synthetic results."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import REPO
from vae_novelty.seeds import bootstrap_interval, config_rng

spec = importlib.util.spec_from_file_location("claims", REPO / "bench" / "claims.py")
claims = importlib.util.module_from_spec(spec)
spec.loader.exec_module(claims)
import claims_gpu  # noqa: E402  (bench/, put on the path by claims.py)


def test_est_is_the_seed_summary_interval():
    e = claims.Est([0.4, 0.45, 0.6], ("h400", "no9"))
    assert (e.mean, e.lo, e.hi) == bootstrap_interval(
        [0.4, 0.45, 0.6], 2000, 0.95, config_rng(0, "h400", "no9")
    )
    assert e.lo < e.mean < e.hi and e.n == 3
    assert "seeds 40.0%-60.0%" in e.text(pct=True)
    assert claims.Est([0.3], ("a", "b")).text(pct=True) == "30.0% (one seed)"


@pytest.mark.parametrize(
    "values, expect",
    [
        ([0.6, 0.62, 0.7], "**holds**"),  # the whole interval above one half
        ([0.45, 0.52, 0.7], "**holds partly**"),  # only the mean
        ([0.3, 0.35, 0.4], "**holds partly**"),  # the whole interval above a quarter
        ([0.1, 0.2, 0.3], "**does not hold**"),
        ([0.55], "**holds**"),  # one seed: the value decides
    ],
)
def test_interval_verdict(values, expect):
    e = claims.Est(values, ("x", "no9"))
    assert claims.interval_verdict(e, lambda v: v > 0.5, lambda v: v > 0.25) == expect


def synthetic_t1(closer: dict, n: int = 40) -> pd.DataFrame:
    """Per (arch, layers, split, seed): n test 9s of which round(closer * n) are closer to mu;
    perplexity 1.05 for all but the last image (so the tallest bin starts at 1)."""
    rows = []
    for (arch, layers, split, seed), frac in closer.items():
        k = int(round(frac * n))
        for i in range(n):
            rows.append(
                {
                    "model_id": f"{arch}.{split}.s{seed}",
                    "arch": arch,
                    "split": split,
                    "seed": seed,
                    "label": 9,
                    "perplexity": 1.05 if i < n - 1 else 3.0,
                    "bce_x_xhat": 10.0,
                    "bce_mu_xhat": 5.0 if i < k else 20.0,
                    "n_hidden_layers": layers,
                    "decoder_params": 1000 * layers + len(arch),
                }
            )
    return pd.DataFrame(rows)


def test_sweep_and_depth_groups_count_every_seed():
    closer = {("h1", 1, "no9", s): v for s, v in enumerate([0.1, 0.2, 0.15])}
    closer |= {("h2", 1, "no9", s): v for s, v in enumerate([0.2, 0.25, 0.3])}
    closer |= {("h3-3", 2, "no9", s): v for s, v in enumerate([0.5, 0.6, 0.55])}
    sw = claims.sweep(synthetic_t1(closer))
    assert list(sw.arch) == ["h1", "h2", "h3-3"] and list(sw.seeds) == [3, 3, 3]
    assert sw.iloc[0]["closer to mu"].mean == pytest.approx(0.15)
    depth = claims.depth_groups(sw, n_resamples=200)
    assert depth.loc[1, "mean"] == pytest.approx(0.2) and depth.loc[2, "mean"] == pytest.approx(
        0.55
    )
    assert depth.loc[1, "models"] == 6 and depth.loc[1, "model_min"] == pytest.approx(0.1)
    assert depth.loc[1, "hi"] < depth.loc[2, "lo"]
    assert depth.loc[1, "lo"] >= 0.1 and depth.loc[1, "hi"] <= 0.3


def test_gpu_value_within_the_seed_range():
    summary = pd.DataFrame(
        {
            "arch": ["a"] * 3 + ["b"] * 3,
            "split": ["no9"] * 6,
            "seed": [0, 1, 2] * 2,
            "frac_closer_to_mu": [0.1, 0.3, 0.2, 0.5, 0.6, 0.55],
            "final_test_neg_elbo": [100, 101, 102, 90, 91, 92.0],
        }
    )
    gpu = pd.DataFrame(
        {"frac_closer_to_mu": [0.25, 0.7], "final_test_neg_elbo": [101.5, 95.0]},
        index=["a.no9.s0", "b.no9.s0"],
    )
    text = claims_gpu.gpu_vs_seeds(summary, gpu)
    assert (
        "closer to mu: the H200 value lies within the range of the 3 CPU seeds for 1 of 2 " in text
    )
    assert "test -ELBO: the H200 value lies within the range of the 3 CPU seeds for 1 of 2" in text


def test_main_writes_interval_verdicts(tmp_path, monkeypatch):
    closer = {}
    archs = [("h400", 1), ("h100", 1), ("h400-200-100", 3), ("h100-100-100", 3)]
    for arch, layers in archs:
        for s in range(3):
            closer[(arch, layers, "no9", s)] = (0.2 if layers == 1 else 0.6) + 0.02 * s
    for s in range(3):
        closer[("h400", 1, "full", s)] = 0.1 + 0.01 * s
        closer[("h400-200-100", 3, "full", s)] = 0.3 + 0.01 * s
    t1 = synthetic_t1(closer)
    (tmp_path / "tables").mkdir()
    t1.to_parquet(tmp_path / "tables" / "theorem1.parquet")
    summary = t1.groupby("model_id").first().reset_index()[["model_id", "arch", "split", "seed"]]
    summary.to_csv(tmp_path / "tables" / "summary.csv", index=False)
    monkeypatch.setattr(
        claims,
        "mini_numbers",
        lambda results: {
            "grid": 10,
            "extent": 5.0,
            "w_max_099": 0.9,
            "w_max_05": 0.95,
            "sd_median": 0.01,
            "sd_max": 0.02,
            "n": 100,
        },
    )
    out = tmp_path / "claims.md"
    monkeypatch.setattr(sys, "argv", ["claims.py", "--core", str(tmp_path), "--out", str(out)])
    claims.main()
    text = out.read_text()
    assert "have 3 seed(s) each" in text
    # claim 3: the shallow VAE without 9s is closer to the input for every seed
    assert "Shallow VAE without 9s: closer to mu 22.5% [" in text
    claim3 = text[text.index("**3.") : text.index("**4.")]
    assert "Verdict: **holds**" in claim3
    claim4 = text[text.index("**4.") : text.index("**5.")]
    assert "Verdict at 10 epochs: **holds**" in claim4
    claim6 = text[text.index("**6.") : text.index("**7.")]
    assert "Verdict: **holds**" in claim6
    assert "The tallest bin starts at 1 in 12 of 12" in text


def test_samples_section_means_over_models_and_seeds():
    rows = []
    for arch, layers in (("h400", 1), ("h400-200-100", 3)):
        for split in ("full", "no9"):
            for seed in range(3):
                rows.append(
                    {
                        "arch": arch,
                        "split": split,
                        "seed": seed,
                        "n_hidden_layers": layers,
                        "sample_copy_frac": 0.01 * seed,
                        "sample_dist_ratio_median": 0.9,
                        "sample_perplexity_median": 1.5,
                        "sample_frac_wmax_gt_0_99": 0.2,
                        "sample_ct": -1.0 if layers == 3 else 2.0,
                        "sample_heldout_frac": (0.004 if split == "no9" else np.nan),
                        "sample_digit_frac_9": 0.004 if split == "no9" else 0.1,
                    }
                )
    summary = pd.DataFrame(rows)
    classifier = {
        "test_accuracy": 0.9833,
        "per_digit_accuracy": {"9": 0.982},
        "called_d_when_not_d": {"9": 0.0036},
    }
    text = claims.samples_section(summary, classifier, 2000)
    assert "2,000 latent codes" in text and "MNIST^te accuracy 98.33%" in text
    assert "it calls 0.36% of real test images of other digits a 9" in text
    # the copy fraction over the six models without 9s: (0 + 1 + 2) / 3 points each
    assert (
        "fraction of samples whose nearest training image is less than a third as far as "
        "the second nearest is 1.00% on average (largest 2.00%)" in text
    )
    assert "C_T.** Mean +0.50 over those models (range -1.00 to +2.00); negative in 3 of 6" in text
    assert "shallow (400) 10.0%" in text  # the MNIST^tr models' share of 9s
    assert "| 3 | 1 | 3 | 1.0% [" in text  # the depth table: 3 layers, 1 arch, 3 models


def test_samples_section_is_empty_without_samples():
    assert claims.samples_section(pd.DataFrame({"arch": ["a"]}), None, None) == ""


def test_size_section_reads_transitions_and_agreement(tmp_path):
    rows = []
    for arch, layers in (("h400", 1), ("h400-200-100", 3)):
        for n in (100, 1000, 10000):
            for half in ("A", "B"):
                for seed in (0, 1):
                    closer = {100: 0.95, 1000: 0.92 if layers == 3 else 0.5, 10000: 0.2}[n]
                    rows.append(
                        {
                            "arch": arch,
                            "n_hidden_layers": layers,
                            "n_train": n,
                            "half": half,
                            "seed": seed,
                            "steps": 300,
                            "frac_closer_to_mu": closer,
                            "copy_fraction": 0.99 if n == 100 else 0.0,
                            "agreement": {100: 0.1, 1000: 0.4, 10000: 0.8}[n],
                            "median_perplexity": 1.0,
                            "elbo_gap": 5.0,
                            "c_t": {100: -5.0, 1000: -1.0, 10000: 2.0}[n] if layers == 1 else -3.0,
                        }
                    )
    table = pd.DataFrame(rows)
    table.to_csv(tmp_path / "table.csv", index=False)
    from vae_novelty.size_table import transition_sizes

    transition_sizes(table.assign(hidden="x"), 0.9).to_csv(
        tmp_path / "transitions.csv", index=False
    )
    text = claims.size_section(tmp_path)
    assert (
        "| h400 | 1,000 | 50.0% [50.0%, 50.0%] | 0.0% [0.0%, 0.0%] | 40.0% [40.0%, 40.0%]" in text
    )
    assert "(the Theorem 1 yardstick) up to h400 100; h400-200-100 1,000" in text
    assert (
        "agree on more than half of the test images from N = h400 10,000; "
        "h400-200-100 10,000" in text
    )
    assert "first reaches 0 at N = h400 10,000; h400-200-100 never (up to 10,000)" in text
    assert (
        "**Does depth move it?** Yes: the deep VAE's Theorem 1 transition is 1,000 against "
        "the shallow VAE's 100" in text
    )
