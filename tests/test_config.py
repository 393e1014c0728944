"""Config validation: every shipped config passes; bad values fail with a readable message."""

from __future__ import annotations

import copy

import pytest
import yaml

from conftest import REPO
from vae_novelty import config as vcfg
from vae_novelty.config import ConfigError


def load(name):
    return yaml.safe_load((REPO / name).read_text())


@pytest.fixture
def cfg():
    return load("config/config.yaml")


@pytest.mark.parametrize("name", ["config/config.yaml", "config/quick.yaml",
                                  "tests/configs/tiny.yaml"])
def test_shipped_configs_are_valid(name):
    vcfg.load_config(load(name))


def test_full_config_is_the_paper_grid(cfg):
    c = vcfg.load_config(cfg)
    grid = vcfg.model_grid(c)
    assert len(c["model"]["architectures"]) == 17
    assert len(grid) == 17 * 11 + 1  # 17 architectures x (MNIST^tr + 10 held-out) + mini
    assert c["model"]["architectures"][c["model"]["shallow"]] == [400]
    assert c["model"]["architectures"][c["model"]["deep"]] == [400, 200, 100]
    depths = sorted(len(w) for w in c["model"]["architectures"].values())
    assert depths.count(1) == 3 and depths.count(2) == 4 and depths.count(3) == 10
    ids = [m.model_id for m in grid]
    assert len(set(ids)) == len(ids)


def edit(cfg, path, value):
    out = copy.deepcopy(cfg)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


@pytest.mark.parametrize("path, value, message", [
    (("training", "epochs"), 0, r"training\.epochs: 0 is less than the minimum of 1"),
    (("training", "epochs"), "ten", r"training\.epochs: 'ten' is not of type integer"),
    (("splits", "heldout_digits"), [9, 10], r"splits\.heldout_digits\.1: 10 is greater than the "
                                            r"maximum of 9"),
    (("model", "z_dim"), 0, r"model\.z_dim: 0 is less than the minimum of 1"),
    (("model", "architectures"), {"h0": []}, r"model\.architectures\.h0: \[\] should be non-empty"),
    (("model", "architectures"), {"h0": [0]}, r"model\.architectures\.h0\.0: 0 is less than"),
    (("model", "architectures"), {"H1": [10]}, r"'H1' must match"),
    (("data", "source"), "web", r"data\.source: 'web' is not one of 'bundled', 'folder', "
                                r"'torchvision'"),
    (("training", "device"), "gpu", r"training\.device: 'gpu' is not one of 'auto', 'cpu', 'cuda'"),
    (("theorem1", "top_k"), 2, r"theorem1\.top_k: 2 is less than the minimum of 3"),
    (("elbo", "samples"), 0, r"elbo\.samples: 0 is less than the minimum of 1"),
    (("elbo", "eps"), 0, r"elbo\.eps: 0 is less than or equal to the minimum of 0"),
    (("elbo", "eps"), 0.5, r"elbo\.eps: 0\.5 is greater than the maximum of 0\.01"),
    (("elbo", "seed"), -1, r"elbo\.seed: -1 is less than the minimum of 0"),
])
def test_schema_errors_name_key_and_allowed_values(cfg, path, value, message):
    with pytest.raises(ConfigError, match=message):
        vcfg.load_config(edit(cfg, path, value))


def test_unknown_key_lists_allowed_keys(cfg):
    bad = copy.deepcopy(cfg)
    bad["training"]["epoch"] = 3
    with pytest.raises(ConfigError) as err:
        vcfg.load_config(bad)
    msg = str(err.value)
    assert "unknown config key training.epoch" in msg and "epochs" in msg


def test_unknown_top_level_key(cfg):
    with pytest.raises(ConfigError, match="unknown config key trainng"):
        vcfg.load_config({**cfg, "trainng": {}})


def test_batch_larger_than_smallest_split(cfg):
    bad = edit(cfg, ("splits", "max_train_images"), 100)
    with pytest.raises(ConfigError, match=r"training\.batch_size: 128 is larger than the smallest "
                                          r"training split \(100 images\)"):
        vcfg.load_config(bad)


def test_duplicate_architectures_rejected(cfg):
    bad = copy.deepcopy(cfg)
    bad["model"]["architectures"]["shallow400"] = [400]
    with pytest.raises(ConfigError, match="'shallow400' and 'h400' are the same architecture"):
        vcfg.load_config(bad)


def test_shallow_must_name_an_architecture(cfg):
    with pytest.raises(ConfigError, match=r"model\.shallow: 'h999' is not one of"):
        vcfg.load_config(edit(cfg, ("model", "shallow"), "h999"))


def test_figure_digit_must_be_held_out(cfg):
    bad = edit(cfg, ("splits", "heldout_digits"), [3])
    with pytest.raises(ConfigError, match=r"figures\.figure1\.digit: 9 must be one of"):
        vcfg.load_config(bad)


def test_defaults_fill_missing_optional_keys(cfg):
    minimal = {k: cfg[k] for k in ("data", "splits", "model", "training")}
    minimal["training"] = {k: cfg["training"][k] for k in ("epochs", "batch_size",
                                                           "learning_rate", "seeds")}
    out = vcfg.load_config({**minimal, "theorem1": {}, "figures": {}})
    assert out["theorem1"]["top_k"] == 3 and out["training"]["device"] == "auto"
    assert out["elbo"] == {"samples": 8, "eps": 1.0e-6, "seed": 0}


def test_eval_digits_per_split(cfg):
    c = vcfg.load_config(cfg)
    assert vcfg.eval_digits(c, "no4") == [4]
    assert vcfg.eval_digits(c, "full") == list(range(10))


def test_duplicate_seeds_rejected(cfg):
    with pytest.raises(ConfigError, match=r"training\.seeds: \[0, 0\] has non-unique elements"):
        vcfg.load_config(edit(cfg, ("training", "seeds"), [0, 0]))
