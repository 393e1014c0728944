"""The paper's splits: sizes, seeds and subsampling, and checked split files."""

from __future__ import annotations

import re

import numpy as np
import pytest
from test_data import _small_mnist

from vae_novelty.config import MNIST_TEST_COUNTS
from vae_novelty.data import DataError, save_mnist
from vae_novelty.splits import (
    Split,
    check_split,
    load_checked_splits,
    load_split,
    make_split,
    save_split,
)


@pytest.mark.parametrize(
    "name, n_train", [("full", 60000), ("no9", 54051), ("no1", 53258), ("no0", 54077)]
)
def test_split_sizes_match_known_counts(mnist, name, n_train):
    digits = [int(name[2])] if name.startswith("no") else list(range(10))
    split = make_split(name, mnist.train_labels, mnist.test_labels, digits)
    assert len(split.train_idx) == n_train
    if name.startswith("no"):
        d = int(name[2])
        assert not np.any(mnist.train_labels[split.train_idx] == d)
        assert len(split.test_idx) == MNIST_TEST_COUNTS[d]
        assert np.all(mnist.test_labels[split.test_idx] == d)
        assert split.heldout_digit == d
    else:
        assert len(split.test_idx) == 10000 and split.heldout_digit == -1


def test_mnist9_test_has_1009_images(mnist):
    split = make_split("no9", mnist.train_labels, mnist.test_labels, [9])
    assert len(split.test_idx) == 1009


def test_mini_mnist_is_seeded_and_balanced(mnist):
    a = make_split("mini", mnist.train_labels, mnist.test_labels, [9], mini_seed=3)
    b = make_split("mini", mnist.train_labels, mnist.test_labels, [9], mini_seed=3)
    c = make_split("mini", mnist.train_labels, mnist.test_labels, [9], mini_seed=4)
    assert len(a.train_idx) == 100
    assert np.array_equal(a.train_idx, b.train_idx)
    assert not np.array_equal(a.train_idx, c.train_idx)
    assert tuple(np.bincount(mnist.train_labels[a.train_idx], minlength=10)) == (10,) * 10
    assert len(np.unique(a.train_idx)) == 100


def test_subsampling_limits_and_stays_within_split(mnist):
    split = make_split(
        "no3",
        mnist.train_labels,
        mnist.test_labels,
        [3],
        max_train=500,
        max_test_per_digit=7,
        subsample_seed=1,
    )
    assert len(split.train_idx) == 500 and len(np.unique(split.train_idx)) == 500
    assert not np.any(mnist.train_labels[split.train_idx] == 3)
    assert np.array_equal(split.test_idx, np.flatnonzero(mnist.test_labels == 3)[:7])


def test_unknown_split_name_rejected(mnist):
    with pytest.raises(ValueError, match="unknown split 'no10'"):
        make_split("no10", mnist.train_labels, mnist.test_labels, [1])


def test_split_round_trip(tmp_path, mnist):
    split = make_split(
        "no5", mnist.train_labels, mnist.test_labels, [5], max_train=50, data=mnist.fingerprint
    )
    save_split(split, tmp_path / "no5.npz")
    back = load_split(tmp_path / "no5.npz")
    assert back.name == "no5" and back.heldout_digit == 5 and back.data == mnist.fingerprint
    assert np.array_equal(back.train_idx, split.train_idx)
    assert np.array_equal(back.test_idx, split.test_idx)


# ---------------------------------------------------------------- split files


def _small_split(mnist, name="no9"):
    return make_split(name, mnist.train_labels, mnist.test_labels, [9], data=mnist.fingerprint)


def test_a_split_made_from_other_data_is_refused(tmp_path):
    mnist, other = _small_mnist(), _small_mnist(n_train=40)
    split = make_split(
        "no9", mnist.train_labels[:30], mnist.test_labels, [9], data=other.fingerprint
    )  # same rows, other data's fingerprint
    with pytest.raises(
        DataError,
        match=rf"split 'no9': made from data {other.fingerprint}, but "
        rf"this run's data is {mnist.fingerprint}",
    ):
        check_split(split, mnist, path="results/splits/no9.npz")
    path = tmp_path / "no9.npz"
    with pytest.raises(ValueError, match="has no data fingerprint"):
        save_split(make_split("no9", mnist.train_labels, mnist.test_labels, [9]), path)
    assert not path.exists()
    with open(path, "wb") as fh:  # a split file without the record
        np.savez(
            fh,
            name=np.array("no9"),
            train_idx=np.arange(3),
            test_idx=np.arange(2),
            heldout_digit=np.array(9),
            data=np.array(""),
        )
    with pytest.raises(DataError, match=rf"{path}: records no data fingerprint"):
        load_split(path)


def test_truncated_or_foreign_split_file_is_named(tmp_path):
    mnist = _small_mnist()
    path = tmp_path / "no9.npz"
    save_split(_small_split(mnist), path)
    raw = path.read_bytes()
    path.write_bytes(raw[:-40])
    with pytest.raises(DataError, match=rf"{path}: cannot read the split"):
        load_split(path)
    save_mnist(mnist, path)  # an MNIST file, not a split
    with pytest.raises(
        DataError,
        match=rf"{path}: not a split file: missing array\(s\) "
        r"\['name', 'train_idx', 'test_idx', 'heldout_digit', "
        r"'data'\]",
    ):
        load_split(path)
    with open(path, "wb") as fh:  # float indices
        np.savez(
            fh,
            name=np.array("no9"),
            train_idx=np.arange(3.0),
            test_idx=np.arange(2),
            heldout_digit=np.array(9),
            data=np.array(mnist.fingerprint),
        )
    with pytest.raises(
        DataError,
        match=rf"{path}: train_idx has dtype float64, expected "
        r"integers",
    ):
        load_split(path)


def test_split_whose_name_disagrees_with_its_file_is_refused(tmp_path):
    path = tmp_path / "no9.npz"
    save_split(_small_split(_small_mnist(), "no3"), path)  # a no3 split saved as no9.npz
    assert load_split(path).name == "no3"  # no expectation: loads
    with pytest.raises(DataError, match=rf"{path}: holds split 'no3', expected 'no9'"):
        load_split(path, expect_name="no9")
    assert load_split(path, expect_name="no3").name == "no3"


def test_split_with_rows_outside_mnist_is_refused(tmp_path):
    mnist = _small_mnist(n_train=30, n_test=10)
    good = _small_split(mnist)
    check_split(good, mnist)  # no error
    bad = Split("no9", np.append(good.train_idx, 30), good.test_idx, 9)
    with pytest.raises(
        DataError,
        match=r"no9\.npz: split 'no9': train_idx has rows outside "
        r"0\.\.29 \(MNIST has 30 training images\): \[30\]",
    ):
        check_split(bad, mnist, path="results/splits/no9.npz")
    bad = Split("no9", good.train_idx, np.array([-1, 3]), 9)
    with pytest.raises(
        DataError,
        match=r"split 'no9': test_idx has rows outside 0\.\.9 "
        r"\(MNIST has 10 test images\): \[-1\]",
    ):
        check_split(bad, mnist)
    bad = Split("no9", np.arange(30), good.test_idx, 9)  # holds the 9s: other MNIST?
    with pytest.raises(
        DataError,
        match=r"split 'no9' holds out digit 9 but 3 of its training "
        r"rows are 9s",
    ):
        check_split(bad, mnist)
    bad = Split("no9", np.array([0, 1, 1]), good.test_idx, 9)
    with pytest.raises(DataError, match=r"train_idx repeats rows \[1\]"):
        check_split(bad, mnist)


def test_a_heldout_digit_without_test_images_stops_when_splits_are_made():
    train_labels = np.arange(100) % 10
    test_labels = np.arange(30) % 9  # no 9 in the test file
    with pytest.raises(DataError, match="split no9: the test file has no images of digit 9"):
        make_split("no9", train_labels, test_labels, [9])
    assert len(make_split("no8", train_labels, test_labels, [8]).test_idx) == 3


def test_load_checked_splits_names_each_split_and_checks_it(tmp_path):
    mnist = _small_mnist()
    save_split(_small_split(mnist, "no9"), tmp_path / "no9.npz")
    save_split(_small_split(mnist, "full"), tmp_path / "full.npz")
    splits = load_checked_splits([tmp_path / "full.npz", tmp_path / "no9.npz"], mnist)
    assert list(splits) == ["full", "no9"] and splits["no9"].heldout_digit == 9
    assert list(load_checked_splits(str(tmp_path / "no9.npz"), mnist)) == ["no9"]
    (tmp_path / "no3.npz").write_bytes((tmp_path / "no9.npz").read_bytes())
    with pytest.raises(DataError, match=r"no3\.npz: holds split 'no9', expected 'no3'"):
        load_checked_splits([tmp_path / "no3.npz"], mnist)
    other = _small_mnist(n_train=40)
    with pytest.raises(DataError, match=r"no9\.npz: split 'no9': made from data"):
        load_checked_splits([tmp_path / "no9.npz"], other)


# found by mutation testing (bench/mutation.sh splits; docs/benchmarks/mutation.md)


def _labels(per_digit=(10,) * 10):
    return np.concatenate([np.full(n, d) for d, n in enumerate(per_digit)])


def test_subsampling_streams_and_defaults():
    train, test = _labels((12,) * 10), _labels((2,) * 10)
    rows = np.arange(len(train))
    full = make_split("full", train, test, list(range(10)), max_train=5)
    # the documented stream: default_rng([subsample_seed, heldout + 1]), 5 rows without repeats
    want = np.sort(np.random.default_rng([0, 0]).choice(rows, 5, replace=False))
    assert full.train_idx.tolist() == want.tolist()
    assert (
        make_split("full", train, test, [0], max_train=5, subsample_seed=0).train_idx.tolist()
        == want.tolist()
    )
    no3 = make_split("no3", train, test, [3], max_train=7)
    want = np.sort(np.random.default_rng([0, 4]).choice(rows[train != 3], 7, replace=False))
    assert no3.train_idx.tolist() == want.tolist()
    one = make_split("full", train, test, [0], max_train=1)  # a single training row
    assert len(one.train_idx) == 1


def test_mini_takes_every_image_of_a_digit_with_exactly_enough_and_ignores_max_train():
    train, test = _labels(), _labels((1,) * 10)  # exactly 10 of each digit
    mini = make_split("mini", train, test, [0], max_train=5)
    assert mini.train_idx.tolist() == list(range(100))  # no repeats, all of them
    assert mini.train_idx.dtype == np.int64
    # the default mini_seed is 0
    train = _labels((15,) * 10)
    assert (
        make_split("mini", train, test, [0]).train_idx.tolist()
        == make_split("mini", train, test, [0], mini_seed=0).train_idx.tolist()
    )
    with pytest.raises(
        DataError, match="^mini-MNIST needs 10 images of digit 4, the training file has 9$"
    ):
        make_split("mini", _labels((10,) * 4 + (9,) + (10,) * 5), test, [0])


def test_no_training_images_and_no_evaluation_digits():
    with pytest.raises(DataError, match="^split no9: no training images$"):
        make_split("no9", np.full(5, 9), _labels((1,) * 10), [9])
    split = make_split("full", _labels(), _labels((1,) * 10), [])
    assert split.test_idx.shape == (0,) and split.test_idx.dtype == np.int64


def _write_split(path, **override):
    arrays = dict(
        name=np.array("no9"),
        train_idx=np.arange(3),
        test_idx=np.arange(2),
        heldout_digit=np.array(9),
        data=np.array("abc"),
    )
    arrays.update(override)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def test_split_file_arrays_are_checked_one_by_one(tmp_path):
    path = tmp_path / "no9.npz"
    cases = [
        (dict(name=np.array(5)), "name is int64 (), expected one string"),
        (
            dict(train_idx=np.zeros((2, 2), np.int64)),
            "train_idx has shape (2, 2), expected one dimension",
        ),
        (dict(heldout_digit=np.array(12)), "heldout_digit is array(12), expected a digit or -1"),
        (dict(heldout_digit=np.array(3.0)), "heldout_digit is array(3.), expected"),
        (dict(heldout_digit=np.array(-2)), "heldout_digit is array(-2)"),
        (dict(heldout_digit=np.array(10)), "heldout_digit is array(10)"),
        (dict(data=np.array(7)), "data is int64 (), expected one string"),
    ]
    for override, message in cases:
        _write_split(path, **override)
        with pytest.raises(DataError, match="^" + re.escape(f"{path}: {message}")):
            load_split(path)
    _write_split(path, heldout_digit=np.array(-1), test_idx=np.arange(2, dtype=np.int32))
    split = load_split(path)
    assert split.heldout_digit == -1 and split.test_idx.dtype == np.int64


def test_check_split_messages_and_a_held_out_zero():
    mnist = _small_mnist()  # 30 training, 10 test rows
    outside = Split("s", np.array([0, 30, 31, 32, 33, 34]), np.arange(2), -1)
    with pytest.raises(
        DataError,
        match=r"^split 's': train_idx has rows outside 0\.\.29 \(MNIST "
        r"has 30 training images\): \[30, 31, 32, 33, 34\] "
        r"\(a split",
    ):
        check_split(outside, mnist)  # five outside: no "..."
    outside.train_idx = np.arange(24, 36)
    with pytest.raises(DataError, match=r"\[30, 31, 32, 33, 34\] \.\.\. \(a split"):
        check_split(outside, mnist)
    repeats = Split("s", np.repeat(np.arange(6), 2), np.arange(2), -1)
    with pytest.raises(DataError, match=r"^split 's': train_idx repeats rows \[0, 1, 2, 3, 4\]$"):
        check_split(repeats, mnist)
    with pytest.raises(DataError, match="holds out digit 0 but 3 of its training rows are 0s"):
        check_split(Split("no0", np.arange(30), np.arange(2), 0), mnist)


def test_rows_digest_by_hand_for_arrays_and_tensors():
    import hashlib
    import struct

    import torch

    from vae_novelty.splits import rows_digest

    want = "rows-sha256:" + hashlib.sha256(struct.pack("<3q", 4, 0, 59999)).hexdigest()
    assert rows_digest(np.array([4, 0, 59999], np.int32)) == want
    assert rows_digest(torch.tensor([4, 0, 59999])) == want
