# Stage 4b: test ELBO of every model with its trained decoder and with the optimal (Theorem 1)
# decoder mu(z) = sum_i w_i(z) x_i, from the same z samples (see src/vae_novelty/elbo.py).
# Runs on theorem1.device with the Theorem 1 engine's chunk budget (theorem1.chunk_mb).

ELBO = CFG["elbo"]


rule optimal_elbo:
    input:
        posteriors=res("posteriors/{arch}/{split}_s{seed}.parquet"),
        model=res("models/{arch}/{split}_s{seed}.pt"),
        data=res("data/mnist.npz"),
    output:
        table=res("elbo/{arch}/{split}_s{seed}.parquet"),
    params:
        samples=ELBO["samples"],
        eps=ELBO["eps"],
        sample_seed=ELBO["seed"],
        chunk_mb=T1["chunk_mb"],
        device=T1["device"],
        hidden=lambda w: vcfg.arch_hidden(CFG, w.arch),
        z_dim=lambda w: vcfg.arch_z_dim(CFG, w.arch),
    threads: 2
    resources:
        gpu=gpu_count(T1["device"]),
        # inputs (MNIST, float32 training images, posteriors), the samples and the engine's
        # chunk budget
        mem_mb=4000 + 2 * int(T1["chunk_mb"]),
        # the Theorem 1 engine on `samples` points per test image
        runtime=30 + 15 * int(ELBO["samples"]),
    log:
        res("logs/elbo/{arch}/{split}_s{seed}.log"),
    benchmark:
        res("benchmarks/elbo/{arch}/{split}_s{seed}.tsv")
    conda:
        "../../envs/vae.yaml"
    script:
        "../scripts/optimal_elbo.py"


TARGETS += model_paths(res("elbo/{arch}/{split}_s{seed}.parquet"))
