"""The client side of reload/stop: ``manage.py uwsgi_reload`` and ``runuwsgi --reload/--stop``.

The server is found by its pidfile (signals) or its master FIFO (one command byte). A pid is
validated before anything is sent (see :mod:`.pidfile`). Waiting is done from the outside
with psutil: a reload is over when none of the master's old workers is left and as many new
ones are serving; a stop is over when the master is gone.
"""

from __future__ import annotations

import errno
import os
import signal
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil

from .pidfile import MARKER, PidfileError, master_problem, pid_alive, read_pid


class ControlError(Exception):
    """The command could not be sent, or did not take effect in time; one line."""


@dataclass(frozen=True)
class Action:
    label: str
    signum: int | None  # sent through the pidfile; None: FIFO only
    fifo_byte: bytes
    stop: bool


ACTIONS = {
    "reload": Action("graceful reload", signal.SIGHUP, b"r", False),
    "chain": Action("chain reload", None, b"c", False),
    "brutal-reload": Action("brutal reload", None, b"R", False),
    # SIGINT: a graceful stop whatever die-on-term says (with die-on-term = false SIGTERM
    # means a brutal reload, as in uWSGI 2.0).
    "stop": Action("graceful stop", signal.SIGINT, b"q", True),
    "brutal-stop": Action("quick stop", signal.SIGQUIT, b"Q", True),
}


def action_name(*, chain: bool = False, stop: bool = False, brutal: bool = False) -> str:
    if chain and stop:
        raise ControlError("--chain and --stop do not go together")
    if chain and brutal:
        raise ControlError("--chain and --brutal do not go together")
    if stop:
        return "brutal-stop" if brutal else "stop"
    if chain:
        return "chain"
    return "brutal-reload" if brutal else "reload"


def master_pid(pidfile: str) -> int:
    """The pid of the runuwsgi master a pidfile names; ControlError otherwise."""
    try:
        pid = read_pid(pidfile)
    except PidfileError as exc:
        raise ControlError(str(exc)) from None
    problem = master_problem(pid)
    if problem is not None:
        if problem.startswith("no process"):
            raise ControlError(f"pidfile {pidfile} is stale: {problem} "
                               f"(the server is not running)")
        raise ControlError(f"pidfile {pidfile}: {problem}; not signalling it")
    return pid


def fifo_reader(path: str) -> int | None:
    """The runuwsgi master that has the FIFO ``path`` open, if /proc lets us see it."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    key = (st.st_dev, st.st_ino)
    for proc in psutil.process_iter(["cmdline"]):
        if not any(MARKER in arg for arg in proc.info.get("cmdline") or ()):
            continue
        fd_dir = f"/proc/{proc.pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                fst = os.stat(os.path.join(fd_dir, fd))
            except OSError:
                continue
            if (fst.st_dev, fst.st_ino) == key and master_problem(proc.pid) is None:
                return proc.pid
    return None


def write_fifo(path: str, byte: bytes) -> None:
    """One command byte to a master FIFO, without ever blocking."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ControlError(f"master FIFO {path} does not exist (is the server running "
                           f"with master-fifo?)") from None
    except OSError as exc:
        raise ControlError(f"master FIFO {path}: {exc.strerror}") from None
    if not stat.S_ISFIFO(st.st_mode):
        raise ControlError(f"{path} is not a FIFO")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise ControlError(f"no server is reading FIFO {path}") from None
        if exc.errno == errno.EACCES:
            raise ControlError(f"cannot write to FIFO {path}: permission denied") from None
        raise ControlError(f"cannot open FIFO {path}: {exc.strerror}") from None
    try:
        os.write(fd, byte)
    except OSError as exc:
        raise ControlError(f"cannot write to FIFO {path}: {exc.strerror}") from None
    finally:
        os.close(fd)


def send_signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        raise ControlError(f"no process {pid} is running (the server just stopped?)") from None
    except PermissionError:
        raise ControlError(f"not allowed to signal pid {pid}: it runs as another user (run "
                           f"this as that user or as root)") from None


def workers(pid: int) -> set[int]:
    """The live children of the master (its workers)."""
    try:
        children = psutil.Process(pid).children()
    except psutil.Error:
        return set()
    out = set()
    for child in children:
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                out.add(child.pid)
        except psutil.Error:
            pass
    return out


def serving(pid: int) -> bool:
    """A worker is serving once its event loop exists: the epoll fd is created after the app
    is loaded (lazy-apps), just before the accept loop. Unreadable /proc: assume it is."""
    fd_dir = f"/proc/{pid}/fd"
    try:
        fds = os.listdir(fd_dir)
    except PermissionError:
        return True
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(os.path.join(fd_dir, fd)) == "anon_inode:[eventpoll]":
                return True
        except OSError:
            continue
    return False


def wait_reloaded(pid: int, old: set[int], timeout: float,
                  sleep: Callable[[float], None] = time.sleep) -> set[int]:
    """Until no old worker is alive and at least as many new ones serve; the new pids."""
    want = max(len(old), 1)
    deadline = time.monotonic() + timeout
    while True:
        if not pid_alive(pid):
            raise ControlError(f"the master (pid {pid}) exited during the reload")
        current = workers(pid)
        left = sorted(p for p in old if pid_alive(p))
        new = current - old
        ready = {p for p in new if serving(p)}
        # Done when every old worker is gone and every child serves: comparing with the
        # old count would wait for ever when a recycling overlapped the snapshot.
        if not left and current and ready == current:
            return ready
        if time.monotonic() > deadline:
            parts = []
            if left:
                parts.append(f"{len(left)} old worker{'s' if len(left) != 1 else ''} still "
                             f"running (pids {', '.join(map(str, left))})")
            parts.append(f"{len(ready)} of {want} new worker{'s' if want != 1 else ''} "
                         f"serving")
            raise ControlError(f"timed out after {timeout:g} s: {'; '.join(parts)}")
        sleep(0.05)


def wait_gone(pid: int, timeout: float, sleep: Callable[[float], None] = time.sleep) -> None:
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            raise ControlError(f"timed out after {timeout:g} s: the server (pid {pid}) is "
                               f"still running")
        sleep(0.05)


def send(action_key: str, *, pid: int | None, fifo: str | None) -> str:
    """Send ``action_key`` to the master ``pid`` by signal, or through ``fifo`` when the
    action has no signal or the pid is unknown; returns what was sent, for a message.
    Nothing waits here: the admin dashboard calls this from a worker being replaced."""
    action = ACTIONS[action_key]
    if action.signum is None or pid is None:
        if not fifo:
            raise ControlError(f"{action.label} needs master-fifo (set 'master-fifo' in "
                               f"settings.UWSGI)")
        write_fifo(fifo, action.fifo_byte)
        return f"{action.fifo_byte.decode()!r} ({action.label}) through FIFO {fifo}"
    send_signal(pid, action.signum)
    return f"{signal.Signals(action.signum).name} ({action.label})"


def run(action_key: str, *, pidfile: str | None = None, fifo: str | None = None,
        wait: bool = True, timeout: float = 60.0) -> str:
    """Send ``action_key`` (see ACTIONS) to the server; returns the line to print."""
    action = ACTIONS[action_key]
    if not pidfile and not fifo:
        raise ControlError("no pidfile or master-fifo configured (set 'pidfile' or "
                           "'master-fifo' in settings.UWSGI, or pass --pidfile PATH or "
                           "--fifo PATH)")
    if action.signum is None and not fifo:
        raise ControlError(f"{action.label} needs master-fifo (set 'master-fifo' in "
                           f"settings.UWSGI or pass --fifo PATH)")
    pid = master_pid(pidfile) if pidfile else None
    use_fifo = action.signum is None or pid is None
    if use_fifo and pid is None and wait:
        pid = fifo_reader(fifo)  # type: ignore[arg-type]
    before = workers(pid) if pid is not None else set()
    started = time.monotonic()
    what = send(action_key, pid=None if use_fifo else pid, fifo=fifo)
    to = f"the runuwsgi master (pid {pid})" if pid is not None else "the server"
    if not wait:
        return f"sent {what} to {to}"
    if pid is None:
        return (f"sent {what}; not waiting: the master's pid is unknown (configure a pidfile, "
                f"or use --no-wait)")
    if action.stop:
        wait_gone(pid, timeout)
        return f"stopped the server (pid {pid}) in {time.monotonic() - started:.1f} s"
    new = wait_reloaded(pid, before, timeout)
    count = len(new)
    return (f"reloaded {count} worker{'s' if count != 1 else ''} in "
            f"{time.monotonic() - started:.1f} s (master pid {pid}; new worker pids: "
            f"{', '.join(map(str, sorted(new)))})")
