# Stage 5: tables over all models: the concatenated Theorem 1 table, a per-model summary (with
# the memorisation measures and the optimal decoder's ELBO) and the stacked training histories.


rule tables:
    input:
        theorem1=model_paths("results/theorem1/{arch}/{split}_s{seed}.parquet"),
        histories=model_paths("results/models/{arch}/{split}_s{seed}.history.csv"),
        elbo=model_paths("results/elbo/{arch}/{split}_s{seed}.parquet"),
    output:
        table="results/tables/theorem1.parquet",
        summary="results/tables/summary.csv",
        training="results/tables/training.csv",
    params:
        # (arch, split, seed) of every model, in the order of the input lists
        models=[[m.arch, m.split, m.seed] for m in MODELS],
    resources:
        mem_mb=4000,
        runtime=10,
    log:
        "results/logs/tables/tables.log",
    conda:
        "../../envs/vae.yaml"
    script:
        "../scripts/tables.py"


TARGETS += [
    "results/tables/theorem1.parquet",
    "results/tables/summary.csv",
    "results/tables/training.csv",
]
