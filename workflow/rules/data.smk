# Stage 1: raw MNIST -> verified arrays -> splits (index lists into the original files).


rule prepare_mnist:
    """Read the MNIST IDX files, verify their checksums, save them as one array file."""
    input:
        mnist_inputs,
    output:
        res("data/mnist.npz"),
    log:
        res("logs/data/prepare_mnist.log"),
    conda:
        "../../envs/vae.yaml"
    params:
        code=code_version(*STAGE_CODE["data"], script="prepare_mnist.py"),
        content=mnist_digest(),
        source=CFG["data"]["source"],
        folder=CFG["data"]["folder"],
        bundled=repo_path("resources/mnist"),
        checksums=repo_path(CFG["data"]["checksums"]),
        torchvision_root=repo_path(CFG["data"]["torchvision_root"]),
    script:
        "../scripts/prepare_mnist.py"


rule make_split:
    """One training split and its evaluation test images, as rows of the MNIST files."""
    input:
        res("data/mnist.npz"),
    output:
        res("splits/{split}.npz"),
    log:
        res("logs/splits/{split}.log"),
    conda:
        "../../envs/vae.yaml"
    params:
        code=code_version(*STAGE_CODE["data"], script="make_split.py"),
        # One mapping: Snakemake compares params as a set of values (see evaluate.smk).
        settings=lambda w: {
            "eval_digits": vcfg.eval_digits(CFG, w.split),
            "max_train": CFG["splits"]["max_train_images"],
            "max_test_per_digit": CFG["splits"]["max_test_per_digit"],
            "subsample_seed": CFG["splits"]["subsample_seed"],
            "mini_per_digit": CFG["splits"]["mini"]["per_digit"],
            "mini_seed": CFG["splits"]["mini"]["seed"],
        },
    script:
        "../scripts/make_split.py"
