"""MNIST reading, checksum verification, the data fingerprint and results/data/mnist.npz
(the paper's splits: test_splits.py)."""

from __future__ import annotations

import gzip
import os
import struct

import numpy as np
import pytest

from vae_novelty import data
from vae_novelty.config import MNIST_TEST_COUNTS, MNIST_TRAIN_COUNTS
from vae_novelty.data import DataError
from vae_novelty.splits import make_split, save_split


def test_bundled_mnist_shapes_and_class_counts(mnist):
    assert mnist.train_images.shape == (60000, 784)
    assert mnist.test_images.shape == (10000, 784)
    assert mnist.train_images.dtype == np.uint8
    assert tuple(np.bincount(mnist.train_labels, minlength=10)) == MNIST_TRAIN_COUNTS
    assert tuple(np.bincount(mnist.test_labels, minlength=10)) == MNIST_TEST_COUNTS


def test_pixels_scaled_not_binarised(mnist):
    x = data.to_float(mnist.train_images[:100])
    assert x.dtype == np.float32 and x.min() == 0.0 and x.max() == 1.0
    assert len(np.unique(x)) > 2


# ---------------------------------------------------------------- corrupt and missing files


def test_checksum_mismatch_names_file_and_expected_sum(mnist_copy):
    path = mnist_copy / "t10k-labels-idx1-ubyte.gz"
    content = bytearray(gzip.decompress(path.read_bytes()))
    content[100] = (content[100] + 1) % 10
    path.write_bytes(gzip.compress(bytes(content)))
    expected = data.read_checksums(mnist_copy / "SHA256SUMS")["t10k-labels-idx1-ubyte"]
    with pytest.raises(DataError) as err:
        data.load_idx_folder(mnist_copy, mnist_copy / "SHA256SUMS")
    assert "t10k-labels-idx1-ubyte.gz" in str(err.value) and expected in str(err.value)


def test_missing_file_is_named(mnist_copy):
    (mnist_copy / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="missing MNIST file.*train-labels-idx1-ubyte"):
        data.load_idx_folder(mnist_copy, mnist_copy / "SHA256SUMS")


def test_truncated_gzip_is_named(mnist_copy):
    path = mnist_copy / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz: corrupt or truncated gzip"):
        data.load_idx_folder(mnist_copy, mnist_copy / "SHA256SUMS")


def test_uncompressed_files_are_read_too(mnist_copy):
    for gz in mnist_copy.glob("*.gz"):
        gz.with_suffix("").write_bytes(gzip.decompress(gz.read_bytes()))
        gz.unlink()
    m = data.load_idx_folder(mnist_copy, mnist_copy / "SHA256SUMS")
    assert m.test_images.shape == (10000, 784)


def _write_idx(path, magic, dims, payload: bytes):
    path.write_bytes(struct.pack(">I", magic) + struct.pack(f">{len(dims)}I", *dims) + payload)


def test_wrong_magic_and_count_mismatch_without_checksums(tmp_path):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    _write_idx(tmp_path / "train-images-idx3-ubyte", 0x803, (5, 28, 28), imgs.tobytes())
    _write_idx(tmp_path / "train-labels-idx1-ubyte", 0x801, (5,), bytes([1, 2, 3, 4, 5]))
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", 0x803, (5, 28, 28), imgs.tobytes())
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", 0x801, (4,), bytes([1, 2, 3, 4]))
    with pytest.raises(DataError, match="has 5 images but t10k-labels-idx1-ubyte has 4 labels"):
        data.load_idx_folder(tmp_path, None)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", 0x803, (5,), bytes([1, 2, 3, 4, 5]))
    with pytest.raises(DataError, match="magic number is 0x00000803, expected labels"):
        data.load_idx_folder(tmp_path, None)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", 0x801, (6,), bytes([1, 2, 3, 4, 5]))
    with pytest.raises(DataError, match=r"header says \(6,\)"):
        data.load_idx_folder(tmp_path, None)


def test_other_idx_files_fail_the_mnist_checksums(tmp_path, mnist_dir):
    """A folder of MNIST-like but different files is rejected by the MNIST checksums."""
    rng = np.random.default_rng(1)
    imgs = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    _write_idx(tmp_path / "train-images-idx3-ubyte", 0x803, (5, 28, 28), imgs.tobytes())
    with pytest.raises(DataError, match="train-images-idx3-ubyte: SHA256 .* expected ba891046"):
        data.load_idx_folder(tmp_path, mnist_dir / "SHA256SUMS")


# ---------------------------------------------------------------- results/data/mnist.npz


def _small_mnist(n_train=30, n_test=10):
    rng = np.random.default_rng(0)
    return data.Mnist(
        rng.integers(0, 256, (n_train, 784), dtype=np.uint8),
        (np.arange(n_train) % 10).astype(np.uint8),
        rng.integers(0, 256, (n_test, 784), dtype=np.uint8),
        (np.arange(n_test) % 10).astype(np.uint8),
    )


def test_the_data_fingerprint_follows_every_array_and_nothing_else(tmp_path):
    m = _small_mnist()
    assert m.fingerprint == _small_mnist().fingerprint  # same arrays, same print
    assert len(m.fingerprint) == 16
    for key in data.FILES:  # one value changed
        arrays = {k: v.copy() for k, v in m.arrays().items()}
        arrays[key].flat[0] = (int(arrays[key].flat[0]) + 1) % 10
        assert data.Mnist(**arrays).fingerprint != m.fingerprint, key
    moved = {**m.arrays(), "test_images": m.test_images[:-1], "test_labels": m.test_labels[:-1]}
    assert data.Mnist(**moved).fingerprint != m.fingerprint  # one image fewer
    path = tmp_path / "mnist.npz"
    data.save_mnist(m, path)
    assert data.read_fingerprint(path) == m.fingerprint  # recorded in the file
    assert data.load_mnist(path).fingerprint == m.fingerprint


def test_an_altered_mnist_file_is_refused(tmp_path):
    m = _small_mnist()
    path = tmp_path / "mnist.npz"
    altered = {**m.arrays(), "train_labels": m.train_labels[::-1].copy()}
    with open(path, "wb") as fh:  # the arrays changed, the record did not
        np.savez(fh, **altered, fingerprint=np.array(m.fingerprint))
    with pytest.raises(
        DataError,
        match=rf"{path}: its arrays have fingerprint \w+ but the "
        rf"file records {m.fingerprint}",
    ):
        data.load_mnist(path)


def test_truncated_corrupt_or_foreign_mnist_file_is_named(tmp_path):
    path = tmp_path / "mnist.npz"
    data.save_mnist(_small_mnist(), path)
    assert data.load_mnist(path).train_images.shape == (30, 784)  # the good file loads
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match=rf"{path}: cannot read the MNIST arrays"):
        data.load_mnist(path)
    path.write_text("not an archive at all")
    with pytest.raises(DataError, match=rf"{path}: cannot read the MNIST arrays"):
        data.load_mnist(path)
    split_file = tmp_path / "no9.npz"
    m = _small_mnist()
    save_split(
        make_split("no9", m.train_labels, m.test_labels, [9], data=m.fingerprint), split_file
    )
    with pytest.raises(
        DataError,
        match=rf"{split_file}: not an MNIST arrays file: missing "
        r"array\(s\) \['train_images'",
    ):
        data.load_mnist(split_file)
    with pytest.raises(DataError, match=rf"missing MNIST arrays file {tmp_path / 'none.npz'}"):
        data.load_mnist(tmp_path / "none.npz")


def test_mnist_file_with_wrong_shapes_or_labels_is_named(tmp_path):
    path = tmp_path / "mnist.npz"
    m = _small_mnist()
    for arrays, message in [
        (
            {**m.__dict__, "train_images": m.train_images.reshape(30, 28, 28)},
            r"train_images has shape \(30, 28, 28\), expected \(N, 784\)",
        ),
        (
            {**m.__dict__, "test_images": m.test_images.astype(np.float32)},
            r"test_images has dtype float32, expected uint8",
        ),
        (
            {**m.__dict__, "train_labels": m.train_labels[:29]},
            r"30 train_images but 29 train_labels",
        ),
        (
            {**m.__dict__, "test_labels": m.test_labels + 5},
            r"test_labels must be digits 0\.\.9, found 14",
        ),
    ]:
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)
        with pytest.raises(DataError, match=rf"{path}: {message}"):
            data.load_mnist(path)


def test_source_digest_follows_the_content_of_the_files_read(mnist_copy):
    sums = mnist_copy / "SHA256SUMS"
    before = data.source_digest(mnist_copy, sums)
    assert data.source_digest(mnist_copy, sums) == before  # stable
    os.utime(sums, (1, 1))
    assert data.source_digest(mnist_copy, sums) == before  # a new mtime: the same
    sums.write_text(sums.read_text() + "\n")
    assert data.source_digest(mnist_copy, sums) != before  # new content: another
    (mnist_copy / "t10k-labels-idx1-ubyte.gz").unlink()
    assert data.source_digest(mnist_copy, None) != data.source_digest(mnist_copy, sums)
    assert len(data.source_digest(None, None)) == 16  # torchvision: no files
