"""The paper's splits: sizes, seeds and subsampling, and checked split files."""

from __future__ import annotations

import numpy as np
import pytest
from test_data import _small_mnist

from vae_novelty.config import MNIST_TEST_COUNTS
from vae_novelty.data import DataError, save_mnist
from vae_novelty.splits import (Split, check_split, load_checked_splits, load_split, make_split,
                                save_split)


@pytest.mark.parametrize("name, n_train", [("full", 60000), ("no9", 54051), ("no1", 53258),
                                           ("no0", 54077)])
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
    split = make_split("no3", mnist.train_labels, mnist.test_labels, [3], max_train=500,
                       max_test_per_digit=7, subsample_seed=1)
    assert len(split.train_idx) == 500 and len(np.unique(split.train_idx)) == 500
    assert not np.any(mnist.train_labels[split.train_idx] == 3)
    assert np.array_equal(split.test_idx, np.flatnonzero(mnist.test_labels == 3)[:7])


def test_unknown_split_name_rejected(mnist):
    with pytest.raises(ValueError, match="unknown split 'no10'"):
        make_split("no10", mnist.train_labels, mnist.test_labels, [1])


def test_split_round_trip(tmp_path, mnist):
    split = make_split("no5", mnist.train_labels, mnist.test_labels, [5], max_train=50,
                       data=mnist.fingerprint)
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
    split = make_split("no9", mnist.train_labels[:30], mnist.test_labels, [9],
                       data=other.fingerprint)  # same rows, other data's fingerprint
    with pytest.raises(DataError, match=rf"split 'no9': made from data {other.fingerprint}, but "
                                        rf"this run's data is {mnist.fingerprint}"):
        check_split(split, mnist, path="results/splits/no9.npz")
    path = tmp_path / "no9.npz"
    with pytest.raises(ValueError, match="has no data fingerprint"):
        save_split(make_split("no9", mnist.train_labels, mnist.test_labels, [9]), path)
    assert not path.exists()
    with open(path, "wb") as fh:                    # a split file without the record
        np.savez(fh, name=np.array("no9"), train_idx=np.arange(3), test_idx=np.arange(2),
                 heldout_digit=np.array(9), data=np.array(""))
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
    save_mnist(mnist, path)                                        # an MNIST file, not a split
    with pytest.raises(DataError, match=rf"{path}: not a split file: missing array\(s\) "
                                        r"\['name', 'train_idx', 'test_idx', 'heldout_digit', "
                                        r"'data'\]"):
        load_split(path)
    with open(path, "wb") as fh:                                   # float indices
        np.savez(fh, name=np.array("no9"), train_idx=np.arange(3.0), test_idx=np.arange(2),
                 heldout_digit=np.array(9), data=np.array(mnist.fingerprint))
    with pytest.raises(DataError, match=rf"{path}: train_idx has dtype float64, expected "
                                        r"integers"):
        load_split(path)


def test_split_whose_name_disagrees_with_its_file_is_refused(tmp_path):
    path = tmp_path / "no9.npz"
    save_split(_small_split(_small_mnist(), "no3"), path)   # a no3 split saved as no9.npz
    assert load_split(path).name == "no3"                     # no expectation: loads
    with pytest.raises(DataError, match=rf"{path}: holds split 'no3', expected 'no9'"):
        load_split(path, expect_name="no9")
    assert load_split(path, expect_name="no3").name == "no3"


def test_split_with_rows_outside_mnist_is_refused(tmp_path):
    mnist = _small_mnist(n_train=30, n_test=10)
    good = _small_split(mnist)
    check_split(good, mnist)                                  # no error
    bad = Split("no9", np.append(good.train_idx, 30), good.test_idx, 9)
    with pytest.raises(DataError, match=r"no9\.npz: split 'no9': train_idx has rows outside "
                                        r"0\.\.29 \(MNIST has 30 training images\): \[30\]"):
        check_split(bad, mnist, path="results/splits/no9.npz")
    bad = Split("no9", good.train_idx, np.array([-1, 3]), 9)
    with pytest.raises(DataError, match=r"split 'no9': test_idx has rows outside 0\.\.9 "
                                        r"\(MNIST has 10 test images\): \[-1\]"):
        check_split(bad, mnist)
    bad = Split("no9", np.arange(30), good.test_idx, 9)      # holds the 9s: other MNIST?
    with pytest.raises(DataError, match=r"split 'no9' holds out digit 9 but 3 of its training "
                                        r"rows are 9s"):
        check_split(bad, mnist)
    bad = Split("no9", np.array([0, 1, 1]), good.test_idx, 9)
    with pytest.raises(DataError, match=r"train_idx repeats rows \[1\]"):
        check_split(bad, mnist)


def test_a_heldout_digit_without_test_images_stops_when_splits_are_made():
    train_labels = np.arange(100) % 10
    test_labels = np.arange(30) % 9                 # no 9 in the test file
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
