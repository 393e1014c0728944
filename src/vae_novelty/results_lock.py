"""One workflow run at a time per results folder: a lock file naming its owner.

Two checkouts (or two runs of one checkout) pointed at the same absolute ``results_dir`` would
each run every job and resume each other's live training snapshots: Snakemake's own lock lives
in each working directory's ``.snakemake/`` and so does not see the other run. The workflow head
(the process that plans the jobs; never a job, which Snakemake starts with ``--mode
subprocess`` or, on a cluster, ``--mode remote``) therefore takes ``{results_dir}/.run.lock``
while it parses the workflow, before it changes anything in the folder, and releases it when
it exits (:func:`acquire`). The file records the owner: the checkout's path, the host, the
process id and when it started.

- Another live owner: :class:`ResultsLocked`, naming that checkout, host, pid and start.
- An owner on this host whose process has ended (a run killed with SIGKILL, a crashed
  machine's reboot): a stale lock, taken over with a warning.
- An owner on another host: its process cannot be asked, so the run is refused; the message
  says which file to delete once that run is known to be over.
"""

from __future__ import annotations

import atexit
import datetime
import errno
import json
import os
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

LOCK_NAME = ".run.lock"
LOCK_FORMAT = "vae-novelty-run-lock/1"


class ResultsLocked(RuntimeError):
    """The results folder is in use by another live run."""


@dataclass
class Lock:
    """A lock held by this process: its file and the token it wrote."""

    path: Path
    token: str
    pid: int

    def release(self) -> None:
        """Remove the lock file if it is still this lock (same token), from the process that
        took it only (a forked child inherits the exit handler but must not release)."""
        if os.getpid() != self.pid:
            return
        try:
            if read_owner(self.path).get("token") == self.token:
                self.path.unlink()
        except (FileNotFoundError, ValueError):
            pass


def read_owner(path: Path | str) -> dict:
    """The owner a lock file records; a ValueError when it is not readable as one."""
    try:
        owner = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable lock file ({type(exc).__name__})") from exc
    if not isinstance(owner, dict) or owner.get("format") != LOCK_FORMAT:
        raise ValueError(f"{path}: not a lock file of this workflow")
    return owner


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM  # exists, owned by another user
    return True


def describe(owner: dict) -> str:
    return (
        f"the run of checkout {owner.get('checkout')} (host {owner.get('host')}, pid "
        f"{owner.get('pid')}, started {owner.get('started')})"
    )


def _create(path: Path, owner: dict) -> bool:
    """Create the lock file with ``owner``'s record unless it exists (atomically: O_EXCL)."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(owner, fh, indent=1)
        fh.write("\n")
    return True


def acquire(
    results_dir: Path | str,
    checkout: Path | str,
    *,
    warn: Callable[[str], None] = print,
    release_at_exit: bool = True,
) -> Lock:
    """Take ``{results_dir}/.run.lock`` for this process (the workflow head of ``checkout``).

    Raises :class:`ResultsLocked` when another live run holds it (naming its checkout, host,
    pid and start), or when its owner runs on another host. A lock whose owner process on this
    host has ended, or an unreadable lock file, is taken over with a ``warn`` line naming it.
    With ``release_at_exit`` the lock is released when this process exits.
    """
    folder = Path(results_dir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    host = socket.gethostname()
    owner = {
        "format": LOCK_FORMAT,
        "checkout": str(Path(checkout).resolve()),
        "host": host,
        "pid": os.getpid(),
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "token": uuid.uuid4().hex,
    }
    for _ in range(10):  # another run may take or release it between our steps
        if _create(path, owner):
            lock = Lock(path, owner["token"], owner["pid"])
            if release_at_exit:
                atexit.register(lock.release)
            return lock
        try:
            other = read_owner(path)
        except FileNotFoundError:
            continue  # released meanwhile
        except ValueError as exc:
            why = f"{exc}"
        else:
            if other.get("host") != host:
                raise ResultsLocked(
                    f"results folder {folder} is in use by {describe(other)}, on another host: "
                    f"two runs must not share one results_dir (each would run every job and "
                    f"resume the other's snapshots). Wait for that run to finish, or set "
                    f"another results_dir; if that run is over, delete {path}"
                )
            if pid_alive(other.get("pid")):
                raise ResultsLocked(
                    f"results folder {folder} is in use by {describe(other)}: two runs must not "
                    f"share one results_dir (each would run every job and resume the other's "
                    f"snapshots). Wait for that run to finish, or set another results_dir"
                )
            why = f"{describe(other)} has ended without releasing it"
        # stale: move it aside under a name of our own (only one taker's rename succeeds)
        aside = path.with_name(f"{LOCK_NAME}.stale.{owner['token']}")
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            continue
        aside.unlink(missing_ok=True)
        warn(f"warning: taking over the stale lock {path}: {why}")
    raise ResultsLocked(f"could not take {path}: other runs keep taking and releasing it")


def holder_note(results_dir: Path | str) -> str | None:
    """A line naming the live run that holds ``results_dir``'s lock (for a dry run, which
    takes no lock), or None."""
    path = Path(results_dir).resolve() / LOCK_NAME
    try:
        other = read_owner(path)
    except (FileNotFoundError, ValueError):
        return None
    if other.get("host") == socket.gethostname() and not pid_alive(other.get("pid")):
        return None
    return (
        f"results folder {path.parent} is in use by {describe(other)}: a real run now would "
        f"be refused"
    )
