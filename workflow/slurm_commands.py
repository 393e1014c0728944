"""Commands with a time limit, for workflow/slurm_preflight.py: :func:`_run` runs one in its
own process group and kills the group on timeout or Ctrl-C, so nothing it started outlives the
check; :func:`_tail` shortens its message.

slurm_preflight.py loads this file from beside itself with runpy.run_path, as the Snakefile
loads slurm_preflight.py (the workflow folder is not on sys.path).
"""

from __future__ import annotations

import os
import signal
import subprocess


def _run(cmd, timeout):
    """(returncode, stdout, stderr); returncode None after ``timeout`` seconds.

    The command runs in its own process group, which is killed on timeout and on Ctrl-C
    (KeyboardInterrupt is re-raised), so nothing it started outlives the check.
    """
    try:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    except OSError as exc:
        return 127, "", str(exc)
    try:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out, err
    except subprocess.TimeoutExpired:
        _kill(proc)
        return None, "", ""
    except BaseException:
        _kill(proc)
        raise


def _kill(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    try:
        proc.communicate(timeout=5)
    except (subprocess.TimeoutExpired, OSError, ValueError):
        pass


def _tail(text, limit=300):
    text = " ".join((text or "").split())
    return (text[-limit:] if len(text) > limit else text) or "(no message)"
