# Stage 5: tables over all models: the concatenated Theorem 1 table, a per-model summary (with
# the memorisation measures, the optimal decoder's ELBO and the generated samples' measures)
# and the stacked training histories.


rule tables:
    """The per-model summary (summary.csv), all Theorem 1 rows, all training histories."""
    input:
        theorem1=model_paths(res("theorem1/{arch}/{split}_s{seed}.parquet")),
        histories=model_paths(res("models/{arch}/{split}_s{seed}.history.csv")),
        elbo=model_paths(res("elbo/{arch}/{split}_s{seed}.parquet")),
        samples=model_paths(res("samples/{arch}/{split}_s{seed}.parquet")),
        mnist=res("data/mnist.npz"),
    output:
        table=res("tables/theorem1.parquet"),
        summary=res("tables/summary.csv"),
        training=res("tables/training.csv"),
        settings=settings_file("tables", "tables"),
    log:
        res("logs/tables/tables.log"),
    conda:
        "../../envs/vae.yaml"
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        code=code_version("tables.py"),
        # (arch, split, seed) of every model, in the order of the input lists
        models=[[m.arch, m.split, m.seed] for m in MODELS],
    script:
        "../scripts/tables.py"


TARGETS += [
    res("tables/theorem1.parquet"),
    res("tables/summary.csv"),
    res("tables/training.csv"),
]
