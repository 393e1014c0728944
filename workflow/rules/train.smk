# Stage 2: train the VAEs. One job per architecture trains all of its models (every training
# split and seed): as one vectorised ensemble (training.ensemble, the default) or one after the
# other; Snakemake still sees one model file per (architecture, split, seed).

TRAIN = CFG["training"]


rule train_sweep:
    input:
        data=res("data/mnist.npz"),
        splits=expand(res("splits/{split}.npz"), split=SWEEP_SPLITS),
    output:
        models=train_outputs(SWEEP_SPLITS, "pt"),
        histories=train_outputs(SWEEP_SPLITS, "history.csv"),
    wildcard_constraints:
        arch="|".join(re.escape(a) for a in SWEEP_ARCHS),
    params:
        hidden=lambda w: vcfg.arch_hidden(CFG, w.arch),
        z_dim=CFG["model"]["z_dim"],
        splits=SWEEP_SPLITS,
        seeds=SEEDS,
        epochs=TRAIN["epochs"],
        batch_size=TRAIN["batch_size"],
        learning_rate=TRAIN["learning_rate"],
        device=TRAIN["device"],
        ensemble=TRAIN["ensemble"],
        cuda_graphs=TRAIN["cuda_graphs"],
        tf32=TRAIN["tf32"],
        snapshot_dir=res("snapshots/{arch}"),
        snapshot_every=TRAIN["snapshot_every"],
    threads: 2
    resources:
        gpu=gpu_count(TRAIN["device"]),
        mem_mb=8000,
        runtime=240,
    log:
        res("logs/train/{arch}.log"),
    benchmark:
        res("benchmarks/train/{arch}.tsv")
    conda:
        "../../envs/vae.yaml"
    script:
        "../scripts/train.py"


use rule train_sweep as train_mini with:
    input:
        data=res("data/mnist.npz"),
        splits=res("splits/mini.npz"),
    output:
        models=train_outputs(["mini"], "pt"),
        histories=train_outputs(["mini"], "history.csv"),
    wildcard_constraints:
        arch="mini",
    params:
        hidden=lambda w: vcfg.arch_hidden(CFG, "mini"),
        z_dim=CFG["model"]["mini"]["z_dim"],
        splits=["mini"],
        seeds=SEEDS,
        epochs=TRAIN["mini_epochs"],
        batch_size=TRAIN["mini_batch_size"],
        learning_rate=TRAIN["learning_rate"],
        device=TRAIN["device"],
        ensemble=TRAIN["ensemble"],
        cuda_graphs=TRAIN["cuda_graphs"],
        tf32=TRAIN["tf32"],
        snapshot_dir=res("snapshots/{arch}"),
        snapshot_every=TRAIN["snapshot_every"],
    resources:
        gpu=gpu_count(TRAIN["device"]),
        mem_mb=4000,
        runtime=60,
    log:
        res("logs/train/{arch}.log"),
    benchmark:
        res("benchmarks/train/{arch}.tsv")


TARGETS += model_paths(res("models/{arch}/{split}_s{seed}.pt"))
