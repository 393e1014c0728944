# Helpers shared by every stage: the validated config, the model grid and path builders.

import re

from snakemake.exceptions import WorkflowError

from vae_novelty import config as vcfg

try:
    CFG = vcfg.load_config(config)
except vcfg.ConfigError as exc:
    raise WorkflowError(str(exc))

# Every rule's default target is appended here by its stage's .smk file.
TARGETS = []

# Where every output goes (results_dir: "results" by default; e.g. one folder per dataset).
RESULTS = CFG["results_dir"].rstrip("/")


def res(path):
    """``path`` below the results folder."""
    return f"{RESULTS}/{path}"


SWEEP_ARCHS = list(CFG["model"]["architectures"])
SWEEP_SPLITS = vcfg.sweep_splits(CFG)
SEEDS = CFG["training"]["seeds"]
MODELS = vcfg.model_grid(CFG)
SPLITS = SWEEP_SPLITS + ["mini"]

# Config sections, named once here for every .smk file.
TRAIN = CFG["training"]
T1 = CFG["theorem1"]
ELBO = CFG["elbo"]
SEEDS_CI = CFG["seeds_ci"]
FIG = CFG["figures"]


wildcard_constraints:
    arch="|".join(re.escape(a) for a in SWEEP_ARCHS + ["mini"]),
    split="full|mini|no[0-9]",
    seed=r"\d+",
    digit=r"[0-9]",


def repo_path(path):
    """A config path: absolute as given, else relative to the repository."""
    if path is None:
        return None
    p = Path(path)
    return str(p if p.is_absolute() else REPO / p)


def model_paths(pattern, specs=None):
    """``pattern`` formatted with arch/split/seed for every model (default: the whole grid)."""
    specs = MODELS if specs is None else specs
    return [pattern.format(arch=m.arch, split=m.split, seed=m.seed) for m in specs]


def arch_splits(arch):
    """Training splits of an architecture's models: every sweep split, or mini."""
    return ["mini"] if arch == "mini" else SWEEP_SPLITS


def arch_models(arch):
    """The ModelSpecs of one architecture, in (split, seed) order."""
    return [m for m in MODELS if m.arch == arch]


def arch_model_paths(pattern, arch):
    """``pattern`` below the results folder for every model of ``arch``."""
    return model_paths(res(pattern), arch_models(arch))


def arch_outputs(stage, ext, splits):
    """Per-model outputs of a per-architecture rule: {stage}/{arch}/{split}_s{seed}.{ext} for
    every split of ``splits`` and every seed, {arch} left a wildcard."""
    return expand(res(f"{stage}/{{{{arch}}}}/{{split}}_s{{seed}}.{ext}"), split=splits,
                  seed=SEEDS)


def spec_for(wildcards):
    return vcfg.ModelSpec(
        wildcards.arch,
        tuple(vcfg.arch_hidden(CFG, wildcards.arch)),
        vcfg.arch_z_dim(CFG, wildcards.arch),
        wildcards.split,
        int(wildcards.seed),
    )


def gpu_count(device):
    """GPUs a job asks the scheduler for: none when its device setting is 'cpu'."""
    return 0 if device == "cpu" else 1


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


# --------------------------------------------------------------------------- figures

from vae_novelty.figures.common import hidden_label, output_paths
from vae_novelty.figures.sweep import sweep_figure_number

FIG_SEED = SEEDS[0]  # image figures show the models of the first seed
FIG_DIGIT = FIG["figure1"]["digit"]


def figure_files(name):
    """{results_dir}/figures/{name}.png, then every other configured format."""
    return output_paths(res(f"figures/{name}"), FIG["formats"])


def figure_code(*modules):
    """The plotting modules a figure's script runs (inputs: editing one reruns the figure)."""
    return [repo_path(f"src/vae_novelty/figures/{m}.py")
            for m in ("common", "selection", "loaders", "build", *modules)]


def role_models(digit):
    """Figures 1-2: shallow and deep VAE, trained on MNIST^tr (when run) and without ``digit``."""
    splits = (["full"] if CFG["splits"]["include_full"] else []) + [f"no{digit}"]
    models = []
    for role in ("shallow", "deep"):
        arch = CFG["model"][role]
        hidden = hidden_label(vcfg.arch_hidden(CFG, arch))
        for split in splits:
            models.append({"role": role, "arch": arch, "split": split,
                           "title": f"{role} VAE ({hidden})"})
    return models


def theorem1_files(models, ext):
    return [res(f"theorem1/{m['arch']}/{m['split']}_s{FIG_SEED}.{ext}") for m in models]
