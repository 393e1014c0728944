"""How far do float32 rounding differences carry a VAE's training? (CPU, a few minutes.)

The same model trained on a GPU and on a CPU (same seeds, data and settings) ends up
measurably different (docs/results/core/claims.md, "GPU and CPU"), and the ensemble and the
single-model trainer agree to 2e-8 on the CPU but not on the GPU. This script asks whether
rounding alone explains that, on one machine, without a GPU: it trains one model three times
with :func:`vae_novelty.train.train_vae`:

- ``base``: seed 0;
- ``nudged``: seed 0, with half of the nonzero training pixels moved by one float32 ulp
  (``nextafter``), a perturbation of the size a different kernel's rounding makes;
- ``seed 1``: another seed, for scale.

and reports the parameters' largest and relative differences and the test -ELBO after each
epoch. Usage:

    PYTHONPATH=src python bench/rounding_sensitivity.py --epochs 3 --n-train 20000 \
        --out docs/benchmarks/rounding-sensitivity.md
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch


def nudged(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """``x`` with a random half of its nonzero entries moved up by one float32 ulp."""
    gen = torch.Generator().manual_seed(seed)
    pick = (torch.rand(x.shape, generator=gen) < 0.5) & (x > 0)
    return torch.where(pick, torch.nextafter(x, torch.full_like(x, 2.0)), x)


def flat(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1).double() for p in model.parameters()])


def train(x_train, x_test, hidden, z_dim, epochs, seed):
    from vae_novelty.hyperparams import TrainSettings
    from vae_novelty.train import train_vae

    cfg = TrainSettings(hidden, z_dim, epochs, 128, 1e-3)
    t0 = time.perf_counter()
    model, history = train_vae(x_train, x_test, cfg, seed=seed)
    return model, history.to_frame(), time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hidden", default="400,200,100")
    ap.add_argument("--z-dim", type=int, default=50)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--n-train", type=int, default=20000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from vae_novelty.data import load_idx_folder, to_float

    repo = Path(__file__).resolve().parents[1]
    mnist = load_idx_folder(
        repo / "resources" / "mnist", repo / "resources" / "mnist" / "SHA256SUMS"
    )
    x_train = torch.from_numpy(to_float(mnist.train_images[: args.n_train]))
    x_test = torch.from_numpy(to_float(mnist.test_images[:2000]))
    hidden = [int(h) for h in args.hidden.split(",")]
    x_nudged = nudged(x_train)
    moved = int((x_nudged != x_train).sum())
    runs = {
        "base": train(x_train, x_test, hidden, args.z_dim, args.epochs, 0),
        "nudged": train(x_nudged, x_test, hidden, args.z_dim, args.epochs, 0),
        "seed 1": train(x_train, x_test, hidden, args.z_dim, args.epochs, 1),
    }
    base = flat(runs["base"][0])
    lines = [
        "# Rounding sensitivity of training (`bench/rounding_sensitivity.py`)",
        "",
        f"Machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{args.threads} thread(s), CPU. Model: hidden {hidden}, dim(z) {args.z_dim}, "
        f"{args.n_train} MNIST training images, batch 128, Adam 1e-3, {args.epochs} epoch(s); "
        f"test -ELBO on the first 2,000 test images. `nudged`: {moved:,} pixels "
        f"({moved / x_train.numel():.1%}) moved by one float32 ulp.",
        "",
        "| run | max abs parameter difference to base | relative L2 difference | "
        + " | ".join(f"test -ELBO epoch {e}" for e in range(1, args.epochs + 1))
        + " |",
        "|---|---:|---:|" + "---:|" * args.epochs,
    ]
    for name, (model, hist, _) in runs.items():
        diff = flat(model) - base
        rel = float(diff.norm() / base.norm())
        tests = " | ".join(f"{v:.3f}" for v in hist.test_neg_elbo)
        lines.append(f"| {name} | {float(diff.abs().max()):.3g} | {rel:.3g} | {tests} |")
    b = runs["base"][1].test_neg_elbo.to_numpy()
    n = runs["nudged"][1].test_neg_elbo.to_numpy()
    s = runs["seed 1"][1].test_neg_elbo.to_numpy()
    lines += [
        "",
        f"Final test -ELBO: nudged differs from base by {abs(n[-1] - b[-1]):.3f} "
        f"nats, seed 1 by {abs(s[-1] - b[-1]):.3f} nats.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
