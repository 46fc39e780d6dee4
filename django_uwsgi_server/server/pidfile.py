"""Pidfiles: written by the master, read back by ``uwsgi_reload`` and ``--reload``/``--stop``.

A pidfile holds the master's pid and a newline, as uWSGI writes it. Unlike uWSGI:

* before binding, a pidfile that names a *running* runuwsgi master is an error (two servers
  would fight over one pidfile), and a stale one (dead pid, garbage, another program) is
  replaced with a warning;
* the master always removes its own pidfiles when it stops for good (uWSGI removes the
  pidfile only with ``vacuum`` and without ``uid``), and only if they still hold its pid;
* a pid is never signalled before it is known to be a runuwsgi master: uWSGI's ``--reload``
  of a pidfile holding ``0`` sends SIGHUP to the caller's own process group.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

import psutil

MARKER = "runuwsgi"  # in the command line of every runuwsgi process


class PidfileError(Exception):
    """A pidfile that cannot be used; the message is one line for the user."""


def read_pid(path: str) -> int:
    """The pid a pidfile holds; PidfileError when it is missing, unreadable or not a pid."""
    try:
        with open(path, "rb") as f:
            raw = f.read(64)
    except FileNotFoundError:
        raise PidfileError(f"pidfile {path} does not exist (is the server running?)") from None
    except IsADirectoryError:
        raise PidfileError(f"pidfile {path} is a directory") from None
    except PermissionError:
        raise PidfileError(f"cannot read pidfile {path}: permission denied") from None
    except OSError as exc:
        raise PidfileError(f"cannot read pidfile {path}: {exc.strerror}") from None
    text = raw.decode("ascii", "replace").strip()
    shown = text if len(text) <= 20 else text[:20] + "..."
    try:
        pid = int(text)
    except ValueError:
        what = "is empty" if not text else f"holds {shown!r}, not a pid"
        raise PidfileError(f"pidfile {path} {what}") from None
    if pid <= 0:
        raise PidfileError(f"pidfile {path} holds {pid}, which is not a process id "
                           f"(not signalling it)")
    return pid


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    try:
        return _alive(psutil.Process(pid))
    except psutil.Error:
        return False


def _cmdline(proc: psutil.Process) -> list[str] | None:
    try:
        return proc.cmdline()
    except psutil.AccessDenied:
        return None
    except psutil.Error:
        return []


def master_problem(pid: int) -> str | None:
    """Why ``pid`` is not a running runuwsgi master, or None when it is one.

    A master is a live process with ``runuwsgi`` in its command line (or process title)
    whose parent is not a runuwsgi process (that would be one of its workers; the daemonized
    master's launcher is gone by the time it is ready: it forks twice).
    """
    if pid == os.getpid():
        return f"pid {pid} is this very process, not a server"
    try:
        proc = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return f"no process {pid} is running"
    except psutil.Error as exc:  # pragma: no cover - psutil's other failures
        return f"pid {pid}: {exc}"
    if not _alive(proc):
        return f"no process {pid} is running"
    cmdline = _cmdline(proc)
    if cmdline is None:
        return None  # /proc hidden from us (hidepid): let the kill decide
    if not any(MARKER in arg for arg in cmdline):
        shown = " ".join(cmdline) or proc.name()
        if len(shown) > 60:
            shown = shown[:57] + "..."
        return f"pid {pid} is not a runuwsgi master (it is {shown!r})"
    try:
        parent = proc.parent()
    except psutil.Error:
        parent = None
    parent_cmdline = _cmdline(parent) if parent is not None else None
    # A worker has its master's command line, or (process titles, see proctitle.py) a
    # runuwsgi process for a parent: a master's parent is a shell, systemd or init.
    if parent is not None and parent_cmdline and (
            parent_cmdline == cmdline or any(MARKER in arg for arg in parent_cmdline)):
        return f"pid {pid} is a runuwsgi worker (its master is pid {parent.pid})"
    return None


def check_free(path: str, warn: Callable[[str], None]) -> None:
    """Before binding: refuse a pidfile of a running server; replace a stale one, warning."""
    if not os.path.lexists(path):
        return
    try:
        pid = read_pid(path)
    except PidfileError as exc:
        if not os.path.isfile(path):
            raise
        warn(f"replacing stale pidfile: {exc}")
        return
    why = master_problem(pid)  # our own pid: a restart (container) reused it
    if why is None:
        raise PidfileError(f"pidfile {path} belongs to a running server (pid {pid})")
    warn(f"replacing stale pidfile {path}: {why}")


def write(path: str, pid: int, owner: tuple[int, int] | None = None) -> None:
    """Write ``pid`` and a newline; a reader sees the old content or the new, never half.

    ``owner`` (uid, gid; -1 keeps one) chowns the file (``pidfile2`` with ``uid``/``gid``).
    """
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{pid}.tmp")
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)  # a leftover (or a planted symlink): never write through it
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        try:
            os.write(fd, f"{pid}\n".encode())
            if owner is not None:
                os.fchown(fd, *owner)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise PidfileError(f"cannot write pidfile {path}: {exc.strerror}") from None


def remove(path: str, pid: int) -> bool:
    """Remove the pidfile if it still holds ``pid`` (another server may have taken it)."""
    try:
        if read_pid(path) != pid:
            return False
        os.unlink(path)
    except (PidfileError, OSError):
        return False
    return True
