"""Config validation: every shipped config passes; bad values fail with a readable message."""

from __future__ import annotations

import copy

import pytest
import yaml

from conftest import REPO
from vae_novelty import config as vcfg
from vae_novelty.config import doc as config_doc
from vae_novelty.config import ConfigError


def load(name):
    return yaml.safe_load((REPO / name).read_text())


@pytest.fixture
def cfg():
    return load("config/config.yaml")


@pytest.mark.parametrize(
    "name",
    [
        "config/config.yaml",
        "config/quick.yaml",
        "config/paper-core.yaml",
        "config/epoch-study.yaml",
        "config/fashion.yaml",
        "tests/configs/tiny.yaml",
    ],
)
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


@pytest.mark.parametrize(
    "path, value, message",
    [
        (("training", "epochs"), 0, r"training\.epochs: 0 is less than the minimum of 1"),
        (("training", "epochs"), "ten", r"training\.epochs: 'ten' is not of type integer"),
        (
            ("splits", "heldout_digits"),
            [9, 10],
            r"splits\.heldout_digits\.1: 10 is greater than the "
            r"maximum of 9",
        ),
        (("model", "z_dim"), 0, r"model\.z_dim: 0 is less than the minimum of 1"),
        (
            ("model", "architectures"),
            {"h0": []},
            r"model\.architectures\.h0: \[\] should be non-empty",
        ),
        (("model", "architectures"), {"h0": [0]}, r"model\.architectures\.h0\.0: 0 is less than"),
        (("model", "architectures"), {"H1": [10]}, r"'H1' must match"),
        (
            ("data", "source"),
            "web",
            r"data\.source: 'web' is not one of 'bundled', 'folder', "
            r"'torchvision'",
        ),
        (
            ("training", "device"),
            "gpu",
            r"training\.device: 'gpu' is not one of 'auto', 'cpu', 'cuda'",
        ),
        (("theorem1", "top_k"), 2, r"theorem1\.top_k: 2 is less than the minimum of 3"),
        (("elbo", "samples"), 0, r"elbo\.samples: 0 is less than the minimum of 1"),
        (("elbo", "eps"), 0, r"elbo\.eps: 0 is less than or equal to the minimum of 0"),
        (("elbo", "eps"), 0.5, r"elbo\.eps: 0\.5 is greater than the maximum of 0\.01"),
        (("elbo", "seed"), -1, r"elbo\.seed: -1 is less than the minimum of 0"),
    ],
)
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
    with pytest.raises(
        ConfigError,
        match=r"training\.batch_size: 128 is larger than the smallest "
        r"training split \(100 images\)",
    ):
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
    minimal["training"] = {
        k: cfg["training"][k] for k in ("epochs", "batch_size", "learning_rate", "seeds")
    }
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


@pytest.mark.parametrize(
    "text, key",
    [
        ("learning_rate: 0.001", "training.learning_rate"),
        ("chunk_mb: 1024", "theorem1.chunk_mb"),
        ("hist_max: 6.0", "figures.figure1.hist_max"),
        ("eps: 1.0e-6", "elbo.eps"),
        ("epochs: 10", "training.epochs"),
    ],
)
@pytest.mark.parametrize("bad, shown", [(".nan", "nan"), (".inf", "inf"), ("-.inf", "-inf")])
def test_non_finite_numbers_are_refused(text, key, bad, shown):
    # As YAML writes them: NaN passes exclusiveMinimum/maximum (every comparison is false).
    source = (REPO / "config/config.yaml").read_text()
    assert source.count(text) == 1
    cfg = yaml.safe_load(source.replace(text, text.split(":")[0] + ": " + bad))
    with pytest.raises(ConfigError) as err:
        vcfg.load_config(cfg)
    msg = str(err.value)
    assert (
        f"config key {key}: {shown} is not a finite number (NaN and infinity are not allowed)"
        in msg
    )
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
    unbounded = [
        where for where, node in numbers if "maximum" not in node and "exclusiveMaximum" not in node
    ]
    assert unbounded == []


@pytest.mark.parametrize(
    "path, value, message",
    [
        (
            ("training", "seeds"),
            [2**32],
            r"training\.seeds\.0: 4294967296 is greater than the "
            r"maximum of 4294967295",
        ),
        (
            ("splits", "subsample_seed"),
            10**12,
            r"splits\.subsample_seed: 1000000000000 is greater "
            r"than the maximum of 4294967295",
        ),
        (
            ("model", "architectures"),
            {"h1": [10**12]},
            r"model\.architectures\.h1\.0: 1000000000000 "
            r"is greater than the maximum of 65536",
        ),
        (("model", "z_dim"), 70000, r"model\.z_dim: 70000 is greater than the maximum of 65536"),
        (
            ("training", "epochs"),
            10**12,
            r"training\.epochs: 1000000000000 is greater than the "
            r"maximum of 1000000",
        ),
        (
            ("training", "batch_size"),
            10**12,
            r"training\.batch_size: 1000000000000 is greater than "
            r"the maximum of 10000000",
        ),
        (
            ("training", "learning_rate"),
            1e12,
            r"training\.learning_rate: 1000000000000\.0 is greater "
            r"than the maximum of 10",
        ),
        (
            ("splits", "max_train_images"),
            10**12,
            r"splits\.max_train_images: 1000000000000 is "
            r"greater than the maximum of 100000000",
        ),
        (("theorem1", "top_k"), 1001, r"theorem1\.top_k: 1001 is greater than the maximum of 1000"),
        (
            ("theorem1", "chunk_mb"),
            1e12,
            r"theorem1\.chunk_mb: 1000000000000\.0 is greater than the "
            r"maximum of 1048576",
        ),
        (
            ("elbo", "samples"),
            10**12,
            r"elbo\.samples: 1000000000000 is greater than the maximum "
            r"of 1024",
        ),
        (
            ("seeds_ci", "bootstrap"),
            10**12,
            r"seeds_ci\.bootstrap: 1000000000000 is greater than "
            r"the maximum of 1000000",
        ),
        (
            ("figures", "dpi"),
            10**12,
            r"figures\.dpi: 1000000000000 is greater than the maximum of "
            r"4800",
        ),
        (
            ("figures", "figure3"),
            {"grid_size": 4001},
            r"figures\.figure3\.grid_size: 4001 is greater "
            r"than the maximum of 4000",
        ),
    ],
)
def test_numbers_above_their_bound_name_key_and_bound(cfg, path, value, message):
    with pytest.raises(ConfigError, match=message):
        vcfg.load_config(edit(cfg, path, value))


def test_results_dir_root_braces_and_file_are_refused(cfg, tmp_path):
    a_file = tmp_path / "results.txt"
    a_file.write_text("not a folder")
    for value, message in [
        ("/", r"config key results_dir: '/' is the filesystem root"),
        ("//", r"config key results_dir: '//' is the filesystem root"),
        (
            "results/{arch}",
            r"config key results_dir: 'results/\{arch\}' contains '\{' or '\}', "
            r"which Snakemake would read as wildcards",
        ),
        ("out}", r"config key results_dir: 'out\}' contains"),
        (
            str(a_file),
            r"config key results_dir: '.*results\.txt' is an existing file, not a "
            r"folder",
        ),
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
        cfg,
        "training={learning_rate: 1e-3, seeds: [0, 1], tf32: true, device: cpu}",
        "splits={max_train_images: null, max_test_per_digit: 50}",
        "theorem1={chunk_mb: 1.5}",
    )
    out = vcfg.load_config(merged)
    t = out["training"]
    assert (t["learning_rate"], t["seeds"], t["tf32"], t["device"]) == (0.001, [0, 1], True, "cpu")
    assert out["splits"]["max_train_images"] is None and out["splits"]["max_test_per_digit"] == 50
    assert out["theorem1"]["chunk_mb"] == 1.5 and out["training"]["epochs"] == 10
    # a YAML pitfall fixed by the same rule: PyYAML reads 1e-3 (no dot) as a string
    assert (
        vcfg.load_config(edit(cfg, ("training", "learning_rate"), "1e-3"))["training"][
            "learning_rate"
        ]
        == 0.001
    )


@pytest.mark.parametrize(
    "override, message",
    [
        ("training={epochs: ten}", r"training\.epochs: 'ten' is not of type integer"),
        ("training={epochs: 1e3}", r"training\.epochs: '1e3' is not of type integer"),
        (
            "training={learning_rate: .nan}",
            r"training\.learning_rate: '\.nan' is not of type number",
        ),
        ("training={epochs: 10000000}", r"training\.epochs: 10000000 is greater than the maximum"),
        ("training={ensemble: maybe}", r"training\.ensemble: 'maybe' is not of type boolean"),
        (
            "splits={max_train_images: lots}",
            r"splits\.max_train_images: 'lots' is not of type "
            r"integer or null",
        ),
    ],
)
def test_override_strings_that_do_not_fit_are_refused(cfg, override, message):
    with pytest.raises(ConfigError, match=message):
        vcfg.load_config(snakemake_config(cfg, override))


@pytest.mark.slow  # runs snakemake --dry-run (a few seconds)
def test_nested_config_override_through_snakemake_dry_run(tmp_path):
    from conftest import run_snakemake

    proc = run_snakemake(
        tmp_path, "--dry-run", "--cores", "1", "--config", "training={epochs: 3}", timeout=120
    )
    assert "This was a dry-run" in proc.stdout + proc.stderr


# --------------------------------------------------------------------------- issue #15 (3)
# One home for every setting: the schema holds each key's default, bounds, description and
# what changing it reruns; DEFAULTS and config/README.md are derived from it.


@pytest.fixture(scope="module")
def schema():
    return yaml.safe_load(vcfg.SCHEMA_PATH.read_text())


def _keys(schema, node=None, prefix=""):
    """(dotted name, node, required) of every key of the schema, sections included."""
    node = schema if node is None else node
    for name, child in node.get("properties", {}).items():
        yield prefix + name, child, name in node.get("required", ())
        yield from _keys(schema, child, f"{prefix}{name}.")


def _leaves(schema):
    return [(name, node, req) for name, node, req in _keys(schema) if "properties" not in node]


def _get(cfg, dotted):
    node = cfg
    for part in dotted.split("."):
        node = node[part]
    return node


def _without(cfg, dotted):
    out = copy.deepcopy(cfg)
    *parents, last = dotted.split(".")
    node = out
    for part in parents:
        node = node[part]
    del node[last]
    return out


def _is_required(schema, dotted):
    node, required = schema, False
    for part in dotted.split("."):
        required = part in node.get("required", ())
        node = node["properties"][part]
    return required


def test_config_without_snapshot_every_gets_its_default(cfg):
    # Before: the schema let training.snapshot_every out, DEFAULTS had no value for it, and the
    # Snakefile then failed with a bare KeyError: 'snapshot_every' in train.smk.
    out = vcfg.load_config(_without(cfg, "training.snapshot_every"))
    assert out["training"]["snapshot_every"] == 5


def test_every_key_is_filled_in_when_only_required_keys_are_given(cfg, schema):
    # The workflow reads every key of the schema: a config that validates must hold them all.
    required_only = {}
    for name, node, required in _leaves(schema):
        parents = name.split(".")[:-1]
        if required and all(
            _is_required(schema, ".".join(parents[: i + 1])) for i in range(len(parents))
        ):
            target = required_only
            for part in parents:
                target = target.setdefault(part, {})
            target[name.split(".")[-1]] = copy.deepcopy(_get(cfg, name))
    out = vcfg.load_config(required_only)
    missing = []
    for name, _, _ in _keys(schema):
        try:
            _get(out, name)
        except KeyError:
            missing.append(name)
    assert missing == []


def _optional(node):
    """A key the config may leave out: it has a default, or it is a section of such keys."""
    if "default" in node:
        return True
    props = node.get("properties")
    return bool(props) and not node.get("required") and all(map(_optional, props.values()))


def test_every_key_is_required_or_has_a_default(schema):
    neither = [name for name, node, req in _keys(schema) if not req and not _optional(node)]
    both = [name for name, node, req in _keys(schema) if req and _optional(node)]
    assert neither == [] and both == []


def test_every_key_has_a_one_line_description(schema):
    keys = list(_keys(schema))
    assert len(keys) > 60
    bad = [
        name
        for name, node, _ in keys
        if not isinstance(node.get("description"), str)
        or not node["description"].strip()
        or "\n" in node["description"].strip()
    ]
    assert bad == []


def test_every_setting_says_what_changing_it_reruns(schema):
    bad = [
        name
        for name, node, _ in _leaves(schema)
        if not isinstance(node.get("x-reruns"), str) or not node["x-reruns"].strip()
    ]
    assert bad == []


def reruns(schema, dotted):
    node = schema
    for part in dotted.split("."):
        node = node["properties"][part]
    return node["x-reruns"]


# What the workflow's rules make of each setting (params rerun, resources do not); the dry
# runs of tests/test_reruns.py check the rules themselves.
@pytest.mark.parametrize(
    "dotted",
    [
        "training.device",
        "training.cuda_graphs",
        "training.snapshot_every",
        "theorem1.device",
        "theorem1.chunk_mb",
    ],
)
def test_speed_only_settings_rerun_nothing(schema, dotted):
    assert reruns(schema, dotted).startswith("nothing (")


@pytest.mark.parametrize(
    "dotted",
    [
        "training.tf32",
        "training.epochs",
        "training.batch_size",
        "training.learning_rate",
        "training.seeds",
        "training.ensemble",
        "training.mini_epochs",
        "training.mini_batch_size",
        "model.z_dim",
        "model.mini.hidden",
        "model.mini.z_dim",
    ],
)
def test_training_settings_rerun_training_and_everything_after(schema, dotted):
    text = reruns(schema, dotted)
    assert "training" in text and "everything after" in text


@pytest.mark.parametrize("dotted", ["theorem1.top_k", "elbo.samples", "elbo.eps", "elbo.seed"])
def test_evaluation_settings_rerun_evaluation_never_training(schema, dotted):
    text = reruns(schema, dotted)
    assert text.startswith("evaluation") and "never training" in text


@pytest.mark.parametrize(
    "dotted, expected",
    [
        ("seeds_ci.bootstrap", "the seed summary, figure_quant and figure15"),
        ("seeds_ci.level", "the seed summary, figure_quant and figure15"),
        ("seeds_ci.seed", "the seed summary, figure_quant and figure15"),
        ("figures.figure1.test_images", "that figure only"),
        ("figures.figure1.hist_bins", "that figure only"),
        ("figures.figure2.bce_max", "that figure only"),
        ("figures.figure3.cmap", "that figure only"),
        ("figures.figure1.digit", "figures 1, 2 and 14 only"),
        ("model.shallow", "figures 1, 2 and 14 only"),
        ("figures.figure14.n_samples", "that figure only"),
        ("figures.sweep.test_image", "figures 4-13 (one job)"),
        ("figures.dpi", "every figure"),
        ("data.name", "every figure (labels only)"),
    ],
)
def test_figure_and_summary_settings_rerun_only_their_outputs(schema, dotted, expected):
    assert reruns(schema, dotted) == expected


@pytest.mark.parametrize(
    "dotted", ["data.source", "data.folder", "data.torchvision_root", "data.checksums"]
)
def test_data_settings_rerun_the_data_and_everything_after(schema, dotted):
    assert reruns(schema, dotted).startswith("the data and everything after")


def test_defaults_are_read_from_the_schema(schema):
    assert vcfg.DEFAULTS == vcfg.schema_defaults(schema)
    for name, node, _ in _leaves(schema):
        if "default" in node:
            assert _get(vcfg.DEFAULTS, name) == node["default"], name
    # in model only model.only (null: every architecture) has a default: the rest is required
    assert vcfg.DEFAULTS["model"] == {"only": None}


def test_a_default_changed_in_the_schema_is_the_one_used(cfg, schema, tmp_path):
    edited = copy.deepcopy(schema)
    edited["properties"]["elbo"]["properties"]["samples"]["default"] = 5
    path = tmp_path / "schema.yaml"
    path.write_text(yaml.safe_dump(edited, sort_keys=False))
    out = vcfg.load_config(_without(cfg, "elbo.samples"), schema_path=path)
    assert out["elbo"]["samples"] == 5
    assert vcfg.load_config(_without(cfg, "elbo.samples"))["elbo"]["samples"] == 8


def test_every_default_is_valid_for_its_key(schema):
    import jsonschema

    for name, node, _ in _keys(schema):
        if "default" in node:
            validator = jsonschema.Draft202012Validator({**node, "$defs": schema["$defs"]})
            assert list(validator.iter_errors(node["default"])) == [], name


def test_config_readme_is_generated_from_the_schema():
    # Regenerate: PYTHONPATH=src python -m vae_novelty.config --markdown > config/README.md
    assert (REPO / "config" / "README.md").read_text() == config_doc.config_reference_markdown()


def test_config_readme_has_a_row_per_setting(schema):
    text = config_doc.config_reference_markdown(schema)
    assert config_doc.REGENERATE in text.splitlines()[2]
    for name, node, required in _leaves(schema):
        row = next(line for line in text.splitlines() if line.startswith(f"| `{name}` |"))
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        assert len(cells) == 5, row
        default = "*required*" if required else f"`{config_doc._inline(node['default'])}`"
        assert cells[2] == default
        assert cells[4] == node["x-reruns"].replace("|", "\\|")
    assert "| `training.snapshot_every` |" in text


@pytest.mark.parametrize(
    "name, words",
    [
        ("training.learning_rate", "number 0 < x ≤ 10"),
        ("splits.heldout_digits", "list of integers 0 ≤ x ≤ 9 (at least 1 item, no repeats)"),
        ("splits.max_train_images", "integer 1 ≤ x ≤ 100000000 or null"),
        ("data.source", "one of `bundled`, `folder`, `torchvision`"),
        ("data.folder", "string or null"),
        ("seeds_ci.level", "number 0 < x < 1"),
        (
            "figures.formats",
            "list of values from `png`, `pdf`, `svg` (at least 1 item, no repeats)",
        ),
        (
            "model.architectures",
            "mapping of names matching `^[a-z0-9][a-z0-9-]*$` to lists of "
            "integers 1 ≤ x ≤ 65536 (at least 1 item each); at least 1 entry",
        ),
    ],
)
def test_allowed_values_in_words(schema, name, words):
    node = schema
    for part in name.split("."):
        node = node["properties"][part]
    assert config_doc.allowed_values(node, schema) == words


def test_markdown_entry_point_prints_the_readme():
    import os
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "vae_novelty.config", "--markdown"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (REPO / "config" / "README.md").read_text()


@pytest.mark.slow  # runs snakemake --dry-run (a few seconds)
def test_config_without_snapshot_every_plans_through_snakemake(tmp_path):
    # The symptom of the drift: "KeyError in file workflow/rules/train.smk: 'snapshot_every'".
    from conftest import TINY, run_snakemake

    tiny = _without(yaml.safe_load(TINY.read_text()), "training.snapshot_every")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(tiny, sort_keys=False))
    proc = run_snakemake(tmp_path, "--dry-run", "--cores", "1", configfile=path, timeout=120)
    assert "This was a dry-run" in proc.stdout + proc.stderr


def test_paper_core_extra_seeds_give_the_claims_models_three_seeds():
    c = vcfg.load_config(load("config/paper-core.yaml"))
    grid = vcfg.model_grid(c)
    seeds = {}
    for m in grid:
        seeds.setdefault((m.arch, m.split), []).append(m.seed)
    assert len(grid) == 73  # 17 x no9 x 3 + 2 x full x 3 + 15 x full x 1 + mini
    assert all(seeds[(a, "no9")] == [0, 1, 2] for a in c["model"]["architectures"])
    assert seeds[("h400", "full")] == seeds[("h400-200-100", "full")] == [0, 1, 2]
    assert seeds[("h100", "full")] == [0] and seeds[("mini", "mini")] == [0]
    # the job of an architecture lists its models split by split, seeds in order
    assert vcfg.arch_grid(c, "h400") == [
        ("full", 0),
        ("full", 1),
        ("full", 2),
        ("no9", 0),
        ("no9", 1),
        ("no9", 2),
    ]


def test_extra_seeds_blocks_combine_without_repeating_a_seed(cfg):
    c = edit(cfg, ("training", "seeds"), [0, 5])
    c = edit(
        c,
        ("training", "extra_seeds"),
        [{"seeds": [5, 1], "architectures": ["h400"]}, {"seeds": [1, 2], "splits": ["no3"]}],
    )
    c = vcfg.load_config(c)
    assert vcfg.split_seeds(c, "h400", "no3") == [0, 5, 1, 2]
    assert vcfg.split_seeds(c, "h400", "full") == [0, 5, 1]
    assert vcfg.split_seeds(c, "h100", "no3") == [0, 5, 1, 2]
    assert vcfg.split_seeds(c, "h100", "no4") == [0, 5]
    assert vcfg.split_seeds(c, "mini", "mini") == [0, 5]  # the mini model: training.seeds only


@pytest.mark.parametrize(
    "block, message",
    [
        (
            {"seeds": [1], "architectures": ["h999"]},
            r"training\.extra_seeds\.0\.architectures: 'h999' is not one of model\.architectures",
        ),
        (
            {"seeds": [1], "splits": ["no3"]},
            r"training\.extra_seeds\.0\.splits: 'no3' is not a sweep split",
        ),
        ({"seeds": [1], "splits": ["mini"]}, r"training\.extra_seeds\.0\.splits"),
        ({"seeds": []}, r"training\.extra_seeds\.0\.seeds"),
        ({"seed": [1]}, r"training\.extra_seeds\.0"),
    ],
)
def test_extra_seeds_refuse_unknown_names(cfg, block, message):
    bad = edit(cfg, ("splits", "heldout_digits"), [9])
    bad = edit(bad, ("training", "extra_seeds"), [block])
    with pytest.raises(ConfigError, match=message):
        vcfg.load_config(bad)


def test_train_params_are_the_training_rules_settings():
    c = vcfg.load_config(load("tests/configs/tiny.yaml"))
    arch = next(iter(c["model"]["architectures"]))
    t = c["training"]
    sweep = vcfg.train_params(c, arch)
    assert list(sweep) == [
        "hidden",
        "z_dim",
        "models",
        "epochs",
        "batch_size",
        "learning_rate",
        "ensemble",
        "tf32",
    ]
    assert sweep == {
        "hidden": list(c["model"]["architectures"][arch]),
        "z_dim": c["model"]["z_dim"],
        "models": [list(m) for m in vcfg.arch_grid(c, arch)],
        "epochs": t["epochs"],
        "batch_size": t["batch_size"],
        "learning_rate": t["learning_rate"],
        "ensemble": t["ensemble"],
        "tf32": t["tf32"],
    }
    mini = vcfg.train_params(c, "mini")
    assert (mini["hidden"], mini["z_dim"]) == (
        list(c["model"]["mini"]["hidden"]),
        c["model"]["mini"]["z_dim"],
    )
    assert (mini["epochs"], mini["batch_size"]) == (t["mini_epochs"], t["mini_batch_size"])
    assert mini["models"] == [["mini", s] for s in t["seeds"]]
    assert t["epochs"] != t["mini_epochs"] or t["batch_size"] != t["mini_batch_size"]
