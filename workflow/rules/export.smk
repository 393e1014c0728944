# Stage 3: every model's posteriors of its training split and evaluation images, as Parquet.


rule export_posteriors:
    input:
        model=res("models/{arch}/{split}_s{seed}.pt"),
        data=res("data/mnist.npz"),
        split=res("splits/{split}.npz"),
    output:
        res("posteriors/{arch}/{split}_s{seed}.parquet"),
    params:
        hidden=lambda w: vcfg.arch_hidden(CFG, w.arch),
        z_dim=lambda w: vcfg.arch_z_dim(CFG, w.arch),
        device=CFG["training"]["device"],
    resources:
        mem_mb=4000,
        runtime=20,
    log:
        res("logs/posteriors/{arch}/{split}_s{seed}.log"),
    benchmark:
        res("benchmarks/posteriors/{arch}/{split}_s{seed}.tsv")
    conda:
        "../../envs/vae.yaml"
    script:
        "../scripts/export_posteriors.py"


TARGETS += model_paths(res("posteriors/{arch}/{split}_s{seed}.parquet"))
