"""One model's Theorem 1 table: its inputs (checked to belong together), the evaluation of every
quantity per test image (:mod:`vae_novelty.theorem1` weights, :mod:`vae_novelty.decoder` BCEs,
:mod:`vae_novelty.neighbours` memorisation measures), and its files (Parquet table, npz images).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import decoder, neighbours
from .artefacts import check_model_id, with_meta, write_npz, write_table
from .chunks import shrink_on_oom
from . import theorem1 as engine
from .tensors import resolve_device, to_tensor
from .theorem1 import WeightStats

TABLE_FORMAT = "vae-novelty-theorem1/3"


def table_schema():
    """Arrow schema of ``results/theorem1/{arch}/{split}_s{seed}.parquet``."""
    import pyarrow as pa

    return pa.schema(
        [
            ("model_id", pa.string()),
            ("arch", pa.string()),
            ("hidden", pa.string()),
            ("n_hidden_layers", pa.int64()),
            ("z_dim", pa.int64()),
            ("split", pa.string()),
            ("heldout_digit", pa.int64()),
            ("seed", pa.int64()),
            ("decoder_params", pa.int64()),
            ("mnist_index", pa.int64()),
            ("label", pa.int64()),
            ("bce_x_xhat", pa.float64()),
            ("bce_mu_xhat", pa.float64()),
            ("perplexity", pa.float64()),
            ("entropy", pa.float64()),
            ("w_max", pa.float64()),
            ("log_norm", pa.float64()),
            ("topk_index", pa.list_(pa.int64())),
            ("topk_weight", pa.list_(pa.float64())),
            # memorisation measures (see the module docstring)
            ("nn_index", pa.int64()),
            ("nn_dist", pa.float64()),
            ("nn_ratio", pa.float64()),
            ("xhat_nn_index", pa.int64()),
            ("xhat_nn_bce", pa.float64()),
        ]
    )


NEIGHBOUR_COLUMNS = ("nn_index", "nn_dist", "nn_ratio", "xhat_nn_index", "xhat_nn_bce")


MODEL_COLUMNS = (
    "model_id",
    "arch",
    "hidden",
    "n_hidden_layers",
    "z_dim",
    "split",
    "heldout_digit",
    "seed",
    "decoder_params",
)


def frac_closer_to_mu(bce_mu_xhat, bce_x_xhat) -> float:
    """The paper's headline statistic for one model: the fraction of test images whose
    decoder output x_hat is closer, in BCE, to the Theorem 1 weighted average mu than to the
    input x, i.e. with BCE(mu, x_hat) < BCE(x, x_hat) (one value per image in each array).

    Ties count as not closer: x_hat exactly as close to mu as to x is not evidence of
    copying. NaN for no images. The values must be finite (a NaN compares False and would
    count as not closer; :func:`vae_novelty.tables.summary_row` refuses them before calling this). Used by the
    summary (:func:`vae_novelty.tables.summary_row`) and by the evaluate stage's log line."""
    mu = np.asarray(bce_mu_xhat, dtype=np.float64).reshape(-1)
    x = np.asarray(bce_x_xhat, dtype=np.float64).reshape(-1)
    if mu.shape != x.shape:
        raise ValueError(
            f"{len(mu)} BCE(mu, x_hat) values and {len(x)} BCE(x, x_hat) "
            f"values: one of each per test image"
        )
    return float(np.mean(mu < x)) if len(mu) else np.nan


def model_info(spec) -> dict:
    """The per-model columns of a :class:`vae_novelty.config.ModelSpec`."""
    from .model import decoder_param_count

    held = spec.heldout_digit
    return {
        "model_id": spec.model_id,
        "arch": spec.arch,
        "hidden": "-".join(str(h) for h in spec.hidden),
        "n_hidden_layers": len(spec.hidden),
        "z_dim": int(spec.z_dim),
        "split": spec.split,
        "heldout_digit": -1 if held is None else int(held),
        "seed": int(spec.seed),
        "decoder_params": int(decoder_param_count(spec.hidden, spec.z_dim)),
    }


@dataclass
class Theorem1Result:
    """One model's results: the Parquet table and the images for the figures."""

    table: "pa.Table"  # noqa: F821
    mnist_index: np.ndarray  # (T,) int64, MNIST test-file rows
    x: np.ndarray  # (T, 784) input images
    mu: np.ndarray  # (T, 784) weighted averages
    x_hat: np.ndarray  # (T, 784) decoder outputs
    meta: dict = field(default_factory=dict)  # the table's ``vae_novelty`` metadata


def build_table(
    info: dict,
    mnist_index,
    label,
    bce_x,
    bce_mu,
    stats: WeightStats,
    topk_index,
    meta: dict,
    neighbours: dict | None = None,
):
    """The per-model Parquet table (schema :func:`table_schema`, metadata ``vae_novelty``).

    ``neighbours``: arrays (T,) for :data:`NEIGHBOUR_COLUMNS` (``nn_index`` and
    ``xhat_nn_index`` as MNIST training-file rows); left out, those columns are null.
    """
    import pyarrow as pa

    T = len(mnist_index)
    schema = table_schema()
    cols = {k: pa.array([info[k]] * T, table_schema().field(k).type) for k in MODEL_COLUMNS}
    cols.update(
        {
            "mnist_index": pa.array(np.asarray(mnist_index, np.int64)),
            "label": pa.array(np.asarray(label, np.int64)),
            "bce_x_xhat": pa.array(np.asarray(bce_x, np.float64)),
            "bce_mu_xhat": pa.array(np.asarray(bce_mu, np.float64)),
            "perplexity": pa.array(stats.perplexity.astype(np.float64)),
            "entropy": pa.array(stats.entropy.astype(np.float64)),
            "w_max": pa.array(stats.w_max.astype(np.float64)),
            "log_norm": pa.array(stats.log_norm.astype(np.float64)),
            "topk_index": pa.array(
                [list(map(int, r)) for r in np.asarray(topk_index)], pa.list_(pa.int64())
            ),
            "topk_weight": pa.array(
                [list(map(float, r)) for r in stats.topk_weight], pa.list_(pa.float64())
            ),
        }
    )
    for name in NEIGHBOUR_COLUMNS:
        typ = schema.field(name).type
        if neighbours is None:
            cols[name] = pa.nulls(T, typ)
        else:
            values = np.asarray(neighbours[name])
            if values.shape != (T,):
                raise ValueError(f"neighbours[{name!r}] has shape {values.shape}, expected ({T},)")
            cols[name] = pa.array(values.astype(typ.to_pandas_dtype()), typ)
    table = pa.table(cols, schema=schema)
    return with_meta(table, meta)


@dataclass
class ModelInputs:
    """What every per-model evaluation reads, checked against each other: the posterior dicts
    of :func:`~vae_novelty.posterior.read_posteriors` (``train``, ``test``), the files'
    metadata, the model, and the test and training images as float pixels in the posterior
    file's row order (``x_train`` may be a tensor uploaded once to the evaluation device)."""

    train: dict
    test: dict
    posterior_meta: dict
    model: "torch.nn.Module"
    model_meta: dict
    x: np.ndarray
    x_train: "np.ndarray | torch.Tensor"
    data: str  # the fingerprint of the MNIST arrays, recorded in every table made from these


def model_inputs(
    posteriors, mnist, model, model_meta, spec, posterior_path="posteriors"
) -> ModelInputs:
    """:class:`ModelInputs` from a posterior file's contents (``posteriors``: the
    ``(train, test, meta)`` of :func:`~vae_novelty.posterior.read_posteriors`), the MNIST
    arrays and the loaded model, checked to belong together: one model id, one data
    fingerprint (the model's and the posteriors' against ``mnist``'s), the same labels."""
    from .data import check_fingerprint, to_float

    train, test, post_meta = posteriors
    if len(train["mnist_index"]) == 0:
        raise ValueError(f"{posterior_path}: no training rows (role == 'train')")
    check_model_id(post_meta.get("model_id"), spec.model_id, posterior_path, allow_missing=True)
    check_fingerprint(post_meta.get("data"), mnist.fingerprint, posterior_path)
    check_fingerprint(
        model_meta.get("data"),
        mnist.fingerprint,
        f"model {model_meta.get('model_id')}",
        what="trained on",
    )
    test_labels = mnist.test_labels[test["mnist_index"]]
    if not np.array_equal(test_labels.astype(np.int64), test["label"].astype(np.int64)):
        raise ValueError(
            f"{posterior_path}: test labels disagree with the MNIST arrays "
            f"(posteriors from another MNIST file?)"
        )
    x = to_float(mnist.test_images[test["mnist_index"]])
    x_train = to_float(mnist.train_images[train["mnist_index"]])
    return ModelInputs(train, test, post_meta, model, model_meta, x, x_train, mnist.fingerprint)


def load_model_inputs(posterior_path, model_path, mnist_path, spec) -> ModelInputs:
    """:class:`ModelInputs` read from the files of one model (``spec``: a ModelSpec)."""
    from .data import load_mnist
    from .model import load_model
    from .posterior import read_posteriors

    posteriors = read_posteriors(posterior_path, expect_z_dim=spec.z_dim)
    model, model_meta = load_model(
        model_path,
        expect_hidden=list(spec.hidden),
        expect_z_dim=spec.z_dim,
        expect_model_id=spec.model_id,
    )
    return model_inputs(
        posteriors, load_mnist(Path(mnist_path)), model, model_meta, spec, posterior_path
    )


def evaluate_model(
    posterior_path,
    model_path,
    mnist_path,
    spec,
    *,
    top_k: int = 3,
    chunk_mb: float = 1024.0,
    device="cpu",
) -> Theorem1Result:
    """All Theorem 1 quantities of one model (``spec``: a ModelSpec) on its evaluation images."""
    return evaluate_inputs(
        load_model_inputs(posterior_path, model_path, mnist_path, spec),
        spec,
        top_k=top_k,
        chunk_mb=chunk_mb,
        device=device,
    )


def evaluate_inputs(
    inputs: ModelInputs, spec, *, top_k: int = 3, chunk_mb: float = 1024.0, device="cpu"
) -> Theorem1Result:
    """:func:`evaluate_model` on inputs already in memory. Every pass over the training set
    (weights, latent and pixel neighbours) is retried with smaller chunks on GPU
    out-of-memory (:func:`~vae_novelty.chunks.shrink_on_oom`)."""
    from .io import describe_device, provenance

    dev = resolve_device(device)
    train, test, x = inputs.train, inputs.test, inputs.x
    x_train = to_tensor(inputs.x_train, dev)  # uploaded once for every pass below
    stats, chunk_mb = engine.weight_stats_shrinking(
        test["z_mean"],
        train["z_mean"],
        train["z_logvar"],
        x_train,
        top_k=top_k,
        chunk_mb=chunk_mb,
        device=dev,
    )
    logits = decoder.decoder_logits(inputs.model, test["z_mean"], dev)
    x_hat, bce_x, bce_mu = decoder.bce_from_logits(logits, x, stats.mu, dev)
    train_rows = train["mnist_index"].astype(np.int64)
    (nn_pos, nn_dist), chunk_mb = shrink_on_oom(
        lambda b: neighbours.latent_neighbours(
            test["z_mean"], train["z_mean"], k=2, chunk_mb=b, device=dev
        ),
        chunk_mb,
        "the latent neighbour search",
    )
    (xnn_pos, xnn_bce), chunk_mb = shrink_on_oom(
        lambda b: neighbours.xhat_neighbours(logits, x_train, chunk_mb=b, device=dev),
        chunk_mb,
        "the pixel neighbour search",
    )
    found = {
        "nn_index": train_rows[nn_pos[:, 0]],
        "nn_dist": nn_dist[:, 0],
        "nn_ratio": neighbours.nn_ratio(nn_dist),
        "xhat_nn_index": train_rows[xnn_pos],
        "xhat_nn_bce": xnn_bce,
    }
    info = model_info(spec)
    meta = {
        **info,
        "schema": TABLE_FORMAT,
        "data": inputs.data,
        "top_k": int(top_k),
        "chunk_mb": chunk_mb,
        "chunks": list(stats.chunks),
        "device": describe_device(dev),
        "n_train": int(len(train["mnist_index"])),
        "n_test": int(len(x)),
        "posterior_code_version": inputs.posterior_meta.get("code_version"),
        "model_code_version": inputs.model_meta.get("code_version"),
        **provenance(),
    }
    topk_index = train_rows[stats.topk_pos]
    table = build_table(
        info, test["mnist_index"], test["label"], bce_x, bce_mu, stats, topk_index, meta, found
    )
    return Theorem1Result(table, test["mnist_index"].astype(np.int64), x, stats.mu, x_hat, meta)


def write_result(result: Theorem1Result, parquet_path, npz_path) -> None:
    """Write the table (Parquet) and the images (npz, float16) atomically."""
    write_table(result.table, parquet_path)
    write_npz(
        npz_path,
        compressed=True,
        model_id=np.array(result.meta["model_id"]),
        data=np.array(result.meta["data"]),
        mnist_index=result.mnist_index.astype(np.int64),
        x=result.x.astype(np.float16),
        mu=result.mu.astype(np.float16),
        x_hat=result.x_hat.astype(np.float16),
    )
