"""profiles/default (local runs, loaded automatically) and profiles/slurm (SLURM).

The end-to-end check on a real SLURM cluster is .ci/slurm_test.sh; these are the fast checks:
the profiles are valid Snakemake options, group only rules that exist, leave no small rule
ungrouped, and GPUs are requested exactly for the rules that can use one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
import yaml

from conftest import REPO, TINY
from workflow_info import workflow_rules

SLURM = REPO / "profiles" / "slurm" / "config.yaml"
DEFAULT = REPO / "profiles" / "default" / "config.yaml"
# One job per architecture and hours each: submitted on their own.
SUBMITTED_ALONE = {"train_sweep", "train_mini"}


def load(path):
    return yaml.safe_load(path.read_text())


def as_mapping(entries):
    """A profile option given as a list of NAME=VALUE strings, or as a mapping."""
    if isinstance(entries, dict):
        return {str(k): str(v) for k, v in entries.items()}
    return dict(str(e).split("=", 1) for e in entries)


def run_snakemake(cwd, *args):
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONHASHSEED": "0"})


# ----------------------------------------------------------------------------- slurm profile

def test_slurm_profile_site_settings_are_in_one_place():
    profile = load(SLURM)
    assert profile["executor"] == "slurm"
    resources = profile["default-resources"]
    assert {"slurm_partition", "slurm_account", "mem_mb", "runtime"} <= set(resources)
    # Shipped as placeholders that make sbatch fail until edited.
    assert resources["slurm_partition"].startswith("CHANGE-ME")
    assert resources["slurm_account"].startswith("CHANGE-ME")
    # Nothing else sets them, and nothing goes through slurm_extra (the plugin rejects
    # --partition, --gres, --mem, ... there).
    for rule, settings in as_rule_resources(profile.get("set-resources", {})).items():
        assert "slurm_account" not in settings, rule
    assert "slurm_extra" not in yaml.safe_dump(profile)


def as_rule_resources(entries):
    """set-resources as {rule: {resource: value}}, from a mapping or RULE:RES=VALUE strings."""
    if isinstance(entries, dict):
        return entries
    out = {}
    for entry in entries:
        rule, assignment = entry.split(":", 1)
        key, value = assignment.split("=", 1)
        out.setdefault(rule, {})[key] = value
    return out


def test_slurm_profile_groups_name_existing_rules():
    groups = as_mapping(load(SLURM)["groups"])
    names = {r["name"] for r in workflow_rules()}
    unknown = sorted(set(groups) - names)
    assert not unknown, f"profiles/slurm groups rules that do not exist: {unknown}"
    components = as_mapping(load(SLURM)["group-components"])
    assert set(components) <= set(groups.values())


def test_every_small_rule_is_grouped():
    groups = as_mapping(load(SLURM)["groups"])
    ungrouped = sorted(r["name"] for r in workflow_rules()
                       if not r["norun"] and r["name"] not in groups
                       and r["name"] not in SUBMITTED_ALONE)
    assert not ungrouped, (f"rules neither grouped in profiles/slurm nor in SUBMITTED_ALONE: "
                           f"{ungrouped}")


@pytest.mark.slow
def test_slurm_profile_dry_run_forms_groups(tmp_path):
    proc = run_snakemake(tmp_path, "-s", str(REPO / "Snakefile"), "--directory",
                         str(tmp_path / "work"), "--configfile", str(TINY), "--profile",
                         str(SLURM.parent), "--dry-run")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    for group in ("data", "posteriors", "theorem1", "figures"):
        assert f"Group job {group} " in out, f"no group job {group!r} in the dry run"


def fake_job(resources):
    class Resources(dict):
        __getattr__ = dict.__getitem__

    return SimpleNamespace(resources=Resources(resources))


@pytest.mark.parametrize("configfile,expect", [(REPO / "config" / "config.yaml", " --gpus=1"),
                                               (TINY, "")], ids=["auto", "cpu"])
def test_gpu_rules_request_gpus_through_resources(configfile, expect):
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    gpu_rules = {r["name"] for r in workflow_rules(configfile) if "gpu" in r["resources"]}
    assert {"train_sweep", "train_mini", "theorem1"} <= gpu_rules
    # config.yaml: device auto -> gpu=1 -> sbatch --gpus=1; tiny.yaml: device cpu -> gpu=0,
    # no GPU requested (the rules' gpu_count()).
    gpu = 0 if load(configfile)["training"]["device"] == "cpu" else 1
    assert set_gres_string(fake_job({"gpu": gpu, "mem_mb": 8000})) == expect
    # Rules without a gpu resource never ask for one.
    assert set_gres_string(fake_job({"mem_mb": 4000})) == ""


# ----------------------------------------------------------------------------- default profile

def test_default_profile_limits_gpu_jobs_and_uses_all_cores():
    profile = load(DEFAULT)
    assert profile["cores"] == "all"
    assert as_mapping(profile["resources"])["gpu"] == "1"
    # Local scope: on a cluster, the limit applies per submitted job, not to the whole run.
    assert as_mapping(profile["set-resource-scopes"])["gpu"] == "local"
    # Keys that would silently override the SLURM profile's choices must not be here.
    assert not {"executor", "jobs", "default-resources", "groups"} & set(profile)


@pytest.mark.slow
def test_default_profile_is_picked_up(tmp_path):
    # Run from elsewhere: Snakemake finds profiles/default next to the Snakefile.
    proc = run_snakemake(tmp_path, "-s", str(REPO / "Snakefile"), "--directory",
                         str(tmp_path / "work"), "--configfile", str(TINY), "--dry-run")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert f"workflow specific profile {REPO / 'profiles' / 'default'}" in out


@pytest.mark.parametrize("cli,expect", [([], len(os.sched_getaffinity(0))), (["--cores", "1"], 1)],
                         ids=["profile", "cli"])
def test_default_profile_cores_and_command_line_override(tmp_path, cli, expect):
    # profiles/default in a throwaway workflow whose one job records its thread count: all
    # cores without flags; --cores on the command line (as in the tests) wins.
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "default").mkdir()
    (tmp_path / "profiles" / "default" / "config.yaml").write_text(DEFAULT.read_text())
    (tmp_path / "Snakefile").write_text(
        'rule threads:\n    output: "threads.txt"\n    threads: 1024\n'
        '    resources: gpu=1\n    shell: "echo {threads} > {output}"\n')
    proc = run_snakemake(tmp_path, *cli)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert int((tmp_path / "threads.txt").read_text()) == expect
