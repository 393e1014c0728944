"""CPU cost of the size sweep (issue 20), to estimate a configuration's run time (run by hand).

Measures, in CPU seconds of this process (``time.process_time``, which a shared, loaded
machine inflates far less than wall time), with one torch thread:

  a) a training step of one N's ensemble (both halves x the configured seeds as members,
     batch ``size_sweep.batch_size``), from one epoch of N = 3,000 (30 steps of 100);
  b) a per-epoch evaluation of that ensemble (the test -ELBO of every member on the fixed
     evaluation set), from 30 one-step epochs of N = 100 (every one evaluated) minus a);
  c) the evaluation of one model (:func:`vae_novelty.size_eval.measure_model`) at N = 1,000
     and N = 30,000 (an untrained model: the cost does not depend on the weights).

and extrapolates to the configuration: per architecture and N, ``steps`` training steps and
``min(epochs, 100)`` evaluations (:func:`vae_novelty.train.is_evaluated`), and one evaluation
per model with a cost linear in N between the two measured sizes. Prints the measurements and
the estimate as JSON.

    python bench/bench_size_sweep.py --configfile config/size-sweep.yaml
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from vae_novelty import config as vcfg  # noqa: E402
from vae_novelty.data import load_idx_folder, to_float  # noqa: E402
from vae_novelty.ensemble import EnsembleMember, train_ensemble  # noqa: E402
from vae_novelty.hyperparams import TrainSettings  # noqa: E402
from vae_novelty.model import VAE  # noqa: E402
from vae_novelty.size_eval import SizeEvalSettings, measure_model  # noqa: E402
from vae_novelty.size_splits import epochs_for_steps, make_size_splits  # noqa: E402
from vae_novelty.train import MAX_EVALUATIONS  # noqa: E402


def cpu(fn):
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--configfile", default=str(REPO / "config" / "size-sweep.yaml"))
    args = parser.parse_args()
    cfg = vcfg.load_config(yaml.safe_load(Path(args.configfile).read_text()))
    sweep = cfg["size_sweep"]
    torch.set_num_threads(1)
    folder = REPO / "resources" / "mnist"
    mnist = load_idx_folder(folder, folder / "SHA256SUMS")
    splits = make_size_splits(
        mnist.train_labels,
        mnist.test_labels,
        [100, 1000, 3000, 30000],
        seed=0,
        eval_per_digit=sweep["eval_per_digit"],
        eval_seed=0,
    )
    x_all = torch.from_numpy(to_float(mnist.train_images))
    x_test_np = to_float(mnist.test_images[splits["A100"].test_idx])
    x_test = torch.from_numpy(x_test_np)
    n_members = 2 * len(sweep["seeds"])
    batch = sweep["batch_size"]
    out = {"load_average_1min": os.getloadavg()[0], "members": n_members, "archs": {}}
    total = 0.0
    for arch in vcfg.size_archs(cfg):
        hidden, z = vcfg.arch_hidden(cfg, arch), cfg["model"]["z_dim"]

        def train(n, epochs):
            members = [
                EnsembleMember(torch.from_numpy(splits[f"{h}{n}"].train_idx), x_test, s)
                for h in "AB"
                for s in sweep["seeds"]
            ]
            return cpu(
                lambda: train_ensemble(
                    x_all, members, TrainSettings(hidden, z, epochs, batch, 1e-3)
                )
            )

        steps_3000 = -(-3000 // batch)
        step = train(3000, 1) / steps_3000
        evaluation = max(0.0, (train(100, steps_3000) - steps_3000 * step) / steps_3000)
        settings = SizeEvalSettings(
            samples=sweep["samples"],
            copy_ratio=sweep["copy_ratio"],
            elbo_samples=sweep["elbo_samples"],
            sample_seed=0,
        )
        model = VAE(hidden, z).eval()
        per_model = {
            n: cpu(
                lambda n=n: measure_model(
                    model,
                    to_float(mnist.train_images[splits[f"A{n}"].train_idx]),
                    x_test_np,
                    settings,
                    key="bench",
                    device=torch.device("cpu"),
                )
            )
            for n in (1000, 30000)
        }
        slope = (per_model[30000] - per_model[1000]) / 29000
        train_s = eval_s = 0.0
        for n in sweep["sizes"]:
            epochs = epochs_for_steps(n, batch, sweep["steps"])
            train_s += sweep["steps"] * step + min(epochs, MAX_EVALUATIONS) * evaluation
            eval_s += n_members * max(per_model[1000] + slope * (n - 1000), 0.0)
        out["archs"][arch] = {
            "cpu_s_per_step": step,
            "cpu_s_per_evaluation": evaluation,
            "cpu_s_measure_model": per_model,
            "train_cpu_s": train_s,
            "evaluate_cpu_s": eval_s,
        }
        total += train_s + eval_s
    out["total_cpu_s"] = total
    out["estimate_wall_min_one_core"] = total / 60
    print(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
