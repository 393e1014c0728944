"""Which models the image figures show, from the configuration. Imported by the workflow while
it is parsed (workflow/rules/figures.smk), not by the figure scripts, which get the models as
params: so the figures' environment needs nothing of the configuration package."""

from __future__ import annotations

from ..config.grid import arch_hidden, model_id
from .naming import hidden_label


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
            models.append(
                {
                    "role": role,
                    "arch": arch,
                    "split": split,
                    "model_id": model_id(arch, split, seed),
                    "title": f"{role} VAE ({hidden})",
                }
            )
    return models
