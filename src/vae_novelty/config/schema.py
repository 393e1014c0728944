"""The config schema, the bottom layer of :mod:`vae_novelty.config`: where it is, reading it,
its defaults and a walk over its keys.

``config.schema.yaml`` beside this module is the one home of every key's default, bounds,
meaning and what a change reruns. It ships inside the package (package data), so an installed
``vae_novelty`` finds it from any folder; the workflow reads the same file through
:data:`SCHEMA_PATH`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().with_name("config.schema.yaml")


def read_schema(schema_path: Path = SCHEMA_PATH) -> dict:
    """The config schema: the one home of every key's default, bounds, meaning and reruns."""
    return yaml.safe_load(Path(schema_path).read_text())


def schema_defaults(schema: dict) -> dict[str, Any]:
    """The ``default`` of every key of ``schema``, nested as the config is.

    A section appears when at least one of its keys has a default; keys without one are
    required (tests/test_config.py checks that every key is one or the other).
    """
    out: dict[str, Any] = {}
    for key, node in schema.get("properties", {}).items():
        if "default" in node:
            out[key] = copy.deepcopy(node["default"])
        elif "properties" in node:
            inner = schema_defaults(node)
            if inner:
                out[key] = inner
    return out


# Values used where the user's config leaves an optional key out: read from the schema's
# ``default`` annotations (config.schema.yaml beside this module), never written down twice.
DEFAULTS: dict[str, Any] = schema_defaults(read_schema())


@dataclass(frozen=True)
class SchemaKey:
    """One key of the schema: its dotted name, its node and the node with ``$ref`` resolved."""

    name: str
    node: dict
    resolved: dict
    required: bool

    @property
    def is_section(self) -> bool:
        return "properties" in self.resolved


def resolve(node: dict, schema: dict) -> dict:
    """``node`` with a local ``$ref`` (``#/$defs/...``) replaced by its target; siblings win."""
    if "$ref" not in node:
        return node
    target: Any = schema
    for part in node["$ref"].removeprefix("#/").split("/"):
        target = target[part]
    return {**resolve(target, schema), **{k: v for k, v in node.items() if k != "$ref"}}


def schema_keys(schema: dict, node: dict | None = None, prefix: str = "") -> list[SchemaKey]:
    """Every key of the schema, sections before their keys, in the schema's order."""
    node = schema if node is None else node
    required = set(node.get("required", ()))
    keys = []
    for name, child in node.get("properties", {}).items():
        key = SchemaKey(prefix + name, child, resolve(child, schema), name in required)
        keys.append(key)
        if key.is_section:
            keys += schema_keys(schema, key.resolved, key.name + ".")
    return keys


def schema_validator(schema_path: Path = SCHEMA_PATH) -> jsonschema.Draft202012Validator:
    """A validator for the schema at ``schema_path``."""
    return jsonschema.Draft202012Validator(read_schema(schema_path))


def type_names(value: Any) -> list[str]:
    """A schema ``type`` (one name or a list of names) as a list of type names."""
    return [value] if isinstance(value, str) else list(value)
