"""bench/claims.py's section "GPU and CPU": the same models trained on a GPU against this run's
CPU models, model by model and against the spread of the CPU seeds. Imported by
bench/claims.py."""

from __future__ import annotations

import numpy as np
import pandas as pd


def gpu_vs_seeds(summary: pd.DataFrame, gpu: pd.DataFrame) -> str:
    """Whether the GPU model's value of each configuration without 9 lies within the range of
    the CPU seeds of that configuration. Were the GPU model one more seed (an exchangeable
    draw), it would fall inside the range of k others with probability (k - 1) / (k + 1)."""
    lines, verdicts = [], []
    for col, name, unit in (
        ("frac_closer_to_mu", "closer to mu", "points"),
        ("final_test_neg_elbo", "test -ELBO", "nats"),
    ):
        scale = 100 if unit == "points" else 1
        inside, total, gaps, spreads, signed, k = 0, 0, [], [], [], 0
        for arch, cpu in summary[summary.split == "no9"].groupby("arch"):
            if len(cpu) < 2 or f"{arch}.no9.s0" not in gpu.index:
                continue
            v = cpu[col].to_numpy(np.float64)
            gv = float(gpu.loc[f"{arch}.no9.s0", col])
            k, total = len(v), total + 1
            inside += int(v.min() <= gv <= v.max())
            gaps.append(scale * abs(gv - float(cpu[cpu.seed == 0][col].iloc[0])))
            spreads.append(scale * (v.max() - v.min()))
            signed.append(scale * (gv - v.mean()))
        if total == 0:
            return ""
        expected = (k - 1) / (k + 1)
        lines.append(
            f"{name}: the H200 value lies within the range of the {k} CPU seeds "
            f"for {inside} of {total} configurations (a fourth seed would for about "
            f"{100 * expected:.0f}%); |H200 - CPU seed 0| median {np.median(gaps):.2f} "
            f"{unit} (largest {max(gaps):.2f}) against a median range over the CPU "
            f"seeds of {np.median(spreads):.2f} {unit} (largest {max(spreads):.2f}); "
            f"H200 minus the CPU seed mean: {np.mean(signed):+.2f} {unit} on average, "
            f"positive for {sum(d > 0 for d in signed)} of {total}"
        )
        # as often inside as a binomial draw could plausibly be (within two standard errors)
        sd = np.sqrt(total * expected * (1 - expected))
        verdicts.append((name, inside >= total * expected - 2 * sd, np.mean(signed), unit))
    if not lines:
        return ""
    like = [n for n, ok, _, _ in verdicts if ok]
    unlike = [f"{n} (by {m:+.2f} {u} on average)" for n, ok, m, u in verdicts if not ok]
    text = "**With seeds** (the models without 9): " + "; ".join(lines) + ". "
    if like:
        text += (
            "In " + " and ".join(like) + " the H200 model behaves as one more seed: the "
            "GPU/CPU difference is the seed-to-seed spread. "
        )
    if unlike:
        text += (
            "In " + " and ".join(unlike) + " it falls outside the CPU seeds' range more "
            "often than one more seed would: a small systematic difference between the "
            "two platforms' training (ensembles of 11 vs 2-6, other kernels), small "
            "against the differences between architectures. "
        )
    return text + "\n"


def gpu_section(summary: pd.DataFrame, g: pd.DataFrame) -> str:
    """The section "GPU and CPU": the same models trained on a GPU (``g``: its summary.csv,
    indexed by model_id) against this run's (``summary``), model by model and against the
    seed spread (:func:`gpu_vs_seeds`)."""
    out = []
    w = out.append
    c = summary.set_index("model_id")
    common = c.index.intersection(g.index)
    # models without 9 have the same evaluation images in both runs (MNIST_9^te); the
    # MNIST^tr models are evaluated on all test images in the full run, the mini model too
    no9 = [m for m in common if c.loc[m, "split"] == "no9"]
    d_test = (c.loc[no9, "final_test_neg_elbo"] - g.loc[no9, "final_test_neg_elbo"]).abs()
    d_train = (c.loc[common, "final_train_neg_elbo"] - g.loc[common, "final_train_neg_elbo"]).abs()
    d_close = (c.loc[no9, "frac_closer_to_mu"] - g.loc[no9, "frac_closer_to_mu"]).abs()
    worst = d_train.idxmax()
    sizes = sorted(set(summary[summary.arch != "mini"].groupby("arch").size()))
    members = "-".join(str(n) for n in (sizes[0], sizes[-1])) if len(sizes) > 1 else str(sizes[0])
    w("## GPU and CPU\n")
    w(
        f"The same {len(common)} models (same seeds, data and settings) trained on this "
        f"machine's CPU (ensembles of {members} members per architecture; a model depends "
        "only on its own seed, so seed 0's models are those of any ensemble size) and on an "
        "NVIDIA H200 (the full configuration: ensembles of 11, whose kernels round "
        "differently). Final "
        f"training -ELBO: median difference {d_train.median():.2f} nats, largest "
        f"{d_train.max():.2f} ({worst}). The {len(no9)} models without 9 (same evaluation "
        f"images in both runs): test -ELBO median difference {d_test.median():.2f} nats, "
        f"largest {d_test.max():.2f}; closer to mu median difference "
        f"{100 * d_close.median():.1f} points, largest {100 * d_close.max():.1f} points "
        f"({d_close.idxmax()}). Rounding differences grow during training into models that "
        "differ by this much: `bench/rounding_sensitivity.py` "
        "([docs/benchmarks/rounding-sensitivity.md](../../benchmarks/rounding-sensitivity.md)) "
        "moves 10% of the input pixels by one float32 ulp and, within a few epochs on the "
        "CPU, the deep VAE's parameters are about as far from the unperturbed run as another "
        "seed's, so a GPU run is in effect another seed. Single-seed fractions carry at least "
        "this noise, and the depth groups of claim 6 are further apart than that. The "
        "mini-MNIST model, trained to memorise 100 images, agrees in "
        f"training -ELBO ({c.loc['mini.mini.s0', 'final_train_neg_elbo']:.1f} vs "
        f"{g.loc['mini.mini.s0', 'final_train_neg_elbo']:.1f}) but not on unseen images "
        f"({c.loc['mini.mini.s0', 'final_test_neg_elbo']:.0f} vs "
        f"{g.loc['mini.mini.s0', 'final_test_neg_elbo']:.0f} nats), as expected of a model "
        "that far from its training data.\n"
    )
    w(gpu_vs_seeds(summary, g))
    return "\n".join(out)
