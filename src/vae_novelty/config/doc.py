"""The config reference (config/README.md), generated from the schema.

Every key's meaning, default, allowed values and what changing it reruns come from
src/vae_novelty/config/config.schema.yaml; ``python -m vae_novelty.config --markdown`` prints the
page (:data:`REGENERATE`), and tests/test_config.py checks that the committed file is current.
"""

from __future__ import annotations

from typing import Any

import yaml

from .schema import SchemaKey, read_schema, resolve, schema_keys

REGENERATE = "PYTHONPATH=src python -m vae_novelty.config --markdown > config/README.md"


def _inline(value: Any) -> str:
    """``value`` as one line of YAML (``null``, ``true``, ``[png, pdf]``, ``1.0e-06``)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()
    return text.removesuffix("...").strip()


def _number(value: Any) -> str:
    """A bound as written in the reference: ``10``, not ``10.0``; ``1e-06`` stays as it is."""
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
    node = resolve(node, schema)
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
        return (
            allowed_values({**node, "type": rest[0] if len(rest) == 1 else rest}, schema, plural)
            + " or null"
        )
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
    """``text`` on one line, with ``|`` escaped, for a markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


README_INTRO = f"""\
# Configuration

_Generated from `src/vae_novelty/config/config.schema.yaml` by `{REGENERATE}`:
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


TABLE_HEADER = (
    "| Key | Meaning | Default | Allowed values | Changing it reruns |\n|---|---|---|---|---|\n"
)


def _sections(keys: list[SchemaKey]) -> list[tuple[SchemaKey | None, list[SchemaKey]]]:
    """The non-section keys grouped under their section (None: the top level), schema order."""
    groups: list[tuple[SchemaKey | None, list[SchemaKey]]] = [(None, [])]
    for key in keys:
        if key.is_section:
            groups.append((key, []))
        else:
            parent = key.name.rpartition(".")[0]
            group = next(g for g in groups if (g[0].name if g[0] else "") == parent)
            group[1].append(key)
    return [(section, members) for section, members in groups if members]


def _row(key: SchemaKey, schema: dict) -> str:
    """One key's table row: name, meaning, default (or *required*), allowed values, reruns."""
    node = key.resolved
    default = (
        f"`{_cell(_inline(node['default']))}`"
        if "default" in node
        else ("*required*" if key.required else "")
    )
    return (
        f"| `{key.name}` | {_cell(node.get('description', ''))} | {default} | "
        f"{_cell(allowed_values(node, schema))} | {_cell(node.get('x-reruns', ''))} |\n"
    )


def config_reference_markdown(schema: dict | None = None) -> str:
    """config/README.md: the introduction, then one table of keys per config section."""
    schema = read_schema() if schema is None else schema
    parts = [README_INTRO, "## Settings\n"]
    for section, members in _sections(schema_keys(schema)):
        title = f"`{section.name}`" if section else "Top level"
        about = f"{_cell(section.resolved.get('description', ''))}\n\n" if section else ""
        rows = "".join(_row(key, schema) for key in members)
        parts.append(f"### {title}\n\n{about}{TABLE_HEADER}{rows}")
    return "\n".join(parts)
