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
from .stacked import StackedAdam

SNAPSHOT_FORMAT = "vae-novelty-snapshot/2"  # /2: keyed by the training rows too
# /2: the key fingerprints every member's training rows and the training images
ENSEMBLE_SNAPSHOT_FORMAT = "vae-novelty-ensemble-snapshot/2"
# One finished ensemble member (weights and history), kept while a sibling's failure fails the job
FINISHED_MEMBER_FORMAT = "vae-novelty-finished-member/1"
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


def snapshot_key(
    train_config: dict,
    order_seed: int,
    noise_seed: int,
    n_train: int,
    train_rows: str,
    data_digest: str | None = None,
) -> dict:
    """What a snapshot of one model must have been written for: its settings
    (``train_config``), the seeds of its data order and noise streams, and the training data
    (``train_rows``: :func:`vae_novelty.splits.rows_digest` or
    :func:`vae_novelty.data.content_digest`; ``data_digest``: the data's fingerprint, when known)."""
    return {
        **train_config,
        "order_seed": order_seed,
        "noise_seed": noise_seed,
        "n_train": int(n_train),
        "train_rows": train_rows,
        "train_data": data_digest,
    }


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
        discard_snapshot(
            path,
            f"unreadable, truncated or not a snapshot ({type(exc).__name__}: {first_line})",
            tag,
        )
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
    payload = {
        "format": SNAPSHOT_FORMAT,
        "key": key,
        "epoch": epoch,
        "model": model.state_dict(),
        "opt": opt.state_dict(),
        "order_gen": order_gen.get_state(),
        "noise_gen": noise_gen.get_state(),
        "history": history.rows,
    }
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


class EnsembleState:
    """Everything an ensemble needs to resume bitwise: parameters, Adam, generators, history."""

    def __init__(self, adam: StackedAdam, order_gens, noise_gens, histories):
        self.adam, self.order_gens, self.noise_gens = adam, order_gens, noise_gens
        self.histories = histories

    def save(self, path: Path, key: dict, epoch: int) -> None:
        payload = {"format": ENSEMBLE_SNAPSHOT_FORMAT, "key": key, "epoch": epoch, **self._state()}
        write_torch_atomic(payload, path)
        log.info("ensemble snapshot written at epoch %d: %s", epoch, path)

    def _tensors(self) -> list[torch.Tensor]:
        return self.adam.state_tensors()

    def _state(self) -> dict:
        """A copy of the resumable state (tensors on the CPU): what a snapshot holds."""
        return {
            "tensors": [t.detach().to("cpu", copy=True) for t in self._tensors()],
            "host_steps": list(self.adam.host_steps),
            "order_gens": [g.get_state() for g in self.order_gens],
            "noise_gens": [g.get_state() for g in self.noise_gens],
            "histories": [list(h.rows) for h in self.histories],
        }

    def _apply(self, state: dict) -> None:
        """Set the state from :meth:`_state`'s form (a snapshot's payload or a backup)."""
        with torch.no_grad():
            for t, value in zip(self._tensors(), state["tensors"]):
                t.copy_(value)
        self.adam.host_steps[:] = [int(x) for x in state["host_steps"]]
        for g, st in zip(self.order_gens, state["order_gens"]):
            g.set_state(st)
        for g, st in zip(self.noise_gens, state["noise_gens"]):
            g.set_state(st)
        for h, rows in zip(self.histories, state["histories"]):
            h.rows[:] = rows

    def restore(self, path: Path, key: dict) -> int:
        """Resume from the snapshot ``path`` when it belongs to this run (``key``): the next
        epoch. Otherwise (another run, unreadable, or content that does not fit) the file is
        deleted with a log line, the state is left as it was and the result is 1."""
        payload = load_snapshot(path, ENSEMBLE_SNAPSHOT_FORMAT, key)
        if payload is None:
            return 1
        a = self.adam
        tensors = self._tensors()
        backup = self._state()
        try:
            saved = payload["tensors"]
            counts = {
                "tensors": (len(saved), len(tensors)),
                "host_steps": (len(payload["host_steps"]), len(a.host_steps)),
                "order_gens": (len(payload["order_gens"]), len(self.order_gens)),
                "noise_gens": (len(payload["noise_gens"]), len(self.noise_gens)),
                "histories": (len(payload["histories"]), len(self.histories)),
            }
            wrong = {k: v for k, v in counts.items() if v[0] != v[1]}
            if wrong:
                raise ValueError(
                    ", ".join(
                        f"{k}: {got} saved, {want} expected" for k, (got, want) in wrong.items()
                    )
                )
            for t, value in zip(tensors, saved):
                if tuple(value.shape) != tuple(t.shape):
                    raise ValueError(
                        f"a tensor of shape {tuple(value.shape)}, expected {tuple(t.shape)}"
                    )
            self._apply(payload)
            return int(payload["epoch"]) + 1
        except Exception as exc:  # put back the state as it was before: nothing half-applied
            self._apply(backup)
            discard_snapshot(path, f"cannot be applied ({type(exc).__name__}: {exc})")
            return 1


def save_finished_member(path: Path, key: dict, model, history) -> None:
    """Keep one finished ensemble member (its weights and history; format
    :data:`FINISHED_MEMBER_FORMAT`, ``key``: :func:`snapshot_key` with the trainer) when its
    job fails for a sibling: Snakemake deletes the job's outputs, and the rerun takes the
    member from here instead of training it again (:func:`load_finished_member`)."""
    payload = {
        "format": FINISHED_MEMBER_FORMAT,
        "key": key,
        "model": {k: v.detach().to("cpu") for k, v in model.state_dict().items()},
        "history": list(history.rows),
    }
    write_torch_atomic(payload, path)
    log.info("finished model kept until its job succeeds: %s", path)


def load_finished_member(path: Path, key: dict, model, history, tag: str = "") -> bool:
    """Set ``model`` and ``history`` from the finished member kept at ``path`` when it was
    written for ``key`` (True); otherwise (absent, another run, unreadable, not applicable)
    False, any such file deleted with a log line (:func:`load_snapshot`)."""
    if not Path(path).exists():
        return False
    payload = load_snapshot(path, FINISHED_MEMBER_FORMAT, key, tag)
    if payload is None:
        return False
    try:
        model.load_state_dict(payload["model"])
        history.rows[:] = list(payload["history"])
    except Exception as exc:  # a half-applied model must not be written
        discard_snapshot(path, f"cannot be applied ({type(exc).__name__}: {exc})", tag)
        return False
    return True
