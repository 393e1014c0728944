"""Tests of the per-model Theorem 1 stage (evaluate_model and its file format) against the
float64 references of the engine and of the neighbour searches."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from test_neighbours import ref_bce_to_train, ref_latent_neighbours, ref_xhat_neighbours
from test_theorem1 import ref_stats
from vae_novelty import neighbours as nb
from vae_novelty import theorem1_table as t1t

# --------------------------------------------------------------------------- end to end


def _tiny_model_files(tmp_path, rng, n_train=40, n_test=6, hidden=(16,), z_dim=2, copy_of=None):
    """MNIST, model and posterior files of a tiny random model. ``copy_of`` (a training
    position): the first test image and its posterior are made exact copies of that one."""
    from vae_novelty.config import ModelSpec
    from vae_novelty.data import Mnist, save_mnist
    from vae_novelty.model import VAE, save_model
    from vae_novelty.posterior import build_table as post_table, write_table

    arrays = (
        rng.integers(0, 256, (n_train + 10, 784), dtype=np.uint8),
        rng.integers(0, 10, n_train + 10).astype(np.uint8),
        rng.integers(0, 256, (n_test + 5, 784), dtype=np.uint8),
        rng.integers(0, 10, n_test + 5).astype(np.uint8),
    )
    train_idx = np.sort(rng.choice(n_train + 10, n_train, replace=False))
    test_idx = np.sort(rng.choice(n_test + 5, n_test, replace=False))
    tm, tv = rng.normal(size=(n_train, z_dim)), rng.normal(size=(n_train, z_dim)) - 2
    em, ev = rng.normal(size=(n_test, z_dim)), rng.normal(size=(n_test, z_dim)) - 2
    if copy_of is not None:
        arrays[2][test_idx[0]] = arrays[0][train_idx[copy_of]]
        em[0], ev[0] = tm[copy_of], tv[copy_of]
    mnist = Mnist(*arrays)  # after the copy: its fingerprint covers it
    save_mnist(mnist, tmp_path / "mnist.npz")
    torch.manual_seed(0)
    model = VAE(list(hidden), z_dim)
    save_model(model, tmp_path / "m.pt", model_id="h16.no9.s0", data=mnist.fingerprint)
    table = post_table(
        train_idx,
        mnist.train_labels[train_idx],
        tm,
        tv,
        test_idx,
        mnist.test_labels[test_idx],
        em,
        ev,
        {"model_id": "h16.no9.s0", "data": mnist.fingerprint},
    )
    write_table(table, tmp_path / "post.parquet")
    spec = ModelSpec("h16", tuple(hidden), z_dim, "no9", 0)
    return spec, mnist, train_idx, test_idx, (tm, tv, em, ev)


def test_evaluate_model_writes_the_documented_format(tmp_path):
    import json

    import pyarrow.parquet as pq

    from vae_novelty.data import to_float

    rng = np.random.default_rng(11)
    spec, mnist, train_idx, test_idx, (tm, tv, em, ev) = _tiny_model_files(tmp_path, rng, copy_of=3)
    result = t1t.evaluate_model(
        tmp_path / "post.parquet",
        tmp_path / "m.pt",
        tmp_path / "mnist.npz",
        spec,
        top_k=3,
        chunk_mb=0.05,
    )
    t1t.write_result(result, tmp_path / "out.parquet", tmp_path / "out.npz")
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.schema.equals(t1t.table_schema(), check_metadata=False)
    meta = json.loads(table.schema.metadata[b"vae_novelty"])
    assert meta["model_id"] == "h16.no9.s0" and "code_version" in meta
    df = table.to_pandas()
    assert len(df) == len(test_idx)
    row = df.iloc[0]
    assert (
        row.model_id,
        row.arch,
        row.hidden,
        row.n_hidden_layers,
        row.z_dim,
        row.split,
        row.heldout_digit,
        row.seed,
    ) == ("h16.no9.s0", "h16", "16", 1, 2, "no9", 9, 0)
    assert row.decoder_params == (2 * 16 + 16) + (16 * 784 + 784)
    np.testing.assert_array_equal(df.mnist_index, test_idx)
    np.testing.assert_array_equal(df.label, mnist.test_labels[test_idx])
    # values against the reference, computed from the float32 posteriors as stored
    f32 = lambda a: a.astype(np.float32)  # noqa: E731
    x_train = to_float(mnist.train_images[train_idx])
    ref = ref_stats(f32(em), f32(tm), f32(tv), x_train)
    np.testing.assert_allclose(df.perplexity, ref["perplexity"], rtol=1e-5)
    np.testing.assert_allclose(df.w_max, ref["w_max"], atol=1e-6)
    np.testing.assert_array_equal(np.stack(df.topk_index), train_idx[ref["top"]])
    np.testing.assert_allclose(np.stack(df.topk_weight), ref["top_w"], atol=1e-6)
    with np.load(tmp_path / "out.npz") as npz:
        assert set(npz.files) == {"model_id", "data", "mnist_index", "x", "mu", "x_hat"}
        assert str(npz["model_id"]) == "h16.no9.s0" and str(npz["data"]) == mnist.fingerprint
        np.testing.assert_array_equal(npz["mnist_index"], test_idx)
        assert npz["x"].dtype == np.float16 and npz["x"].shape == (len(test_idx), 784)
        np.testing.assert_allclose(npz["x"], to_float(mnist.test_images[test_idx]), atol=1e-3)
        np.testing.assert_allclose(npz["mu"], ref["mu"], atol=1e-3)
        assert npz["x_hat"].dtype == np.float16 and npz["mu"].dtype == np.float16
        np.testing.assert_array_equal(npz["x_hat"], result.x_hat.astype(np.float16))
    # BCEs from float64 decoder logits: sum_j softplus(l_j) - t_j l_j
    from vae_novelty.model import load_model

    model, _ = load_model(tmp_path / "m.pt")
    with torch.no_grad():
        logits = model.double().decode_logits(torch.as_tensor(f32(em), dtype=torch.float64))
    logits = logits.numpy()
    bce = lambda tgt: (np.logaddexp(0, logits) - tgt * logits).sum(1)  # noqa: E731
    x = to_float(mnist.test_images[test_idx]).astype(np.float64)
    np.testing.assert_allclose(df.bce_x_xhat, bce(x), rtol=1e-10)
    np.testing.assert_allclose(df.bce_mu_xhat, bce(ref["mu"]), rtol=1e-8)
    np.testing.assert_allclose(result.x_hat, 1 / (1 + np.exp(-logits)), atol=1e-6)
    # memorisation measures against the loop references, as MNIST training rows
    nn_pos, nn_dist = ref_latent_neighbours(f32(em), f32(tm))
    np.testing.assert_array_equal(df.nn_index, train_idx[nn_pos[:, 0]])
    np.testing.assert_allclose(df.nn_dist, nn_dist[:, 0], rtol=1e-9, atol=1e-7)
    np.testing.assert_allclose(df.nn_ratio, nn_dist[:, 0] / nn_dist[:, 1], rtol=1e-9, atol=1e-7)
    x_pos, x_bce = ref_xhat_neighbours(logits, x_train)
    np.testing.assert_array_equal(df.xhat_nn_index, train_idx[x_pos])
    np.testing.assert_allclose(df.xhat_nn_bce, x_bce, rtol=1e-10)
    # test image 0 and its posterior are copies of training row 3: its code sits on that
    # training code (d1 ~ 0, ratio ~ 0), and BCE(copy, x_hat) = BCE(x, x_hat)
    assert df.nn_index[0] == train_idx[3] and df.nn_dist[0] <= 1e-7 and df.nn_ratio[0] <= 1e-6
    np.testing.assert_allclose(
        ref_bce_to_train(logits[:1], x_train[3:4])[0, 0], df.bce_x_xhat[0], rtol=1e-12
    )
    assert meta["schema"] == "vae-novelty-theorem1/3"
    assert meta["data"] == mnist.fingerprint


def test_evaluate_model_rejects_files_of_other_data(tmp_path):
    rng = np.random.default_rng(12)
    spec, mnist, *_ = _tiny_model_files(tmp_path, rng)
    from vae_novelty.data import DataError, Mnist, save_mnist

    other = Mnist(**{**mnist.arrays(), "test_labels": (mnist.test_labels + 1) % 10})
    save_mnist(other, tmp_path / "mnist.npz")  # posteriors and model made from `mnist`
    with pytest.raises(
        DataError,
        match=rf"post\.parquet: made from data {mnist.fingerprint}, "
        rf"but this run's data is {other.fingerprint}",
    ):
        t1t.evaluate_model(
            tmp_path / "post.parquet", tmp_path / "m.pt", tmp_path / "mnist.npz", spec
        )


def test_neighbour_passes_are_retried_on_out_of_memory(tmp_path, monkeypatch):
    rng = np.random.default_rng(11)
    spec, *_ = _tiny_model_files(tmp_path, rng, copy_of=3)
    files = (tmp_path / "post.parquet", tmp_path / "m.pt", tmp_path / "mnist.npz")
    expected = t1t.evaluate_model(*files, spec, top_k=3, chunk_mb=64).table.to_pandas()
    tried = {"latent": [], "xhat": []}
    for name, key in (("latent_neighbours", "latent"), ("xhat_neighbours", "xhat")):
        real = getattr(nb, name)

        def oom_above_16(*args, chunk_mb, _real=real, _key=key, **kwargs):
            tried[_key].append(chunk_mb)
            if chunk_mb > 16:
                raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
            return _real(*args, chunk_mb=chunk_mb, **kwargs)

        monkeypatch.setattr(nb, name, oom_above_16)
    got = t1t.evaluate_model(*files, spec, top_k=3, chunk_mb=64).table.to_pandas()
    assert tried["latent"] == [64, 32, 16] and tried["xhat"] == [16]
    cols = ["nn_index", "nn_dist", "xhat_nn_index", "xhat_nn_bce", "perplexity"]
    pd.testing.assert_frame_equal(got[cols], expected[cols])
