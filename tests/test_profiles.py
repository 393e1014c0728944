"""profiles/default (local runs, loaded automatically) and profiles/slurm (SLURM).

The end-to-end check on a real SLURM cluster is .ci/slurm_test.sh; these are the fast checks:
the profiles are valid Snakemake options, group only rules that exist, leave no small rule
ungrouped, and GPUs are requested exactly for the rules that can use one.
"""

from __future__ import annotations

import os
import runpy
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from conftest import REPO, TINY
from workflow_info import workflow_rules

SLURM = REPO / "profiles" / "slurm" / "config.yaml"
DEFAULT = REPO / "profiles" / "default" / "config.yaml"
# One job per architecture and hours each: submitted on their own.
# one job per architecture, each a sizeable GPU job: submitted on their own
SUBMITTED_ALONE = {
    "train_sweep",
    "train_mini",
    "evaluate",
    "evaluate_mini",
    "classifier",
    "samples",
    "samples_mini",
}


def load(path):
    return yaml.safe_load(path.read_text())


def as_mapping(entries):
    """A profile option given as a list of NAME=VALUE strings, or as a mapping."""
    if isinstance(entries, dict):
        return {str(k): str(v) for k, v in entries.items()}
    return dict(str(e).split("=", 1) for e in entries)


def run_snakemake(cwd, *args, env=None, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONHASHSEED": "0", **(env or {})},
    )


# ----------------------------------------------------------------------------- threads


def planned_threads(out: str, rule: str) -> set[int]:
    """The thread counts a dry run plans for ``rule``'s jobs (Snakemake omits ``threads: 1``)."""
    counts = set()
    for block in out.split("\nrule ")[1:] + out.split("\nlocalrule ")[1:]:
        if block.startswith(f"{rule}:"):
            found = [
                int(line.split()[-1])
                for line in block.split("\n\n")[0].splitlines()
                if line.strip().startswith("threads:")
            ]
            counts.add(found[0] if found else 1)
    return counts


AUTO = ("--config", "training={device: auto}", "theorem1={device: auto}")  # tiny.yaml: cpu


@pytest.mark.parametrize(
    "extra,expect",
    [
        (AUTO, 4),  # one GPU slot (profiles/default)
        (("--resources", "gpu=2", *AUTO), 2),  # two slots share the four cores
        ((), 1),  # device cpu: no slot, side by side
    ],
)
def test_gpu_slot_jobs_share_the_local_cores(tmp_path, extra, expect):
    proc = run_snakemake(
        tmp_path,
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(tmp_path / "work"),
        "--configfile",
        str(TINY),
        "--cores",
        "4",
        "--dry-run",
        *extra,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert planned_threads(out, "train_sweep") == {expect}, out[-3000:]
    assert planned_threads(out, "evaluate") == {expect}


def test_cluster_jobs_ask_for_one_thread(tmp_path):
    proc = run_snakemake(
        tmp_path,
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(tmp_path / "work"),
        "--configfile",
        str(TINY),
        "--profile",
        str(SLURM.parent),
        "--dry-run",
        *AUTO,
        env={"PATH": path_without_slurm(tmp_path / "bin")},
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert planned_threads(out, "train_sweep") == {1}
    assert planned_threads(out, "evaluate") == {1}


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
    ungrouped = sorted(
        r["name"]
        for r in workflow_rules()
        if not r["norun"] and r["name"] not in groups and r["name"] not in SUBMITTED_ALONE
    )
    assert not ungrouped, (
        f"rules neither grouped in profiles/slurm nor in SUBMITTED_ALONE: {ungrouped}"
    )


@pytest.mark.slow
def test_slurm_profile_dry_run_forms_groups(tmp_path):
    # Without SLURM on this machine and with the CHANGE-ME placeholders: a dry run submits
    # nothing, so it runs (and warns about the placeholders).
    proc = run_snakemake(
        tmp_path,
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(tmp_path / "work"),
        "--configfile",
        str(TINY),
        "--profile",
        str(SLURM.parent),
        "--dry-run",
        env={"PATH": path_without_slurm(tmp_path / "bin")},
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    for group in ("data", "figures"):
        assert f"Group job {group} " in out, f"no group job {group!r} in the dry run"
    assert "Dry run only, a real run with this profile stops at once" in out


def fake_job(resources):
    class Resources(dict):
        __getattr__ = dict.__getitem__

    return SimpleNamespace(resources=Resources(resources))


@pytest.mark.parametrize(
    "configfile,expect",
    [(REPO / "config" / "config.yaml", " --gpus=1"), (TINY, "")],
    ids=["auto", "cpu"],
)
def test_gpu_rules_request_gpus_through_resources(configfile, expect):
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    gpu_rules = {r["name"] for r in workflow_rules(configfile) if "gpu" in r["resources"]}
    assert {"train_sweep", "train_mini", "evaluate", "evaluate_mini"} <= gpu_rules
    # config.yaml: device auto -> gpu=1 -> sbatch --gpus=1; tiny.yaml: device cpu -> gpu=0,
    # no GPU requested (the rules' gpu_count()).
    gpu = 0 if load(configfile)["training"]["device"] == "cpu" else 1
    assert set_gres_string(fake_job({"gpu": gpu, "mem_mb": 8000})) == expect
    # Rules without a gpu resource never ask for one.
    assert set_gres_string(fake_job({"mem_mb": 4000})) == ""


# ----------------------------------------------------------------------------- SLURM preflight
# workflow/slurm_preflight.py, called from the Snakefile: with the SLURM executor, a real run
# stops while the workflow is read, with the reason, where plugin 2.8.0 would otherwise wait
# forever for its first (group) job (no SLURM here, CHANGE-ME account or partition, an
# account the plugin rejects). The runs below put fake SLURM commands (shell scripts) on PATH.

SLURM_COMMANDS = (
    "sbatch",
    "sinfo",
    "squeue",
    "sacct",
    "sacctmgr",
    "sshare",
    "scontrol",
    "scancel",
    "srun",
    "salloc",
)
STOPPED = "SLURM run stopped before any job was planned or submitted"
PLANNED = "Building DAG of jobs"


def path_without_slurm(bin_dir):
    """This PATH without SLURM's commands, ``bin_dir`` (for fakes) first.

    A folder holding a SLURM command (/usr/bin on a cluster) is left out; its other programs
    are linked into ``bin_dir``.
    """
    bin_dir.mkdir(exist_ok=True)
    folders = [str(bin_dir)]
    for folder in map(Path, os.environ.get("PATH", "").split(os.pathsep)):
        if not folder.is_dir():
            continue
        if not any((folder / c).exists() for c in SLURM_COMMANDS):
            folders.append(str(folder))
            continue
        for program in folder.iterdir():
            link = bin_dir / program.name
            if (
                program.name not in SLURM_COMMANDS
                and not link.exists()
                and os.access(program, os.X_OK)
            ):
                link.symlink_to(program)
    return os.pathsep.join(folders)


def fake_command(bin_dir, name, body):
    script = bin_dir / name
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)


def fake_cluster(tmp_path, sinfo='printf "debug*\\ngpu\\n"', **others):
    """A PATH whose sbatch records its call in tmp_path/sbatch.log and fails, whose sinfo runs
    ``sinfo`` and squeue answers nothing; ``others``: more commands' script bodies."""
    bin_dir = tmp_path / "bin"
    path = path_without_slurm(bin_dir)
    log = tmp_path / "sbatch.log"
    fake_command(
        bin_dir, "sbatch", f'echo "$@" >> "{log}"\necho "sbatch: error: fake sbatch" >&2\nexit 1'
    )
    fake_command(bin_dir, "sinfo", sinfo)
    # Without squeue or sacct next to sinfo, the plugin refuses to load (any snakemake call).
    others.setdefault("squeue", "exit 0")
    for name, body in others.items():
        fake_command(bin_dir, name, body)
    return path


def site_profile(tmp_path, **resources):
    """profiles/slurm with the site-specific lines set (None: line removed), as a site would
    have it; the status settings of .ci/slurm_test.sh."""
    profile = load(SLURM)
    for key, value in resources.items():
        if value is None:
            profile["default-resources"].pop(key, None)
        else:
            profile["default-resources"][key] = value
    profile.update({"slurm-status-command": "squeue", "slurm-init-seconds-before-status-checks": 1})
    folder = tmp_path / "profile"
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return folder


def slurm_run(tmp_path, path, profile=SLURM.parent, *args, env=None, timeout=60):
    """A real (not dry) run of the tiny workflow through ``profile``: (process, seconds)."""
    start = time.monotonic()
    proc = run_snakemake(
        tmp_path,
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(tmp_path / "work"),
        "--configfile",
        str(TINY),
        "--config",
        f"results_dir={tmp_path / 'results'}",
        "--profile",
        str(profile),
        *args,
        env={"PATH": path, **(env or {})},
        timeout=timeout,
    )
    return proc, time.monotonic() - start


def profile_line(key):
    """(number, text) of the line of profiles/slurm/config.yaml that sets ``key``."""
    for number, line in enumerate(SLURM.read_text().splitlines(), start=1):
        if line.strip().startswith(f"{key}:"):
            return number, line.strip()
    raise AssertionError(f"no {key} line in {SLURM}")


def test_slurm_profile_stops_at_once_without_slurm(tmp_path):
    # The shipped profile on a machine without SLURM: used to hang (the first group job never
    # came back; SIGTERM ignored). Now: a message naming both problems, in seconds.
    proc, seconds = slurm_run(tmp_path, path_without_slurm(tmp_path / "bin"))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert seconds < 60
    assert STOPPED in out and PLANNED not in out, out
    assert "`sbatch` is not on PATH" in out
    for key in ("slurm_account", "slurm_partition"):
        number, text = profile_line(key)
        assert f"edit line {number} of {SLURM} ({text})" in out, out


def test_slurm_profile_placeholders_name_the_file_and_line(tmp_path):
    # SLURM here (fake sbatch and sinfo), the shipped CHANGE-ME lines: no submission, the
    # message says which lines of profiles/slurm/config.yaml to edit and lists the partitions.
    proc, seconds = slurm_run(tmp_path, fake_cluster(tmp_path))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert seconds < 60
    assert STOPPED in out and PLANNED not in out, out
    assert "not on PATH" not in out
    for key, value in (
        ("slurm_account", "CHANGE-ME-account"),
        ("slurm_partition", "CHANGE-ME-partition"),
    ):
        number, text = profile_line(key)
        assert (
            f"{key} is still the placeholder {value!r}: edit line {number} of {SLURM} ({text})"
        ) in out, out
    assert "Partitions on this cluster: debug, gpu." in out
    assert not (tmp_path / "sbatch.log").exists()


@pytest.mark.parametrize(
    "sinfo,expect",
    [
        (
            'echo "sinfo: error: Unable to contact slurm controller (connect failure)" >&2\nexit 1',
            "`sinfo` cannot reach the SLURM controller (exit 1): sinfo: error: Unable to contact",
        ),
        (
            'echo $$ > "$(dirname "$0")/sinfo.pid"\nexec sleep 60',
            "`sinfo` did not answer within 2 s",
        ),
    ],
    ids=["refused", "no-answer"],
)
def test_slurm_profile_stops_when_controller_is_unreachable(tmp_path, sinfo, expect):
    profile = site_profile(tmp_path, slurm_partition="debug", slurm_account=None)
    proc, seconds = slurm_run(
        tmp_path,
        fake_cluster(tmp_path, sinfo=sinfo),
        profile,
        env={"VAE_NOVELTY_SLURM_TIMEOUT": "2"},
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert seconds < 30
    assert STOPPED in out and PLANNED not in out, out
    assert expect in out, out
    assert "placeholder" not in out
    pid_file = tmp_path / "bin" / "sinfo.pid"
    if pid_file.exists():  # the hanging sinfo was killed, not left behind
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid_file.read_text()), 0)


def test_slurm_profile_rejects_an_account_the_plugin_would_reject(tmp_path):
    # The plugin checks the account with sacctmgr and, for a group job, hangs on its error.
    path = fake_cluster(tmp_path, sacctmgr='printf "proj-a\\nproj-b\\n"')
    profile = site_profile(tmp_path, slurm_partition="debug", slurm_account="nosuch")
    proc, _ = slurm_run(tmp_path, path, profile)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert STOPPED in out and PLANNED not in out, out
    assert "slurm_account 'nosuch' is not one of your SLURM accounts (proj-a, proj-b)" in out


def test_slurm_profile_submits_where_slurm_works(tmp_path):
    # .ci/slurm_test.sh's profile (partition set, account removed, squeue for status) on a
    # working cluster passes the check: the DAG is built and sbatch is called (the fake one
    # fails, so the run ends there).
    path = fake_cluster(tmp_path, sacct="exit 0")
    profile = site_profile(tmp_path, slurm_partition="ci", slurm_account=None)
    proc, _ = slurm_run(tmp_path, path, profile, "--retries", "0", timeout=120)
    out = proc.stdout + proc.stderr
    assert STOPPED not in out, out
    assert PLANNED in out, out
    assert "-p ci" in (tmp_path / "sbatch.log").read_text()
    assert proc.returncode != 0, out


def test_ctrl_c_stops_the_slurm_check(tmp_path):
    # sinfo does not answer; Ctrl-C (SIGINT) ends Snakemake and sinfo within seconds.
    started = tmp_path / "bin" / "sinfo.pid"
    path = fake_cluster(tmp_path, sinfo=f'echo $$ > "{started}"\nexec sleep 60')
    profile = site_profile(tmp_path, slurm_partition="debug", slurm_account=None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(REPO / "Snakefile"),
            "--directory",
            str(tmp_path / "work"),
            "--configfile",
            str(TINY),
            "--profile",
            str(profile),
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PATH": path, "VAE_NOVELTY_SLURM_TIMEOUT": "50"},
        # as typed at a terminal: a test run started in the background (`cmd &` in a script)
        # ignores SIGINT, and a child would inherit that and never see the Ctrl-C
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 30
        while not started.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert started.exists(), proc.communicate(timeout=5)[0] if proc.poll() is not None else ""
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode != 0, out
    assert "KeyboardInterrupt" in out, out
    with pytest.raises(ProcessLookupError):
        os.kill(int(started.read_text()), 0)


def preflight():
    return runpy.run_path(str(REPO / "workflow" / "slurm_preflight.py"))


@pytest.mark.parametrize(
    "main,executor,flags,expect",
    [
        (True, "slurm", {}, "run"),
        (True, "slurm", {"dryrun": True}, "dryrun"),
        (True, "slurm", {"touch": True}, None),
        (True, "slurm", {"lint": "text"}, None),
        (True, "slurm", {"dag": "dot"}, None),
        (True, "slurm", {"report": "report.html"}, None),
        (True, "slurm", {"report": "report.html", "report_after_run": True}, "run"),
        (True, "local", {}, None),
        # the jobs the plugin submits: snakemake --executor slurm-jobstep --mode remote
        (False, "slurm-jobstep", {}, None),
        (False, "slurm", {}, None),
    ],
    ids=[
        "run",
        "dry-run",
        "touch",
        "lint",
        "dag",
        "report",
        "report-after-run",
        "local",
        "job-on-node",
        "remote-mode",
    ],
)
def test_slurm_check_runs_only_for_real_slurm_runs(main, executor, flags, expect):
    workflow = SimpleNamespace(is_main_process=main, executor_plugin=None)
    args = SimpleNamespace(executor=executor, **flags)
    assert preflight()["_mode"](workflow, args) == expect


@pytest.mark.parametrize(
    "name,dryrun,expect",
    [("slurm", False, "run"), ("slurm", True, "dryrun"), ("local", False, None)],
)
def test_slurm_check_from_onstart_uses_the_executor_plugin(name, dryrun, expect):
    # Called once Workflow.execute has set the executor (an onstart: handler, the Python API).
    workflow = SimpleNamespace(
        is_main_process=True, dryrun=dryrun, executor_plugin=SimpleNamespace(name=name)
    )
    assert preflight()["_mode"](workflow, None) == expect


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
    proc = run_snakemake(
        tmp_path,
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(tmp_path / "work"),
        "--configfile",
        str(TINY),
        "--dry-run",
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert f"workflow specific profile {REPO / 'profiles' / 'default'}" in out


@pytest.mark.parametrize(
    "cli,expect",
    [([], len(os.sched_getaffinity(0))), (["--cores", "1"], 1)],
    ids=["profile", "cli"],
)
def test_default_profile_cores_and_command_line_override(tmp_path, cli, expect):
    # profiles/default in a throwaway workflow whose one job records its thread count: all
    # cores without flags; --cores on the command line (as in the tests) wins.
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "default").mkdir()
    (tmp_path / "profiles" / "default" / "config.yaml").write_text(DEFAULT.read_text())
    (tmp_path / "Snakefile").write_text(
        'rule threads:\n    output: "threads.txt"\n    threads: 1024\n'
        '    resources: gpu=1\n    shell: "echo {threads} > {output}"\n'
    )
    proc = run_snakemake(tmp_path, *cli)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert int((tmp_path / "threads.txt").read_text()) == expect
