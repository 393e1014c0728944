"""Names of figures and their files, without plotting (imported while the workflow is parsed,
so it must not import matplotlib)."""

from __future__ import annotations

from typing import Iterable, Sequence

from ..config.grid import arch_hidden, model_id


def hidden_label(hidden: Sequence[int] | str) -> str:
    """Encoder widths as ``400-200-100``."""
    if isinstance(hidden, str):
        return hidden
    return "-".join(str(int(h)) for h in hidden)


def output_paths(stem: str, formats: Iterable[str]) -> list[str]:
    """``stem.png`` first, then every other configured format once."""
    exts = ["png"] + [f for f in formats if f != "png"]
    return [f"{stem}.{ext}" for ext in dict.fromkeys(exts)]


def sweep_figure_number(digit: int) -> int:
    """The paper's numbering: Figure 4 holds out 9, Figures 5-13 hold out 0..8."""
    return 4 if int(digit) == 9 else int(digit) + 5


def role_models(cfg: dict, digit: int, seed: int) -> list[dict]:
    """Figures 1-2: the shallow and the deep VAE (``model.shallow``, ``model.deep``) of seed
    ``seed``, trained on MNIST^tr (when run) and without ``digit``: role, arch, split, model id
    and title of each, shallow first."""
    splits = (["full"] if cfg["splits"]["include_full"] else []) + [f"no{digit}"]
    models = []
    for role in ("shallow", "deep"):
        arch = cfg["model"][role]
        hidden = hidden_label(arch_hidden(cfg, arch))
        for split in splits:
            models.append({"role": role, "arch": arch, "split": split,
                           "model_id": model_id(arch, split, seed),
                           "title": f"{role} VAE ({hidden})"})
    return models
