"""What the result files record about themselves, read back without torch.

A model file (``results/models/{arch}/{split}_s{seed}.pt``, :func:`vae_novelty.model.save_model`)
records the settings it was trained with (``meta``: model id, training settings, trainer, data
fingerprint). :func:`read_model_meta` reads that record from the file's pickle alone (tensors
are skipped, torch is not imported: milliseconds per file, cheap enough for the workflow to do
while it is parsed), and :func:`model_mismatches` compares it with the settings the
configuration requests, naming the configuration key and both values, so that a model trained
with other settings is never used silently (the training rule retrains it; see train.smk), with
or without Snakemake's metadata in ``.snakemake/``.
"""

from __future__ import annotations

import collections
import json
import pickle
import zipfile
from pathlib import Path
from typing import Any, Iterator

from .io import write_text_atomic


class RecordedError(ValueError):
    """A result file whose record cannot be read."""


def _skipped(*args, **kwargs) -> None:
    """Stands for every torch object (tensors, storages) in a model file's pickle."""
    return None


class _MetaOnly(pickle.Unpickler):
    """Unpickles a torch zip checkpoint's ``data.pkl`` with every tensor replaced by None."""

    def find_class(self, module: str, name: str):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch" or module.startswith("torch."):
            return _skipped
        raise pickle.UnpicklingError(f"unexpected object {module}.{name} in a model file")

    def persistent_load(self, pid):
        return None


def read_model_meta(path: Path | str) -> dict:
    """The ``format``, ``hidden``, ``z_dim`` and ``meta`` of a model file, tensors left out; a
    :class:`RecordedError` naming the file when it is not a readable model file."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith("/data.pkl")]
            if len(names) != 1:
                raise RecordedError(f"{path}: not a model file (no data.pkl in the archive)")
            with archive.open(names[0]) as fh:
                payload = _MetaOnly(fh).load()
    except (
        zipfile.BadZipFile,
        OSError,
        EOFError,
        pickle.UnpicklingError,
        ValueError,
        AttributeError,
        IndexError,
        KeyError,
        TypeError,
    ) as exc:
        if isinstance(exc, RecordedError):
            raise
        raise RecordedError(
            f"{path}: cannot read the model file's record (truncated, corrupt "
            f"or not a model file: {type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("meta"), dict):
        raise RecordedError(f"{path}: not a model file (no meta record)")
    return {k: payload.get(k) for k in ("format", "hidden", "z_dim", "meta")}


def requested_training(arch: str, cfg: dict) -> dict[str, tuple[str, Any]]:
    """What the configuration ``cfg`` (validated) requests of architecture ``arch``'s models,
    as ``{recorded name: (config key, value)}``; the seed is each model's own."""
    mini = arch == "mini"
    model, train = cfg["model"], cfg["training"]
    return {
        "hidden": (
            "model.mini.hidden" if mini else f"model.architectures.{arch}",
            list(model["mini"]["hidden"] if mini else model["architectures"][arch]),
        ),
        "z_dim": (
            "model.mini.z_dim" if mini else "model.z_dim",
            model["mini"]["z_dim"] if mini else model["z_dim"],
        ),
        "epochs": (
            "training.mini_epochs" if mini else "training.epochs",
            train["mini_epochs"] if mini else train["epochs"],
        ),
        "batch_size": (
            "training.mini_batch_size" if mini else "training.batch_size",
            train["mini_batch_size"] if mini else train["batch_size"],
        ),
        "learning_rate": ("training.learning_rate", train["learning_rate"]),
        "trainer": ("training.ensemble", "ensemble" if train["ensemble"] else "sequential"),
    }


def model_mismatches(
    path: Path | str, model_id: str, requested: dict[str, tuple[str, Any]], data: str | None = None
) -> list[str]:
    """Why the model file ``path`` is not the model ``model_id`` the configuration requests
    (``requested``: :func:`requested_training`; ``data``: this run's data fingerprint, when
    known): one line per difference, naming the file, the model, the key and both values.
    Empty when the file records exactly the requested model. An unreadable file is one line."""
    try:
        meta = read_model_meta(path)["meta"]
    except RecordedError as exc:
        return [str(exc)]
    where = f"{path} ({model_id})"
    if meta.get("model_id") != model_id:
        return [f"{where}: holds model {meta.get('model_id')!r}"]
    recorded = dict(meta.get("train_config") or {})
    recorded["trainer"] = meta.get("trainer")
    out = []
    for name, (key, value) in requested.items():
        if recorded.get(name) != value:
            out.append(f"{where}: {key} is {recorded.get(name)!r} in the file, {value!r} requested")
    if data is not None and meta.get("data") != data:
        out.append(f"{where}: trained on data {meta.get('data')}, this run's data is {data}")
    return out


def stale_models(model_files: dict, cfg: dict) -> dict[str, list[str]]:
    """``{path: [difference, ...]}`` for every existing file of ``model_files`` (``{path:
    spec}``, a spec with ``arch`` and ``model_id``, e.g. a
    :class:`~vae_novelty.config.ModelSpec`) that is not the model the configuration ``cfg``
    requests (:func:`model_mismatches`), in the order of ``model_files``."""
    stale = {}
    for path, spec in model_files.items():
        if Path(path).exists():
            lines = model_mismatches(path, spec.model_id, requested_training(spec.arch, cfg))
            if lines:
                stale[path] = lines
    return stale


# --------------------------------------------------------------------------- figures and tables

# Every figure and table rule writes, beside its files, the settings it made them with: its
# rule's params but the code digest ({folder}/{rule}.settings.json, one of the rule's outputs,
# written atomically). ``snakemake --report`` and the run record compare them with the
# configuration given (see report.smk), so a figure remade with another option by a
# single-target run is never embedded in the report of the original configuration.
SETTINGS_SUFFIX = ".settings.json"
SETTINGS_FORMAT = "vae-novelty-settings/1"
NOT_SETTINGS = ("code",)  # the code digest: the run record keeps code versions


def settings_of(params) -> dict:
    """A rule's params (a mapping or a Snakemake ``Params``) as they are recorded: every
    named value but :data:`NOT_SETTINGS`, in JSON's form (tuples as lists, keys as text)."""
    items = params.items() if hasattr(params, "items") else params
    kept = {name: value for name, value in items if name not in NOT_SETTINGS}
    return json.loads(json.dumps(kept, sort_keys=True))


def write_settings(path: Path | str, rule: str, params) -> None:
    """Write the settings (:func:`settings_of`) rule ``rule`` made its files with, atomically."""
    record = {"format": SETTINGS_FORMAT, "rule": rule, "settings": settings_of(params)}
    write_text_atomic(path, json.dumps(record, indent=1, sort_keys=True) + "\n")


def read_settings(path: Path | str) -> dict:
    """The record of a settings file (``format``, ``rule``, ``settings``); a
    :class:`RecordedError` naming the file when it is absent or damaged."""
    try:
        with open(path, encoding="utf-8") as fh:
            record = json.load(fh)
    except FileNotFoundError as exc:
        raise RecordedError(
            f"{path} does not exist: the files of this rule record no "
            f"settings (made before they did, or deleted); a plain run remakes "
            f"them"
        ) from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordedError(
            f"{path}: cannot read the settings record (truncated, corrupt or "
            f"not a settings file: {type(exc).__name__}); a plain run remakes "
            f"it"
        ) from exc
    if (
        not isinstance(record, dict)
        or record.get("format") != SETTINGS_FORMAT
        or not isinstance(record.get("settings"), dict)
    ):
        raise RecordedError(
            f"{path}: not a settings record ({SETTINGS_FORMAT}); a plain run remakes it"
        )
    return record


def _leaves(cfg: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(cfg, dict):
        for key, value in cfg.items():
            yield from _leaves(value, f"{prefix}{key}.")
    else:
        yield prefix.rstrip("."), cfg


def config_key(rule: str, name: str, value: Any, cfg: dict | None) -> str | None:
    """The configuration key a rule's param ``name`` (of value ``value`` in ``cfg``) comes from,
    when one can tell: the one key of that name and value, or of those the one below the
    rule's own section (``figures.figure3.grid_size``); None when unknown or ambiguous."""
    if not cfg:
        return None
    found = [
        k
        for k, v in _leaves(cfg)
        if k.rsplit(".", 1)[-1] == name and json.loads(json.dumps(v)) == value
    ]
    if len(found) > 1:
        found = [k for k in found if f".{rule}." in f".{k}"]
    return found[0] if len(found) == 1 else None


def settings_mismatches(path: Path | str, rule: str, params, cfg: dict | None = None) -> list[str]:
    """Why the files of rule ``rule`` (their settings file ``path``) were not made with the
    settings ``params`` (the rule's params under this configuration, ``cfg``): one line per
    difference, naming the file, the rule, the setting (and its configuration key, when
    :func:`config_key` can tell) and both values. Empty when they were."""
    try:
        record = read_settings(path)
    except RecordedError as exc:
        return [str(exc)]
    if record.get("rule") != rule:
        return [f"{path}: records the settings of rule {record.get('rule')!r}, not {rule!r}"]
    recorded, wanted = record["settings"], settings_of(params)
    out = []
    for name in list(wanted) + [k for k in recorded if k not in wanted]:
        if name not in recorded:
            out.append(f"{path} ({rule}): setting {name} not in the file, {wanted[name]!r} now")
        elif name not in wanted:
            out.append(
                f"{path} ({rule}): setting {name} is {recorded[name]!r} in the file, "
                f"not a setting now"
            )
        elif recorded[name] != wanted[name]:
            key = config_key(rule, name, wanted[name], cfg)
            named = f"{name} (config key {key})" if key else name
            out.append(
                f"{path} ({rule}): {named} is {recorded[name]!r} in the file, "
                f"{wanted[name]!r} in this configuration"
            )
    return out
