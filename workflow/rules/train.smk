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
            settings=lambda w: train_settings(w.arch, TRAIN["epochs"], TRAIN["batch_size"]),
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
        settings=lambda w: train_settings("mini", TRAIN["mini_epochs"], TRAIN["mini_batch_size"]),


TARGETS += model_paths(res("models/{arch}/{split}_s{seed}.pt"))
