"""``daemonize`` / ``daemonize2``: run in the background, but tell the terminal how it went.

uWSGI's launcher exits 0 at once, so a port already in use or an import error only shows up
in the log file. Ours forks twice (the daemon is in its own session and can never get the
terminal back), the daemon sends its stdout/stderr to the log file and carries on starting
up, and the launcher waits on a pipe until the daemon says ``ready`` (its workers are
forked) or reports its one-line error, or the pipe closes without a word (the daemon died).
"""

from __future__ import annotations

import contextlib
import os
import sys


class Started(Exception):
    """Raised in the launcher: the daemon is up (``pid`` is the master)."""

    def __init__(self, pid: int, log: str) -> None:
        super().__init__(f"started, pid {pid}, log {log}")
        self.pid = pid
        self.log = log


class StartFailed(Exception):
    """Raised in the launcher: the daemon could not start; the message is one line."""


class Daemon:
    """The daemon's end of the launcher's pipe."""

    def __init__(self, fd: int) -> None:
        self.fd: int | None = fd

    def _send(self, line: str) -> None:
        if self.fd is None:
            return
        try:
            os.write(self.fd, (line.replace("\n", " ").strip() + "\n").encode("utf-8", "replace"))
        except OSError:  # the launcher was interrupted: nobody to tell
            pass
        self.close()

    def ready(self) -> None:
        """The master's first workers are forked: the launcher may exit 0."""
        self._send(f"ready {os.getpid()}")

    def failed(self, message: str) -> None:
        """Startup failed: the launcher prints ``message`` and exits non-zero."""
        self._send(f"error {message}")

    def close(self) -> None:
        """Also called in each forked worker, so only the master holds the pipe."""
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None


def detach(log_path: str) -> Daemon:
    """Fork into the background. Returns in the daemon only; in the launcher, raises
    :class:`Started` or :class:`StartFailed` once the daemon has reported."""
    try:
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    except OSError as exc:
        raise StartFailed(f"cannot open the log file {log_path}: {exc.strerror}") from None
    read_fd, write_fd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid > 0:  # the launcher
        os.close(write_fd)
        os.close(log_fd)
        os.waitpid(pid, 0)  # the intermediate child exits as soon as it has forked
        _wait_report(read_fd, log_path)
        raise AssertionError("unreachable")  # pragma: no cover
    try:  # the intermediate child: a new session, then fork again and leave
        os.close(read_fd)
        os.setsid()
        if os.fork() > 0:
            os._exit(0)
    except BaseException:
        os._exit(1)
    # the daemon
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    return Daemon(write_fd)


def _wait_report(fd: int, log_path: str) -> None:
    data = b""
    try:
        while b"\n" not in data:
            try:
                chunk = os.read(fd, 4096)
            except InterruptedError:  # pragma: no cover - PEP 475 retries already
                continue
            if not chunk:
                break
            data += chunk
    except KeyboardInterrupt:
        raise StartFailed(f"interrupted: the server may still be starting in the background "
                          f"(see {log_path})") from None
    finally:
        os.close(fd)
    line = data.split(b"\n", 1)[0].decode("utf-8", "replace")
    word, _, rest = line.partition(" ")
    if word == "ready" and rest.isdigit():
        raise Started(int(rest), log_path)
    if word == "error" and rest:
        raise StartFailed(rest)
    last = _last_line(log_path)
    raise StartFailed("the server stopped during startup" + (f": {last}" if last else "")
                      + f" (see {log_path})")


def _last_line(path: str) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4096))
            lines = [ln for ln in f.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1].strip()[:200] if lines else ""
