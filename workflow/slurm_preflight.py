"""Stop a SLURM run at once, with the reason, where it could not submit a single job.

Called from the Snakefile while Snakemake reads the workflow, that is before any job is planned:

    runpy.run_path(str(REPO / "workflow" / "slurm_preflight.py"))["check"](workflow)

Why: with snakemake-executor-plugin-slurm 2.8.0, a group job (the workflow's first job is the
group `data`) whose submission raises anything but a failed sbatch is never reported back
(`Executor.run_job` logs the error with `job.rule.name`, which a group job lacks; the second
exception dies in the submission thread). Snakemake then waits forever for a job that does not
exist: SIGTERM means "finish the running jobs first", and Ctrl-C only takes effect when the
plugin's status thread next wakes up. That happens where there is no SLURM (`sacctmgr` is not
found while the account is checked) and on a real cluster with the CHANGE-ME account (the
plugin's "invalid account" error). So, when the SLURM executor is selected for a real run,
this module checks first:

* no `slurm_account` / `slurm_partition` (default-resources or set-resources) is still a
  CHANGE-ME placeholder; the message names the file and line of the profile to edit;
* `sbatch` is on PATH and `sinfo` reaches the controller within VAE_NOVELTY_SLURM_TIMEOUT
  seconds (default 10);
* the account, where one is given, is one the plugin will accept (same `sacctmgr`/`sshare`
  queries as the plugin); without one, `sacct` is there for the plugin to guess it.

It does nothing in a dry run (a warning for placeholders), with --touch, for commands that
only inspect the workflow (--lint, --dag, --report, ...), with any other executor, and inside
the jobs the plugin submits (they run Snakemake again with `--executor slurm-jobstep
--mode remote`). Every command it runs is bounded by the timeout and killed with its process
group on timeout or Ctrl-C (workflow/slurm_commands.py, beside this file).

Which executor: during parsing Snakemake 9.27 has not given the workflow its executor yet
(`workflow.executor_plugin` and `workflow.executor_settings` are None until
`Workflow.execute`, and `workflow.dryrun` is always False then), so the executor, --dry-run
and the inspection flags are read from the command line Snakemake parsed (the `args` of
`snakemake.cli.args_to_api`, which is running while it reads the workflow). Where that is not
found (the Python API) nothing is checked at parse time; the same `check(workflow)` called
from an `onstart:` handler uses `workflow.executor_plugin`, which is set by then.
"""

from __future__ import annotations

import ast
import getpass
import inspect
import os
import re
import runpy
import shutil
from pathlib import Path

# _run: a command with a time limit, killed with its process group; _tail: its message.
# Loaded from beside this file as the Snakefile loads this one (runpy, not an import).
_COMMANDS = runpy.run_path(str(Path(__file__).with_name("slurm_commands.py")))
_run, _tail = _COMMANDS["_run"], _COMMANDS["_tail"]

PLACEHOLDER = "CHANGE-ME"
SITE_RESOURCES = ("slurm_partition", "slurm_account")
TIMEOUT_ENV = "VAE_NOVELTY_SLURM_TIMEOUT"
DEFAULT_TIMEOUT = 10.0
# Command-line options (argparse dests) that read the workflow without running a job.
INSPECTION_OPTIONS = (
    "lint",
    "list_rules",
    "list_target_rules",
    "print_compilation",
    "dag",
    "rulegraph",
    "filegraph",
    "d3dag",
    "summary",
    "detailed_summary",
    "report",
    "containerize",
    "generate_unit_tests",
    "unlock",
    "cleanup_metadata",
    "conda_cleanup_envs",
    "conda_create_envs_only",
    "list_conda_envs",
    "cleanup_shadow",
    "container_cleanup_images",
    "list_changes",
    "list_input_changes",
    "list_params_changes",
    "list_untracked",
    "archive",
    "delete_all_output",
    "delete_temp_output",
    "export_cwl",
)

_checked = False


def check(workflow, args=None) -> None:
    """Raise WorkflowError when a run with the SLURM executor could not submit its jobs."""
    global _checked
    from snakemake.exceptions import WorkflowError
    from snakemake.logging import logger

    mode = _mode(workflow, args)
    if mode is None or _checked:
        return
    _checked = True
    settings = workflow.resource_settings
    placeholders = _placeholders(settings, _profile_files(workflow, args))
    if mode == "dryrun":
        if placeholders:
            logger.warning(
                "Dry run only, a real run with this profile stops at once: "
                + "; ".join(p for _, p in placeholders)
                + "."
            )
        return

    slurm_problems, hints = _slurm_problems(settings, {name for name, _ in placeholders})
    problems = [
        f"{problem}.\n{_HOW_TO_SET[name]}" + (f" {hints[name]}" if name in hints else "")
        for name, problem in placeholders
    ] + slurm_problems
    if problems:
        names = ", ".join(str(p) for p in _cli_profiles(args))
        raise WorkflowError(
            "SLURM run stopped before any job was planned or submitted"
            + (f" (profile {names})" if names else "")
            + ":\n"
            + "\n".join("  - " + p.replace("\n", "\n    ") for p in problems)
        )


# ----------------------------------------------------------------------------- which run


def _mode(workflow, args):
    """'run' or 'dryrun' where the SLURM executor is selected in the main process, else None."""
    if not workflow.is_main_process:  # a job on a node: --mode remote/subprocess
        return None
    plugin = getattr(workflow, "executor_plugin", None)
    if plugin is not None:  # from onstart: Workflow.execute has set the executor
        if plugin.name != "slurm":
            return None
        return "dryrun" if workflow.dryrun else "run"
    args = args if args is not None else cli_args()
    if args is None or getattr(args, "executor", None) != "slurm":
        return None
    inspect_only = [o for o in INSPECTION_OPTIONS if getattr(args, o, None)]
    if getattr(args, "report_after_run", False) and inspect_only == ["report"]:
        inspect_only = []  # --report --report-after-run: runs the jobs, then reports
    if getattr(args, "touch", False) or inspect_only:
        return None
    return "dryrun" if getattr(args, "dryrun", False) else "run"


def _cli_frame():
    frame = inspect.currentframe()
    while frame is not None:
        if (
            frame.f_code.co_name == "args_to_api"
            and frame.f_globals.get("__name__") == "snakemake.cli"
        ):
            return frame
        frame = frame.f_back
    return None


def cli_args():
    """The command line Snakemake parsed (argparse namespace), or None (the Python API)."""
    frame = _cli_frame()
    return None if frame is None else frame.f_locals.get("args")


def _cli_profiles(args):
    args = args if args is not None else cli_args()
    return list(getattr(args, "profile", None) or [])


def _profile_files(workflow, args) -> list[Path]:
    """The config files of the --profile entries (found as Snakemake finds them)."""
    from snakemake.cli import get_profile_dir

    start = None  # the directory Snakemake was started in (before --directory)
    frame = _cli_frame()
    if frame is not None:
        handler = getattr(frame.f_locals.get("workflow_api"), "_workdir_handler", None)
        start = getattr(handler, "olddir", None)
    files = []
    for profile in _cli_profiles(args):
        for base in (start, Path.cwd(), Path(workflow.basedir), None):
            candidate = Path(profile) if base is None else Path(base) / profile
            try:
                found = get_profile_dir(str(candidate))
            except OSError:
                found = None
            if found is not None:
                files.append(Path(found[1]).resolve())
                break
    return files


# ----------------------------------------------------------------------------- the checks


def _resource_values(settings, name):
    """[(value, where)] for resource ``name`` in default-resources and set-resources."""
    found = []
    default = getattr(settings, "default_resources", None) or {}
    if name in default:
        found.append((_value(default[name]), "default-resources"))
    for rule, resources in (getattr(settings, "overwrite_resources", None) or {}).items():
        if name in resources:
            found.append((_value(resources[name]), f"set-resources of rule {rule}"))
    return [(v, where) for v, where in found if v not in (None, "")]


def _value(resource):
    """A resource's value as the plugin will see it (profile strings are expressions)."""
    raw = getattr(resource, "raw", resource)
    if not isinstance(raw, str):
        return raw
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw  # Snakemake too keeps a string that is not a Python expression


def _placeholders(settings, profiles) -> list[tuple[str, str]]:
    """[(resource name, what and where)] for every CHANGE-ME account or partition."""
    problems = []
    for name in SITE_RESOURCES:
        for value, where in _resource_values(settings, name):
            if PLACEHOLDER not in str(value):
                continue
            lines = [
                (f, n, line.strip())
                for f in profiles
                for n, line in _lines(f)
                if name in line and str(value) in line and not line.lstrip().startswith("#")
            ]
            if lines:
                at = "; ".join(f"line {n} of {f} ({line})" for f, n, line in lines)
                fix = f"edit {at}"
            else:
                fix = f"it comes from the command line ({where})"
            problems.append((name, f"{name} is still the placeholder {str(value)!r}: {fix}"))
    return problems


_HOW_TO_SET = {
    "slurm_account": "Set it to your SLURM account (`sacctmgr show assoc user=$USER` lists "
    "them), or delete the line to let the plugin guess one.",
    "slurm_partition": "Set it to a partition of your cluster (`sinfo -s` lists them), or "
    "delete the line to use the cluster's default partition.",
}


def _lines(path):
    try:
        return list(enumerate(Path(path).read_text().splitlines(), start=1))
    except OSError:
        return []


def _slurm_problems(settings, placeholders) -> tuple[list[str], dict[str, str]]:
    """(problems, hints): what keeps the plugin from submitting here, and the partitions and
    accounts there are for the resources in ``placeholders``."""
    if shutil.which("sbatch") is None:
        return [
            "`sbatch` is not on PATH: this machine is not a SLURM submit host. Run on the "
            "cluster's login node (with the SLURM client commands on PATH), or run here "
            "without --profile profiles/slurm (e.g. `snakemake --cores all`)."
        ], {}
    if shutil.which("sinfo") is None:
        return [
            "`sinfo` is not on PATH (but `sbatch` is): the SLURM client commands are "
            "incomplete here; load the cluster's SLURM module or run on its login node."
        ], {}
    timeout = _timeout()
    rc, out, err = _run(["sinfo", "--noheader", "--format=%P"], timeout)
    if rc is None:
        return [
            f"`sinfo` did not answer within {timeout:g} s: the SLURM controller cannot be "
            f"reached from this machine (raise {TIMEOUT_ENV} if it is only slow)."
        ], {}
    if rc != 0:
        return [f"`sinfo` cannot reach the SLURM controller (exit {rc}): {_tail(err or out)}"], {}
    hints = {}
    partitions = sorted({p.strip().rstrip("*") for p in out.split() if p.strip()})
    if partitions and "slurm_partition" in placeholders:
        hints["slurm_partition"] = f"Partitions on this cluster: {', '.join(partitions)}."
    accounts = [
        a
        for value, _ in _resource_values(settings, "slurm_account")
        for a in re.split(r"[,\s]+", str(value))
        if a
    ]
    if "slurm_account" in placeholders:
        valid, _ = _valid_accounts(timeout)
        if valid:
            hints["slurm_account"] = f"Your accounts: {', '.join(sorted(valid))}."
        return [], hints
    if accounts:
        return _account_problems(accounts, timeout), hints
    if shutil.which("sacct") is None:
        return [
            "No slurm_account is set, so the SLURM plugin guesses one with `sacct`, which "
            "is not on PATH (the plugin then never submits the first job): set "
            "slurm_account in the profile."
        ], hints
    return [], hints


def _valid_accounts(timeout):
    """The accounts the plugin accepts, as it asks (sacctmgr, then sshare), and why not."""
    why = []
    try:
        user = getpass.getuser()
    except Exception as exc:  # no USER/LOGNAME and no passwd entry: the plugin fails too
        return None, [f"the user name is unknown here ({exc})"]
    if shutil.which("sacctmgr") is None:
        return None, [
            "`sacctmgr` is not on PATH (the plugin needs it to check the account, "
            "and never submits the first job without it)"
        ]
    rc, out, err = _run(
        ["sacctmgr", "-n", "-s", "list", "user", user, "format=account%256"], timeout
    )
    if rc is None:
        return None, [f"`sacctmgr` did not answer within {timeout:g} s"]
    if rc != 0:
        why.append(f"`sacctmgr` failed: {_tail(err)}")
        out = ""
    if not out.strip():
        if shutil.which("sshare") is None:
            return None, why + ["`sshare` is not on PATH"]
        rc, out, err = _run(["sshare", "-U", "--format", "Account%256", "--noheader"], timeout)
        if rc is None:
            return None, why + [f"`sshare` did not answer within {timeout:g} s"]
        if rc != 0:
            return None, why + [f"`sshare` failed: {_tail(err)}"]
    return {a.strip().lower() for a in out.splitlines() if a.strip()}, why


def _account_problems(accounts, timeout):
    valid, why = _valid_accounts(timeout)
    if valid is None:
        return [
            f"The SLURM plugin checks slurm_account '{', '.join(accounts)}' before the first "
            f"submission and cannot here: {'; '.join(why)}. Check that `sacctmgr show assoc "
            f"user=$USER` works on this machine."
        ]
    if not valid:  # the plugin warns and submits without checking
        return []
    bad = [a for a in accounts if a.lower() not in valid]
    if bad:
        return [
            f"slurm_account {', '.join(map(repr, bad))} is not one of your SLURM accounts "
            f"({', '.join(sorted(valid))}): edit slurm_account in the profile."
        ]
    return []


# ----------------------------------------------------------------------------- helpers


def _timeout() -> float:
    try:
        return max(0.1, float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT)))
    except ValueError:
        return DEFAULT_TIMEOUT
