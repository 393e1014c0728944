"""The model grid: which VAEs a configuration trains (architecture x split x seed), and
their ids. Works on a validated configuration (:func:`vae_novelty.config.load_config`)."""

from __future__ import annotations

from dataclasses import dataclass


def model_id(arch: str, split: str, seed: int) -> str:
    """The id of one trained model: ``{arch}.{split}.s{seed}`` (e.g. ``h400.no9.s0``)."""
    return f"{arch}.{split}.s{int(seed)}"


@dataclass(frozen=True)
class ModelSpec:
    """One trained VAE: an architecture, a training split and a seed."""

    arch: str
    hidden: tuple[int, ...]
    z_dim: int
    split: str
    seed: int

    @property
    def model_id(self) -> str:
        return model_id(self.arch, self.split, self.seed)

    @property
    def stem(self) -> str:
        """Path stem below a results folder: ``{arch}/{split}_s{seed}``."""
        return f"{self.arch}/{self.split}_s{self.seed}"

    @property
    def heldout_digit(self) -> int | None:
        return int(self.split[2:]) if self.split.startswith("no") else None


def architecture_order(item: tuple[str, list[int]]) -> tuple:
    """The canonical order of the architectures: by depth, then widths, then name (the order
    config/config.yaml lists them in), so that their order in a config file changes nothing."""
    name, widths = item
    return len(widths), list(widths), name


def selected_architectures(cfg: dict) -> dict:
    """``cfg`` (validated) with ``model.architectures`` in :func:`architecture_order` and
    restricted to ``model.only`` when it is set."""
    model = cfg["model"]
    only = model.get("only")
    archs = sorted(model["architectures"].items(), key=architecture_order)
    model["architectures"] = {n: list(w) for n, w in archs if not only or n in only}
    return cfg


def sweep_splits(cfg: dict) -> list[str]:
    splits = ["full"] if cfg["splits"]["include_full"] else []
    return splits + [f"no{d}" for d in sorted(cfg["splits"]["heldout_digits"])]


def eval_digits(cfg: dict, split: str) -> list[int]:
    """Test digits a model trained on ``split`` is evaluated on."""
    if split.startswith("no"):
        return [int(split[2:])]
    return sorted(cfg["splits"]["heldout_digits"])


def split_seeds(cfg: dict, arch: str, split: str) -> list[int]:
    """Seeds of the models of ``arch`` trained on ``split``: training.seeds, then the seeds of
    every training.extra_seeds block that applies to (arch, split), in order, each once. The
    mini model has training.seeds only."""
    seeds = list(cfg["training"]["seeds"])
    if arch == "mini":
        return seeds
    for block in cfg["training"].get("extra_seeds") or []:
        if (block.get("architectures") in (None, []) or arch in block["architectures"]) and (
            block.get("splits") in (None, []) or split in block["splits"]
        ):
            seeds += [s for s in block["seeds"] if s not in seeds]
    return seeds


def arch_grid(cfg: dict, arch: str) -> list[tuple[str, int]]:
    """(split, seed) of every model of ``arch``, split by split (the order of its job's
    outputs)."""
    splits = ["mini"] if arch == "mini" else sweep_splits(cfg)
    return [(split, seed) for split in splits for seed in split_seeds(cfg, arch, split)]


def model_grid(cfg: dict) -> list[ModelSpec]:
    z = cfg["model"]["z_dim"]
    specs = [
        ModelSpec(arch, tuple(widths), z, split, seed)
        for arch, widths in cfg["model"]["architectures"].items()
        for split, seed in arch_grid(cfg, arch)
    ]
    mini = cfg["model"]["mini"]
    specs += [
        ModelSpec("mini", tuple(mini["hidden"]), mini["z_dim"], "mini", seed)
        for seed in cfg["training"]["seeds"]
    ]
    return specs


def arch_hidden(cfg: dict, arch: str) -> list[int]:
    if arch == "mini":
        return list(cfg["model"]["mini"]["hidden"])
    return list(cfg["model"]["architectures"][arch])


def arch_z_dim(cfg: dict, arch: str) -> int:
    return cfg["model"]["mini"]["z_dim"] if arch == "mini" else cfg["model"]["z_dim"]


def train_params(cfg: dict, arch: str) -> dict:
    """The training rule's params for ``arch``: everything that changes its trained models
    (widths, dim(z), every (split, seed) in output order, epochs, batch size, learning rate,
    trainer, TF32); mini-MNIST has its own epochs and batch size. The keys of
    :class:`vae_novelty.hyperparams.TrainSettings` are among them."""
    train, mini = cfg["training"], arch == "mini"
    return {
        "hidden": arch_hidden(cfg, arch),
        "z_dim": arch_z_dim(cfg, arch),
        "models": [list(m) for m in arch_grid(cfg, arch)],
        "epochs": train["mini_epochs"] if mini else train["epochs"],
        "batch_size": train["mini_batch_size"] if mini else train["batch_size"],
        "learning_rate": train["learning_rate"],
        "ensemble": train["ensemble"],
        "tf32": train["tf32"],
    }


def size_archs(cfg: dict) -> list[str]:
    """The architectures of the size sweep: size_sweep.architectures, or model.shallow and
    model.deep."""
    names = cfg["size_sweep"]["architectures"]
    if names is None:
        names = [cfg["model"]["shallow"], cfg["model"]["deep"]]
    return list(dict.fromkeys(names))
