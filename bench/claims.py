"""The paper's claims, each restated as numbers from a run's own outputs (docs/results/core/).

    python bench/claims.py --core RESULTS [--epochs EPOCHS=RESULTS ...] [--gpu SUMMARY_CSV] \
        --out docs/results/core/claims.md

RESULTS is a results folder of config/paper-core.yaml (or any configuration with held-out digit
9, MNIST^tr models and the mini-MNIST model): its tables/summary.csv, tables/theorem1.parquet
and posteriors/mini/. ``--epochs 30=DIR`` adds the results of config/epoch-study.yaml trained
for 30 epochs (the core run counts as its own epoch number, from the config). ``--gpu`` is a
summary.csv of the same models trained on a GPU (docs/results/full/summary.csv), compared model
by model. Every number in the output is computed here from those files; the verdicts are rules
written next to each claim below (thresholds stated in the text).

Seeds: where a configuration has several seeds (``training.seeds`` / ``extra_seeds``), every
number is the mean over its seeds with the 95% bootstrap percentile interval of that mean, as
in ``tables/summary_by_config.csv`` (:mod:`vae_novelty.seeds`), and each verdict's rule is
applied to the interval: **holds** when the whole interval is on the claimed side of the
threshold, **holds partly** when only the mean is (or, where a rule has a weaker "partly"
level, when the whole interval clears that one), **does not hold** otherwise. The per-seed
range (min-max) is printed too: with three seeds a bootstrap interval is narrow by construction
(it is the spread of means of three resampled values), so the range is the plainer measure of
how far one draw moves.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))  # claims_stats, _sections, _gpu (also when imported)

import claims_sections as sections  # noqa: E402
from claims_gpu import gpu_section  # noqa: E402
from claims_sections import size_section  # noqa: E402
from claims_stats import (
    DIGIT,
    SPLIT,
    STATS,
    Est,
    depth_groups,
    fmt_table,  # noqa: E402
    interval_verdict,
    mini_numbers,
    per_model,
    seeds_note,
    spearman,
    sweep,
    verdict,
)

SHALLOW, DEEP = "h400", "h400-200-100"
ROLE = {SHALLOW: "shallow (400)", DEEP: "deep (400-200-100)"}


def set_roles(shallow: str, deep: str) -> None:
    """The architectures of the paper's shallow and deep VAEs (model.shallow, model.deep)."""
    global SHALLOW, DEEP, ROLE
    SHALLOW, DEEP = shallow, deep
    ROLE = {shallow: f"shallow ({shallow[1:]})", deep: f"deep ({deep[1:]})"}


def samples_section(summary: pd.DataFrame, classifier: dict | None, n_samples: int | None) -> str:
    """:func:`claims_sections.samples_section` for this run's shallow and deep VAEs."""
    return sections.samples_section(summary, classifier, n_samples, (SHALLOW, DEEP), ROLE)


def load(results: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    summary = pd.read_csv(results / "tables" / "summary.csv")
    t1 = pd.read_parquet(
        results / "tables" / "theorem1.parquet",
        columns=[
            "model_id",
            "arch",
            "split",
            "seed",
            "label",
            "perplexity",
            "bce_x_xhat",
            "bce_mu_xhat",
            "n_hidden_layers",
            "decoder_params",
        ],
    )
    return summary, t1


def four_models(t1: pd.DataFrame) -> pd.DataFrame:
    """Per model of Figures 1-2, over MNIST_9^te: the numbers the claims are about, each an
    :class:`Est` over the configuration's seeds; ``tallest bins``: the left edge of the tallest
    of 30 bins over [0, 6] per seed."""
    rows = []
    for arch in (SHALLOW, DEEP):
        for split in ("full", "no9"):
            d = t1[(t1.arch == arch) & (t1.split == split) & (t1.label == DIGIT)]
            if d.empty:
                continue
            seeds = [per_model(g) for _, g in d.groupby("seed")]
            row = {
                "VAE": ROLE[arch],
                "trained on": SPLIT[split],
                "arch": arch,
                "split": split,
                "n": seeds[0]["n"],
                "seeds": len(seeds),
                "tallest bins": [s["tallest bin"] for s in seeds],
            }
            row.update({k: Est([s[k] for s in seeds], (arch, split)) for k in STATS})
            rows.append(row)
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--core", type=Path, required=True)
    ap.add_argument("--core-epochs", type=int, default=10)
    ap.add_argument("--epochs", nargs="*", default=[], help="EPOCHS=RESULTS_DIR")
    ap.add_argument("--gpu", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--shallow", default=SHALLOW)
    ap.add_argument("--deep", default=DEEP)
    ap.add_argument("--samples", type=int, help="samples.n of the run (for the text)")
    ap.add_argument("--size", type=Path, help="{results}/size of config/size-sweep.yaml")
    args = ap.parse_args()
    set_roles(args.shallow, args.deep)

    summary, t1 = load(args.core)
    four = four_models(t1)
    by = {(r["arch"], r["split"]): r for r in four.to_dict("records")}
    sw = sweep(t1)
    depth = depth_groups(sw)
    mini = mini_numbers(args.core)
    ep = sections.epoch_rows(args, (SHALLOW, DEEP), ROLE) if args.epochs else None
    n_seeds = int(four.seeds.min())

    def longer(arch: str) -> str:
        if ep is None:
            return ""
        r = ep[(ep.arch == arch) & (ep.split == "no9") & (ep.epochs != args.core_epochs)]
        return (
            " Trained longer (epoch study below, seed 0 only): "
            + ", ".join(
                f"{e} epochs {100 * v:.1f}% ({'holds' if v > 0.5 else 'partly'})"
                for e, v in zip(r.epochs, r["closer to mu"])
            )
            + "."
        )

    out = []
    w = out.append
    w("# The paper's claims against this run\n")
    w(
        f"Generated by `python bench/claims.py` from the outputs of `config/paper-core.yaml` "
        f"({args.core_epochs} epochs, every training image, all {len(sw)} architectures, "
        f"MNIST_9^te: {int(four.n.iloc[0])} test images) and of `config/epoch-study.yaml`; "
        'nothing here is typed by hand. Claims from `shared/paper/protocol.md` ("Claims") and the '
        "paper's text. *closer to mu*: fraction of test images whose reconstruction x_hat is "
        "closer (in BCE) to the weighted average mu than to the input x, i.e. BCE(mu, x_hat) < "
        "BCE(x, x_hat), the points above the line y = x in Figure 2.\n"
    )
    w(
        f"**Seeds.** The models the claims use (the 17 architectures without 9, the shallow and "
        f"deep VAEs on MNIST^tr) have {n_seeds} seed(s) each; every number is "
        f"{seeds_note(n_seeds)}. Intervals are those of `summary_by_config.csv` (seeds "
        "resampled, 2,000 resamples). A verdict **holds** when the whole interval is on the "
        "claimed side of its threshold, **holds partly** when only the mean is (or a stated "
        "weaker level holds on the whole interval), **does not hold** otherwise. With three seeds "
        "a bootstrap interval is the spread of means of three resampled values and so narrower "
        "than the per-seed range, which is printed beside it. Figures 1-4 show seed 0.\n"
    )
    w("## The four models of Figures 1 and 2 (MNIST_9^te)\n")
    w(
        fmt_table(
            four,
            [
                "VAE",
                "trained on",
                "n",
                "closer to mu",
                "median perplexity",
                "perplexity < 1.5",
                "median BCE(x, x_hat)",
                "median BCE(mu, x_hat)",
            ],
        )
    )
    w("")
    w(
        "Tallest of the 30 perplexity bins over [0, 6] per seed: "
        + "; ".join(
            f"{r['VAE']} on {r['trained on']}: "
            + ", ".join(f"[{e:.1f}, {e + 0.2:.1f})" for e in r["tallest bins"])
            for r in four.to_dict("records")
        )
        + ".\n"
    )

    # Claim 1: peak at 1, every seed
    peaks = [by[(a, s)] for a in (SHALLOW, DEEP) for s in ("full", "no9") if (a, s) in by]
    at_1 = [e == 1.0 for p in peaks for e in p["tallest bins"]]
    full = [by[(a, "full")] for a in (SHALLOW, DEEP) if (a, "full") in by]
    w("## Claims\n")
    w(
        '**1. "For all cases, the histograms have a high peak at 1"** (perplexity of the '
        "weights; 1 = one training image carries all the weight).  "
    )
    w(
        f"The tallest bin starts at 1 in {sum(at_1)} of {len(at_1)} (model, seed) histograms; "
        "median perplexity "
        + ", ".join(
            f"{p['VAE']} on {p['trained on']} {p['median perplexity'].text()}" for p in peaks
        )
        + ". Verdict: "
        + verdict(all(at_1), partly=2 * sum(at_1) > len(at_1))
        + " (rule: the tallest bin is the one starting at 1 for all four models and every "
        "seed; partly: for most).\n"
    )

    w(
        '**2. "For both VAEs trained on MNIST^tr, reconstruction and weighted average images '
        'look quite similar".**  '
    )
    w(
        "Closer to mu: "
        + ", ".join(f"{p['VAE']} {p['closer to mu'].text(pct=True)}" for p in full)
        + "; median BCE(mu, x_hat) vs BCE(x, x_hat): "
        + ", ".join(
            f"{p['VAE']} {p['median BCE(mu, x_hat)'].mean:.1f} vs "
            f"{p['median BCE(x, x_hat)'].mean:.1f}"
            for p in full
        )
        + ". In the committed Figure 1 (looked at), mu and x_hat of these models show the same "
        "digit, a 9 (the nearest training 9s carry the weight); in BCE the reconstructions are "
        "closer to the input than to the weighted average for "
        + ("most" if all(p["closer to mu"].mean < 0.5 for p in full) else "some")
        + " images. Verdict: "
        + verdict(all(p["closer to mu"].whole(lambda v: v > 0.5) for p in full), partly=True)
        + " (similar in kind, not closer than the input; rule: holds if closer to mu > 50% "
        "for both over the whole interval).\n"
    )

    s9, d9 = by.get((SHALLOW, "no9")), by.get((DEEP, "no9"))
    w(
        '**3. "The shallow VAE [trained without 9s] can reconstruct perfectly passable nines"; '
        "its reconstructions are closer to the input than to the weighted average (most of the "
        "blue mass below the line in Figure 2).**  "
    )
    sc, dc = s9["closer to mu"], d9["closer to mu"]
    w(
        f"Shallow VAE without 9s: closer to mu {sc.text(pct=True)} (so "
        f"{100 * (1 - sc.mean):.1f}% below the line on average); median BCE(x, x_hat) "
        f"{s9['median BCE(x, x_hat)'].mean:.1f} vs BCE(mu, x_hat) "
        f"{s9['median BCE(mu, x_hat)'].mean:.1f}. "
        f"Verdict: {interval_verdict(sc, lambda v: v < 0.5)} (rule: below the line for more "
        "than half, over the whole interval).\n"
    )
    w(
        '**4. "The reconstructions are closer to the weighted average than the input for the deep '
        'VAE" (most of the green mass above the line in Figure 2).**  '
    )
    w(
        f"Deep VAE without 9s, {args.core_epochs} epochs: closer to mu {dc.text(pct=True)}; "
        f"median BCE(x, x_hat) {d9['median BCE(x, x_hat)'].mean:.1f} vs BCE(mu, x_hat) "
        f"{d9['median BCE(mu, x_hat)'].mean:.1f}. Verdict at {args.core_epochs} epochs: "
        f"{interval_verdict(dc, lambda v: v > 0.5, lambda v: v > 0.25)} (rule: above the line "
        "for more than half over the whole interval; partly: the mean above half, or the whole "
        "interval above a quarter, far more than the shallow VAE)." + longer(DEEP) + "\n"
    )
    w(
        '**5. Deep vs shallow perplexity histograms are similar ("a characteristic of the '
        'encoder").**  '
    )
    sf, df_ = by[(SHALLOW, "full")], by[(DEEP, "full")]
    mp, lt = "median perplexity", "perplexity < 1.5"
    diffs = {}
    for name, (a, b) in {"MNIST^tr": (sf, df_), "without 9s": (s9, d9)}.items():
        k = min(a[mp].n, b[mp].n)  # seeds paired by index: the models are independent draws
        diffs[name] = Est(a[mp].values[:k] - b[mp].values[:k], (f"{SHALLOW}-{DEEP}", name))
    close = all(e.whole(lambda v: abs(v) < 0.5) for e in diffs.values())
    close_mean = all(abs(e.mean) < 0.5 for e in diffs.values())
    w(
        "Median perplexity shallow/deep: on MNIST^tr "
        f"{sf[mp].mean:.2f}/{df_[mp].mean:.2f}, without 9s {s9[mp].mean:.2f}/{d9[mp].mean:.2f}; "
        "shallow minus deep: "
        + ", ".join(f"{k} {e.text()}" for k, e in diffs.items())
        + f"; fraction below 1.5: {100 * sf[lt].mean:.0f}%/{100 * df_[lt].mean:.0f}%, "
        f"{100 * s9[lt].mean:.0f}%/{100 * d9[lt].mean:.0f}%. Verdict: "
        + verdict(close, partly=close_mean or all(at_1))
        + " (rule: the difference of the medians within +-0.5 over its whole interval in both "
        "columns; partly: its mean is, or both peak at 1 in every seed).\n"
    )

    # Claim 6: depth matters more than parameter count
    rho = {
        int(k): spearman(g.decoder_params, [e.mean for e in g["closer to mu"]])
        for k, g in sw.groupby("n_hidden_layers")
    }
    ordered = list(depth["mean"]) == sorted(depth["mean"])
    separated = all(depth["lo"].iloc[i + 1] > depth["hi"].iloc[i] for i in range(len(depth) - 1))
    w(
        '**6. "The number of layers plays a more crucial role than the number of parameters": '
        "with 3 hidden layers reconstructions are more similar to the weighted average; with one "
        "layer they match the input regardless of the number of parameters (Figure 4).**  "
    )
    w(
        "Closer to mu over MNIST_9^te, by depth: mean over architectures of their seed means "
        "[95% interval, resampling architectures and then each one's seeds; range of the "
        "architecture means; range over every model]: "
        + "; ".join(
            f"{k} layer(s): {100 * r['mean']:.1f}% [{100 * r['lo']:.1f}, "
            f"{100 * r['hi']:.1f}; archs {100 * r['arch_min']:.1f}-"
            f"{100 * r['arch_max']:.1f}; models {100 * r['model_min']:.1f}-"
            f"{100 * r['model_max']:.1f}] ({int(r['archs'])} archs, "
            f"{int(r['models'])} models)"
            for k, r in depth.iterrows()
        )
        + ". Within a depth, Spearman correlation of the seed means with decoder parameters: "
        + ", ".join(f"{k} layer(s) {v:+.2f}" for k, v in rho.items())
        + ". Verdict: "
        + verdict(ordered and separated, partly=ordered)
        + " (rule: means increase with depth and the intervals of consecutive depths do not "
        "overlap; partly: means increase with depth).\n"
    )

    # Claim 7: Figure 3
    w(
        '**7. mini-MNIST (Figure 3): "posterior distributions are converging to delta '
        'distributions"; "for most of the latent space, maximum weight is 1".**  '
    )
    w(
        f"Posterior standard deviations of the {mini['n']} training images: median "
        f"{mini['sd_median']:.3g}, largest {mini['sd_max']:.3g} (the prior's is 1). On a "
        f"{mini['grid']} x {mini['grid']} grid over [-{mini['extent']:g}, {mini['extent']:g}]^2: "
        f"max_i w_i(z) > 0.99 on {100 * mini['w_max_099']:.1f}% of the points, > 0.5 on "
        f"{100 * mini['w_max_05']:.1f}%. Verdict: "
        + verdict(mini["w_max_099"] > 0.5 and mini["sd_median"] < 0.1)
        + " (rule: > 0.99 on more than half the grid, median sd below 0.1).\n"
    )

    w("## The architecture sweep (Figure 4), MNIST_9^te\n")
    w(
        fmt_table(
            sw.rename(
                columns={"n_hidden_layers": "layers", "decoder_params": "decoder parameters"}
            ),
            ["arch", "layers", "decoder parameters", "seeds", "closer to mu", "median perplexity"],
        )
    )
    w("")

    classifier_json = args.core / "classifier" / "classifier.json"
    classifier = json.loads(classifier_json.read_text()) if classifier_json.exists() else None
    w(samples_section(summary, classifier, args.samples))

    if args.size:
        w(size_section(args.size))

    # epoch study
    if args.epochs:
        w(sections.epoch_section(ep))
    if args.gpu:
        w(gpu_section(summary, pd.read_csv(args.gpu).set_index("model_id")))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(out) + "\n")
    print(args.out.read_text())


if __name__ == "__main__":
    main()
