"""The configuration, in layers: :mod:`.schema` (the shipped schema, its defaults, a walk over
its keys) at the bottom, :mod:`.overrides` (``--config`` strings read as the schema's types)
and :mod:`.problems` (a problem named by its key, the schema's violations in words) above it,
:mod:`.validate` (defaults merged in, the cross-key problems) and
:mod:`.grid` (the models a configuration trains) above it, and at the top the generated
reference (:mod:`.doc`), the file check (:mod:`.check`) and the command line (:mod:`.cli`,
``python -m vae_novelty.config``). Each layer imports only the ones below it.

This package module re-exports the names the workflow and other modules use, so that
``from vae_novelty.config import load_config, model_grid`` keeps working; the top layer
(doc, check, cli) is not imported here.
"""

from .grid import (
    ModelSpec,
    arch_grid,
    arch_hidden,
    arch_z_dim,
    architecture_order,
    eval_digits,
    model_grid,
    model_id,
    selected_architectures,
    size_archs,
    split_seeds,
    sweep_splits,
    train_params,
)
from .problems import ConfigError, Problem
from .schema import DEFAULTS, SCHEMA_PATH, read_schema, schema_defaults
from .validate import (
    MNIST_TEST_COUNTS,
    MNIST_TRAIN_COUNTS,
    SPLIT_RE,
    check_semantics,
    checked_config,
    load_config,
    merged_architectures_note,
    semantic_problems,
    smallest_mnist_split,
)

__all__ = [
    "DEFAULTS",
    "MNIST_TEST_COUNTS",
    "MNIST_TRAIN_COUNTS",
    "SCHEMA_PATH",
    "SPLIT_RE",
    "ConfigError",
    "ModelSpec",
    "Problem",
    "arch_grid",
    "arch_hidden",
    "arch_z_dim",
    "architecture_order",
    "check_semantics",
    "checked_config",
    "eval_digits",
    "load_config",
    "merged_architectures_note",
    "model_grid",
    "model_id",
    "read_schema",
    "schema_defaults",
    "selected_architectures",
    "semantic_problems",
    "size_archs",
    "smallest_mnist_split",
    "split_seeds",
    "sweep_splits",
    "train_params",
]
