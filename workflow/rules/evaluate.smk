# Stage 3: evaluate every model of one architecture in one job (src/vae_novelty/evaluate.py):
# its posteriors (Parquet), the Theorem 1 quantities per evaluation test image (weights over all
# training posteriors, weighted average mu, perplexity, top-k, BCE(x, x_hat), BCE(mu, x_hat),
# memorisation measures; images for the figures in the .npz beside the table), and the test
# ELBO with the trained and with the optimal (Theorem 1) decoder. One file per model each.
#
# Only settings that change results are params (theorem1.top_k, elbo.*); theorem1.chunk_mb
# and theorem1.device change speed and memory only, so they are resources, which Snakemake
# does not fingerprint: changing them reruns nothing.


# One rule per group of architectures sharing a (split, seed) grid, as for training.
for _suffix, _archs, _grid in GRID_GROUPS:

    rule:
        """Posteriors, Theorem 1 table and images, optimal-decoder ELBO of one architecture's models."""
        name:
            f"evaluate{_suffix}"
        input:
            data=res("data/mnist.npz"),
            splits=lambda w: expand(res("splits/{split}.npz"), split=arch_splits(w.arch)),
            models=lambda w: arch_model_paths("models/{arch}/{split}_s{seed}.pt", w.arch),
        output:
            posteriors=arch_outputs("posteriors", "parquet", _grid),
            theorem1_tables=arch_outputs("theorem1", "parquet", _grid),
            theorem1_images=arch_outputs("theorem1", "npz", _grid),
            elbo=arch_outputs("elbo", "parquet", _grid),
        log:
            res("logs/evaluate/{arch}.log"),
        benchmark:
            res("benchmarks/evaluate/{arch}.tsv")
        wildcard_constraints:
            arch=arch_regex(_archs),
        conda:
            "../../envs/vae.yaml"
        threads: gpu_job_threads(T1["device"])
        resources:
            gpu=gpu_count(T1["device"]),
            torch_device=T1["device"],
            chunk_mb=int(T1["chunk_mb"]),
            # MNIST, one model's float32 training images and posteriors, the engine's chunks
            mem_mb=4000 + 2 * int(T1["chunk_mb"]),
            # CPU worst case (the full configuration's largest architecture on 1 core); on a GPU
            # a job takes seconds to a minute
            runtime=lambda w: 20 + 12 * len(arch_models(w.arch)) * (1 + int(ELBO["samples"])),
        params:
            code=code_version("evaluate.py"),
            # One mapping: Snakemake compares params as a *set* of values, so two separate params
            # that swap or share values (samples 2 -> 3 beside top_k 3) would hide a change.
            settings=lambda w: {
                "hidden": vcfg.arch_hidden(CFG, w.arch),
                "z_dim": vcfg.arch_z_dim(CFG, w.arch),
                # (split, seed) of every model of the architecture, in output order
                "models": [[m.split, m.seed] for m in arch_models(w.arch)],
                "top_k": T1["top_k"],
                "samples": ELBO["samples"],
                "eps": ELBO["eps"],
                "sample_seed": ELBO["seed"],
            },
        script:
            "../scripts/evaluate.py"


use rule evaluate as evaluate_mini with:
    """Posteriors, Theorem 1 table and images, optimal-decoder ELBO of the mini-MNIST model(s)."""
    output:
        posteriors=arch_outputs("posteriors", "parquet", MINI_GRID),
        theorem1_tables=arch_outputs("theorem1", "parquet", MINI_GRID),
        theorem1_images=arch_outputs("theorem1", "npz", MINI_GRID),
        elbo=arch_outputs("elbo", "parquet", MINI_GRID),
    wildcard_constraints:
        arch="mini",


TARGETS += model_paths(res("theorem1/{arch}/{split}_s{seed}.parquet"))
TARGETS += model_paths(res("elbo/{arch}/{split}_s{seed}.parquet"))
