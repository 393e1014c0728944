"""The size sweep's splits (issue 20): disjoint halves, nested subsets, balance by digit,
determinism, refusals; the step budget's epochs."""

from __future__ import annotations

import numpy as np
import pytest

from vae_novelty import config as vcfg
from vae_novelty.data import DataError
from vae_novelty.size_splits import (
    HALVES,
    check_size_splits,
    epochs_for_steps,
    eval_rows,
    half_digit_counts,
    make_size_splits,
    nested_order,
    parse_size_split_name,
    round_robin_counts,
    size_problem,
    size_split_name,
    split_halves,
)

SIZES = [100, 300, 1000, 3000, 30000]


@pytest.fixture(scope="module")
def sweep(mnist):
    return make_size_splits(
        mnist.train_labels,
        mnist.test_labels,
        SIZES,
        seed=0,
        eval_per_digit=100,
        eval_seed=0,
        data=mnist.fingerprint,
    )


def test_halves_are_disjoint_cover_the_file_and_are_stratified(mnist):
    labels = mnist.train_labels
    halves = split_halves(labels, seed=3)
    a, b = halves["A"], halves["B"]
    assert len(np.intersect1d(a, b)) == 0
    assert np.array_equal(np.sort(np.concatenate([a, b])), np.arange(len(labels)))
    assert len(a) == len(b) == 30000
    for d in range(10):
        na, nb = (np.count_nonzero(labels[h] == d) for h in (a, b))
        assert abs(na - nb) <= 1
    counts = [int(np.count_nonzero(labels == d)) for d in range(10)]
    expected = half_digit_counts(counts)
    assert [int(np.count_nonzero(labels[a] == d)) for d in range(10)] == expected["A"]


def test_subsets_are_nested_balanced_and_have_the_fixed_eval_set(sweep, mnist):
    labels = mnist.train_labels
    for half in HALVES:
        previous = None
        for n in SIZES:
            split = sweep[size_split_name(half, n)]
            assert len(split.train_idx) == n and len(np.unique(split.train_idx)) == n
            counts = np.bincount(labels[split.train_idx], minlength=10)
            if n <= 1000:  # every digit has more than n / 10 images in a half
                assert counts.max() - counts.min() <= 1
            assert counts.min() >= 10
            if previous is not None:
                assert np.isin(previous, split.train_idx).all()
            previous = split.train_idx
    assert np.array_equal(np.bincount(labels[sweep["A100"].train_idx]), [10] * 10)
    test = sweep["A100"].test_idx
    assert np.array_equal(np.bincount(mnist.test_labels[test], minlength=10), [100] * 10)
    assert all(np.array_equal(s.test_idx, test) for s in sweep.values())
    assert len(np.intersect1d(sweep["A30000"].train_idx, sweep["B30000"].train_idx)) == 0
    check_size_splits(sweep, mnist)


def test_round_robin_counts_match_the_rows(mnist):
    labels = mnist.train_labels
    halves = split_halves(labels, seed=0)
    order = nested_order(halves["B"], labels, seed=0, half="B")
    counts = [int(np.count_nonzero(labels[halves["B"]] == d)) for d in range(10)]
    for n in (1, 9, 10, 11, 27115, 29999, 30000):
        assert np.bincount(labels[order[:n]], minlength=10).tolist() == round_robin_counts(
            n, counts
        )


def test_round_robin_counts_against_a_naive_deal():
    rng = np.random.default_rng(1)
    for _ in range(50):
        counts = rng.integers(0, 8, size=10).tolist()
        for n in range(sum(counts) + 1):
            taken, left = [0] * 10, n
            while left:  # one image at a time, digits in turn
                for d in range(10):
                    if left and taken[d] < counts[d]:
                        taken[d] += 1
                        left -= 1
            assert round_robin_counts(n, counts) == taken


def test_same_seed_same_splits_other_seed_other_splits(mnist, sweep):
    again = make_size_splits(
        mnist.train_labels,
        mnist.test_labels,
        SIZES,
        seed=0,
        eval_per_digit=100,
        eval_seed=0,
        data=mnist.fingerprint,
    )
    for name, split in sweep.items():
        assert np.array_equal(split.train_idx, again[name].train_idx)
        assert np.array_equal(split.test_idx, again[name].test_idx)
    other = make_size_splits(
        mnist.train_labels, mnist.test_labels, [100], seed=1, eval_per_digit=100, eval_seed=1
    )
    assert not np.array_equal(other["A100"].train_idx, sweep["A100"].train_idx)
    assert not np.array_equal(other["A100"].test_idx, sweep["A100"].test_idx)


@pytest.mark.parametrize(
    "n, words", [(30001, "larger than half"), (99, "fewer than 10"), (50, "fewer than 10")]
)
def test_refuses_sizes_that_do_not_fit(mnist, n, words):
    with pytest.raises(DataError, match=words):
        make_size_splits(
            mnist.train_labels, mnist.test_labels, [1000, n], seed=0, eval_per_digit=10, eval_seed=0
        )
    assert words in size_problem(n, half_digit_counts(vcfg.MNIST_TRAIN_COUNTS)["A"])


def test_checks_refuse_overlap_non_nesting_and_other_eval_sets(sweep):
    import dataclasses

    bad = dict(sweep)
    bad["B300"] = dataclasses.replace(
        sweep["B300"],
        train_idx=np.sort(
            np.concatenate([sweep["B300"].train_idx[1:], sweep["A100"].train_idx[:1]])
        ),
    )
    with pytest.raises(DataError, match="nested"):
        check_size_splits(bad)
    bad = {
        "A100": sweep["A100"],
        "B100": dataclasses.replace(
            sweep["B100"],
            train_idx=np.sort(
                np.concatenate([sweep["B100"].train_idx[1:], sweep["A100"].train_idx[:1]])
            ),
        ),
    }
    with pytest.raises(DataError, match="share 1 training rows"):
        check_size_splits(bad)
    bad = dict(sweep)
    bad["A300"] = dataclasses.replace(sweep["A300"], test_idx=sweep["A300"].test_idx[1:])
    with pytest.raises(DataError, match="another evaluation set"):
        check_size_splits(bad)
    with pytest.raises(ValueError, match="not a size-sweep split name"):
        parse_size_split_name("full")


def test_eval_rows_are_stratified_and_refuse_too_many(mnist):
    rows = eval_rows(mnist.test_labels, 7, seed=5)
    assert np.array_equal(np.bincount(mnist.test_labels[rows], minlength=10), [7] * 10)
    with pytest.raises(DataError, match="digit 5"):
        eval_rows(mnist.test_labels, 900, seed=0)


def test_epochs_for_a_step_budget():
    assert epochs_for_steps(30000, 100, 3000) == 10
    assert epochs_for_steps(100, 100, 3000) == 3000
    assert epochs_for_steps(250, 100, 3000) == 1000  # 3 steps per epoch, the last of 50
    with pytest.raises(ValueError, match="2996 or 3003"):
        epochs_for_steps(700, 100, 3000)
    with pytest.raises(ValueError, match="not a whole number"):
        epochs_for_steps(30000, 100, 200)


def test_config_refuses_sizes_steps_and_architectures():
    import yaml

    from conftest import TINY

    cfg = yaml.safe_load(TINY.read_text())
    cfg["size_sweep"] = {"enabled": True, "sizes": [50, 700, 30001], "architectures": ["h64", "c"]}
    with pytest.raises(vcfg.ConfigError) as info:
        vcfg.load_config(cfg)
    text = str(info.value)
    assert "size_sweep.architectures: 'c'" in text and "N = 50 gives fewer" in text
    assert "size_sweep.steps: 3000 steps is not a whole number of epochs for N = 700" in text
    assert "N = 30001 is larger than half" in text
    cfg["size_sweep"] = {"enabled": True}
    assert vcfg.size_archs(vcfg.load_config(cfg)) == ["h64", "h64-32-16"]
    # model.only leaves out an architecture the size sweep trains: refused by name
    cfg["size_sweep"] = {"enabled": True, "architectures": ["h64-32-16"]}
    cfg["model"]["only"] = ["h64"]
    cfg["model"]["deep"] = "h64"
    with pytest.raises(
        vcfg.ConfigError,
        match=r"size_sweep.architectures: 'h64-32-16' is not "
        r"among model.only \(h64\)",
    ):
        vcfg.load_config(cfg)
    cfg["size_sweep"] = {"enabled": True}
    assert vcfg.size_archs(vcfg.load_config(cfg)) == ["h64"]
