#!/usr/bin/env python
"""Benchmark of the Theorem 1 engine (run by hand; not a test).

On synthetic posteriors, in one run and on one device:
- the chunked engine (vae_novelty.theorem1.weight_stats) on all test points;
- the engine and a direct broadcast implementation (torch, (T, N, D) tensor) on the same
  subset of test points, capped so that the broadcast fits in --direct-max-mb;
- large float64 and float32 matrix products (the roofline reference).

Reports images/s, the engine / direct speed ratio, and the engine's achieved FLOP/s as a
fraction of the measured matmul FLOP/s. FLOPs counted: 2 (2D + 1) per (test, train) pair for
the log densities and 2 P for mu (elementwise exp/sum/top-k not counted), so the fraction is
a lower bound of the engine's use of the device.

    python bench/bench_theorem1.py                      # 60,000 train x 1,000 test, D = 50
    python bench/bench_theorem1.py --n-train 6000 --n-test 200 --out bench.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from vae_novelty.io import describe_device, select_device  # noqa: E402
from vae_novelty.theorem1 import LOG_2PI, weight_stats  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device, repeats: int):
    """Best wall time of ``repeats`` calls (after synchronising the device) and the result."""
    best, out = math.inf, None
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        out = fn()
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return best, out


@torch.inference_mode()
def direct(z, mean, logvar, x, k, device):
    """Direct broadcast implementation: the full (T, N, D) tensor, float64."""
    z, mean, logvar = (
        torch.as_tensor(a, dtype=torch.float64, device=device) for a in (z, mean, logvar)
    )
    x = torch.as_tensor(x, device=device).to(torch.float64)
    diff = z[:, None, :] - mean[None]
    logq = -0.5 * (LOG_2PI + logvar[None] + diff * diff * torch.exp(-logvar)[None]).sum(-1)
    log_norm = torch.logsumexp(logq, 1)
    logw = logq - log_norm[:, None]
    w = torch.exp(logw)
    entropy = -(w * logw).sum(1)
    top_w, top_i = torch.topk(w, k, dim=1)
    mu = w @ x
    return {
        "mu": mu.cpu().numpy(),
        "perplexity": torch.exp(entropy).cpu().numpy(),
        "top_i": top_i.cpu().numpy(),
        "log_norm": log_norm.cpu().numpy(),
    }


@torch.inference_mode()
def matmul_flops(n: int, dtype, device, repeats: int) -> float:
    a = torch.randn(n, n, dtype=dtype, device=device)
    b = torch.randn(n, n, dtype=dtype, device=device)
    (a @ b).sum().item()  # warm-up
    t, _ = timed(lambda: a @ b, device, repeats)
    return 2.0 * n**3 / t


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-train", type=int, default=60_000)
    ap.add_argument("--n-test", type=int, default=1_000)
    ap.add_argument("--dim", type=int, default=50)
    ap.add_argument("--pixels", type=int, default=784)
    ap.add_argument("--top-k", type=int, default=3)
    ap.add_argument("--chunk-mb", type=float, default=1024.0)
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument(
        "--direct-max-mb",
        type=float,
        default=2048.0,
        help="memory cap of the broadcast implementation's (T, N, D) tensors",
    )
    ap.add_argument(
        "--matmul-n",
        type=int,
        default=None,
        help="size of the reference matmul (default 2048 on CPU, 8192 on CUDA)",
    )
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument(
        "--spread",
        type=float,
        default=0.15,
        help="scale of the synthetic posterior means (small: spread-out weights)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = ap.parse_args(argv)

    device = select_device(args.device)
    rng = np.random.default_rng(args.seed)
    n, t, d, p = args.n_train, args.n_test, args.dim, args.pixels
    mean = args.spread * rng.normal(size=(n, d))
    logvar = rng.uniform(-1.0, 0.0, size=(n, d))
    z = mean[rng.integers(0, n, t)] + 0.5 * args.spread * rng.normal(size=(t, d))
    x = rng.random((n, p), dtype=np.float32)

    # direct: diff, diff^2 * a and the per-dim log densities, (T_sub, N, D) float64 each
    t_sub = int(max(1, min(t, args.direct_max_mb * 2**20 // (3 * 8 * n * d))))
    flops_per_image = n * (2 * (2 * d + 1) + 2 * p)

    def engine(zz):
        return weight_stats(
            zz, mean, logvar, x, top_k=args.top_k, chunk_mb=args.chunk_mb, device=device
        )

    engine(z[:2])  # warm-up (CUDA context etc.)
    t_eng, stats = timed(lambda: engine(z), device, args.repeats)
    t_eng_sub, stats_sub = timed(lambda: engine(z[:t_sub]), device, args.repeats)
    t_dir, ref = timed(
        lambda: direct(z[:t_sub], mean, logvar, x, args.top_k, device), device, args.repeats
    )
    agree = {
        "mu_rel_err": float(
            (
                np.linalg.norm(stats_sub.mu - ref["mu"], axis=1) / np.linalg.norm(ref["mu"], axis=1)
            ).max()
        ),
        "perplexity_rel_err": float(np.abs(stats_sub.perplexity / ref["perplexity"] - 1).max()),
        "top1_equal": bool((stats_sub.topk_pos[:, 0] == ref["top_i"][:, 0]).all()),
        "median_perplexity": float(np.median(stats.perplexity)),
    }
    mm_n = args.matmul_n or (8192 if device.type == "cuda" else 2048)
    peak64 = matmul_flops(mm_n, torch.float64, device, args.repeats)
    peak32 = matmul_flops(mm_n, torch.float32, device, args.repeats)

    rows = []
    for name, images, secs in (
        ("engine (all test points)", t, t_eng),
        ("engine (subset)", t_sub, t_eng_sub),
        ("direct broadcast (subset)", t_sub, t_dir),
    ):
        flops = images * flops_per_image / secs
        rows.append(
            {
                "implementation": name,
                "images": images,
                "images_per_s": images / secs,
                "gflop_per_s": flops / 1e9,
                "frac_f64_matmul": flops / peak64,
                "frac_f32_matmul": flops / peak32,
            }
        )
    result = {
        "device": describe_device(device),
        "n_train": n,
        "n_test": t,
        "dim": d,
        "pixels": p,
        "chunk_mb": args.chunk_mb,
        "chunks": list(stats.chunks),
        "direct_subset": t_sub,
        "speedup_engine_vs_direct_same_subset": t_dir / t_eng_sub,
        "speedup_engine_all_vs_direct_per_image": (t / t_eng) / (t_sub / t_dir),
        "matmul_n": mm_n,
        "matmul_f64_gflop_per_s": peak64 / 1e9,
        "matmul_f32_gflop_per_s": peak32 / 1e9,
        "agreement": agree,
        "rows": rows,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }

    print(
        f"device: {result['device']}; N={n} train, T={t} test, D={d}, P={p}; "
        f"engine chunks (test, train) = {tuple(stats.chunks)}; direct subset T={t_sub}"
    )
    print()
    print("| implementation | images | images/s | GFLOP/s | frac f64 matmul | frac f32 matmul |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['implementation']} | {r['images']} | {r['images_per_s']:.1f} | "
            f"{r['gflop_per_s']:.2f} | {r['frac_f64_matmul']:.3f} | "
            f"{r['frac_f32_matmul']:.3f} |"
        )
    print()
    print(
        f"engine / direct speed ratio, same subset: "
        f"{result['speedup_engine_vs_direct_same_subset']:.2f}x; engine on all test points "
        f"vs direct, per image: {result['speedup_engine_all_vs_direct_per_image']:.2f}x"
    )
    print(
        f"reference matmul {mm_n}^2: f64 {peak64 / 1e9:.1f} GFLOP/s, "
        f"f32 {peak32 / 1e9:.1f} GFLOP/s (f32/f64 = {peak32 / peak64:.2f})"
    )
    print(f"agreement on the subset: {agree}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
