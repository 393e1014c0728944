"""The per-architecture evaluation stage: posteriors, Theorem 1 and ELBO of each model in one
process, checked against the per-file functions it replaces, and its identity checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from vae_novelty import elbo as E
from vae_novelty import theorem1_table as t1t
from vae_novelty.config import ModelSpec
from vae_novelty.data import Mnist, save_mnist
from vae_novelty.evaluate import EvalJob, EvalSettings, evaluate_jobs
from vae_novelty.model import VAE, ModelFileError, save_model
from vae_novelty.posterior import export_model
from vae_novelty.splits import Split

SETTINGS = EvalSettings(top_k=3, samples=2, eps=1e-6, sample_seed=0, chunk_mb=0.05)


def _setup(tmp_path: Path, model_id="h16.no9.s0"):
    rng = np.random.default_rng(5)
    mnist = Mnist(
        rng.integers(0, 256, (60, 784), dtype=np.uint8),
        np.arange(60, dtype=np.uint8) % 10,
        rng.integers(0, 256, (20, 784), dtype=np.uint8),
        np.arange(20, dtype=np.uint8) % 10,
    )
    save_mnist(mnist, tmp_path / "mnist.npz")
    torch.manual_seed(0)
    save_model(VAE([16], 2), tmp_path / "m.pt", model_id=model_id, data=mnist.fingerprint)
    split = Split(
        "no9",
        np.flatnonzero(mnist.train_labels != 9),
        np.flatnonzero(mnist.test_labels == 9),
        9,
        mnist.fingerprint,
    )
    spec = ModelSpec("h16", (16,), 2, "no9", 0)
    out = tmp_path / "out"
    job = EvalJob(
        spec,
        tmp_path / "m.pt",
        out / "post.parquet",
        out / "t1.parquet",
        out / "t1.npz",
        out / "elbo.parquet",
    )
    return mnist, split, spec, job


def test_one_process_gives_what_the_per_file_functions_give(tmp_path):
    mnist, split, spec, job = _setup(tmp_path)
    stats = evaluate_jobs([job], mnist, {"no9": split}, SETTINGS, torch.device("cpu"))
    # the same model through the file-by-file path: export, then Theorem 1, then the ELBO
    ref = tmp_path / "ref.parquet"
    export_model(
        tmp_path / "m.pt", mnist, split, ref, hidden=[16], z_dim=2, device=torch.device("cpu")
    )
    pd.testing.assert_frame_equal(pd.read_parquet(job.posteriors), pd.read_parquet(ref))
    files = (ref, tmp_path / "m.pt", tmp_path / "mnist.npz")
    want_t1 = t1t.evaluate_model(*files, spec, top_k=3, chunk_mb=0.05).table.to_pandas()
    got_t1 = pd.read_parquet(job.theorem1_table)
    pd.testing.assert_frame_equal(got_t1, want_t1)
    # the logged fraction closer to mu, recounted image by image (a tie is not closer)
    closer = sum(1 for m, x in zip(got_t1.bce_mu_xhat, got_t1.bce_x_xhat) if m < x)
    assert stats[0]["frac_closer_to_mu"] == closer / len(got_t1)
    want_elbo = E.evaluate_elbo(
        *files, spec, samples=2, clamp_eps=1e-6, seed=0, chunk_mb=0.05
    ).to_pandas()
    pd.testing.assert_frame_equal(pd.read_parquet(job.elbo_table), want_elbo)
    with np.load(job.theorem1_images) as npz:
        assert npz["x"].shape == (len(split.test_idx), 784)


def test_a_model_file_of_another_model_is_refused_by_name(tmp_path):
    mnist, split, spec, job = _setup(tmp_path, model_id="h16.no8.s0")
    with pytest.raises(
        ModelFileError,
        match=r"m\.pt: holds model 'h16\.no8\.s0', expected "
        r"'h16\.no9\.s0'",
    ):
        evaluate_jobs([job], mnist, {"no9": split}, SETTINGS, torch.device("cpu"))
    assert not job.posteriors.exists()


def test_a_split_of_another_name_is_refused(tmp_path):
    mnist, split, spec, job = _setup(tmp_path)
    other = Split("no8", split.train_idx, split.test_idx, 8)
    with pytest.raises(ValueError, match="no split file for 'no9'"):
        evaluate_jobs([job], mnist, {"no8": other}, SETTINGS, torch.device("cpu"))


def test_optimal_log_lik_takes_training_images_already_on_the_device():
    rng = np.random.default_rng(2)
    train_x = rng.random((30, 20)).astype(np.float32)
    mean, logvar = rng.normal(size=(30, 2)), rng.uniform(-2, -1, (30, 2))
    x = rng.random((4, 20))
    z = E.latent_samples(mean[:4], logvar[:4], rng.standard_normal((4, 3, 2)))
    a = E.optimal_log_lik(z, x, mean, logvar, train_x, clamp_eps=1e-6, chunk_mb=0.01)
    b = E.optimal_log_lik(
        z, x, mean, logvar, torch.from_numpy(train_x), clamp_eps=1e-6, chunk_mb=0.01
    )
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_evaluation_equals_cpu(tmp_path):
    mnist, split, spec, job = _setup(tmp_path)
    evaluate_jobs([job], mnist, {"no9": split}, SETTINGS, torch.device("cpu"))
    out = tmp_path / "gpu"
    gpu_job = EvalJob(
        spec,
        job.model,
        out / "post.parquet",
        out / "t1.parquet",
        out / "t1.npz",
        out / "elbo.parquet",
    )
    evaluate_jobs([gpu_job], mnist, {"no9": split}, SETTINGS, torch.device("cuda"))
    for a, b in (
        (job.theorem1_table, gpu_job.theorem1_table),
        (job.elbo_table, gpu_job.elbo_table),
    ):
        fa, fb = pd.read_parquet(a), pd.read_parquet(b)
        num = [c for c in fa.columns if fa[c].dtype.kind == "f"]
        np.testing.assert_allclose(fb[num].to_numpy(), fa[num].to_numpy(), rtol=1e-5, atol=1e-5)


def test_a_model_trained_on_other_training_rows_is_refused(tmp_path):
    from vae_novelty.splits import rows_digest

    mnist, split, spec, job = _setup(tmp_path)
    torch.manual_seed(0)
    other_rows = split.train_idx[:-1]  # e.g. a split made differently since
    save_model(
        VAE([16], 2),
        tmp_path / "m.pt",
        model_id="h16.no9.s0",
        train_rows=rows_digest(other_rows),
        data=mnist.fingerprint,
    )
    with pytest.raises(ModelFileError, match="trained on other training rows than split 'no9'"):
        evaluate_jobs([job], mnist, {"no9": split}, SETTINGS, torch.device("cpu"))
    save_model(
        VAE([16], 2),
        tmp_path / "m.pt",
        model_id="h16.no9.s0",
        train_rows=rows_digest(split.train_idx),
        data=mnist.fingerprint,
    )
    evaluate_jobs([job], mnist, {"no9": split}, SETTINGS, torch.device("cpu"))
    assert job.elbo_table.exists()


def test_a_model_trained_on_other_data_is_refused_before_anything_is_written(tmp_path):
    from vae_novelty.data import DataError

    mnist, split, spec, job = _setup(tmp_path)
    for recorded, message in [
        (
            "0123456789abcdef",
            rf"m\.pt: trained on data 0123456789abcdef, "
            rf"but this run's data is {mnist.fingerprint}",
        ),
        (None, r"m\.pt: records no data fingerprint"),
    ]:
        save_model(VAE([16], 2), tmp_path / "m.pt", model_id="h16.no9.s0", data=recorded)
        with pytest.raises(DataError, match=message):
            evaluate_jobs([job], mnist, {"no9": split}, SETTINGS, torch.device("cpu"))
        assert not job.posteriors.exists()
