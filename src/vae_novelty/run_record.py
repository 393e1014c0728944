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

from .config.grid import model_id
from .config.schema import schema_keys
from .io import provenance, write_text_atomic
from .recorded import (
    model_mismatches,
    read_model_meta,
    read_settings,
    requested_training,
    settings_mismatches,
)

RECORD_FORMAT = "vae-novelty-run-record/1"
# Not part of what the results are: the folder they are in (a moved run is the same run).
NOT_RECORDED = ("results_dir",)


def speed_only_keys(schema: dict) -> list[str]:
    """Dotted keys whose schema ``x-reruns`` starts with "nothing" (speed, memory, resuming)."""
    return [
        k.name for k in schema_keys(schema) if str(k.node.get("x-reruns", "")).startswith("nothing")
    ]


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


def build_record(
    config: dict, data: str, models: dict | None = None, settings: dict | None = None, **extra: Any
) -> dict:
    """The record of a completed run (``config``: :func:`results_config`; ``data``: the data
    fingerprint; ``models``: :func:`model_records`, what the model files record;
    ``settings``: :func:`settings_records`, what the figures and tables record)."""
    record = {"format": RECORD_FORMAT, "data": data, "config": config}
    if models is not None:
        record["models"] = models
    if settings is not None:
        record["settings"] = settings
    record["provenance"] = provenance(**extra)
    return record


def model_records(model_paths, config: dict, data: str) -> dict:
    """What each model file records (``models/{arch}/{split}_s{seed}.pt``): ``{model id:
    {training settings, trainer, data}}``, read from the files themselves
    (:mod:`vae_novelty.recorded`), after checking every file against the configuration
    ``config`` (:func:`results_config`) and the run's data fingerprint ``data``: a ValueError
    naming each file, model, key and both values when they disagree, so that a record never
    certifies a model the configuration did not make."""
    out, problems = {}, []
    for path in map(Path, model_paths):
        arch, (split, seed) = path.parent.name, path.stem.rsplit("_s", 1)
        mid = model_id(arch, split, int(seed))
        problems += model_mismatches(path, mid, requested_training(arch, config), data)
        if problems:
            continue
        meta = read_model_meta(path)["meta"]
        out[mid] = {
            **{k: v for k, v in meta["train_config"].items() if k != "seed"},
            "trainer": meta.get("trainer"),
            "data": meta.get("data"),
        }
    if problems:
        raise ValueError(
            "the model files disagree with the configuration of this run:\n  "
            + "\n  ".join(problems)
        )
    return out


def settings_records(paths, expected: dict) -> dict:
    """What each figure and table rule's settings file records (``paths``, in the order of
    ``expected``: ``{rule: settings}``, the settings this configuration gives each rule,
    :func:`vae_novelty.recorded.settings_of`): ``{rule: settings}``, after checking each file
    against ``expected``; a ValueError naming each file, rule, setting and both values when
    they disagree, so that a record never certifies a figure this configuration did not make."""
    paths = list(paths)
    if len(paths) != len(expected):
        raise ValueError(f"{len(paths)} settings files for {len(expected)} rules")
    out, problems = {}, []
    for path, (rule, settings) in zip(paths, expected.items()):
        lines = settings_mismatches(path, rule, settings)
        problems += lines
        if not lines:
            out[rule] = read_settings(path)["settings"]
    if problems:
        raise ValueError(
            "the figures and tables disagree with the configuration of this run:"
            "\n  " + "\n  ".join(problems)
        )
    return out


def write_record(record: dict, path: Path | str) -> None:
    write_text_atomic(path, yaml.safe_dump(record, sort_keys=False, default_flow_style=None))


class RecordError(ValueError):
    """A run record that cannot be read (damaged, truncated, not a record)."""


def read_record(path: Path | str) -> dict:
    """The run record at ``path``; a :class:`RecordError` naming the file when it is damaged
    (not YAML, truncated, not a record, a part missing)."""
    try:
        with open(path, encoding="utf-8") as fh:
            record = yaml.safe_load(fh)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise RecordError(
            f"{path}: damaged run record (not readable as YAML: "
            f"{type(exc).__name__}); a plain run rebuilds it"
        ) from exc
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
        raise RecordError(f"{path}: not a run record ({RECORD_FORMAT}); a plain run rebuilds it")
    missing = [
        k for k, kind in (("config", dict), ("data", str)) if not isinstance(record.get(k), kind)
    ]
    if missing:
        raise RecordError(
            f"{path}: damaged run record (no valid {', '.join(missing)}); a plain run rebuilds it"
        )
    return record


def record_problem(path: Path | str) -> str | None:
    """Why the existing run record at ``path`` cannot be read; None when it can or is absent."""
    if not Path(path).exists():
        return None
    try:
        read_record(path)
    except RecordError as exc:
        return str(exc)
    return None


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
        return (
            f"{path} does not exist: the run of this configuration has not completed "
            f"(run it first, or pass the --configfile of the run whose results you want "
            f"in the report)"
        )
    try:
        recorded = read_record(path)
    except RecordError as exc:
        return f"{exc} (run the workflow with this configuration, then the report)"
    diff = differences(recorded["config"], config)
    if not diff:
        return None
    shown = "\n  ".join(diff[:10]) + (f"\n  ... {len(diff) - 10} more" if len(diff) > 10 else "")
    return (
        f"the results in {path.parent} were made with another configuration than the one "
        f"given now, so the report would describe another run:\n  {shown}\npass the "
        f"--configfile (and --config) of that run, or rerun the workflow with this one "
        f"first"
    )
