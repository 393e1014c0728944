# Stage 3b: generated samples. The rule `classifier` trains a digit classifier on MNIST^tr (a
# measuring instrument, src/vae_novelty/classifier.py); the rule `samples` (one job per
# architecture, like evaluate) draws samples.n latent codes z ~ N(0, I) per model and measures
# each decoder output: Theorem 1 at z, its two nearest training images and nearest evaluation
# test image (exact pixel L2), its digit; per model also C_T (src/vae_novelty/samples.py).
#
# The samples' settings are params of these rules only, never of training or evaluate: a
# change reruns the samples and what follows. theorem1.chunk_mb and theorem1.device are
# resources here too (speed and memory only).

SAMPLES = CFG["samples"]
CLF = SAMPLES["classifier"]


rule classifier:
    """Train the digit classifier of the samples stage on MNIST^tr; its MNIST^te accuracy."""
    input:
        data=res("data/mnist.npz"),
    output:
        model=res("classifier/classifier.pt"),
        record=res("classifier/classifier.json"),
        page=report(
            res("report/classifier.html"),
            caption="../report/classifier.rst",
            category="Tables",
            subcategory="Samples",
            labels={"table": "classifier.json", "rows": "one per digit"},
        ),
    log:
        res("logs/classifier/classifier.log"),
    benchmark:
        res("benchmarks/classifier/classifier.tsv")
    conda:
        "../../envs/vae.yaml"
    threads: gpu_job_threads(T1["device"])
    resources:
        gpu=gpu_count(T1["device"]),
        torch_device=T1["device"],
        mem_mb=3000,
        runtime=30,
    params:
        code=code_version("classifier.py"),
        settings=dict(CLF),
    script:
        "../scripts/classifier.py"


# One rule per group of architectures sharing a (split, seed) grid, as for training.
for _suffix, _archs, _grid in GRID_GROUPS:

    rule:
        """Generated samples of one architecture's models: Theorem 1 at z, nearest images, digit, C_T."""
        name:
            f"samples{_suffix}"
        input:
            data=res("data/mnist.npz"),
            splits=lambda w: expand(res("splits/{split}.npz"), split=arch_splits(w.arch)),
            models=lambda w: arch_model_paths("models/{arch}/{split}_s{seed}.pt", w.arch),
            posteriors=lambda w: arch_model_paths(
                "posteriors/{arch}/{split}_s{seed}.parquet", w.arch
            ),
            classifier=res("classifier/classifier.pt"),
        output:
            tables=arch_outputs("samples", "parquet", _grid),
            images=arch_outputs("samples", "npz", _grid),
        log:
            res("logs/samples/{arch}.log"),
        benchmark:
            res("benchmarks/samples/{arch}.tsv")
        wildcard_constraints:
            arch=arch_regex(_archs),
        conda:
            "../../envs/vae.yaml"
        threads: gpu_job_threads(T1["device"])
        resources:
            gpu=gpu_count(T1["device"]),
            torch_device=T1["device"],
            chunk_mb=int(T1["chunk_mb"]),
            # MNIST, one model's training images and posteriors, samples x 784 float64 (x_hat, mu)
            mem_mb=lambda w: 4000 + 2 * int(T1["chunk_mb"]) + int(SAMPLES["n"]) // 50,
            # CPU worst case: paper scale, 10,000 samples against 60,000 images per model
            runtime=lambda w: 20 + 10 * len(arch_models(w.arch)),
        params:
            code=code_version("samples.py"),
            # One mapping: Snakemake compares params as a set of values (see evaluate.smk).
            settings=lambda w: {
                "hidden": vcfg.arch_hidden(CFG, w.arch),
                "z_dim": vcfg.arch_z_dim(CFG, w.arch),
                "models": [[m.split, m.seed] for m in arch_models(w.arch)],
                "n": SAMPLES["n"],
                "seed": SAMPLES["seed"],
                "top_k": SAMPLES["top_k"],
                "figure_images": SAMPLES["figure_images"],
                "ct_cells": SAMPLES["ct_cells"],
                "ct_pca_dims": SAMPLES["ct_pca_dims"],
                "ct_min_per_cell": SAMPLES["ct_min_per_cell"],
                "max_test_per_digit": CFG["splits"]["max_test_per_digit"],
            },
        script:
            "../scripts/samples.py"


use rule samples as samples_mini with:
    """Generated samples of the mini-MNIST model(s)."""
    output:
        tables=arch_outputs("samples", "parquet", MINI_GRID),
        images=arch_outputs("samples", "npz", MINI_GRID),
    wildcard_constraints:
        arch="mini",


TARGETS += [res("classifier/classifier.json"), res("report/classifier.html")]
TARGETS += model_paths(res("samples/{arch}/{split}_s{seed}.parquet"))
