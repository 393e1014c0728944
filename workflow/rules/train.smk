# Stage 2: train the VAEs. One job per architecture trains all of its models (every training
# split and seed): as one vectorised ensemble (training.ensemble, the default) or one after the
# other; Snakemake still sees one model file per (architecture, split, seed).
#
# Settings that change the models are params; training.device, training.cuda_graphs and
# training.snapshot_every change speed (or resumability) only, so they are resources, which
# Snakemake does not fingerprint: changing them retrains nothing.

def train_settings(arch, splits, epochs, batch_size):
    """Everything that changes an architecture's trained models."""
    return {"hidden": vcfg.arch_hidden(CFG, arch), "z_dim": vcfg.arch_z_dim(CFG, arch),
            "splits": splits, "seeds": SEEDS, "epochs": epochs, "batch_size": batch_size,
            "learning_rate": TRAIN["learning_rate"], "ensemble": TRAIN["ensemble"],
            "tf32": TRAIN["tf32"]}


rule train_sweep:
    """Train every model (split x seed) of one sweep architecture."""
    input:
        data=res("data/mnist.npz"),
        splits=expand(res("splits/{split}.npz"), split=SWEEP_SPLITS),
    output:
        models=arch_outputs("models", "pt", SWEEP_SPLITS),
        histories=arch_outputs("models", "history.csv", SWEEP_SPLITS),
    wildcard_constraints:
        arch="|".join(re.escape(a) for a in SWEEP_ARCHS),
    params:
        # One mapping: Snakemake compares params as a set of values (see evaluate.smk).
        settings=lambda w: train_settings(w.arch, SWEEP_SPLITS, TRAIN["epochs"],
                                          TRAIN["batch_size"]),
    threads: 1
    resources:
        gpu=gpu_count(TRAIN["device"]),
        torch_device=TRAIN["device"],
        cuda_graphs=int(TRAIN["cuda_graphs"]),
        snapshot_every=TRAIN["snapshot_every"],
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
        models=arch_outputs("models", "pt", ["mini"]),
        histories=arch_outputs("models", "history.csv", ["mini"]),
    wildcard_constraints:
        arch="mini",
    params:
        settings=lambda w: train_settings("mini", ["mini"], TRAIN["mini_epochs"],
                                          TRAIN["mini_batch_size"]),
    resources:
        gpu=gpu_count(TRAIN["device"]),
        torch_device=TRAIN["device"],
        cuda_graphs=int(TRAIN["cuda_graphs"]),
        snapshot_every=TRAIN["snapshot_every"],
        mem_mb=4000,
        runtime=60,
    log:
        res("logs/train/{arch}.log"),
    benchmark:
        res("benchmarks/train/{arch}.tsv")


TARGETS += model_paths(res("models/{arch}/{split}_s{seed}.pt"))
