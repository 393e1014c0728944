"""The run record: what a completed run's results were made with, written by the run itself.

``results/run_record.yaml`` holds the configuration the results were made with (every key
that changes results; the speed-only keys, whose ``x-reruns`` in the schema is "nothing", are
left out), the data's fingerprint and the code and package versions. It is the report's
"Run record" item, and ``snakemake --report`` refuses to describe results whose record
disagrees with the configuration on the command line (:func:`report_problem`), so a report
never describes another run than the one whose files it embeds.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from .config.schema import schema_keys
from .io import provenance, write_text_atomic

RECORD_FORMAT = "vae-novelty-run-record/1"
# Not part of what the results are: the folder they are in (a moved run is the same run).
NOT_RECORDED = ("results_dir",)


def speed_only_keys(schema: dict) -> list[str]:
    """Dotted keys whose schema ``x-reruns`` starts with "nothing" (speed, memory, resuming)."""
    return [k.name for k in schema_keys(schema)
            if str(k.node.get("x-reruns", "")).startswith("nothing")]


def _drop(cfg: dict, dotted: str) -> None:
    *parents, last = dotted.split(".")
    node = cfg
    for part in parents:
        node = node.get(part)
        if not isinstance(node, dict):
            return
    node.pop(last, None)


def results_config(cfg: dict, schema: dict) -> dict:
    """``cfg`` (a validated configuration) without the keys that do not change results."""
    out = copy.deepcopy(cfg)
    for key in [*speed_only_keys(schema), *NOT_RECORDED]:
        _drop(out, key)
    return out


def build_record(config: dict, data: str, **extra: Any) -> dict:
    """The record of a completed run (``config``: :func:`results_config`; ``data``: the data
    fingerprint)."""
    return {"format": RECORD_FORMAT, "data": data, "config": config,
            "provenance": provenance(**extra)}


def write_record(record: dict, path: Path | str) -> None:
    write_text_atomic(path, yaml.safe_dump(record, sort_keys=False, default_flow_style=None))


def read_record(path: Path | str) -> dict:
    with open(path, encoding="utf-8") as fh:
        record = yaml.safe_load(fh)
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
        raise ValueError(f"{path}: not a run record ({RECORD_FORMAT})")
    return record


def differences(recorded: Any, current: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested mappings, with both values."""
    if isinstance(recorded, dict) and isinstance(current, dict):
        out = []
        for key in list(recorded) + [k for k in current if k not in recorded]:
            name = f"{prefix}{key}"
            if key not in current:
                out.append(f"{name}: {recorded[key]!r} in the results, not set now")
            elif key not in recorded:
                out.append(f"{name}: not in the results, {current[key]!r} now")
            else:
                out += differences(recorded[key], current[key], name + ".")
        return out
    if recorded != current:
        return [f"{prefix.rstrip('.')}: {recorded!r} in the results, {current!r} now"]
    return []


def report_problem(record_path: Path | str, config: dict) -> str | None:
    """Why a report of the results in ``record_path``'s folder with configuration ``config``
    (:func:`results_config`) would describe another run; None when it would not."""
    path = Path(record_path)
    if not path.exists():
        return (f"{path} does not exist: the run of this configuration has not completed "
                f"(run it first, or pass the --configfile of the run whose results you want "
                f"in the report)")
    recorded = read_record(path)
    diff = differences(recorded["config"], config)
    if not diff:
        return None
    shown = "\n  ".join(diff[:10]) + (f"\n  ... {len(diff) - 10} more" if len(diff) > 10 else "")
    return (f"the results in {path.parent} were made with another configuration than the one "
            f"given now, so the report would describe another run:\n  {shown}\npass the "
            f"--configfile (and --config) of that run, or rerun the workflow with this one "
            f"first")
