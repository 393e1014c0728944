"""The hyperparameters of a VAE's training, one type for every layer that handles them.

:class:`TrainSettings` is what the training rule's ``params`` hand over (the architecture's
widths and dim(z), epochs, batch size, learning rate). The single-model trainer
(:func:`vae_novelty.train.train_vae`, with one seed), the ensemble trainer
(:func:`vae_novelty.ensemble.train_ensemble`, one seed per member), the job layer
(:mod:`vae_novelty.training_jobs`), the size sweep (:mod:`vae_novelty.size_train`) and the rule
scripts all take this type; :meth:`TrainSettings.record` is the form written into model files
(``train_config``) and snapshot keys. A model's seed and its architecture's name are not
hyperparameters: they name the model and are passed beside the settings.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Mapping

FIELDS = ("hidden", "z_dim", "epochs", "batch_size", "learning_rate")


@dataclass(frozen=True)
class TrainSettings:
    """The hyperparameters shared by every model of one architecture: ``hidden`` (the widths
    of the encoder's hidden layers, the decoder mirrors them), ``z_dim``, ``epochs``,
    ``batch_size`` and the Adam ``learning_rate``."""

    hidden: tuple[int, ...]
    z_dim: int
    epochs: int
    batch_size: int
    learning_rate: float

    def __post_init__(self):
        object.__setattr__(self, "hidden", tuple(self.hidden))
        problems = []
        if not self.hidden or not all(_positive_int(h) for h in self.hidden):
            problems.append(
                f"hidden {list(self.hidden)} must be a non-empty list of positive integers"
            )
        for name in ("z_dim", "epochs", "batch_size"):
            if not _positive_int(getattr(self, name)):
                problems.append(f"{name} {getattr(self, name)!r} must be a positive integer")
        lr = self.learning_rate
        if (
            isinstance(lr, bool)
            or not isinstance(lr, numbers.Real)
            or not (math.isfinite(lr) and lr > 0)
        ):
            problems.append(f"learning_rate {lr!r} must be a finite number > 0")
        if problems:
            raise ValueError("invalid training settings: " + "; ".join(problems))

    @classmethod
    def from_params(cls, params: Mapping[str, Any], **override) -> "TrainSettings":
        """The settings in a rule's ``params`` mapping (keys :data:`FIELDS`; other keys are
        ignored), with ``override`` replacing some of them."""
        values = {**{k: params[k] for k in FIELDS if k in params}, **override}
        missing = [k for k in FIELDS if k not in values]
        if missing:
            raise ValueError(f"training settings lack {', '.join(missing)}")
        return cls(**values)

    def record(self, seed: int | None = None) -> dict:
        """The settings as plain values, in the order model files and snapshot keys record
        them; with ``seed``, one model's (``seed`` last)."""
        out = {
            "hidden": list(self.hidden),
            "z_dim": self.z_dim,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
        }
        if seed is not None:
            out["seed"] = seed
        return out


def _positive_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value > 0
