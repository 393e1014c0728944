"""The run record (src/vae_novelty/run_record.py): what it keeps, and how a report checks it."""

from __future__ import annotations

import copy

import pytest
import yaml

from vae_novelty import config as vcfg
from vae_novelty import run_record as rr


@pytest.fixture
def cfg() -> dict:
    from conftest import REPO

    return vcfg.load_config(yaml.safe_load((REPO / "config" / "config.yaml").read_text()))


def test_the_record_keeps_what_changes_results_and_drops_speed_only_keys(cfg):
    schema = vcfg.read_schema()
    speed = rr.speed_only_keys(schema)
    assert {
        "training.device",
        "training.snapshot_every",
        "training.cuda_graphs",
        "theorem1.device",
        "theorem1.chunk_mb",
    } <= set(speed)
    kept = rr.results_config(cfg, schema)
    assert "device" not in kept["training"] and "chunk_mb" not in kept["theorem1"]
    assert "results_dir" not in kept
    assert kept["training"]["epochs"] == cfg["training"]["epochs"]
    assert kept["model"] == cfg["model"]
    assert "device" in cfg["training"]  # the configuration itself is untouched


def test_differences_name_each_changed_key_with_both_values():
    a = {"training": {"epochs": 10, "seeds": [0]}, "figures": {"dpi": 150}}
    b = {"training": {"epochs": 3, "seeds": [0, 1]}, "figures": {"dpi": 150}, "extra": 1}
    assert rr.differences(a, b) == [
        "training.epochs: 10 in the results, 3 now",
        "training.seeds: [0] in the results, [0, 1] now",
        "extra: not in the results, 1 now",
    ]
    assert rr.differences(a, copy.deepcopy(a)) == []


def test_report_problem_from_a_written_record(tmp_path, cfg):
    kept = rr.results_config(cfg, vcfg.read_schema())
    path = tmp_path / "run_record.yaml"
    assert "does not exist: the run of this configuration has not completed" in (
        rr.report_problem(path, kept)
    )
    rr.write_record(rr.build_record(kept, "0123456789abcdef"), path)
    back = rr.read_record(path)
    assert back["data"] == "0123456789abcdef" and back["config"] == kept
    assert rr.report_problem(path, kept) is None
    other = copy.deepcopy(kept)
    other["elbo"]["samples"] += 1
    problem = rr.report_problem(path, other)
    assert f"the results in {tmp_path} were made with another configuration" in problem
    assert "elbo.samples" in problem
    path.write_text("format: something-else\n")
    with pytest.raises(ValueError, match="not a run record"):
        rr.read_record(path)
