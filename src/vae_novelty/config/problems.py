"""Problems with a config, each named by its key: :class:`Problem`, :class:`ConfigError`, and
the schema's violations and the non-finite numbers of a config in words
(:func:`schema_problems`). Above the schema; :mod:`vae_novelty.config.validate` merges in the
defaults and adds the cross-key problems.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import jsonschema

from .schema import SCHEMA_PATH, schema_validator, type_names


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config: the key path it is about and a message naming the key.

    The path lets ``python -m vae_novelty.config check`` find the key's line in the file.
    """

    path: tuple
    message: str


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range (``problems``: each one)."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = list(problems)
        super().__init__(
            "invalid configuration:\n  - " + "\n  - ".join(p.message for p in self.problems)
        )

    def __reduce__(self):
        """Pickled with its problems (the default would pass the message as ``problems``)."""
        return type(self), (self.problems,)


def _key_path(path: Iterable[Any]) -> str:
    """``training.epochs`` for the path ``('training', 'epochs')``."""
    parts = [str(p) for p in path]
    return ".".join(parts) if parts else "(top level)"


def _at(path: Iterable[Any], text: str) -> Problem:
    """A problem with the key at ``path``: ``config key training.epochs: {text}``."""
    path = tuple(path)
    return Problem(path, f"config key {_key_path(path)}: {text}")


def _unknown_keys(error: jsonschema.ValidationError) -> Problem:
    """The keys an ``additionalProperties: false`` section does not know, and those it does."""
    where = _key_path(error.absolute_path)
    allowed = sorted(error.schema.get("properties", {}))
    extra = sorted(set(error.instance) - set(allowed), key=str)
    names = ", ".join(f"{where}.{k}" if error.absolute_path else str(k) for k in extra)
    hint = f" (allowed keys: {', '.join(allowed)})" if allowed else ""
    return Problem((*error.absolute_path, *extra[:1]), f"unknown config key {names}{hint}")


def _violation(error: jsonschema.ValidationError) -> str:
    """What is wrong with the value of one schema violation, in words."""
    if error.validator == "enum":
        return f"{error.instance!r} is not one of {', '.join(map(repr, error.validator_value))}"
    if error.validator == "type":
        return f"{error.instance!r} is not of type {error.validator_value}"
    if error.validator == "pattern":
        return (
            f"{error.instance!r} must match {error.validator_value} "
            f"(lower-case letters, digits and '-')"
        )
    return error.message


def _describe(error: jsonschema.ValidationError) -> Problem:
    """One problem per schema violation, naming the key and the allowed values."""
    if error.validator == "additionalProperties":
        return _unknown_keys(error)
    if error.validator in ("anyOf", "oneOf") and error.context:
        # e.g. "a count or null": name the bound that was broken, not "not valid under any".
        specific = [e for e in error.context if e.validator != "type"]
        if specific:
            return _describe(specific[0])
        types = [t for e in error.context for t in type_names(e.validator_value)]
        return _at(error.absolute_path, f"{error.instance!r} is not of type {' or '.join(types)}")
    return _at(error.absolute_path, _violation(error))


def non_finite_numbers(config: Any, path: tuple = ()) -> list[tuple[tuple, float]]:
    """Every NaN, +inf or -inf anywhere in ``config`` (mappings and lists), with its key path."""
    if isinstance(config, float):
        return [] if math.isfinite(config) else [(path, config)]
    if isinstance(config, dict):
        items = config.items()
    elif isinstance(config, (list, tuple)):
        items = enumerate(config)
    else:
        return []
    return [hit for key, value in items for hit in non_finite_numbers(value, (*path, key))]


def schema_problems(config: dict, schema_path: Path = SCHEMA_PATH) -> list[Problem]:
    """Schema violations and non-finite numbers, one problem each, naming the key.

    JSON-schema bounds do not stop NaN (every comparison with NaN is false), so NaN and
    +-infinity are refused here for every number in the config, whatever its key.
    """
    bad_numbers = non_finite_numbers(config)
    problems = [
        _at(path, f"{value!r} is not a finite number (NaN and infinity are not allowed)")
        for path, value in bad_numbers
    ]
    bad_paths = {tuple(map(str, path)) for path, _ in bad_numbers}
    errors = sorted(
        schema_validator(schema_path).iter_errors(config),
        key=lambda e: list(map(str, e.absolute_path)),
    )
    return problems + [
        _describe(e) for e in errors if tuple(map(str, e.absolute_path)) not in bad_paths
    ]


def validate_schema(config: dict, schema_path: Path = SCHEMA_PATH) -> None:
    """Raise :class:`ConfigError` listing the :func:`schema_problems` of ``config``, if any."""
    problems = schema_problems(config, schema_path)
    if problems:
        raise ConfigError(problems)
