"""Training throughput: a textbook PyTorch VAE loop vs this pipeline's trainers (run by hand).

In one run, on the same data, architecture, batch size and number of epochs, trains the models
of one architecture (member 0 on the first ``--images`` MNIST training images, member d+1 on
those without digit d, as the pipeline's MNIST^tr and MNIST^tr-without-d splits, so the
members have different training-set sizes) three ways:

  a) baseline: the usual PyTorch VAE example: a DataLoader over a TensorDataset (shuffle,
     batch 128), an nn.Module, torch.optim.Adam, ``loss.item()`` every batch, one model at a
     time, and a test pass after every epoch;
  b) this pipeline's single-model trainer, ``vae_novelty.train.train_vae``, one model at a time;
  c) this pipeline's ensemble trainer, ``vae_novelty.ensemble.train_ensemble``, all members at
     once.

Reports training images per second (training images seen / wall time, the per-epoch test
evaluation included in the time), the ratios b/a and c/a, and the achieved matrix-product
FLOP/s (counted analytically: forward 2*in*out per layer and image, backward 2*in*out for the
weight gradient plus 2*in*out for the input gradient of every layer but the first; the test
passes' forward products included) as a fraction of the FLOP/s of a large square matrix
product measured in the same run on the same device. Every trainer first runs once, untimed,
on a small problem (warm-up); with ``--repeats N`` the three trainers run N interleaved rounds
and each one's fastest round is reported (on a shared machine the load varies; the 1-minute
load average is recorded). Also reports how far (c)'s members are from (b)'s models (max
|parameter difference|), as a check that both trained the same models.

    python bench/bench_training.py --arch h400-200-100 --members 11 --images 6000 --epochs 2 \\
        --device cpu --repeats 2 --out /tmp/bench/training-cpu
    python bench/bench_training.py --arch h400-200-100 --members 11 --images 60000 --epochs 2 \\
        --device cuda --repeats 2 [--cuda-graphs] [--tf32] --out /tmp/bench/training-gpu

Not part of the test suite; timings are only compared within one run.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))  # training_baseline, _measure (also when imported)

from vae_novelty.config import DEFAULTS  # noqa: E402
from vae_novelty.data import load_idx_folder, to_float  # noqa: E402
from vae_novelty.ensemble import EnsembleMember, train_ensemble  # noqa: E402
from vae_novelty.hyperparams import TrainSettings  # noqa: E402
from vae_novelty.train import train_vae  # noqa: E402
from training_baseline import train_baseline  # noqa: E402
from training_measure import (  # noqa: E402
    device_name,
    flops_per_image,
    load_average,
    matmul_flops_per_second,
    timed,
)


# --------------------------------------------------------------------------- main


def build_members(mnist, n_images, n_members, n_test):
    """Member 0: the first n_images training images; member d+1: those without digit d (then
    again with other seeds if more than 11 members)."""
    labels = mnist.train_labels[:n_images]
    test_labels = mnist.test_labels[:n_test]
    specs = []
    for k in range(n_members):
        kind = k % 11
        if kind == 0:
            train_idx, test_idx, name = np.arange(n_images), np.arange(n_test), "full"
        else:
            d = kind - 1
            train_idx = np.flatnonzero(labels != d)
            test_idx, name = np.flatnonzero(test_labels == d), f"no{d}"
        specs.append((name, k // 11, train_idx, test_idx))
    return specs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--arch",
        default="h400-200-100",
        help="a name from config/config.yaml's model.architectures, or widths such as 400,200,100",
    )
    ap.add_argument("--z-dim", type=int, default=50)
    ap.add_argument("--members", type=int, default=11)
    ap.add_argument(
        "--images",
        type=int,
        default=6000,
        help="training images of the largest member (the first N of MNIST)",
    )
    ap.add_argument("--test-images", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--learning-rate", type=float, default=1e-3)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    ap.add_argument(
        "--matmul-n",
        type=int,
        default=None,
        help="size of the reference matrix product (default 2048 CPU, 8192 CUDA)",
    )
    ap.add_argument("--cuda-graphs", action="store_true", help="(c) with CUDA graphs")
    ap.add_argument("--tf32", action="store_true", help="allow TF32 matrix products on CUDA")
    ap.add_argument("--skip", default="", help="comma-separated trainers to skip: a,b,c")
    ap.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="rounds of a, b, c (interleaved); each trainer's fastest round is "
        "reported (a shared machine's load varies during a run)",
    )
    ap.add_argument(
        "--out", type=Path, default=None, help="path stem: writes STEM.json and STEM.md"
    )
    args = ap.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    if "," in args.arch or args.arch.isdigit():
        hidden = [int(w) for w in args.arch.split(",")]
    else:
        import yaml

        archs = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["model"][
            "architectures"
        ]
        hidden = list(archs[args.arch])
    skip = set(filter(None, args.skip.split(",")))

    mnist = load_idx_folder(REPO / "resources" / "mnist", REPO / DEFAULTS["data"]["checksums"])
    x_all_cpu = torch.from_numpy(to_float(mnist.train_images[: args.images]))
    x_test_cpu = torch.from_numpy(to_float(mnist.test_images[: args.test_images]))
    x_all, x_test_all = x_all_cpu.to(device), x_test_cpu.to(device)
    specs = build_members(mnist, args.images, args.members, args.test_images)
    n_train = [len(s[2]) for s in specs]
    n_test = [len(s[3]) for s in specs]
    train_images = args.epochs * sum(n_train)
    train_flops, eval_flops = flops_per_image(hidden, args.z_dim)
    total_flops = train_flops * train_images + eval_flops * args.epochs * sum(n_test)
    print(
        f"{device_name(device)}, torch {torch.__version__}: architecture {hidden}, "
        f"dim(z)={args.z_dim}, {args.members} members of {min(n_train)}..{max(n_train)} "
        f"images, {args.epochs} epochs",
        flush=True,
    )

    matmul_n = args.matmul_n or (8192 if device.type == "cuda" else 2048)
    peak = matmul_flops_per_second(device, matmul_n)
    print(f"reference {matmul_n}^3 float32 matrix product: {peak / 1e9:.1f} GFLOP/s", flush=True)

    results, models = {}, {}

    def run_a(specs=specs, epochs=args.epochs):
        out = []
        for name, rep, idx, tidx in specs:
            out.append(
                train_baseline(
                    x_all_cpu[torch.from_numpy(idx)],
                    x_test_cpu[torch.from_numpy(tidx)],
                    hidden,
                    args.z_dim,
                    epochs,
                    args.batch_size,
                    args.learning_rate,
                    device,
                    seed=rep,
                )
            )
        return out

    def run_b(specs=specs, epochs=args.epochs):
        out = []
        for name, rep, idx, tidx in specs:
            cfg = TrainSettings(hidden, args.z_dim, epochs, args.batch_size, args.learning_rate)
            ti = torch.from_numpy(idx).to(device)
            out.append(
                train_vae(x_all[ti], x_test_all[torch.from_numpy(tidx).to(device)], cfg, seed=rep)[
                    0
                ]
            )
        return out

    def run_c(specs=specs, epochs=args.epochs):
        members = [
            EnsembleMember(
                torch.from_numpy(idx),
                x_test_all[torch.from_numpy(tidx).to(device)],
                rep,
                f"{name}.s{rep}",
            )
            for name, rep, idx, tidx in specs
        ]
        return [
            m
            for m, _ in train_ensemble(
                x_all,
                members,
                TrainSettings(hidden, args.z_dim, epochs, args.batch_size, args.learning_rate),
                cuda_graphs=args.cuda_graphs,
            )
        ]

    labels = {
        "a": "(a) DataLoader + nn.Module + torch.optim.Adam, one model at a time",
        "b": "(b) pipeline single-model trainer (train_vae), one model at a time",
        "c": "(c) pipeline ensemble trainer (train_ensemble), all members at once",
    }
    # untimed warm-up of every trainer (library initialisation, allocator, caches)
    small = [(name, rep, idx[:300], tidx) for name, rep, idx, tidx in specs[:2]]
    for key, fn in (("a", run_a), ("b", run_b), ("c", run_c)):
        if key not in skip:
            fn(small, 1)
    load_before = load_average()
    rounds = {}
    for rep in range(args.repeats):
        for key, fn in (("a", run_a), ("b", run_b), ("c", run_c)):
            if key in skip:
                continue
            models[key], seconds = timed(fn, device)
            rounds.setdefault(key, []).append(seconds)
            print(f"round {rep + 1}: {labels[key]}: {seconds:.1f} s", flush=True)
    for key, times in rounds.items():
        seconds = min(times)
        flops = total_flops / seconds
        results[key] = {
            "trainer": labels[key],
            "seconds": seconds,
            "rounds_seconds": times,
            "images_per_s": train_images / seconds,
            "flop_per_s": flops,
            "fraction_of_matmul": flops / peak,
        }
        print(
            f"{labels[key]}: {seconds:.1f} s, {train_images / seconds:,.0f} images/s, "
            f"{flops / 1e9:.2f} GFLOP/s ({100 * flops / peak:.1f}% of the matrix product)",
            flush=True,
        )
    peak_after = matmul_flops_per_second(device, matmul_n)
    print(f"reference matrix product again: {peak_after / 1e9:.1f} GFLOP/s", flush=True)
    if "a" in results:
        for key in results:
            results[key]["ratio_to_a"] = results[key]["images_per_s"] / results["a"]["images_per_s"]
    max_diff = None
    if "b" in models and "c" in models:
        max_diff = max(
            float((p - q).detach().abs().max())
            for mb, mc in zip(models["b"], models["c"])
            for p, q in zip(mb.parameters(), mc.parameters())
        )
        print(f"max |parameter difference| between (b) and (c): {max_diff:.3g}")

    report = {
        "device": device_name(device),
        "device_type": device.type,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "arch": args.arch,
        "hidden": hidden,
        "z_dim": args.z_dim,
        "members": args.members,
        "n_train": n_train,
        "n_test": n_test,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "cuda_graphs": args.cuda_graphs,
        "tf32": args.tf32,
        "train_images": train_images,
        "matmul_flops_per_train_image": train_flops,
        "matmul_flops_per_test_image": eval_flops,
        "total_matmul_flops": total_flops,
        "reference_matmul": {"n": matmul_n, "flop_per_s": peak, "flop_per_s_after": peak_after},
        "repeats": args.repeats,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "results": results,
        "max_param_diff_b_vs_c": max_diff,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
        args.out.with_suffix(".md").write_text(
            markdown(
                report,
                " ".join(
                    [
                        "python",
                        "bench/bench_training.py",
                        *(argv if argv is not None else sys.argv[1:]),
                    ]
                ),
            )
        )
        print(f"wrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.md')}")
    return report


def markdown(r, command):
    lines = [
        f"- Device: {r['device']}",
        f"- torch {r['torch']}, Python {r['python']}, torch threads: {r['threads']}",
        f"- Architecture {r['arch']} (encoder {r['hidden']}, dim(z) = {r['z_dim']}), "
        f"{r['members']} models with {min(r['n_train'])} to {max(r['n_train'])} training "
        f"images ({r['train_images']:,} training images in all over {r['epochs']} epochs), "
        f"batch size {r['batch_size']}; CUDA graphs {'on' if r['cuda_graphs'] else 'off'}, "
        f"TF32 {'on' if r['tf32'] else 'off'}",
        f"- Reference: {r['reference_matmul']['n']}^3 float32 matrix product, "
        f"{r['reference_matmul']['flop_per_s'] / 1e9:.1f} GFLOP/s before the trainers "
        f"({r['reference_matmul']['flop_per_s_after'] / 1e9:.1f} after); fractions below "
        f"are of the first",
        f"- After an untimed warm-up, each trainer's fastest of {r['repeats']} interleaved "
        f"round(s); 1-minute load "
        f"average {r['load_average_before']} before, {r['load_average_after']} after "
        f"(torch threads: {r['threads']})",
        f"- Command: `{command}`",
        "",
        "| trainer | wall time (s) | training images/s | ratio to (a) | matmul GFLOP/s "
        "| fraction of the reference |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for res in r["results"].values():
        ratio = res.get("ratio_to_a")
        lines.append(
            f"| {res['trainer']} | {res['seconds']:.2f} | {res['images_per_s']:,.0f} "
            f"| {'' if ratio is None else f'{ratio:.2f}'} "
            f"| {res['flop_per_s'] / 1e9:.2f} | {100 * res['fraction_of_matmul']:.1f}% |"
        )
    if r["max_param_diff_b_vs_c"] is not None:
        lines += [
            "",
            f"Largest |parameter difference| between the models of (b) and (c): "
            f"{r['max_param_diff_b_vs_c']:.3g}.",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
