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
            code=code_version(*STAGE_CODE["train"], script="train.py"),
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
        code=code_version(*STAGE_CODE["train"], script="train.py"),
        settings=lambda w: train_settings("mini", TRAIN["mini_epochs"], TRAIN["mini_batch_size"]),


# Every deliverable is a target, so a deleted model or history is remade by a plain run.
TARGETS += model_paths(res("models/{arch}/{split}_s{seed}.pt"))
TARGETS += model_paths(res("models/{arch}/{split}_s{seed}.history.csv"))


# A model file whose own record (src/vae_novelty/recorded.py) differs from what this
# configuration requests (epochs, batch size, learning rate, widths, dim(z), trainer) is never
# used silently, whether or not Snakemake's metadata (.snakemake/) knows of the change: it is
# named in a warning and its modification time is set to 1970 (older than results/data/mnist.npz), so that
# its training job reruns (a dry run shows that job); `snakemake --report` refuses instead.
# (Snakemake's --forcerun cannot be set from here: its settings arrive after parsing.)
def stale_models():
    """{model path: [difference, ...]} for every existing model file of the grid that is not
    the model this configuration requests."""
    stale = {}
    for m in MODELS:
        path = res(f"models/{m.arch}/{m.split}_s{m.seed}.pt")
        if Path(path).exists():
            lines = model_mismatches(
                path, vcfg.model_id(m.arch, m.split, m.seed), requested_training(m.arch, CFG)
            )
            if lines:
                stale[path] = lines
    return stale


STALE_MODELS = stale_models()
if STALE_MODELS and report_requested():
    raise WorkflowError(
        "the model files do not hold the models this configuration requests, so the report "
        "would describe other results:\n  "
        + "\n  ".join(l for lines in STALE_MODELS.values() for l in lines)
    )
for _path, _lines in STALE_MODELS.items():
    os.utime(_path, (1, 1))  # (a time of 0 counts as "unknown" to Snakemake)
    for _line in _lines:
        print(f"warning: retraining, {_line}", file=sys.stderr)
