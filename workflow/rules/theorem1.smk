# Stage 4: Theorem 1 quantities per model and evaluation test image: weights over the training
# posteriors, weighted average mu, perplexity, top-k training images, BCE(x, x_hat) and
# BCE(mu, x_hat). Images for the figures go to the .npz next to the table.

T1 = CFG["theorem1"]


rule theorem1:
    input:
        posteriors=res("posteriors/{arch}/{split}_s{seed}.parquet"),
        model=res("models/{arch}/{split}_s{seed}.pt"),
        data=res("data/mnist.npz"),
    output:
        table=res("theorem1/{arch}/{split}_s{seed}.parquet"),
        images=res("theorem1/{arch}/{split}_s{seed}.npz"),
    params:
        top_k=T1["top_k"],
        chunk_mb=T1["chunk_mb"],
        device=T1["device"],
        hidden=lambda w: vcfg.arch_hidden(CFG, w.arch),
        z_dim=lambda w: vcfg.arch_z_dim(CFG, w.arch),
    threads: 2
    resources:
        gpu=gpu_count(T1["device"]),
        # inputs (MNIST, float32 training images, posteriors) + the engine's chunk budget
        mem_mb=3000 + 2 * int(T1["chunk_mb"]),
        runtime=60,
    log:
        res("logs/theorem1/{arch}/{split}_s{seed}.log"),
    benchmark:
        res("benchmarks/theorem1/{arch}/{split}_s{seed}.tsv")
    conda:
        "../../envs/vae.yaml"
    script:
        "../scripts/theorem1.py"


TARGETS += model_paths(res("theorem1/{arch}/{split}_s{seed}.parquet"))
TARGETS += model_paths(res("theorem1/{arch}/{split}_s{seed}.npz"))
