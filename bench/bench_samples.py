#!/usr/bin/env python
"""Benchmark: the samples stage's cost per model against the evaluate stage's (run by hand;
not a test).

One synthetic-weights VAE (untrained: the cost does not depend on the weights) on real MNIST
images: ``--n-train`` training images of split no9, ``--n-test`` evaluation images of digit 9,
and ``--n-samples`` prior samples. Times, on one device and in one process, the evaluate
stage of that model (posteriors, Theorem 1 table, ELBO: :func:`vae_novelty.evaluate.evaluate_jobs`)
and its samples stage (:func:`vae_novelty.samples.sample_jobs`; the digit classifier
untrained), each the best of ``--repeats`` runs, and reports their ratio with the samples
stage's parts. Paper scale has 10,000 samples against about 1,000 test images of the held-out
digit and 54,000-60,000 training images; the defaults keep those proportions (10:1 samples to
test images) at a size that runs in about a minute on a CPU.

    python bench/bench_samples.py                      # 6000 train, 100 test, 1000 samples
    python bench/bench_samples.py --n-train 60000 --n-test 1000 --n-samples 10000 --out b.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from vae_novelty.classifier import DigitCNN  # noqa: E402
from vae_novelty.config import ModelSpec  # noqa: E402
from vae_novelty.data import load_idx_folder  # noqa: E402
from vae_novelty.evaluate import EvalJob, EvalSettings, evaluate_jobs  # noqa: E402
from vae_novelty.io import REPO_ROOT, describe_device, select_device  # noqa: E402
from vae_novelty.model import VAE, save_model  # noqa: E402
from vae_novelty.samples import SampleJob, SampleSettings, sample_jobs  # noqa: E402
from vae_novelty.splits import make_split  # noqa: E402


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--n-train", type=int, default=6000)
    ap.add_argument("--n-test", type=int, default=100)
    ap.add_argument("--n-samples", type=int, default=1000)
    ap.add_argument("--hidden", type=int, nargs="+", default=[400])
    ap.add_argument("--z-dim", type=int, default=50)
    ap.add_argument("--elbo-samples", type=int, default=8)
    ap.add_argument("--chunk-mb", type=float, default=256.0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = select_device(args.device)
    mnist = load_idx_folder(
        REPO_ROOT / "resources" / "mnist", REPO_ROOT / "resources" / "mnist" / "SHA256SUMS"
    )
    split = make_split(
        "no9",
        mnist.train_labels,
        mnist.test_labels,
        [9],
        max_train=args.n_train,
        max_test_per_digit=args.n_test,
        data=mnist.fingerprint,
    )
    spec = ModelSpec("bench", tuple(args.hidden), args.z_dim, "no9", 0)
    eval_settings = EvalSettings(
        top_k=3, samples=args.elbo_samples, eps=1e-6, sample_seed=0, chunk_mb=args.chunk_mb
    )
    sample_settings = SampleSettings(
        n=args.n_samples,
        seed=0,
        top_k=3,
        figure_images=64,
        ct_cells=20,
        ct_pca_dims=50,
        ct_min_per_cell=20,
        max_test_per_digit=args.n_test,
        chunk_mb=args.chunk_mb,
    )
    torch.manual_seed(0)
    clf = DigitCNN().eval()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        torch.manual_seed(0)
        save_model(
            VAE(list(args.hidden), args.z_dim),
            tmp / "m.pt",
            model_id=spec.model_id,
            data=mnist.fingerprint,
        )
        ejob = EvalJob(
            spec,
            tmp / "m.pt",
            tmp / "post.parquet",
            tmp / "t1.parquet",
            tmp / "t1.npz",
            tmp / "elbo.parquet",
        )
        sjob = SampleJob(spec, tmp / "m.pt", tmp / "post.parquet", tmp / "s.parquet", tmp / "s.npz")
        t_eval = t_samples = math.inf
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            evaluate_jobs([ejob], mnist, {"no9": split}, eval_settings, device)
            t_eval = min(t_eval, time.perf_counter() - t0)
            t0 = time.perf_counter()
            done = sample_jobs([sjob], mnist, {"no9": split}, clf, {}, sample_settings, device)
            t_samples = min(t_samples, time.perf_counter() - t0)
        parts = done[0]["parts_s"]
    out = {
        "device": describe_device(device),
        "n_train": int(len(split.train_idx)),
        "n_test": int(len(split.test_idx)),
        "n_samples": args.n_samples,
        "hidden": args.hidden,
        "z_dim": args.z_dim,
        "evaluate_s": t_eval,
        "samples_s": t_samples,
        "ratio_samples_over_evaluate": t_samples / t_eval,
        "samples_parts_s": parts,
    }
    print(json.dumps(out, indent=2))
    if args.out:
        args.out.write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
