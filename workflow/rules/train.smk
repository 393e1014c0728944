# Stage 2: train the VAEs. One job per architecture trains all of its models (every training
# split and seed): as one vectorised ensemble (training.ensemble, the default) or one after the
# other; Snakemake still sees one model file per (architecture, split, seed).
#
# Settings that change the models are params; training.device, training.cuda_graphs and
# training.snapshot_every change speed (or resumability) only, so they are resources, which
# Snakemake does not fingerprint: changing them retrains nothing.


# One rule per group of architectures that share a (split, seed) grid (common.smk:
# GRID_GROUPS): train_sweep, and train_sweep_2, ... when training.extra_seeds gives some
# architectures more seeds.
for _suffix, _archs, _grid in GRID_GROUPS:

    rule:
        """Train every model (split x seed) of one sweep architecture."""
        name:
            f"train_sweep{_suffix}"
        input:
            data=res("data/mnist.npz"),
            splits=expand(res("splits/{split}.npz"), split=SWEEP_SPLITS),
            # a damaged split stops the run in check_splits, before Snakemake deletes this job's
            # finished models to rerun it (ancient: a new check alone retrains nothing)
            checked=ancient(res("splits/checked.tsv")),
        output:
            models=arch_outputs("models", "pt", _grid),
            histories=arch_outputs("models", "history.csv", _grid),
        log:
            res("logs/train/{arch}.log"),
        benchmark:
            res("benchmarks/train/{arch}.tsv")
        wildcard_constraints:
            arch=arch_regex(_archs),
        conda:
            "../../envs/vae.yaml"
        threads: gpu_job_threads(TRAIN["device"])
        resources:
            gpu=gpu_count(TRAIN["device"]),
            torch_device=TRAIN["device"],
            cuda_graphs=int(TRAIN["cuda_graphs"]),
            snapshot_every=TRAIN["snapshot_every"],
            mem_mb=8000,
            runtime=240,
        params:
            code=code_version("train.py"),
            # One mapping: Snakemake compares params as a set of values (see evaluate.smk).
            settings=lambda w: vcfg.train_params(CFG, w.arch),
        script:
            "../scripts/train.py"


use rule train_sweep as train_mini with:
    """Train the mini-MNIST model(s) of Figure 3 (one per seed)."""
    input:
        data=res("data/mnist.npz"),
        splits=res("splits/mini.npz"),
        checked=ancient(res("splits/checked.tsv")),
    output:
        models=arch_outputs("models", "pt", MINI_GRID),
        histories=arch_outputs("models", "history.csv", MINI_GRID),
    log:
        res("logs/train/{arch}.log"),
    benchmark:
        res("benchmarks/train/{arch}.tsv")
    wildcard_constraints:
        arch="mini",
    resources:
        gpu=gpu_count(TRAIN["device"]),
        torch_device=TRAIN["device"],
        cuda_graphs=int(TRAIN["cuda_graphs"]),
        snapshot_every=TRAIN["snapshot_every"],
        mem_mb=4000,
        runtime=60,
    params:
        code=code_version("train.py"),
        settings=lambda w: vcfg.train_params(CFG, "mini"),


# Every deliverable is a target, so a deleted model or history is remade by a plain run.
TARGETS += model_paths(res("models/{arch}/{split}_s{seed}.pt"))
TARGETS += model_paths(res("models/{arch}/{split}_s{seed}.history.csv"))


# --------------------------------------------------------------------------- stale models

import os

from vae_novelty.recorded import stale_models

# A model file whose own record (src/vae_novelty/recorded.py) differs from what this
# configuration requests (epochs, batch size, learning rate, widths, dim(z), trainer) is never
# used silently, whether or not Snakemake's metadata (.snakemake/) knows of the change: it is
# named in a warning and its modification time is set to 1970 (older than its input
# results/data/mnist.npz) by a real run, so that its training job reruns (a dry run names
# it without touching it: with Snakemake's metadata it also plans the job);
# `snakemake --report` refuses instead.
# (Snakemake's --forcerun cannot be set from here: its settings arrive after parsing.)
STALE_MODELS = stale_models({res(f"models/{m.stem}.pt"): m for m in MODELS}, CFG)
# A dry run (-n) only names them: previewing another setting must not change the results
# folder (the real run marks and retrains them).
DRY_RUN = bool(getattr(PREFLIGHT["cli_args"](), "dryrun", False))
if not report_requested():  # (snakemake --report refuses instead: report.smk)
    for _path, _lines in STALE_MODELS.items():
        if not DRY_RUN:
            os.utime(_path, (1, 1))  # (a time of 0 counts as "unknown" to Snakemake)
        for _line in _lines:
            verb = "a real run retrains" if DRY_RUN else "retraining"
            print(f"warning: {verb}, {_line}", file=sys.stderr)
