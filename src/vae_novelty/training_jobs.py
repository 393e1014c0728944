"""The training job layer: every model (split x seed) of one architecture, as the training
rule asks for them, trained by one of the two trainers and written with its metadata.

:func:`train_architecture` is the one entry point. It trains the models one after the other
(:func:`train_jobs`, through :func:`vae_novelty.train.train_vae`) or as one vectorised ensemble
(:func:`train_ensemble_jobs`, through :func:`vae_novelty.ensemble.train_ensemble`); both write
the same files (:func:`write_model_outputs`). This layer sits above both trainers, which know
nothing of rules, paths or model files.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch

from .config.grid import model_id
from .data import to_float
from .ensemble import EnsembleMember, MembersDiverged, train_ensemble
from .hyperparams import TrainSettings
from .io import atomic_path, provenance
from .model import VAE, save_model
from .snapshots import load_finished_member, remove_snapshot, save_finished_member
from .splits import Split, rows_digest
from .train import History, TrainingDiverged, model_snapshot_key, train_vae

log = logging.getLogger("vae_novelty")


@dataclass
class ModelJob:
    """One model a training rule must write."""

    split: str
    seed: int
    model_path: Path
    history_path: Path


@dataclass
class PreparedJob:
    """One job ready to train: its split, model id (the log's tag), evaluation images and the
    fingerprint of the data they come from (:func:`vae_novelty.data.data_fingerprint`)."""

    job: ModelJob
    split: Split
    tag: str
    x_test: torch.Tensor
    data: str


class JobData:
    """The set-up both trainers share: every training and test image of ``mnist`` as float
    pixels on ``device`` (``x_all``, ``x_test_all``), and the data's fingerprint, which the
    model files and the snapshot keys record (``fingerprint``)."""

    def __init__(self, mnist, device: torch.device):
        self.device = device
        self.fingerprint = mnist.fingerprint
        self.x_all = torch.from_numpy(to_float(mnist.train_images)).to(device)
        self.x_test_all = torch.from_numpy(to_float(mnist.test_images)).to(device)

    def prepare(self, splits: dict, jobs: list[ModelJob], arch: str) -> Iterator[PreparedJob]:
        """Each job in turn (:class:`PreparedJob`), logging its numbers of images."""
        for job in jobs:
            split = splits[job.split]
            tag = model_id(arch, job.split, job.seed)
            x_test = self.x_test_all[torch.from_numpy(split.test_idx).to(self.device)]
            log.info(
                "%s: %d training images, %d test images", tag, len(split.train_idx), len(x_test)
            )
            yield PreparedJob(job, split, tag, x_test, self.fingerprint)


def train_architecture(
    mnist,
    splits: dict,
    jobs: list[ModelJob],
    settings: TrainSettings,
    *,
    arch: str,
    device: torch.device,
    ensemble: bool = True,
    snapshot_dir: Path | None = None,
    snapshot_every: int = 0,
    cuda_graphs: bool = False,
) -> None:
    """The one entry point for training: every model (``jobs``: split x seed) of the
    architecture named ``arch``, with the settings ``settings``, as one vectorised ensemble (``ensemble``, :mod:`vae_novelty.ensemble`) or
    one after the other (:func:`train_jobs`). Both write the same files; an ensemble member
    follows its own single-model trajectory to float32 rounding. ``device``,
    ``snapshot_*`` and ``cuda_graphs`` (ensemble only) change speed or resumability, not the
    models."""
    per_call = dict(
        arch=arch, device=device, snapshot_dir=snapshot_dir, snapshot_every=snapshot_every
    )
    if ensemble:
        train_ensemble_jobs(mnist, splits, jobs, settings, **per_call, cuda_graphs=cuda_graphs)
    else:
        train_jobs(mnist, splits, jobs, settings, **per_call)


def train_jobs(
    mnist,
    splits: dict,
    jobs: list[ModelJob],
    settings: TrainSettings,
    *,
    arch: str,
    device: torch.device,
    snapshot_dir: Path | None = None,
    snapshot_every: int = 0,
) -> None:
    """Train every model of one architecture, one after the other, writing each model file and
    its per-epoch history (CSV) atomically as soon as it is done.

    A finished model's state stays behind as a completed snapshot until every model of the
    job is done: when a later model fails, Snakemake deletes all of the job's outputs, and the
    rerun resumes each finished model from its completed snapshot (no epoch trained again, the
    same model) instead of retraining it; a snapshot of other settings or data is discarded as
    always. Every error names its model (divergence in its message, any other error in the
    job log and as a note of its traceback)."""
    data = JobData(mnist, device)
    finished = []
    for prepared in data.prepare(splits, jobs, arch):
        job, split = prepared.job, prepared.split
        x_train = data.x_all[torch.from_numpy(split.train_idx).to(device)]
        snap = Path(snapshot_dir) / f"{job.split}_s{job.seed}.pt" if snapshot_dir else None
        try:
            model, history = train_vae(
                x_train,
                prepared.x_test,
                settings,
                seed=job.seed,
                snapshot=snap,
                snapshot_every=snapshot_every,
                tag=prepared.tag,
                train_rows=split.train_idx,
                data_digest=data.fingerprint,
                keep_final=True,
            )
        except TrainingDiverged:
            raise  # its message names the model
        except Exception as exc:  # named in the job log and in the traceback
            log.error("%s: training failed (%s: %s)", prepared.tag, type(exc).__name__, exc)
            exc.add_note(f"while training model {prepared.tag}")
            raise
        write_model_outputs(
            prepared, model, history, settings, arch=arch, device=device, trainer="sequential"
        )
        finished.append(snap)
    for snap in finished:
        remove_snapshot(snap)


def write_model_outputs(
    prepared: PreparedJob,
    model: VAE,
    history: History,
    settings: TrainSettings,
    *,
    arch: str,
    device,
    trainer: str,
) -> None:
    """Write one trained model and its per-epoch history (CSV), each atomically. Shared by the
    sequential trainer (:func:`train_jobs`) and the ensemble trainer
    (:func:`train_ensemble_jobs`). The model's metadata records
    :func:`~vae_novelty.splits.rows_digest` of its training rows and the data's fingerprint,
    which the evaluation stage checks against the split and the data it evaluates the model
    with."""
    job, split = prepared.job, prepared.split
    meta = {
        "model_id": prepared.tag,
        "arch": arch,
        "split": job.split,
        "seed": job.seed,
        "heldout_digit": split.heldout_digit,
        "n_train": len(split.train_idx),
        "train_config": settings.record(job.seed),
        "trainer": trainer,
        "train_rows": rows_digest(split.train_idx),
        "data": prepared.data,
        **provenance(device=str(device)),
    }
    with atomic_path(job.history_path) as tmp:
        history.to_frame().to_csv(tmp, index=False)
    save_model(model, job.model_path, **meta)


def train_ensemble_jobs(
    mnist,
    splits: dict,
    jobs: list[ModelJob],
    settings: TrainSettings,
    *,
    arch: str,
    device: torch.device,
    snapshot_dir: Path | None = None,
    snapshot_every: int = 0,
    cuda_graphs: bool = False,
) -> None:
    """Train every model of one architecture as one ensemble, then write each model file and
    its per-epoch history (CSV) atomically, exactly as :func:`train_jobs`
    writes them.

    When some members diverge (:class:`~vae_novelty.ensemble.MembersDiverged`), the finished
    ones are written and also kept in ``snapshot_dir`` (``{split}_s{seed}.finished.pt``), and
    the error names the diverged models: Snakemake deletes the failed job's outputs, and the
    rerun takes each kept member as it is (no epoch trained again, the same weights) and trains
    only the others, as a smaller ensemble; a kept member of other settings or data is
    discarded as any snapshot is."""
    data = JobData(mnist, device)
    prepared = list(data.prepare(splits, jobs, arch))
    kept_paths = [
        Path(snapshot_dir) / f"{p.job.split}_s{p.job.seed}.finished.pt" if snapshot_dir else None
        for p in prepared
    ]
    keys = [finished_key(p, settings) for p in prepared]
    done: dict[int, tuple[VAE, History]] = {}
    for i, (prep, path) in enumerate(zip(prepared, kept_paths)):
        if path is None or not path.exists():
            continue
        model, history = VAE(list(settings.hidden), settings.z_dim), History()
        if load_finished_member(path, keys[i], model, history, prep.tag):
            log.info(
                "%s: finished by an earlier run of this job (%s): not trained again", prep.tag, path
            )
            done[i] = (model.to(device).eval(), history)
    todo = [i for i in range(len(prepared)) if i not in done]
    members = [
        EnsembleMember(
            torch.from_numpy(prepared[i].split.train_idx),
            prepared[i].x_test,
            prepared[i].job.seed,
            prepared[i].tag,
        )
        for i in todo
    ]
    snap = Path(snapshot_dir) / "ensemble.pt" if snapshot_dir else None
    try:
        trained = train_ensemble(
            data.x_all,
            members,
            settings,
            cuda_graphs=cuda_graphs,
            snapshot=snap,
            snapshot_every=snapshot_every,
            data_digest=data.fingerprint,
        )
    except MembersDiverged as exc:
        kept = []
        for i, result in zip(todo, exc.results):
            if result is not None:
                write_model_outputs(
                    prepared[i], *result, settings, arch=arch, device=device, trainer="ensemble"
                )
                if kept_paths[i] is not None:
                    save_finished_member(kept_paths[i], keys[i], *result)
                    kept.append(prepared[i].tag)
        if kept:
            remove_snapshot(snap)  # the rerun's ensemble has other members
            exc.add_note(f"finished and kept for the rerun (not trained again): {', '.join(kept)}")
        raise
    results = dict(done)
    results.update(zip(todo, trained))
    for i, prep in enumerate(prepared):
        write_model_outputs(
            prep, *results[i], settings, arch=arch, device=device, trainer="ensemble"
        )
    remove_snapshot(snap)
    for path in kept_paths:
        remove_snapshot(path)


def finished_key(prepared: PreparedJob, settings: TrainSettings) -> dict:
    """What a kept finished member (:func:`~vae_novelty.snapshots.save_finished_member`) must
    have been trained for: the single-model snapshot key (settings, seeds, training rows,
    data) and the trainer."""
    return {
        **model_snapshot_key(
            settings,
            prepared.job.seed,
            len(prepared.split.train_idx),
            rows_digest(prepared.split.train_idx),
            prepared.data,
        ),
        "trainer": "ensemble",
    }
