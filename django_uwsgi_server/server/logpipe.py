"""``log-master``, ``log-reopen``, ``log-maxsize``: the master owns the log file.

With ``log-master`` each worker's stdout and stderr are one pipe; the master reads it and
writes what arrives to its own stderr (the ``logto``/``daemonize`` file, the terminal or the
journal). Workers write to the pipe exactly as they wrote to the file (one ``write`` per
line; lines up to 4 KiB never interleave), so the request path does not change, and only the
master has to reopen or rotate the file. The pipe and its contents survive the master's
re-exec on reload: the new image inherits both ends, and the old workers keep writing.

``log-reopen``: the master reopens the log file when a reload starts (and the workers the
reload forks inherit the new file), so ``logrotate``'s ``postrotate`` can send SIGHUP.
``log-maxsize N``: once the file is larger than N bytes, the master renames it to
``FILE.<unix time>`` (``FILE.<unix time>.1``... for more rotations in the same second; or
``log-backupname``, overwritten each time, as in uWSGI) and starts a new one; it implies
``log-master``, since otherwise the workers would keep writing to the renamed file (uWSGI
has the same limitation without log-master).

``logger``/``req-logger`` (loggers.py) imply the pipe too: the master sends what it reads to
the loggers, line by line, instead of its stderr, and its own lines (``write_line``) as well.
With ``req-logger`` the workers write their request lines to a second pipe, read the same way
for the request loggers. ``log-reopen`` (and the FIFO's ``l``) reopen ``file:`` loggers too;
``log-maxsize`` still rotates only the ``logto`` file (where ``stdio`` writes).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import time
from typing import Any

from . import loggers
from . import reload as reexec
from .hooks import Hook
from .logging import redirect_output, set_request_fd, set_sink, write_line

_CARRY = "logpipe"
_CARRY_REQ = "reqlogpipe"
_PIPE_SIZE = 1 << 20  # room for bursts while the master is busy elsewhere
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


def log_file(cfg: Any) -> str | None:
    """The file the server logs to, if any (logto wins over daemonize, see daemon.py)."""
    return cfg.logto or cfg.daemonize or cfg.daemonize2 or None


def check(cfg: Any) -> str | None:
    """Why these options cannot work together, or None."""
    problem = loggers.check(cfg)
    if problem:
        return problem
    for option in ("log_maxsize", "log_reopen", "log_backupname"):
        if option == "log_reopen" and (cfg.logger or cfg.req_logger):
            continue  # it reopens file: loggers
        if getattr(cfg, option) and not log_file(cfg):
            return (f"{option.replace('_', '-')} needs a log file: set logto (or daemonize); "
                    f"stderr cannot be rotated or reopened by the server")
    return None


class LogMaster(Hook):
    def __init__(self, cfg: Any) -> None:
        self.path = log_file(cfg)
        self.reopen_on_reload = bool(cfg.log_reopen)
        self.maxsize = cfg.log_maxsize or 0
        self.backupname = cfg.log_backupname
        self.r = self.w = self.req_r = self.req_w = -1
        # Opened here, in the master, before anything drops privileges (checked in bind_all).
        self.loggers = loggers.build(cfg.logger, "logger")
        self.req_loggers = loggers.build(cfg.req_logger, "req-logger")
        if cfg.log_master or self.maxsize or self.loggers or self.req_loggers:
            self.r, self.w = _pipe(_CARRY)
        if self.req_loggers:
            self.req_r, self.req_w = _pipe(_CARRY_REQ)
        if self.loggers:
            set_sink(self.loggers.lines)

    def fds(self) -> list[int]:
        return [fd for fd in (self.r, self.req_r) if fd >= 0]

    def child(self, wid: int) -> None:
        if self.r < 0:
            return
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(self.w, 1)
        os.dup2(self.w, 2)
        os.close(self.r)
        os.close(self.w)
        set_sink(None)  # a worker's lines reach the loggers through the pipe
        if self.req_r >= 0:
            os.close(self.req_r)
            set_request_fd(self.req_w)

    def reload_starts(self, master: Any) -> None:
        if self.reopen_on_reload and (self.path or self.loggers or self.req_loggers):
            self._reopen()

    def command(self, master: Any, letter: str) -> bool:
        """Master FIFO ``l`` reopens the log file, ``L`` rotates it (uWSGI's letters); both
        need the log pipe, or the workers would keep the old file. ``l`` also reopens
        ``file:`` loggers (with or without logto)."""
        if letter not in "lL":
            return False
        if letter == "l" and (self.loggers or self.req_loggers):
            self._reopen()
        elif self.r < 0 or not self.path:
            write_line(f"master command {letter!r} needs log-master and logto; ignored")
        elif letter == "l":
            self._reopen()
        else:
            self._rotate(os.fstat(2).st_size)
        return True

    def _reopen(self) -> None:
        self._relay()  # what the workers wrote so far belongs to the old file
        for group in (self.loggers, self.req_loggers):
            if group is not None:
                try:
                    group.reopen()
                except OSError as exc:
                    write_line(f"log-reopen: cannot reopen {exc.filename}: {exc.strerror}; "
                               f"logging to the old file")
        if self.path is None:
            return
        write_line(f"reopening the log file {self.path} (log-reopen)")
        try:
            redirect_output(self.path)  # a new file if it moved
        except OSError as exc:
            write_line(f"log-reopen: cannot open {self.path}: {exc.strerror}; "
                       f"logging to the old file")
        else:
            write_line(f"{self.path} reopened.")

    def tick(self, master: Any) -> None:
        self._relay()
        if self.maxsize and self.path:
            self._check_size()

    def close(self, master: Any) -> None:
        self._relay()
        for group in (self.loggers, self.req_loggers):
            if group is not None:
                group.flush()

    def _relay(self) -> None:
        if self.r >= 0:
            _drain(self.r, self.loggers.feed if self.loggers else _write_all)
        if self.req_r >= 0:
            assert self.req_loggers is not None
            _drain(self.req_r, self.req_loggers.feed)


    def _check_size(self) -> None:
        try:
            size = os.fstat(2).st_size
        except OSError:
            return
        if size > self.maxsize:
            self._rotate(size)

    def _rotate(self, size: int) -> None:
        assert self.path is not None
        self._relay()
        backup = self.backupname or _unused(f"{self.path}.{int(time.time())}")
        _write_all(f"logsize: {size}, triggering rotation to {backup}...\n".encode())
        try:
            os.rename(self.path, backup)
            redirect_output(self.path)  # a new file if it moved
        except OSError as exc:
            write_line(f"unable to rotate log: {exc.strerror}; log-maxsize is off from now on")
            self.maxsize = 0  # do not retry (and log this) on every turn


def _pipe(name: str) -> tuple[int, int]:
    """A new non-blocking-read pipe, or the one the previous image carried under ``name``;
    carried on to the next reload either way."""
    fds = reexec.carried(name)
    if fds is None:
        r, w = os.pipe()
        with contextlib.suppress(OSError):
            fcntl.fcntl(w, _F_SETPIPE_SZ, _PIPE_SIZE)
        os.set_blocking(r, False)
    else:
        r, w = fds
        for fd in fds:
            os.set_inheritable(fd, False)
    reexec.carry(name, [r, w], (r, w))
    return r, w


def _drain(fd: int, out: Any) -> None:
    for _ in range(64):  # bounded: the master has other work too
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        if not data:
            return
        out(data)


def _unused(name: str) -> str:
    """``name``, or ``name.1``, ``name.2``... if taken: a busy server rotates a small file
    several times a second, and renaming onto the previous backup would delete its lines
    (uWSGI has that problem)."""
    candidate = name
    for n in range(1, 10_000):
        if not os.path.lexists(candidate):
            return candidate
        candidate = f"{name}.{n}"
    return candidate


def _write_all(data: bytes) -> None:
    loggers.write_all(2, data)


def from_config(cfg: Any) -> LogMaster | None:
    if not (cfg.log_master or cfg.log_maxsize or cfg.log_reopen or cfg.master_fifo or
            cfg.logger or cfg.req_logger):
        return None
    return LogMaster(cfg)
