# Stage 1: raw MNIST -> verified arrays -> splits (index lists into the original files).


rule prepare_mnist:
    input:
        mnist_inputs,
    output:
        res("data/mnist.npz"),
    params:
        source=CFG["data"]["source"],
        folder=CFG["data"]["folder"],
        bundled=repo_path("resources/mnist"),
        checksums=repo_path(CFG["data"]["checksums"]),
        torchvision_root=repo_path(CFG["data"]["torchvision_root"]),
    log:
        res("logs/data/prepare_mnist.log"),
    conda:
        "../../envs/vae.yaml"
    script:
        "../scripts/prepare_mnist.py"


rule make_split:
    input:
        res("data/mnist.npz"),
    output:
        res("splits/{split}.npz"),
    params:
        eval_digits=lambda w: vcfg.eval_digits(CFG, w.split),
        max_train=CFG["splits"]["max_train_images"],
        max_test_per_digit=CFG["splits"]["max_test_per_digit"],
        subsample_seed=CFG["splits"]["subsample_seed"],
        mini_per_digit=CFG["splits"]["mini"]["per_digit"],
        mini_seed=CFG["splits"]["mini"]["seed"],
    log:
        res("logs/splits/{split}.log"),
    conda:
        "../../envs/vae.yaml"
    script:
        "../scripts/make_split.py"
