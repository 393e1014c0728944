"""Resumable training snapshots: when to write one, its key, and reading, applying and deleting it.

A snapshot is used only when it belongs to the run: its format and its key (what it was
written for: settings, seeds, training rows and data; :func:`snapshot_key` for one model,
:meth:`vae_novelty.ensemble._EnsembleRun.snapshot_key` for an ensemble) must equal the run's.
Any other snapshot, and one that cannot be read (truncated, corrupt, not a snapshot), is deleted
with a log line and training starts afresh: it is never applied, and it never stops a rerun
(:func:`load_snapshot`). The trainers that write them: :func:`vae_novelty.train.train_vae` and
:func:`vae_novelty.ensemble.train_ensemble`.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import torch

from .model import write_torch_atomic

SNAPSHOT_FORMAT = "vae-novelty-snapshot/2"  # /2: keyed by the training rows too
# Snapshots are written every ``snapshot_every`` epochs, but at most once per this many
# seconds (a model with epochs of milliseconds would otherwise write one every few epochs).
MIN_SNAPSHOT_SECONDS = 30.0

log = logging.getLogger("vae_novelty")


class SnapshotClock:
    """When to write a snapshot: every ``every`` epochs (0: never), never at the last epoch
    (the model itself is written then), and after the first one at most once per
    ``min_seconds`` (default :data:`MIN_SNAPSHOT_SECONDS`)."""

    def __init__(self, every: int, epochs: int, min_seconds: float | None = None):
        self.every, self.epochs = int(every), int(epochs)
        self.min_seconds = MIN_SNAPSHOT_SECONDS if min_seconds is None else float(min_seconds)
        self.last = -math.inf

    def due(self, epoch: int) -> bool:
        if not self.every or epoch % self.every or epoch >= self.epochs:
            return False
        if time.monotonic() - self.last < self.min_seconds:
            return False
        self.last = time.monotonic()
        return True


def snapshot_key(train_config: dict, order_seed: int, noise_seed: int, n_train: int,
                 train_rows: str, data_digest: str | None = None) -> dict:
    """What a snapshot of one model must have been written for: its settings
    (``train_config``), the seeds of its data order and noise streams, and the training data
    (``train_rows``: :func:`vae_novelty.splits.rows_digest` or
    :func:`vae_novelty.data.content_digest`; ``data_digest``: the data's fingerprint, when known)."""
    return {**train_config, "order_seed": order_seed, "noise_seed": noise_seed,
            "n_train": int(n_train), "train_rows": train_rows, "train_data": data_digest}


def discard_snapshot(path, why: str, tag: str = "") -> None:
    """Delete a snapshot that must not be resumed from, saying why in the log."""
    prefix = f"{tag}: " if tag else ""
    log.warning("%sdiscarding snapshot %s: %s; training starts from epoch 1", prefix, path, why)
    try:
        Path(path).unlink()
    except FileNotFoundError:
        pass


def load_snapshot(path, fmt: str, key: dict, tag: str = "") -> dict | None:
    """The content of the snapshot ``path`` when it is a readable snapshot of format ``fmt``
    written for ``key``; otherwise the file is deleted (:func:`discard_snapshot`) and the
    result is None. A snapshot that cannot be read is never retried: it is gone."""
    try:
        # weights_only: tensors, numbers, strings, lists and dicts; nothing else is unpickled
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, corrupt, empty, not a torch file, foreign types
        first_line = (str(exc).splitlines() or [""])[0]
        discard_snapshot(path, f"unreadable, truncated or not a snapshot "
                               f"({type(exc).__name__}: {first_line})", tag)
        return None
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        discard_snapshot(path, f"format {found!r}, expected {fmt!r}", tag)
        return None
    saved = payload.get("key")
    if saved != key:
        saved = saved if isinstance(saved, dict) else {}
        differ = sorted(k for k in set(key) | set(saved) if saved.get(k) != key.get(k))
        discard_snapshot(path, f"written for another run ({', '.join(differ)} differ)", tag)
        return None
    return payload


def save_snapshot(path, key, epoch, model, opt, order_gen, noise_gen, history) -> None:
    """Write one model's full training state after ``epoch`` (format :data:`SNAPSHOT_FORMAT`),
    atomically."""
    payload = {"format": SNAPSHOT_FORMAT, "key": key, "epoch": epoch,
               "model": model.state_dict(), "opt": opt.state_dict(),
               "order_gen": order_gen.get_state(), "noise_gen": noise_gen.get_state(),
               "history": history.rows}
    write_torch_atomic(payload, path)
    log.info("snapshot written at epoch %d: %s", epoch, path)


def restore_snapshot(payload, model, opt, order_gen, noise_gen, history) -> int:
    """Apply a snapshot's content (checked by :func:`load_snapshot`); the next epoch."""
    epoch = int(payload["epoch"])
    rows = list(payload["history"])
    model.load_state_dict(payload["model"])
    opt.load_state_dict(payload["opt"])
    order_gen.set_state(payload["order_gen"])
    noise_gen.set_state(payload["noise_gen"])
    history.rows[:] = rows
    return epoch + 1


def remove_snapshot(path: Path | None) -> None:
    """Delete a finished run's last snapshot, if there is one."""
    if path is not None and path.exists():
        path.unlink()
