"""Config validation, above the schema: defaults merged in, schema violations and cross-key
problems, each as a :class:`Problem` whose message names the key (the problems and the
schema's violations in words: :mod:`vae_novelty.config.problems`).

The Snakefile calls :func:`load_config` at parse time, so a typo or an impossible value stops
the run before any job starts, with a message that names the key and what is allowed.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path

from ..size_splits import epochs_for_steps, half_digit_counts, size_problem
from .grid import selected_architectures, size_archs, sweep_splits
from .overrides import coerce_override_strings
from .problems import ConfigError, Problem, _at, schema_problems
from .schema import DEFAULTS, SCHEMA_PATH, read_schema, schema_defaults


# Class counts of the original MNIST files (used to check sizes before any data is read).
MNIST_TRAIN_COUNTS = (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)
MNIST_TEST_COUNTS = (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)

SPLIT_RE = re.compile(r"^(full|mini|no[0-9])$")


def _deep_merge(base: dict, override: dict) -> dict:
    """``base`` with ``override`` merged in key by key (mappings merge, other values replace)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def checked_config(config: dict, schema_path: Path = SCHEMA_PATH) -> tuple[dict, list[Problem]]:
    """``config`` merged over the defaults and read as the schema's types, and its problems.

    The problems are the schema's, or, when it has none, the cross-key ones (those assume a
    config of the schema's shape). :func:`load_config` and the ``check`` command both use this.
    """
    defaults = (
        DEFAULTS if Path(schema_path) == SCHEMA_PATH else schema_defaults(read_schema(schema_path))
    )
    merged = coerce_override_strings(_deep_merge(defaults, config), schema_path)
    return merged, schema_problems(merged, schema_path) or semantic_problems(merged)


def load_config(config: dict, schema_path: Path = SCHEMA_PATH) -> dict:
    """Merge defaults, validate against the schema, then check cross-key constraints.

    ``config`` is Snakemake's config: the config file(s), then any ``--config`` overrides merged
    in key by key (a nested ``--config 'training={epochs: 3}'`` changes training.epochs only).
    The defaults are the schema's (:data:`DEFAULTS` for the shipped schema), filled in before
    validation, so a key left out is valid exactly when the workflow can run without it.
    Raises :class:`ConfigError` naming every problem.
    """
    merged, problems = checked_config(config, schema_path)
    if problems:
        raise ConfigError(problems)
    return selected_architectures(merged)


def merged_architectures_note(overrides: dict, cfg: dict) -> str | None:
    """A warning when ``--config`` (``overrides``) sets ``model.architectures`` and Snakemake's
    merge kept other configured architectures beside them (``cfg``: the loaded config); None
    otherwise."""
    given = (overrides or {}).get("model")
    given = given.get("architectures") if isinstance(given, dict) else None
    if not isinstance(given, dict) or cfg["model"].get("only"):
        return None
    kept = [a for a in cfg["model"]["architectures"] if a not in given]
    if not kept:
        return None
    return (
        f"--config model.architectures is merged into the configured architectures, not "
        f"put in their place: this run has {', '.join(given)} and also {', '.join(kept)}; "
        f"to run only some, use --config 'model={{only: [{', '.join(given)}]}}' "
        f"(config/README.md, model.only)"
    )


def smallest_mnist_split(cfg: dict) -> int:
    """Size of the smallest MNIST training split the config trains on (before subsampling)."""
    digits = cfg["splits"]["heldout_digits"]
    sizes = [sum(MNIST_TRAIN_COUNTS) - MNIST_TRAIN_COUNTS[d] for d in digits]
    if cfg["splits"]["include_full"]:
        sizes.append(sum(MNIST_TRAIN_COUNTS))
    smallest = min(sizes)
    cap = cfg["splits"]["max_train_images"]
    return min(smallest, cap) if cap else smallest


def results_dir_problem(results_dir: str) -> Problem | None:
    """Why ``results_dir`` cannot hold the outputs (None if it can); relative to the working dir."""
    where = ("results_dir",)
    if "{" in results_dir or "}" in results_dir:
        return _at(
            where,
            f"{results_dir!r} contains '{{' or '}}', which Snakemake would read as "
            f"wildcards in every output path",
        )
    resolved = Path(results_dir).resolve()
    if resolved == Path(resolved.anchor):
        return _at(where, f"{results_dir!r} is the filesystem root; name a folder for the results")
    if os.path.isfile(results_dir):
        return _at(where, f"{results_dir!r} is an existing file, not a folder")
    return None


def _model_problems(model: dict) -> list[Problem]:
    """model.shallow / model.deep name architectures; no 'mini', no architecture twice."""
    archs = model["architectures"]
    problems = [
        _at(
            ("model", role),
            f"{model[role]!r} is not one of model.architectures ({', '.join(archs)})",
        )
        for role in ("shallow", "deep")
        if model[role] not in archs
    ]
    only = model.get("only") or []
    problems += [
        _at(
            ("model", "only", i), f"{name!r} is not one of model.architectures ({', '.join(archs)})"
        )
        for i, name in enumerate(only)
        if name not in archs
    ]
    problems += [
        _at(
            ("model", role),
            f"{model[role]!r} is not among model.only "
            f"({', '.join(only)}): add it there, or name one of them",
        )
        for role in ("shallow", "deep")
        if only and model[role] in archs and model[role] not in only
    ]
    seen: dict[tuple, str] = {}
    for name, widths in archs.items():
        if name == "mini":
            problems.append(
                _at(("model", "architectures"), "the name 'mini' is reserved for model.mini")
            )
        key = tuple(widths)
        if key in seen:
            problems.append(
                _at(
                    ("model", "architectures"),
                    f"{name!r} and {seen[key]!r} are the same architecture "
                    f"{list(widths)} (duplicate model ids)",
                )
            )
        seen[key] = name
    return problems


def _extra_seed_problems(cfg: dict) -> list[Problem]:
    """training.extra_seeds names configured architectures and sweep splits only."""
    archs, splits = cfg["model"]["architectures"], sweep_splits(cfg)
    problems = []
    for i, block in enumerate(cfg["training"]["extra_seeds"]):
        where = ("training", "extra_seeds", i)
        for name in block.get("architectures") or []:
            if name not in archs:
                problems.append(
                    _at(
                        (*where, "architectures"),
                        f"{name!r} is not one of model.architectures ({', '.join(archs)})",
                    )
                )
        for split in block.get("splits") or []:
            if split not in splits:
                problems.append(
                    _at(
                        (*where, "splits"),
                        f"{split!r} is not a sweep split of this configuration "
                        f"({', '.join(splits)}; from splits.include_full and "
                        f"splits.heldout_digits)",
                    )
                )
    return problems


def _size_problems(cfg: dict) -> list[Problem]:
    """Batch sizes that do not fit the training sets; a folder source without a folder."""
    problems = []
    batch, smallest = cfg["training"]["batch_size"], smallest_mnist_split(cfg)
    if batch > smallest:
        problems.append(
            _at(
                ("training", "batch_size"),
                f"{batch} is larger than the smallest training split ({smallest} images)",
            )
        )
    mini_n = 10 * cfg["splits"]["mini"]["per_digit"]
    mini_batch = cfg["training"]["mini_batch_size"]
    if mini_batch > mini_n:
        problems.append(
            _at(
                ("training", "mini_batch_size"),
                f"{mini_batch} is larger than mini-MNIST ({mini_n} images)",
            )
        )
    if cfg["data"]["source"] == "folder" and not cfg["data"]["folder"]:
        problems.append(_at(("data", "folder"), "must be set when data.source is 'folder'"))
    return problems


def _figure_problems(cfg: dict) -> list[Problem]:
    """Figure 1's digit is held out; the figures' test positions exist for every held-out digit."""
    digits = cfg["splits"]["heldout_digits"]
    fig1 = cfg["figures"]["figure1"]["digit"]
    problems = (
        []
        if fig1 in digits
        else [
            _at(
                ("figures", "figure1", "digit"),
                f"{fig1} must be one of splits.heldout_digits {digits}",
            )
        ]
    )
    limit = min(MNIST_TEST_COUNTS[d] for d in digits)
    if cfg["splits"]["max_test_per_digit"]:
        limit = min(limit, cfg["splits"]["max_test_per_digit"])
    for path, positions in (
        (("figures", "figure1", "test_images"), cfg["figures"]["figure1"]["test_images"]),
        (("figures", "sweep", "test_image"), [cfg["figures"]["sweep"]["test_image"]]),
    ):
        bad = [p for p in positions if p >= limit]
        if bad:
            problems.append(
                _at(
                    path,
                    f"positions {bad} are beyond the evaluated test images "
                    f"(each held-out digit has at least {limit}; positions "
                    f"are 0..{limit - 1})",
                )
            )
    return problems


def _size_sweep_problems(cfg: dict) -> list[Problem]:
    """size_sweep (when enabled): architectures that exist, sizes that fit a half of MNIST^tr
    with ten images of every digit, a step budget that is whole epochs for every size."""
    sweep = cfg["size_sweep"]
    if not sweep["enabled"]:
        return []
    archs = cfg["model"]["architectures"]
    problems = [
        _at(
            ("size_sweep", "architectures"),
            f"{name!r} is not one of model.architectures ({', '.join(archs)})",
        )
        for name in size_archs(cfg)
        if name not in archs
    ]
    only = cfg["model"].get("only") or []
    problems += [
        _at(
            ("size_sweep", "architectures"),
            f"{name!r} is not among model.only "
            f"({', '.join(only)}): add it there, or "
            f"name one of them",
        )
        for name in size_archs(cfg)
        if only and name in archs and name not in only
    ]
    halves = half_digit_counts(MNIST_TRAIN_COUNTS)
    for n in sweep["sizes"]:
        problem = size_problem(n, min(halves.values(), key=sum))
        if problem:
            problems.append(_at(("size_sweep", "sizes"), problem))
            continue
        try:
            epochs_for_steps(n, sweep["batch_size"], sweep["steps"])
        except ValueError as exc:
            problems.append(_at(("size_sweep", "steps"), str(exc)))
    if sweep["eval_per_digit"] > min(MNIST_TEST_COUNTS):
        problems.append(
            _at(
                ("size_sweep", "eval_per_digit"),
                f"{sweep['eval_per_digit']} is more than the test file's "
                f"{min(MNIST_TEST_COUNTS)} images of its rarest digit",
            )
        )
    return problems


def semantic_problems(cfg: dict) -> list[Problem]:
    """The constraints across keys that the schema cannot state, for a schema-valid config."""
    problems = [p for p in [results_dir_problem(cfg["results_dir"])] if p]
    return (
        problems
        + _model_problems(cfg["model"])
        + _extra_seed_problems(cfg)
        + _figure_problems(cfg)
        + _size_problems(cfg)
        + _size_sweep_problems(cfg)
    )


def check_semantics(cfg: dict) -> None:
    """Raise :class:`ConfigError` listing the :func:`semantic_problems` of ``cfg``, if any."""
    problems = semantic_problems(cfg)
    if problems:
        raise ConfigError(problems)
