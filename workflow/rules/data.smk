# Stage 1: raw MNIST -> verified arrays -> splits (index lists into the original files).

from vae_novelty.data import checksums_problem, source_digest, source_problem
from vae_novelty.io import in_repo

# The training splits of the sweep, and mini-MNIST's.
SPLITS = SWEEP_SPLITS + ["mini"]

# The folder of IDX files prepare_mnist reads (None: a torchvision download), its checksums,
# and the digest of their content (the data rule's params: new content reruns it).
MNIST_FOLDER = {"bundled": in_repo("resources/mnist"), "folder": CFG["data"]["folder"]}.get(
    CFG["data"]["source"]
)
MNIST_CHECKSUMS = in_repo(CFG["data"]["checksums"])
if checksums_problem(MNIST_CHECKSUMS):
    raise WorkflowError(checksums_problem(MNIST_CHECKSUMS))
MNIST_DIGEST = source_digest(MNIST_FOLDER, MNIST_CHECKSUMS)

# A data source that fails its checks stops the run here, before Snakemake deletes
# results/data/mnist.npz to rerun the data rule (which would retrain every model later).
_data_problem = source_problem(res("data/mnist.npz"), MNIST_DIGEST, MNIST_FOLDER, MNIST_CHECKSUMS)
if _data_problem:
    raise WorkflowError(f"data ({CFG['data']['source']}): {_data_problem}")


rule prepare_mnist:
    """Read the MNIST IDX files, verify their checksums, save them as one array file."""

    # No input files: the files are known by their content (MNIST_DIGEST), so that a copy or a
    # checkout that only changes modification times, or a results folder at another place
    # relative to the repository, reruns nothing, while new content reruns everything.
    output:
        res("data/mnist.npz"),
    log:
        res("logs/data/prepare_mnist.log"),
    conda:
        "../../envs/vae.yaml"
    params:
        code=code_version("prepare_mnist.py"),
        content=MNIST_DIGEST,
        source=CFG["data"]["source"],
        folder=CFG["data"]["folder"],
        # repository-relative (resolved by the script against the repository)
        bundled="resources/mnist",
        checksums=CFG["data"]["checksums"],
        torchvision_root=CFG["data"]["torchvision_root"],
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
        code=code_version("make_split.py"),
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


rule check_splits:
    """Check every split file (its name, its MNIST rows) before any training job may start."""
    input:
        data=res("data/mnist.npz"),
        splits=expand(res("splits/{split}.npz"), split=SPLITS),
    output:
        res("splits/checked.tsv"),
    log:
        res("logs/splits/check_splits.log"),
    conda:
        "../../envs/vae.yaml"
    params:
        code=code_version("check_splits.py"),
    script:
        "../scripts/check_splits.py"
