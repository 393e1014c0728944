# The size sweep (issue 20; included by the Snakefile when size_sweep.enabled): memorisation
# against training-set size. Two disjoint halves of MNIST^tr, nested digit-balanced subsets of
# each (size_sweep.sizes), the shallow and deep VAEs trained on each with one budget of gradient
# steps, all evaluated on one fixed test set; a table (one row per model), the transition sizes
# and one figure. Every output is under {results_dir}/size/. Modules: size_splits, size_train,
# size_eval, agreement, size_table, figures/size.

from vae_novelty.size_splits import HALVES, size_split_name

SIZE = CFG["size_sweep"]
SIZE_ARCHS = vcfg.size_archs(CFG)
SIZE_SPLITS = [size_split_name(h, n) for n in sorted(SIZE["sizes"]) for h in HALVES]
# (split, seed) of every model of an architecture, in output order
SIZE_GRID = [(s, seed) for s in SIZE_SPLITS for seed in SIZE["seeds"]]
SIZE_ROLES = {CFG["model"]["shallow"]: "shallow", CFG["model"]["deep"]: "deep"}

# Every output is below {results_dir}/size/.
SIZE_DIR = res("size")
SIZE_SPLIT_FILES = [f"{SIZE_DIR}/splits/{s}.npz" for s in SIZE_SPLITS]
# one architecture's model files and histories ({arch} left a wildcard)
SIZE_MODELS = [f"{SIZE_DIR}/models/{{arch}}/{s}_s{seed}.pt" for s, seed in SIZE_GRID]
SIZE_HISTORIES = [m[: -len(".pt")] + ".history.csv" for m in SIZE_MODELS]


rule size_splits:
    """The size sweep's subsets of halves A and B, with the fixed evaluation set."""
    input:
        res("data/mnist.npz"),
    output:
        SIZE_SPLIT_FILES,
    log:
        res("logs/size/splits.log"),
    conda:
        "../../envs/vae.yaml"
    params:
        code=code_version("size_splits.py"),
        settings={
            "sizes": sorted(SIZE["sizes"]),
            "seed": SIZE["seed"],
            "eval_per_digit": SIZE["eval_per_digit"],
            "eval_seed": SIZE["eval_seed"],
        },
    script:
        "../scripts/size_splits.py"


rule size_check_splits:
    """Check the size splits (MNIST rows, disjoint halves, nesting) before any training."""
    input:
        data=res("data/mnist.npz"),
        splits=SIZE_SPLIT_FILES,
    output:
        f"{SIZE_DIR}/splits/checked.tsv",
    log:
        res("logs/size/check_splits.log"),
    conda:
        "../../envs/vae.yaml"
    params:
        code=code_version("size_check_splits.py"),
    script:
        "../scripts/size_check_splits.py"


rule size_train:
    """Train every model (half x N x seed) of one architecture with one step budget."""
    input:
        data=res("data/mnist.npz"),
        splits=SIZE_SPLIT_FILES,
        checked=ancient(f"{SIZE_DIR}/splits/checked.tsv"),
    output:
        models=SIZE_MODELS,
        histories=SIZE_HISTORIES,
    log:
        res("logs/size/train/{arch}.log"),
    benchmark:
        res("benchmarks/size/train/{arch}.tsv")
    wildcard_constraints:
        arch=arch_regex(SIZE_ARCHS),
    conda:
        "../../envs/vae.yaml"
    threads: gpu_job_threads(TRAIN["device"])
    resources:
        gpu=gpu_count(TRAIN["device"]),
        torch_device=TRAIN["device"],
        cuda_graphs=int(TRAIN["cuda_graphs"]),
        snapshot_every=TRAIN["snapshot_every"],
        mem_mb=8000,
        # CPU worst case: about 5 ms a step and model on one core
        runtime=lambda w: 10 + len(SIZE_GRID) * SIZE["steps"] // 10000,
    params:
        code=code_version("size_train.py"),
        settings=lambda w: {
            "hidden": vcfg.arch_hidden(CFG, w.arch),
            "z_dim": vcfg.arch_z_dim(CFG, w.arch),
            "models": [list(m) for m in SIZE_GRID],
            "steps": SIZE["steps"],
            "batch_size": SIZE["batch_size"],
            "learning_rate": TRAIN["learning_rate"],
            "ensemble": TRAIN["ensemble"],
            "tf32": TRAIN["tf32"],
        },
    script:
        "../scripts/size_train.py"


rule size_evaluate:
    """Theorem 1, ELBO, copy fraction and cross-half agreement of one architecture's models."""
    input:
        data=res("data/mnist.npz"),
        splits=SIZE_SPLIT_FILES,
        models=SIZE_MODELS,
    output:
        table=f"{SIZE_DIR}/measures/{{arch}}.csv",
        agreement=f"{SIZE_DIR}/agreement/{{arch}}.csv",
    log:
        res("logs/size/evaluate/{arch}.log"),
    benchmark:
        res("benchmarks/size/evaluate/{arch}.tsv")
    wildcard_constraints:
        arch=arch_regex(SIZE_ARCHS),
    conda:
        "../../envs/vae.yaml"
    threads: gpu_job_threads(T1["device"])
    resources:
        gpu=gpu_count(T1["device"]),
        torch_device=T1["device"],
        chunk_mb=int(T1["chunk_mb"]),
        mem_mb=4000 + 2 * int(T1["chunk_mb"]),
        # CPU worst case: about a minute per model of 30,000 images on one core
        runtime=lambda w: 10 + len(SIZE_GRID),
    params:
        code=code_version("size_evaluate.py"),
        settings=lambda w: {
            "hidden": vcfg.arch_hidden(CFG, w.arch),
            "z_dim": vcfg.arch_z_dim(CFG, w.arch),
            "models": [list(m) for m in SIZE_GRID],
            "samples": SIZE["samples"],
            "copy_ratio": SIZE["copy_ratio"],
            "elbo_samples": SIZE["elbo_samples"],
            "sample_seed": SIZE["sample_seed"],
        },
    script:
        "../scripts/size_evaluate.py"


rule size_table:
    """One row per model of the size sweep, and the transition sizes."""
    input:
        expand(f"{SIZE_DIR}/measures/{{arch}}.csv", arch=SIZE_ARCHS),
    output:
        table=f"{SIZE_DIR}/table.csv",
        transitions=f"{SIZE_DIR}/transitions.csv",
        settings=settings_file("size_table", "size"),
    log:
        res("logs/size/table.log"),
    conda:
        "../../envs/figures.yaml"
    params:
        code=code_version("size_table.py"),
        threshold=SIZE["threshold"],
    script:
        "../scripts/size_table.py"


rule size_figure:
    """Every measure of the size sweep against N, shallow against deep, seed bands."""
    input:
        table=f"{SIZE_DIR}/table.csv",
        transitions=f"{SIZE_DIR}/transitions.csv",
    output:
        output_paths(f"{SIZE_DIR}/figure", FIG["formats"]),
        settings=settings_file("size_figure", "size"),
    log:
        res("logs/size/figure.log"),
    conda:
        "../../envs/figures.yaml"
    params:
        code=code_version("size_figure.py"),
        roles=SIZE_ROLES,
        threshold=SIZE["threshold"],
        dpi=FIG["dpi"],
    script:
        "../scripts/size_figure.py"


if SIZE["only"]:
    TARGETS.clear()

TARGETS += [f"{SIZE_DIR}/table.csv", f"{SIZE_DIR}/transitions.csv"]
TARGETS += output_paths(f"{SIZE_DIR}/figure", FIG["formats"])
