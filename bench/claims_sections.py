"""bench/claims.py's sections computed from other runs than the core one: the epoch study, the
generated samples, the size sweep (the GPU run: bench/claims_gpu.py). Imported by
bench/claims.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from claims_stats import SPLIT, Est, fmt_table


def epoch_rows(args, archs: tuple[str, str], role: dict[str, str]) -> pd.DataFrame:
    """The four models of Figures 1-2 (``archs``: the shallow and deep VAEs, ``role``: their
    names) at every training length (summary.csv of each run); ``args``: bench/claims.py's."""
    rows = []
    runs = [(args.core_epochs, args.core)] + [
        (int(e.split("=", 1)[0]), Path(e.split("=", 1)[1])) for e in args.epochs
    ]
    for epochs, results in sorted(runs):
        # summary.csv: with held-out digit 9 only, every model is evaluated on MNIST_9^te
        s = pd.read_csv(results / "tables" / "summary.csv")
        for arch in archs:
            for split in ("full", "no9"):
                r = s[(s.arch == arch) & (s.split == split)].iloc[0]
                rows.append(
                    {
                        "epochs": epochs,
                        "arch": arch,
                        "split": split,
                        "VAE": role[arch],
                        "trained on": SPLIT[split],
                        "median BCE(x, x_hat)": r.bce_x_xhat_median,
                        "median BCE(mu, x_hat)": r.bce_mu_xhat_median,
                        "closer to mu": r.frac_closer_to_mu,
                        "median perplexity": r.perplexity_median,
                        "test -ELBO": r.final_test_neg_elbo,
                    }
                )
    return pd.DataFrame(rows).sort_values(
        ["VAE", "trained on", "epochs"], ascending=[False, True, True]
    )


def epoch_section(ep: pd.DataFrame) -> str:
    """The section "Training length": the rows of :func:`epoch_rows`."""
    out = []
    w = out.append
    w("## Training length (the paper states no epoch count)\n")
    w(
        "The four models of Figures 1-2 trained for longer (`config/epoch-study.yaml`, on an "
        "NVIDIA H200, same seeds and data), next to this run. Test -ELBO: mean negative ELBO "
        "over the model's evaluation images after the last epoch (MNIST_9^te).\n"
    )
    w(
        fmt_table(
            ep,
            [
                "VAE",
                "trained on",
                "epochs",
                "median BCE(x, x_hat)",
                "median BCE(mu, x_hat)",
                "closer to mu",
                "median perplexity",
                "test -ELBO",
            ],
        )
    )
    w("")
    return "\n".join(out)


SAMPLE_STATS = {
    "sample_copy_frac": ("copies", True),
    "sample_dist_ratio_median": ("median nn1/nn2", False),
    "sample_perplexity_median": ("median perplexity at z", False),
    "sample_frac_wmax_gt_0_99": ("w_max > 0.99", True),
    "sample_ct": ("C_T", False),
    "sample_heldout_frac": ("classified as 9", True),
}


def samples_section(
    summary: pd.DataFrame,
    classifier: dict | None,
    n_samples: int | None,
    archs: tuple[str, str],
    role: dict,
) -> str:
    """Claims.md's "Generated samples": the four models and the sweep by depth, from the
    summary's ``sample_*`` columns (mean over seeds with the configuration's interval), set
    beside the memorisation literature's numbers. ``archs``: the shallow and the deep VAE's
    architectures; ``role``: their names in the tables."""
    if "sample_copy_frac" not in summary.columns or summary.sample_copy_frac.isna().all():
        return ""
    out = []
    w = out.append
    w("## Generated samples: do the VAEs generate novel examples?\n")
    per = f"{n_samples:,}" if n_samples else "the configured number of"
    w(
        f"For every model, {per} latent codes z ~ N(0, I) (`samples.n`), the decoder mean "
        "x_hat(z) of each, and: its nearest and second-nearest training image in pixel L2 "
        "(*copies*: nn1/nn2 < 1/3, the rule of Gu et al.); the Theorem 1 weights at z over all "
        "training posteriors (perplexity, w_max); C_T (Meehan et al.: per k-means cell of the "
        "PCA of the training images, a Mann-Whitney z of the samples' distances to their "
        "nearest training image against those of held-out test images of the training digits; "
        "negative = closer than real new data, i.e. copying); and the digit a CNN classifier "
        "assigns to x_hat(z). Mean over seeds [95% interval; per-seed range].\n"
    )
    if classifier:
        false9 = classifier.get("called_d_when_not_d", {}).get("9")
        w(
            f"The classifier (`results/classifier/classifier.json`): MNIST^te accuracy "
            f"{100 * classifier['test_accuracy']:.2f}% (the issue aimed at 99%), accuracy on 9s "
            f"{100 * classifier['per_digit_accuracy']['9']:.1f}%"
            + (
                f"; it calls {100 * false9:.2f}% of real test images of other digits a 9, the "
                "floor below which a held-out-9 fraction means nothing"
                if false9 is not None
                else ""
            )
            + ". Its errors on decoder outputs, which can be blurrier than real "
            "digits, are not measured: a fraction near that floor says the model generates "
            "(almost) no recognisable 9s, not exactly how many.\n"
        )
    rows = []
    for arch in archs:
        for split in ("full", "no9"):
            m = summary[(summary.arch == arch) & (summary.split == split)]
            if m.empty:
                continue
            row = {"VAE": role[arch], "trained on": SPLIT[split]}
            for col, (name, _) in SAMPLE_STATS.items():
                v = m[col].to_numpy(np.float64)
                row[name] = Est(v, (arch, split)) if not np.isnan(v).all() else "-"
            rows.append(row)
    table = pd.DataFrame(rows)
    pct = {name for name, is_pct in SAMPLE_STATS.values() if is_pct}
    w("### The four models of Figures 1-2\n")
    w(fmt_table(table, ["VAE", "trained on"] + [n for n, _ in SAMPLE_STATS.values()], pct))
    w("")
    d = summary[summary.split == "no9"]
    by_depth = []
    for layers, g in d.groupby("n_hidden_layers"):
        row = {"layers": int(layers), "archs": g.arch.nunique(), "models": len(g)}
        for col, (name, _) in SAMPLE_STATS.items():
            v = g[col].to_numpy(np.float64)
            row[name] = Est(v, (f"depth{layers}", "no9"))
        by_depth.append(row)
    w("### The sweep without 9s, by depth (every architecture and seed of that depth)\n")
    w("Here the interval resamples the depth's models and the range is over its models.\n")
    w(
        fmt_table(
            pd.DataFrame(by_depth),
            ["layers", "archs", "models"] + [n for n, _ in SAMPLE_STATS.values()],
            pct,
        )
    )
    w("")
    copies = d.sample_copy_frac.to_numpy(np.float64)
    ct = d.sample_ct.to_numpy(np.float64)
    held = d.sample_heldout_frac.to_numpy(np.float64)
    w("### Beside the literature\n")
    w(
        f"- **Copies.** Over the {len(d)} models trained without 9s (54,051 images), the "
        f"fraction of samples whose nearest training image is less than a third as far as the "
        f"second nearest is {100 * np.nanmean(copies):.2f}% on average (largest "
        f"{100 * np.nanmax(copies):.2f}%). Gu et al. (TMLR 2025) count 99% / 92% / 61% / 17% "
        "copies among 10,000 samples of CIFAR-10 diffusion models trained on 0.5k / 1k / 2k / "
        "4k images: other models, data and sizes (their largest training set is 13 times "
        "smaller than ours); at 54k images these VAEs are far past the point where their "
        "diffusion models stop copying."
    )
    w(
        f"- **C_T.** Mean {np.nanmean(ct):+.2f} over those models (range {np.nanmin(ct):+.2f} "
        f"to {np.nanmax(ct):+.2f}); negative in {int((ct < 0).sum())} of {len(ct)}. Meehan, "
        "Chaudhuri & Dasgupta (AISTATS 2020) report for MNIST VAEs about -1.7 at latent size "
        "100, below 0 from latent size 55 up (copying) and about +4 at latent size 10 "
        "(underfitting); our latent size is 50, and our cells (20 k-means cells of a 50-"
        "dimensional PCA of the training pixels) and distances (pixel L2) are our own "
        "construction, not theirs, so only the sign and rough size compare."
    )
    w(
        f"- **The held-out digit.** Models trained without 9s classify "
        f"{100 * np.nanmean(held):.2f}% of their samples as 9 on average (largest "
        f"{100 * np.nanmax(held):.2f}%), against 10% for a model of all ten digits and the "
        "classifier's false-9 rate above. The models trained on MNIST^tr: "
        + ", ".join(
            f"{role[a]} {100 * summary[(summary.arch == a) & (summary.split == 'full')].sample_digit_frac_9.mean():.1f}%"  # noqa: E501
            for a in archs
            if not summary[(summary.arch == a) & (summary.split == "full")].empty
        )
        + " of samples are 9s.\n"
    )
    floor = (classifier or {}).get("called_d_when_not_d", {}).get("9", 0.0)
    deep_ct = d[d.n_hidden_layers == d.n_hidden_layers.max()].sample_ct.mean()
    shallow_ct = d[d.n_hidden_layers == d.n_hidden_layers.min()].sample_ct.mean()
    w(
        "**Answer to the title question, from these numbers.** "
        + (
            "No sample of any model trained without 9s is a copy of a training image by Gu et "
            "al.'s rule"
            if np.nanmax(copies) == 0
            else f"At most {100 * np.nanmax(copies):.2f}% of a model's samples are copies"
        )
        + f"; the nearest training image is typically {np.nanmedian(d.sample_dist_ratio_median):.2f}"
        " times as far as the second nearest, so samples sit between training images, not on "
        f"them. By C_T the deepest VAEs' samples ({deep_ct:+.2f}) lie closer to the training "
        "set than real unseen digits do, the direction Meehan et al. call data-copying, while "
        f"the one-layer VAEs' ({shallow_ct:+.2f}) lie farther (blurrier, the underfitting "
        "side): the depth effect of claim 6 appears in generation too. And VAEs that never saw "
        f"a 9 generate samples a classifier calls 9 ({100 * np.nanmean(held):.1f}% on average, "
        f"against a false-9 rate of {100 * floor:.2f}% on real digits), most of all the "
        "shallow ones: in that literal sense they do generate novel examples, with how many of "
        "those are convincing 9s left to Figure 14 and to a better instrument than one "
        "classifier.\n"
    )
    return "\n".join(out) + "\n"


def size_section(size_dir: Path) -> str:
    """Claims.md's size-sweep section (issue 20), from ``{results}/size/table.csv`` and
    ``transitions.csv`` of config/size-sweep.yaml: per architecture and N the mean over halves
    and seeds [range over models] of each measure, the transition sizes, and the literature's
    numbers beside them."""
    table = pd.read_csv(size_dir / "table.csv")
    trans = pd.read_csv(size_dir / "transitions.csv")
    out = []
    w = out.append
    n_models = table.groupby("arch").size()
    halves = sorted(table.half.unique())
    seeds = sorted(table.seed.unique())
    w("## Training-set size: where do the VAEs stop copying? (config/size-sweep.yaml)\n")
    w(
        f"The shallow and deep VAEs (dim(z) = 50) trained on nested, digit-balanced subsets of "
        f"two disjoint halves ({', '.join(halves)}) of MNIST^tr, N = "
        f"{', '.join(f'{n:,}' for n in sorted(table.n_train.unique()))}, seeds "
        f"{', '.join(str(x) for x in seeds)} ({int(n_models.iloc[0])} models per architecture), "
        f"every one with the same {int(table.steps.iloc[0]):,} gradient steps; measured on one "
        "fixed set of test images. Each cell: mean over halves and seeds [range over the "
        "models]. *agreement*: fraction of test images whose reconstructions by the A and B "
        "models (same N, architecture, seed) are closer to each other than each is to its own "
        "model's nearest training image.\n"
    )
    measures = [
        ("frac_closer_to_mu", "closer to mu", True),
        ("copy_fraction", "copies", True),
        ("agreement", "agreement", True),
        ("median_perplexity", "median perplexity", False),
        ("elbo_gap", "test - train -ELBO", False),
        ("c_t", "C_T", None),
    ]
    cols = ["arch", "N"] + [m[1] for m in measures]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for (arch, n), g in table.groupby(["arch", "n_train"], sort=True):
        cells = [arch, f"{n:,}"]
        for col, _, pct in measures:
            v = g[col].to_numpy(np.float64)
            f = (
                (lambda x: f"{100 * x:.1f}%")
                if pct
                else (lambda x: f"{x:+.2f}")
                if pct is None
                else (lambda x: f"{x:.2f}")
            )
            cells.append(
                "-"
                if np.isnan(v).all()
                else f"{f(np.nanmean(v))} [{f(np.nanmin(v))}, {f(np.nanmax(v))}]"
            )
        lines.append("| " + " | ".join(cells) + " |")
    w("\n".join(lines))
    w("")
    w(
        "Transition sizes: the largest N at which the measure is still at least "
        f"{100 * trans.threshold.iloc[0]:.0f}% (mean curve; in brackets the smallest and largest "
        "reading of the individual models' curves, one per half and seed); the sizes are a "
        "grid, so the crossing lies between that N and the next.\n"
    )
    for _, r in trans.iterrows():
        w(f"- {r['arch']}, {TRANSITION_NAMES.get(r['measure'], r['measure'])}: {r['reading']}")
    w("")
    deep_arch = table.loc[table.n_hidden_layers.idxmax(), "arch"]
    shallow_arch = table.loc[table.n_hidden_layers.idxmin(), "arch"]
    agree = table.groupby(["arch", "n_train"]).agreement.mean()
    half_n = {
        a: agree[a][agree[a] >= 0.5].index.min() if (agree[a] >= 0.5).any() else None
        for a in (shallow_arch, deep_arch)
    }
    closer = trans[trans.measure == "frac_closer_to_mu"].set_index("arch").n_mean_curve
    n0 = int(table.n_train.min())
    ct_mean = table.groupby(["arch", "n_train"]).c_t.mean()
    ct_zero = {
        a: (ct_mean[a][ct_mean[a] >= 0].index.min() if (ct_mean[a] >= 0).any() else None)
        for a in (shallow_arch, deep_arch)
    }
    w(
        "**Beside the literature.** Gu et al. (TMLR 2025) put the effective model memorisation "
        "(the largest training set at which 90% of samples are copies) of CIFAR-10 diffusion "
        "models at about 1k images at 32x32 and 4k at 16x16; Kadkhodaie et al. (ICLR 2024) see "
        "two diffusion models trained on disjoint halves produce nearly the same output past "
        "about 10^4 images. These are other models (diffusion, not VAEs) and other data "
        "than MNIST: only the order of magnitude compares. Here the copy "
        "transition is "
        + "; ".join(
            f"{r['arch']} {r['reading']}"
            for _, r in trans[trans.measure == "copy_fraction"].iterrows()
        )
        + ", and the reconstructions stay closer to the weighted average than to the input "
        "(the Theorem 1 yardstick) up to "
        + "; ".join(f"{a} {size_word(v, n0)}" for a, v in closer.items())
        + ". The A and B models agree on more than half of the test images from N = "
        + "; ".join(f"{a} {'never' if v is None else f'{int(v):,}'}" for a, v in half_n.items())
        + ". C_T (negative: samples closer to the training set than unseen test images, "
        "Meehan et al.'s data-copying) first reaches 0 at N = "
        + "; ".join(
            f"{a} {'never (up to ' + format(int(table.n_train.max()), ',') + ')' if v is None else f'{int(v):,}'}"  # noqa: E501
            for a, v in ct_zero.items()
        )
        + ". **Does depth move it?** "
        + (
            "Yes: "
            if closer.get(deep_arch, np.nan) != closer.get(shallow_arch, np.nan)
            else "Not at this grid's resolution: "
        )
        + f"the deep VAE's Theorem 1 transition is {size_word(closer.get(deep_arch), n0)} "
        f"against the shallow VAE's {size_word(closer.get(shallow_arch), n0)}, and the two "
        "architectures' agreement and C_T curves above differ in the same direction.\n"
    )
    return "\n".join(out) + "\n"


def size_word(n, smallest: int) -> str:
    """A transition size as text: ``< smallest`` when no N reached the threshold (NaN)."""
    return f"< {smallest:,}" if n is None or np.isnan(n) else f"{int(n):,}"


TRANSITION_NAMES = {
    "frac_closer_to_mu": ">= 90% of reconstructions closer to mu",
    "copy_fraction": ">= 90% of samples copies (EMM)",
}
