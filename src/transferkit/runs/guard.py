"""One writer per run folder: a lock file, so two jobs never write the same run.

A run takes ``.lock`` in its folder (created with ``O_EXCL``: of two processes
only one succeeds, also on network file systems that honour it) and holds it
until it ends. The file names the process (host and pid), so a lock left by a
process that died on this host is recognised as stale and taken over; a lock
from another host is trusted, since its pid cannot be checked from here (delete
the file by hand if that job is gone).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from pathlib import Path

from transferkit.errors import RunDirectoryBusyError

LOCK_FILE = ".lock"


def holder(folder: str | os.PathLike) -> dict | None:
    """Who holds ``folder``'s lock (``{"host", "pid"}``), or None if nobody live does.

    A lock left by a dead process on this host, or an unreadable one, counts as free.
    """
    path = Path(folder) / LOCK_FILE
    try:
        owner = json.loads(path.read_text(encoding="utf-8"))
        host, pid = str(owner["host"]), int(owner["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if host == socket.gethostname() and not _alive(pid):
        return None
    return {"host": host, "pid": pid}


def check_free(folder: str | os.PathLike) -> None:
    """Refuse a folder that another live process holds (this process's own lock is fine).

    Raises:
        RunDirectoryBusyError: Naming the host and pid of the holder.
    """
    owner = holder(folder)
    if owner is not None and not _is_me(owner):
        raise RunDirectoryBusyError(
            f"{folder} is being written by another job (process {owner['pid']} on "
            f"{owner['host']}, see {Path(folder) / LOCK_FILE}). Wait for it to end or choose "
            f"another folder; if that job is gone, delete {LOCK_FILE}.")


@contextlib.contextmanager
def run_lock(folder: str | os.PathLike | None):
    """Hold ``folder``'s lock for a block; None: nothing to lock.

    Re-entrant within a process (an inner run in a folder this process already
    holds keeps the lock); a stale lock is replaced.

    Raises:
        RunDirectoryBusyError: If another live process holds it.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d, run_lock(d):
        ...     holder(d)["pid"] == os.getpid()
        True
    """
    if folder is None:
        yield None
        return
    path = Path(folder)
    created = not path.exists()
    path.mkdir(parents=True, exist_ok=True)
    owned = _acquire(path)
    try:
        yield path
    finally:
        if owned:
            with contextlib.suppress(FileNotFoundError):
                (path / LOCK_FILE).unlink()
            if created:  # a run refused before writing anything leaves no folder behind
                with contextlib.suppress(OSError):
                    path.rmdir()  # only if empty


def _acquire(path: Path) -> bool:
    """Take the lock; False when this process held it already (the outer holder releases it)."""
    lock = path / LOCK_FILE
    for _ in range(2):  # a second try after removing a stale lock
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            check_free(path)
            if holder(path) is not None:  # this process's own lock
                return False
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()  # stale: its process is dead
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"host": socket.gethostname(), "pid": os.getpid()}, f)
        return True
    check_free(path)  # another process won the race for the stale lock
    return False


def _is_me(owner: dict) -> bool:
    return owner["host"] == socket.gethostname() and owner["pid"] == os.getpid()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True
