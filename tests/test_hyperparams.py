"""The one hyperparameter type: what it records, what it accepts and what it refuses."""

from __future__ import annotations

import numpy as np
import pytest

from vae_novelty.hyperparams import FIELDS, TrainSettings


def test_record_is_the_documented_train_config_in_its_order():
    s = TrainSettings([400, 200], 50, 10, 128, 1e-3)
    assert s.hidden == (400, 200)  # lists become tuples: hashable, frozen
    assert list(s.record(7).items()) == [
        ("hidden", [400, 200]),
        ("z_dim", 50),
        ("epochs", 10),
        ("batch_size", 128),
        ("learning_rate", 1e-3),
        ("seed", 7),
    ]
    assert list(s.record()) == list(FIELDS)  # the ensemble's key: no seed
    assert s.record(0)["seed"] == 0  # seed 0 is recorded, not dropped


def test_from_params_reads_the_rule_params_and_ignores_other_keys():
    p = {
        "hidden": [8],
        "z_dim": 2,
        "epochs": 3,
        "batch_size": 4,
        "learning_rate": 0.5,
        "models": [["no9", 0]],
        "ensemble": True,
        "tf32": False,
    }
    assert TrainSettings.from_params(p) == TrainSettings((8,), 2, 3, 4, 0.5)
    assert TrainSettings.from_params(p, epochs=9).epochs == 9
    with pytest.raises(ValueError, match="training settings lack epochs, learning_rate"):
        TrainSettings.from_params({"hidden": [8], "z_dim": 2, "batch_size": 4})


def test_numpy_integers_are_accepted():
    s = TrainSettings(np.array([16, 8]), np.int64(2), np.int64(3), 64, np.float64(1e-3))
    assert s.record()["hidden"] == [16, 8]


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(hidden=[]), r"hidden \[\] must be a non-empty list of positive integers"),
        (dict(hidden=[16, 0]), r"hidden \[16, 0\] must be"),
        (dict(hidden=[16.5]), r"hidden \[16\.5\] must be"),
        (dict(z_dim=0), r"z_dim 0 must be a positive integer"),
        (dict(epochs=2.0), r"epochs 2\.0 must be a positive integer"),
        (dict(batch_size=True), r"batch_size True must be a positive integer"),
        (dict(learning_rate=0.0), r"learning_rate 0\.0 must be a finite number > 0"),
        (dict(learning_rate=float("nan")), r"learning_rate nan must be"),
        (dict(learning_rate="1e-3"), r"learning_rate '1e-3' must be"),
    ],
)
def test_bad_settings_are_refused_by_name(kw, message):
    base = dict(hidden=[16], z_dim=2, epochs=3, batch_size=64, learning_rate=1e-3)
    with pytest.raises(ValueError, match=r"^invalid training settings: " + message):
        TrainSettings(**{**base, **kw})


def test_two_problems_are_both_named():
    with pytest.raises(ValueError, match=r"z_dim -1 .*; epochs 0 "):
        TrainSettings([4], -1, 0, 8, 1e-3)
