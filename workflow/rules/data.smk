# Stage 1: raw MNIST -> verified arrays -> splits (index lists into the original files).


def mnist_inputs(wildcards):
    """The IDX files read by prepare_mnist, so that replacing one reruns it."""
    source = CFG["data"]["source"]
    if source == "torchvision":
        return []
    folder = repo_path("resources/mnist") if source == "bundled" else CFG["data"]["folder"]
    files = []
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        gz = Path(folder) / f"{name}.gz"
        files.append(str(gz if gz.exists() or not (Path(folder) / name).exists()
                         else Path(folder) / name))
    checksums = repo_path(CFG["data"]["checksums"])
    return files + ([checksums] if checksums else [])


rule prepare_mnist:
    input:
        mnist_inputs,
    output:
        "results/data/mnist.npz",
    params:
        source=CFG["data"]["source"],
        folder=CFG["data"]["folder"],
        bundled=repo_path("resources/mnist"),
        checksums=repo_path(CFG["data"]["checksums"]),
        torchvision_root=repo_path(CFG["data"]["torchvision_root"]),
    log:
        "results/logs/data/prepare_mnist.log",
    conda:
        "../../envs/vae.yaml"
    script:
        "../scripts/prepare_mnist.py"


rule make_split:
    input:
        "results/data/mnist.npz",
    output:
        "results/splits/{split}.npz",
    params:
        eval_digits=lambda w: vcfg.eval_digits(CFG, w.split),
        max_train=CFG["splits"]["max_train_images"],
        max_test_per_digit=CFG["splits"]["max_test_per_digit"],
        subsample_seed=CFG["splits"]["subsample_seed"],
        mini_per_digit=CFG["splits"]["mini"]["per_digit"],
        mini_seed=CFG["splits"]["mini"]["seed"],
    log:
        "results/logs/splits/{split}.log",
    conda:
        "../../envs/vae.yaml"
    script:
        "../scripts/make_split.py"
