"""Stage ``size_evaluate`` of the size sweep (issue 20): every model of one architecture on the
one fixed evaluation set, one table row per model, and the cross-half agreement per test image.

Per model (its own training subset, the shared test images):

- Theorem 1 (:mod:`vae_novelty.theorem1`, the pipeline's engine, over the model's whole
  training subset): the fraction of test images whose reconstruction is closer (BCE) to the
  weighted average mu than to the input, and the median perplexity of the weights;
- the training and test -ELBO (mean over images of ``elbo_samples`` one-sample estimates
  each, the noise seeded) and their gap (test - train);
- the copy fraction of ``samples`` generated images (z ~ N(0, I), decoder mean;
  :mod:`vae_novelty.agreement`) against the model's own training subset (nearest images by
  the exact pixel search, :func:`vae_novelty.pixel_nn.nearest_images`);
- C_T (Meehan et al.'s data-copying statistic, :func:`c_t_statistic` with
  :mod:`vae_novelty.ct`): the samples' distances to their nearest training image against the
  fixed test images', per k-means cell of the PCA of the model's own training subset;
- for the pair of models of the same (N, seed) trained on halves A and B: the cross-half
  agreement (:func:`vae_novelty.agreement.agreement`), on both rows.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import ct as C
from . import theorem1 as t1
from .agreement import agreement, copy_fraction
from .neighbours import nn_ratio
from .pixel_nn import nearest_images
from .config import ModelSpec
from .data import check_fingerprint, to_float
from .decoder import decode_bce, decoder_logits
from .model import ModelFileError, load_model, negative_elbo
from .posterior import encode
from .size_splits import parse_size_split_name
from .size_table import TABLE_COLUMNS
from .splits import rows_digest
from .theorem1_table import frac_closer_to_mu

# C_T cells as in the samples stage (config samples.ct_*): 20 k-means cells on a 50-dim PCA,
# at least 20 samples per counted cell.
CT_CELLS, CT_PCA_DIMS, CT_MIN_PER_CELL = 20, 50, 20

log = logging.getLogger("vae_novelty")

AGREEMENT_COLUMNS = ("arch", "n_train", "seed", "mnist_index", "d_ab", "d_a", "d_b", "agree")


@dataclass(frozen=True)
class SizeEvalSettings:
    """What changes the measures (rule params), and chunk_mb (speed and memory only)."""

    samples: int
    copy_ratio: float
    elbo_samples: int
    sample_seed: int
    chunk_mb: float = 1024.0


def c_t_statistic(
    sample_dist: np.ndarray,
    samples: np.ndarray,
    train_images: np.ndarray,
    test_dist: np.ndarray,
    test_images: np.ndarray,
    *,
    key: str,
    cells: int = CT_CELLS,
    pca_dims: int = CT_PCA_DIMS,
    min_per_cell: int = CT_MIN_PER_CELL,
    seed: int = 0,
) -> float:
    """C_T (Meehan et al. 2020; :mod:`vae_novelty.ct`, built as in the samples stage) of the
    generated ``samples`` (distances ``sample_dist`` to their nearest training image) against
    the fixed test images (``test_dist``): cells by k-means on the PCA of the model's own
    training images (at most as many cells and PCA dimensions as the subset allows), seeded
    by ``seed`` and the model id ``key``."""
    n = len(train_images)
    fitted = C.fit_cells(
        train_images,
        cells=min(int(cells), n),
        pca_dims=min(int(pca_dims), n - 1, train_images.shape[1]),
        seed=seed,
        split=key,
    )
    result = C.c_t(
        sample_dist,
        fitted.assign(samples),
        test_dist,
        fitted.assign(test_images),
        len(fitted.centres),
        min_per_cell,
    )
    return result["ct"]


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    """Decoder means (float64) from float64 logits, without overflow warnings."""
    return torch.sigmoid(torch.from_numpy(np.asarray(logits, np.float64))).numpy()


def _seed(*parts) -> int:
    """A 63-bit seed from ``parts`` (stable across processes, unlike ``hash``)."""
    text = "/".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") >> 1


@torch.no_grad()
def mean_neg_elbo(
    model, x: np.ndarray, draws: int, seed: int, device, batch_size: int = 4096
) -> float:
    """Mean over the images ``x`` and ``draws`` z draws each of the one-sample -ELBO, the
    noise from a CPU generator seeded with ``seed`` (the same on every device)."""
    gen = torch.Generator().manual_seed(seed)
    model = model.to(device).eval()
    total = 0.0
    for _ in range(draws):
        for start in range(0, len(x), batch_size):
            xb = torch.from_numpy(np.ascontiguousarray(x[start : start + batch_size])).to(device)
            eps = torch.randn(len(xb), model.z_dim, generator=gen).to(device)
            logits, mean, logvar = model(xb, eps)
            total += float(negative_elbo(xb, logits, mean, logvar).double().sum())
    return total / (draws * len(x))


@dataclass
class ModelMeasures:
    """One model's row (without the pair's agreement) and what the agreement needs."""

    row: dict
    recon: np.ndarray  # (T, P) float64 decoder means at the test posteriors' means
    own_nn_dist: np.ndarray  # (T,) distance of each reconstruction to its nearest training image


def measure_model(
    model, x_train: np.ndarray, x_test: np.ndarray, settings: SizeEvalSettings, *, key: str, device
) -> ModelMeasures:
    """Every per-model measure (module docstring) of ``model`` trained on ``x_train`` (float
    pixels, (N, P)), on the test images ``x_test``; ``key`` (the model id) seeds its noise."""
    chunk = settings.chunk_mb
    train_mean, train_logvar = encode(model, x_train, device)
    test_mean, _ = encode(model, x_test, device)
    stats, chunk = t1.weight_stats_shrinking(
        test_mean, train_mean, train_logvar, x_train, top_k=1, chunk_mb=chunk, device=device
    )
    _, bce_x, bce_mu = decode_bce(model, test_mean, x_test, stats.mu, device)
    recon = _sigmoid(decoder_logits(model, test_mean, device))
    elbo_seed = _seed(settings.sample_seed, key, "elbo")
    train_elbo = mean_neg_elbo(model, x_train, settings.elbo_samples, elbo_seed, device)
    test_elbo = mean_neg_elbo(model, x_test, settings.elbo_samples, elbo_seed + 1, device)
    rng = np.random.default_rng(_seed(settings.sample_seed, key, "samples"))
    z = rng.standard_normal((settings.samples, model.z_dim))
    samples = _sigmoid(decoder_logits(model, z, device))
    _, sample_nn = nearest_images(samples, x_train, k=2, chunk_mb=chunk, device=device)
    ratios = nn_ratio(sample_nn)
    _, own = nearest_images(recon, x_train, k=1, chunk_mb=chunk, device=device)
    _, test_nn = nearest_images(x_test, x_train, k=1, chunk_mb=chunk, device=device)
    c_t = c_t_statistic(
        sample_nn[:, 0], samples, x_train, test_nn[:, 0], x_test, key=key, seed=settings.sample_seed
    )
    row = {
        "frac_closer_to_mu": frac_closer_to_mu(bce_mu, bce_x),
        "median_perplexity": float(np.median(stats.perplexity)),
        "train_neg_elbo": train_elbo,
        "test_neg_elbo": test_elbo,
        "elbo_gap": test_elbo - train_elbo,
        "copy_fraction": copy_fraction(ratios, settings.copy_ratio),
        "median_copy_ratio": float(np.median(ratios)),
        "c_t": c_t,
        "median_own_nn_dist": float(np.median(own[:, 0])),
    }
    return ModelMeasures(row, recon, own[:, 0])


def load_checked_model(path, spec: ModelSpec, split, mnist):
    """The model file ``path`` of ``spec``, checked: architecture, id, training rows, data."""
    model, meta = load_model(
        path,
        expect_hidden=list(spec.hidden),
        expect_z_dim=spec.z_dim,
        expect_model_id=spec.model_id,
    )
    if meta.get("train_rows") != rows_digest(split.train_idx):
        raise ModelFileError(
            f"{path}: trained on other training rows than split "
            f"{split.name!r} holds now (rerun the size sweep's training)"
        )
    check_fingerprint(meta.get("data"), mnist.fingerprint, path, what="trained on")
    return model, meta


def evaluate_architecture(
    arch: str,
    hidden,
    z_dim: int,
    models: list[tuple[str, int]],
    model_paths: dict,
    splits: dict,
    mnist,
    settings: SizeEvalSettings,
    device,
):
    """Every model (``models``: (split name, seed); ``model_paths``: the same -> file) of one
    architecture. Returns (table rows, agreement rows): one row per model, and one per test
    image and (N, seed) with both halves present."""
    measured = {}
    rows = []
    x_test = None
    for i, (split_name, seed) in enumerate(models, 1):
        spec = ModelSpec(arch, tuple(hidden), z_dim, split_name, int(seed))
        split = splits[split_name]
        half, n = parse_size_split_name(split_name)
        model, meta = load_checked_model(model_paths[(split_name, seed)], spec, split, mnist)
        if x_test is None:
            x_test = to_float(mnist.test_images[split.test_idx])
        t0 = time.perf_counter()
        m = measure_model(
            model,
            to_float(mnist.train_images[split.train_idx]),
            x_test,
            settings,
            key=spec.model_id,
            device=device,
        )
        train_cfg = meta.get("train_config", {})
        epochs = int(train_cfg.get("epochs", 0))
        steps = epochs * -(-n // int(train_cfg.get("batch_size", 1)))
        m.row = {
            "model_id": spec.model_id,
            "arch": arch,
            "hidden": "-".join(str(h) for h in hidden),
            "n_hidden_layers": len(hidden),
            "n_train": n,
            "half": half,
            "seed": int(seed),
            "epochs": epochs,
            "steps": steps,
            **m.row,
        }
        measured[(n, int(seed), half)] = m
        rows.append(m.row)
        log.info(
            "model %d/%d %s: %.1fs; closer to mu %.3f, median perplexity %.3f, -ELBO "
            "train %.2f test %.2f, copies %.3f",
            i,
            len(models),
            spec.model_id,
            time.perf_counter() - t0,
            m.row["frac_closer_to_mu"],
            m.row["median_perplexity"],
            m.row["train_neg_elbo"],
            m.row["test_neg_elbo"],
            m.row["copy_fraction"],
        )
    test_idx = next(iter(splits.values())).test_idx
    pair_rows = []
    for row in rows:
        n, seed = row["n_train"], row["seed"]
        a, b = measured.get((n, seed, "A")), measured.get((n, seed, "B"))
        if a is None or b is None:
            row.update(agreement=float("nan"), median_pair_dist=float("nan"))
            continue
        pair = agreement(a.recon, b.recon, a.own_nn_dist, b.own_nn_dist)
        row.update(agreement=pair.fraction, median_pair_dist=float(np.median(pair.d_ab)))
        if row["half"] == "A":
            for t in range(len(test_idx)):
                pair_rows.append(
                    {
                        "arch": arch,
                        "n_train": n,
                        "seed": seed,
                        "mnist_index": int(test_idx[t]),
                        "d_ab": pair.d_ab[t],
                        "d_a": pair.d_a[t],
                        "d_b": pair.d_b[t],
                        "agree": bool(pair.agree[t]),
                    }
                )
    return [{k: r[k] for k in TABLE_COLUMNS} for r in rows], pair_rows


def write_outputs(rows, pair_rows, table_path, agreement_path) -> None:
    """The architecture's table (CSV) and per-image agreement (CSV), each atomically."""
    import pandas as pd

    from .io import atomic_path

    for data, columns, path in (
        (rows, TABLE_COLUMNS, table_path),
        (pair_rows, AGREEMENT_COLUMNS, agreement_path),
    ):
        with atomic_path(Path(path)) as tmp:
            pd.DataFrame(data, columns=list(columns)).to_csv(tmp, index=False)
