"""Configuration: defaults, schema validation with readable messages, and the model grid.

The Snakefile calls :func:`load_config` at parse time, so a typo or an impossible value stops
the run before any job starts, with a message that names the key and what is allowed.
"""

from __future__ import annotations

import copy
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


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
# ``default`` annotations (workflow/schemas/config.schema.yaml), never written down twice.
DEFAULTS: dict[str, Any] = schema_defaults(read_schema())


# Class counts of the original MNIST files (used to check sizes before any data is read).
MNIST_TRAIN_COUNTS = (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)
MNIST_TEST_COUNTS = (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)

SPLIT_RE = re.compile(r"^(full|mini|no[0-9])$")


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range."""


def _deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _key_path(path: Iterable[Any]) -> str:
    parts = [str(p) for p in path]
    return ".".join(parts) if parts else "(top level)"


def _describe(error: jsonschema.ValidationError, schema: dict) -> str:
    """One line per schema violation, naming the key and the allowed values."""
    where = _key_path(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        names = ", ".join(f"{where}.{k}" if error.absolute_path else k for k in extra)
        hint = f" (allowed keys: {', '.join(allowed)})" if allowed else ""
        return f"unknown config key {names}{hint}"
    if error.validator == "enum":
        return (f"config key {where}: {error.instance!r} is not one of "
                f"{', '.join(map(repr, error.validator_value))}")
    if error.validator == "required":
        return f"config key {where}: {error.message}"
    if error.validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return f"config key {where}: {error.message}"
    if error.validator in ("anyOf", "oneOf") and error.context:
        # e.g. "a count or null": name the bound that was broken, not "not valid under any".
        specific = [e for e in error.context if e.validator != "type"]
        if specific:
            return _describe(specific[0], schema)
        types = [t for e in error.context for t in _types(e.validator_value)]
        return f"config key {where}: {error.instance!r} is not of type {' or '.join(types)}"
    if error.validator == "type":
        return f"config key {where}: {error.instance!r} is not of type {error.validator_value}"
    if error.validator == "pattern":
        return (f"config key {where}: {error.instance!r} must match {error.validator_value} "
                f"(lower-case letters, digits and '-')")
    return f"config key {where}: {error.message}"


def _types(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _schema_validator(schema_path: Path) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(read_schema(schema_path))


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


def validate_schema(config: dict, schema_path: Path = SCHEMA_PATH) -> None:
    """Schema violations and non-finite numbers, one line each, naming the key.

    JSON-schema bounds do not stop NaN (every comparison with NaN is false), so NaN and
    +-infinity are refused here for every number in the config, whatever its key.
    """
    schema = read_schema(schema_path)
    validator = jsonschema.Draft202012Validator(schema)
    bad_numbers = non_finite_numbers(config)
    lines = [f"config key {_key_path(path)}: {value!r} is not a finite number "
             f"(NaN and infinity are not allowed)" for path, value in bad_numbers]
    bad_paths = {tuple(map(str, path)) for path, _ in bad_numbers}
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    lines += [_describe(e, schema) for e in errors
              if tuple(map(str, e.absolute_path)) not in bad_paths]
    if lines:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(lines))


# Strings that a schema type accepts when it comes from Snakemake's --config (see below).
_NULL_WORDS = {"null", "Null", "NULL", "~"}
_BOOL_WORDS = {"true": True, "True": True, "TRUE": True,
               "false": False, "False": False, "FALSE": False}
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
    validator = _schema_validator(schema_path)
    for error in list(validator.iter_errors(out)):
        if not isinstance(error.instance, str) or not error.absolute_path:
            continue
        if error.validator == "type":
            types = _types(error.validator_value)
        elif error.validator in ("anyOf", "oneOf"):
            types = [t for e in error.context or () if e.validator == "type" and not e.path
                     for t in _types(e.validator_value)]
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


def load_config(config: dict, schema_path: Path = SCHEMA_PATH) -> dict:
    """Merge defaults, validate against the schema, then check cross-key constraints.

    ``config`` is Snakemake's config: the config file(s), then any ``--config`` overrides merged
    in key by key (a nested ``--config 'training={epochs: 3}'`` changes training.epochs only).
    The defaults are the schema's (:data:`DEFAULTS` for the shipped schema), filled in before
    validation, so a key left out is valid exactly when the workflow can run without it.
    """
    defaults = DEFAULTS if Path(schema_path) == SCHEMA_PATH else schema_defaults(
        read_schema(schema_path))
    merged = coerce_override_strings(_deep_merge(defaults, config), schema_path)
    validate_schema(merged, schema_path)
    check_semantics(merged)
    return merged


def smallest_mnist_split(cfg: dict) -> int:
    """Size of the smallest MNIST training split the config trains on (before subsampling)."""
    digits = cfg["splits"]["heldout_digits"]
    sizes = [sum(MNIST_TRAIN_COUNTS) - MNIST_TRAIN_COUNTS[d] for d in digits]
    if cfg["splits"]["include_full"]:
        sizes.append(sum(MNIST_TRAIN_COUNTS))
    smallest = min(sizes)
    cap = cfg["splits"]["max_train_images"]
    return min(smallest, cap) if cap else smallest


def results_dir_problem(results_dir: str) -> str | None:
    """Why ``results_dir`` cannot hold the outputs (None if it can); relative to the working dir."""
    where = f"config key results_dir: {results_dir!r}"
    if "{" in results_dir or "}" in results_dir:
        return (f"{where} contains '{{' or '}}', which Snakemake would read as wildcards in "
                f"every output path")
    resolved = Path(results_dir).resolve()
    if resolved == Path(resolved.anchor):
        return f"{where} is the filesystem root; name a folder for the results"
    if os.path.isfile(results_dir):
        return f"{where} is an existing file, not a folder"
    return None


def check_semantics(cfg: dict) -> None:
    problems = []
    bad_results_dir = results_dir_problem(cfg["results_dir"])
    if bad_results_dir:
        problems.append(bad_results_dir)
    archs = cfg["model"]["architectures"]
    for role in ("shallow", "deep"):
        name = cfg["model"][role]
        if name not in archs:
            problems.append(f"config key model.{role}: {name!r} is not one of model.architectures "
                            f"({', '.join(archs)})")
    seen: dict[tuple, str] = {}
    for name, widths in archs.items():
        if name == "mini":
            problems.append("config key model.architectures: the name 'mini' is reserved for "
                            "model.mini")
        key = tuple(widths)
        if key in seen:
            problems.append(f"config key model.architectures: {name!r} and {seen[key]!r} are the "
                            f"same architecture {list(widths)} (duplicate model ids)")
        seen[key] = name
    digits = cfg["splits"]["heldout_digits"]
    fig1 = cfg["figures"]["figure1"]["digit"]
    if fig1 not in digits:
        problems.append(f"config key figures.figure1.digit: {fig1} must be one of "
                        f"splits.heldout_digits {digits}")
    batch = cfg["training"]["batch_size"]
    smallest = smallest_mnist_split(cfg)
    if batch > smallest:
        problems.append(f"config key training.batch_size: {batch} is larger than the smallest "
                        f"training split ({smallest} images)")
    mini_n = 10 * cfg["splits"]["mini"]["per_digit"]
    mini_batch = cfg["training"]["mini_batch_size"]
    if mini_batch > mini_n:
        problems.append(f"config key training.mini_batch_size: {mini_batch} is larger than "
                        f"mini-MNIST ({mini_n} images)")
    if cfg["data"]["source"] == "folder" and not cfg["data"]["folder"]:
        problems.append("config key data.folder: must be set when data.source is 'folder'")
    per_digit = cfg["splits"]["max_test_per_digit"]
    for what, positions in (("figures.figure1.test_images", cfg["figures"]["figure1"]["test_images"]),
                            ("figures.sweep.test_image", [cfg["figures"]["sweep"]["test_image"]])):
        limit = min(MNIST_TEST_COUNTS[d] for d in digits)
        if per_digit:
            limit = min(limit, per_digit)
        bad = [p for p in positions if p >= limit]
        if bad:
            problems.append(f"config key {what}: positions {bad} are beyond the evaluated test "
                            f"images (each held-out digit has at least {limit}; positions are "
                            f"0..{limit - 1})")
    if problems:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(problems))


# --------------------------------------------------------------------------- model grid

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


def sweep_splits(cfg: dict) -> list[str]:
    splits = ["full"] if cfg["splits"]["include_full"] else []
    return splits + [f"no{d}" for d in sorted(cfg["splits"]["heldout_digits"])]


def eval_digits(cfg: dict, split: str) -> list[int]:
    """Test digits a model trained on ``split`` is evaluated on."""
    if split.startswith("no"):
        return [int(split[2:])]
    return sorted(cfg["splits"]["heldout_digits"])


def model_grid(cfg: dict) -> list[ModelSpec]:
    z = cfg["model"]["z_dim"]
    specs = [ModelSpec(arch, tuple(widths), z, split, seed)
             for arch, widths in cfg["model"]["architectures"].items()
             for split in sweep_splits(cfg)
             for seed in cfg["training"]["seeds"]]
    mini = cfg["model"]["mini"]
    specs += [ModelSpec("mini", tuple(mini["hidden"]), mini["z_dim"], "mini", seed)
              for seed in cfg["training"]["seeds"]]
    return specs


def arch_hidden(cfg: dict, arch: str) -> list[int]:
    if arch == "mini":
        return list(cfg["model"]["mini"]["hidden"])
    return list(cfg["model"]["architectures"][arch])


def arch_z_dim(cfg: dict, arch: str) -> int:
    return cfg["model"]["mini"]["z_dim"] if arch == "mini" else cfg["model"]["z_dim"]


# --------------------------------------------------------------------------- reference

REGENERATE = "PYTHONPATH=src python -m vae_novelty.config --markdown > config/README.md"


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


def _resolve(node: dict, schema: dict) -> dict:
    """``node`` with a local ``$ref`` (``#/$defs/...``) replaced by its target; siblings win."""
    if "$ref" not in node:
        return node
    target: Any = schema
    for part in node["$ref"].removeprefix("#/").split("/"):
        target = target[part]
    return {**_resolve(target, schema), **{k: v for k, v in node.items() if k != "$ref"}}


def schema_keys(schema: dict, node: dict | None = None, prefix: str = "") -> list[SchemaKey]:
    """Every key of the schema, sections before their keys, in the schema's order."""
    node = schema if node is None else node
    required = set(node.get("required", ()))
    keys = []
    for name, child in node.get("properties", {}).items():
        key = SchemaKey(prefix + name, child, _resolve(child, schema), name in required)
        keys.append(key)
        if key.is_section:
            keys += schema_keys(schema, key.resolved, key.name + ".")
    return keys


def _inline(value: Any) -> str:
    """``value`` as one line of YAML (``null``, ``true``, ``[png, pdf]``, ``1.0e-06``)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()
    return text.removesuffix("...").strip()


def _number(value: Any) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(value)


def _range(node: dict) -> str:
    """``0 < x ≤ 10`` from the schema's bounds ('' when there are none)."""
    low = high = ""
    if "minimum" in node:
        low = f"{_number(node['minimum'])} ≤ "
    elif "exclusiveMinimum" in node:
        low = f"{_number(node['exclusiveMinimum'])} < "
    if "maximum" in node:
        high = f" ≤ {_number(node['maximum'])}"
    elif "exclusiveMaximum" in node:
        high = f" < {_number(node['exclusiveMaximum'])}"
    return f"{low}x{high}" if low or high else ""


def _count(node: dict, low: str, high: str, noun: str, nouns: str) -> str:
    """``1 to 1000 items``, ``at least 1 item``, ``at most 3 items`` or ''."""
    lo, hi = node.get(low), node.get(high)
    if lo is not None and hi is not None:
        return f"{lo} to {hi} {nouns}"
    if lo is not None:
        return f"at least {lo} {noun if lo == 1 else nouns}"
    return f"at most {hi} {noun if hi == 1 else nouns}" if hi is not None else ""


def allowed_values(node: dict, schema: dict, plural: bool = False) -> str:
    """What a key accepts, in words, from its schema node (types, enum, bounds, sizes)."""
    node = _resolve(node, schema)
    s = "s" if plural else ""
    if "anyOf" in node:
        return " or ".join(allowed_values(n, schema, plural) for n in node["anyOf"])
    if "enum" in node:
        values = ", ".join(f"`{_inline(v)}`" for v in node["enum"])
        return f"values from {values}" if plural else f"one of {values}"
    types = node.get("type", [])
    types = [types] if isinstance(types, str) else list(types)
    if "null" in types and len(types) > 1:
        rest = [t for t in types if t != "null"]
        return allowed_values({**node, "type": rest[0] if len(rest) == 1 else rest}, schema,
                              plural) + " or null"
    kind = types[0] if types else "any value"
    if kind in ("integer", "number"):
        bounds = _range(node)
        return f"{kind}{s} {bounds}" if bounds else f"{kind}{s}"
    if kind == "string":
        extra = ", non-empty" if node.get("minLength", 0) >= 1 else ""
        return f"string{s}{extra}"
    if kind == "boolean":
        return "booleans" if plural else "`true` or `false`"
    if kind == "null":
        return "null"
    if kind == "array":
        notes = [_count(node, "minItems", "maxItems", "item", "items")]
        if node.get("uniqueItems"):
            notes.append("no repeats")
        notes = [x for x in notes if x]
        items = allowed_values(node.get("items", {}), schema, plural=True)
        each = " each" if plural else ""
        return f"list{s} of {items}" + (f" ({', '.join(notes)}{each})" if notes else "")
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):
        names = node.get("propertyNames", {}).get("pattern")
        named = f" of names matching `{names}`" if names else ""
        size = _count(node, "minProperties", "maxProperties", "entry", "entries")
        values = allowed_values(node["additionalProperties"], schema, plural=True)
        return f"mapping{named} to {values}" + (f"; {size}" if size else "")
    if kind == "object":
        return "mapping (keys below)"
    return kind


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


README_INTRO = f"""\
# Configuration

_Generated from `workflow/schemas/config.schema.yaml` by `{REGENERATE}`:
edit the schema, then regenerate (tests/test_config.py checks that this file is current)._

The schema is the one home of every setting: its default, its bounds, its meaning and what a
change reruns. `vae_novelty.config.DEFAULTS` is read from it, and the Snakefile validates the
config against it before any job starts (an unknown key or an impossible value stops the run
with a message naming the key).

## Configs in this folder

- `config.yaml`: the full reproduction (17 architectures, every held-out digit); used when
  no `--configfile` is given.
- `quick.yaml`: every rule of the full run at reduced size (minutes on a CPU).
- `paper-core.yaml`: Figures 1-4 at paper scale: the 17 architectures trained on MNIST^tr
  and on MNIST^tr without 9, and the mini-MNIST model.
- `epoch-study.yaml`: the models of Figures 1-3 at full scale, one training length per run
  (`--config results_dir=results/epochs30 'training={{epochs: 30}}'`).
- `fashion.yaml`: Fashion-MNIST through the same pipeline.

## How settings combine

1. **Config file.** Without `--configfile` the Snakefile loads `config/config.yaml`. With
   `--configfile config/X.yaml` it does not read `config/config.yaml` at all: the given file
   replaces it, which is why every shipped file is complete. Several `--configfile` files are
   merged key by key, later files winning.
2. **Defaults.** Keys the config leaves out take the defaults below (filled in before
   validation); a key marked *required* must be given.
3. **Command line.** `--config` overrides single values of whichever file is in use, merged
   key by key: `--config results_dir=results/x` sets a top-level key, and
   `--config 'training={{epochs: 3}}'` changes `training.epochs` only (the other `training`
   keys stay). Dotted names (`--config training.epochs=3`) are rejected by Snakemake. Values
   inside the braces arrive as strings and are read as the type the schema wants (`3`,
   `1e-3`, `true`, `null`). Mappings merge and lists are replaced, so an override can add
   an architecture to `model.architectures` but not remove one (use a config file for that).

"Changing it reruns" says what Snakemake reruns on a completed run when the value changes:
settings that change results are rule `params` (a changed value reruns the job and everything
downstream), speed-only settings are rule `resources` (not fingerprinted: they rerun nothing).
"Everything after" means every later stage that reads the rerun outputs, up to the figures.
"""


def config_reference_markdown(schema: dict | None = None) -> str:
    """config/README.md: the introduction, then one table of keys per config section."""
    schema = read_schema() if schema is None else schema
    header = ("| Key | Meaning | Default | Allowed values | Changing it reruns |\n"
              "|---|---|---|---|---|\n")
    keys = schema_keys(schema)
    groups: list[tuple[SchemaKey | None, list[SchemaKey]]] = [(None, [])]
    for key in keys:
        if key.is_section:
            groups.append((key, []))
        else:
            parent = key.name.rpartition(".")[0]
            group = next(g for g in groups if (g[0].name if g[0] else "") == parent)
            group[1].append(key)
    parts = [README_INTRO, "## Settings\n"]
    for section, members in groups:
        if not members:
            continue
        title = f"`{section.name}`" if section else "Top level"
        about = f"{_cell(section.resolved.get('description', ''))}\n\n" if section else ""
        rows = []
        for key in members:
            node = key.resolved
            default = f"`{_cell(_inline(node['default']))}`" if "default" in node else (
                "*required*" if key.required else "")
            rows.append(f"| `{key.name}` | {_cell(node.get('description', ''))} | {default} | "
                        f"{_cell(allowed_values(node, schema))} | "
                        f"{_cell(node.get('x-reruns', ''))} |\n")
        parts.append(f"### {title}\n\n{about}{header}{''.join(rows)}")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m vae_novelty.config",
                                     description="The config reference, from the schema.")
    parser.add_argument("--markdown", action="store_true", required=True,
                        help=f"print config/README.md (regenerate: {REGENERATE})")
    parser.parse_args(argv)
    print(config_reference_markdown(), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
