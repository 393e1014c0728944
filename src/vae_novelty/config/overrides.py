"""Values of Snakemake's ``--config`` overrides read as the schema's types, above the schema.

Snakemake parses a nested ``--config 'training={epochs: 3}'`` with YAML's BaseLoader, so every
value inside the braces arrives as a string; :func:`coerce_override_strings` reads such strings
as the numbers, booleans or nulls the schema asks for, before validation
(:mod:`vae_novelty.config.validate`).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Iterable

from .schema import SCHEMA_PATH, schema_validator, type_names

# Strings that a schema type accepts when it comes from Snakemake's --config (see below).
_NULL_WORDS = {"null", "Null", "NULL", "~"}
_BOOL_WORDS = {
    "true": True,
    "True": True,
    "TRUE": True,
    "false": False,
    "False": False,
    "FALSE": False,
}
_INT_RE = re.compile(r"[-+]?[0-9]+")
_FLOAT_RE = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


def _from_string(text: str, types: Iterable[str]) -> tuple[bool, Any]:
    """``text`` read as the first of ``types`` it spells exactly (finite numbers only)."""
    for kind in types:
        if kind == "null" and text in _NULL_WORDS:
            return True, None
        if kind == "boolean" and text in _BOOL_WORDS:
            return True, _BOOL_WORDS[text]
        if kind == "integer" and _INT_RE.fullmatch(text):
            return True, int(text)
        if kind == "number" and _FLOAT_RE.fullmatch(text):
            return True, int(text) if _INT_RE.fullmatch(text) else float(text)
    return False, text


def coerce_override_strings(config: dict, schema_path: Path = SCHEMA_PATH) -> dict:
    """Read strings as numbers, booleans or null where the schema wants one of those.

    Snakemake parses a nested ``--config 'training={epochs: 3}'`` with YAML's BaseLoader, so
    every value inside the braces arrives as a string (``{'epochs': '3'}``). A string is
    converted only where the schema rejects it for its type and it spells an allowed type
    exactly (``3``, ``1e-3``, ``true``, ``null``); anything else is left for the schema
    validation to report. Returns a converted copy.
    """
    out = copy.deepcopy(config)
    validator = schema_validator(schema_path)
    for error in list(validator.iter_errors(out)):
        if not isinstance(error.instance, str) or not error.absolute_path:
            continue
        if error.validator == "type":
            types = type_names(error.validator_value)
        elif error.validator in ("anyOf", "oneOf"):
            types = [
                t
                for e in error.context or ()
                if e.validator == "type" and not e.path
                for t in type_names(e.validator_value)
            ]
        else:
            continue
        ok, value = _from_string(error.instance, types)
        if ok:
            *parents, last = error.absolute_path
            node = out
            for key in parents:
                node = node[key]
            node[last] = value
    return out
