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


# --------------------------------------------------------------------------- issue #14 (5-7)

@pytest.mark.parametrize("text, key", [
    ("learning_rate: 0.001", "training.learning_rate"),
    ("chunk_mb: 1024", "theorem1.chunk_mb"),
    ("hist_max: 6.0", "figures.figure1.hist_max"),
    ("eps: 1.0e-6", "elbo.eps"),
    ("epochs: 10", "training.epochs"),
])
@pytest.mark.parametrize("bad, shown", [(".nan", "nan"), (".inf", "inf"), ("-.inf", "-inf")])
def test_non_finite_numbers_are_refused(text, key, bad, shown):
    # As YAML writes them: NaN passes exclusiveMinimum/maximum (every comparison is false).
    source = (REPO / "config/config.yaml").read_text()
    assert source.count(text) == 1
    cfg = yaml.safe_load(source.replace(text, text.split(":")[0] + ": " + bad))
    with pytest.raises(ConfigError) as err:
        vcfg.load_config(cfg)
    msg = str(err.value)
    assert f"config key {key}: {shown} is not a finite number (NaN and infinity are not allowed)" \
        in msg
    assert msg.count(key + ":") == 1  # one line per key, not also a schema line


def test_non_finite_numbers_are_refused_anywhere(cfg):
    bad = copy.deepcopy(cfg)
    bad["model"]["architectures"]["h100"] = [float("nan")]
    bad["figures"]["figure3"]["extent"] = float("inf")
    with pytest.raises(ConfigError) as err:
        vcfg.load_config(bad)
    msg = str(err.value)
    assert "config key model.architectures.h100.0: nan is not a finite number" in msg
    assert "config key figures.figure3.extent: inf is not a finite number" in msg


def _numeric_subschemas(node, where="#"):
    """Every schema node that admits an integer or a number, with its location."""
    if isinstance(node, dict):
        types = node.get("type", [])
        types = [types] if isinstance(types, str) else types
        if {"integer", "number"} & set(types):
            yield where, node
        for key, value in node.items():
            yield from _numeric_subschemas(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _numeric_subschemas(value, f"{where}/{i}")


def test_every_schema_number_has_an_upper_bound():
    schema = yaml.safe_load(vcfg.SCHEMA_PATH.read_text())
    numbers = list(_numeric_subschemas(schema))
    assert len(numbers) > 20
    unbounded = [where for where, node in numbers
                 if "maximum" not in node and "exclusiveMaximum" not in node]
    assert unbounded == []


@pytest.mark.parametrize("path, value, message", [
    (("training", "seeds"), [2**32], r"training\.seeds\.0: 4294967296 is greater than the "
                                     r"maximum of 4294967295"),
    (("splits", "subsample_seed"), 10**12, r"splits\.subsample_seed: 1000000000000 is greater "
                                           r"than the maximum of 4294967295"),
    (("model", "architectures"), {"h1": [10**12]}, r"model\.architectures\.h1\.0: 1000000000000 "
                                                   r"is greater than the maximum of 65536"),
    (("model", "z_dim"), 70000, r"model\.z_dim: 70000 is greater than the maximum of 65536"),
    (("training", "epochs"), 10**12, r"training\.epochs: 1000000000000 is greater than the "
                                     r"maximum of 1000000"),
    (("training", "batch_size"), 10**12, r"training\.batch_size: 1000000000000 is greater than "
                                         r"the maximum of 10000000"),
    (("training", "learning_rate"), 1e12, r"training\.learning_rate: 1000000000000\.0 is greater "
                                          r"than the maximum of 10"),
    (("splits", "max_train_images"), 10**12, r"splits\.max_train_images: 1000000000000 is "
                                             r"greater than the maximum of 100000000"),
    (("theorem1", "top_k"), 1001, r"theorem1\.top_k: 1001 is greater than the maximum of 1000"),
    (("theorem1", "chunk_mb"), 1e12, r"theorem1\.chunk_mb: 1000000000000\.0 is greater than the "
                                     r"maximum of 1048576"),
    (("elbo", "samples"), 10**12, r"elbo\.samples: 1000000000000 is greater than the maximum "
                                  r"of 1024"),
    (("seeds_ci", "bootstrap"), 10**12, r"seeds_ci\.bootstrap: 1000000000000 is greater than "
                                        r"the maximum of 1000000"),
    (("figures", "dpi"), 10**12, r"figures\.dpi: 1000000000000 is greater than the maximum of "
                                 r"4800"),
    (("figures", "figure3"), {"grid_size": 4001}, r"figures\.figure3\.grid_size: 4001 is greater "
                                                  r"than the maximum of 4000"),
])
def test_numbers_above_their_bound_name_key_and_bound(cfg, path, value, message):
    with pytest.raises(ConfigError, match=message):
        vcfg.load_config(edit(cfg, path, value))


def test_results_dir_root_braces_and_file_are_refused(cfg, tmp_path):
    a_file = tmp_path / "results.txt"
    a_file.write_text("not a folder")
    for value, message in [
        ("/", r"config key results_dir: '/' is the filesystem root"),
        ("//", r"config key results_dir: '//' is the filesystem root"),
        ("results/{arch}", r"config key results_dir: 'results/\{arch\}' contains '\{' or '\}', "
                           r"which Snakemake would read as wildcards"),
        ("out}", r"config key results_dir: 'out\}' contains"),
        (str(a_file), r"config key results_dir: '.*results\.txt' is an existing file, not a "
                      r"folder"),
    ]:
        with pytest.raises(ConfigError, match=message):
            vcfg.load_config({**cfg, "results_dir": value})
    for fine in ("results", "results/", str(tmp_path), str(tmp_path / "new")):
        assert vcfg.load_config({**cfg, "results_dir": fine})["results_dir"] == fine


def snakemake_config(base: dict, *overrides: str) -> dict:
    """``config`` as Snakemake 9 builds it: the config file, then each ``--config`` entry parsed
    by ``snakemake.cli.parse_config`` and merged by ``snakemake.utils.update_config``."""
    from snakemake.cli import parse_config
    from snakemake.utils import update_config

    out = copy.deepcopy(base)
    update_config(out, parse_config(list(overrides)))
    return out


def test_nested_config_override_changes_only_that_value(cfg):
    # Snakemake parses the braces with YAML's BaseLoader: the 3 arrives as the string '3'.
    merged = snakemake_config(cfg, "training={epochs: 3}")
    assert merged["training"]["epochs"] == "3"
    assert merged["training"]["batch_size"] == 128  # merged key by key, not replaced
    out = vcfg.load_config(merged)
    expected = vcfg.load_config(cfg)
    assert expected["training"]["epochs"] == 10
    expected["training"]["epochs"] = 3
    assert out == expected
    assert type(out["training"]["epochs"]) is int


def test_dotted_config_override_is_rejected_by_snakemake(cfg):
    with pytest.raises(ValueError, match="valid identifier"):
        snakemake_config(cfg, "training.epochs=3")


def test_override_strings_are_read_as_the_schema_types(cfg):
    merged = snakemake_config(
        cfg, "training={learning_rate: 1e-3, seeds: [0, 1], tf32: true, device: cpu}",
        "splits={max_train_images: null, max_test_per_digit: 50}", "theorem1={chunk_mb: 0.5}")
    out = vcfg.load_config(merged)
    t = out["training"]
    assert (t["learning_rate"], t["seeds"], t["tf32"], t["device"]) == (0.001, [0, 1], True, "cpu")
    assert out["splits"]["max_train_images"] is None and out["splits"]["max_test_per_digit"] == 50
    assert out["theorem1"]["chunk_mb"] == 0.5 and out["training"]["epochs"] == 10
    # a YAML pitfall fixed by the same rule: PyYAML reads 1e-3 (no dot) as a string
    assert vcfg.load_config(edit(cfg, ("training", "learning_rate"), "1e-3"))["training"][
        "learning_rate"] == 0.001


@pytest.mark.parametrize("override, message", [
    ("training={epochs: ten}", r"training\.epochs: 'ten' is not of type integer"),
    ("training={epochs: 1e3}", r"training\.epochs: '1e3' is not of type integer"),
    ("training={learning_rate: .nan}", r"training\.learning_rate: '\.nan' is not of type number"),
    ("training={epochs: 10000000}", r"training\.epochs: 10000000 is greater than the maximum"),
    ("training={ensemble: maybe}", r"training\.ensemble: 'maybe' is not of type boolean"),
    ("splits={max_train_images: lots}", r"splits\.max_train_images: 'lots' is not of type "
                                        r"integer or null"),
])
def test_override_strings_that_do_not_fit_are_refused(cfg, override, message):
    with pytest.raises(ConfigError, match=message):
        vcfg.load_config(snakemake_config(cfg, override))


@pytest.mark.slow  # runs snakemake --dry-run (a few seconds)
def test_nested_config_override_through_snakemake_dry_run(tmp_path):
    from conftest import run_snakemake

    proc = run_snakemake(tmp_path, "--dry-run", "--cores", "1", "--config",
                         "training={epochs: 3}", timeout=120)
    assert "This was a dry-run" in proc.stdout + proc.stderr
