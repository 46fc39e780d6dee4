"""Reloading by re-exec: the master replaces its own image, keeping its pid, its listening
sockets, its scoreboard and its old workers, so that the new code is imported while the old
workers still serve (uWSGI re-execs too, but only after every worker has stopped).

The new image finds what it inherited in one environment variable, read once at import.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any

ENV = "DJANGO_UWSGI_SERVER_REEXEC"
# Where the command started: the re-exec runs the same command line from there, whatever
# `chdir` did since (uWSGI: "chdir() to <original cwd>").
ORIGINAL_CWD = os.getcwd()
# A symlinked deploy directory (cd /srv/app/current) must be entered by name again, or a
# reload would re-enter the old release that getcwd() resolved to.
if os.environ.get("PWD") and os.path.isdir(os.environ["PWD"]):
    try:
        if os.path.samefile(os.environ["PWD"], ORIGINAL_CWD):
            ORIGINAL_CWD = os.environ["PWD"]
    except OSError:
        pass
PROBE_ENV = "DJANGO_UWSGI_SERVER_PROBE"
_STATE: dict[str, Any] | None = json.loads(os.environ[ENV]) if ENV in os.environ else None


def is_reexec() -> bool:
    """True in a master image started by a reload (skip banner, checks, pidfile, daemonize,
    privilege changes: the first image did them)."""
    return _STATE is not None


def inherited() -> dict[str, Any] | None:
    """What the previous image passed on, or None on a fresh start."""
    return _STATE


def forget() -> None:
    """Keep the state out of the environment of everything we fork or exec from now on."""
    os.environ.pop(ENV, None)


def inherited_listeners() -> list[Any] | None:
    """The listening sockets of the previous image, or None on a fresh start."""
    if _STATE is None:
        return None
    return listeners_from(_STATE["listeners"])


def listeners_from(entries: list[list[Any]]) -> list[Any]:
    """Listeners from inherited ``[fd, protocol, option, address]`` entries."""
    from .sockets import Listener, parse_address

    listeners = []
    for fd, protocol, option, address in entries:
        sock = socket.socket(fileno=fd)
        sock.setblocking(False)
        os.set_inheritable(fd, False)  # only for the next re-exec, not the app's children
        listeners.append(Listener(sock, parse_address(address), protocol, option))
    return listeners


# What other modules hand over to the next image (the log pipe, the systemd notify state):
# name -> (JSON value, file descriptors in it that must stay open across the exec).
_CARRY: dict[str, tuple[Any, tuple[int, ...]]] = {}


def carry(name: str, value: Any, fds: tuple[int, ...] = ()) -> None:
    """Hand ``value`` (JSON-able) to the master image a reload re-execs; ``fds`` are made
    inheritable only for that exec."""
    _CARRY[name] = (value, fds)


def carried(name: str) -> Any:
    """What the previous image passed with :func:`carry`, or None (fresh start, or it
    passed nothing under that name)."""
    return (_STATE or {}).get("carry", {}).get(name)


def is_probe() -> bool:
    """True in the reload check: load the new code, exit 0 if it loads, 1 if not."""
    return PROBE_ENV in os.environ


def _command_line() -> list[str]:
    from django.utils.autoreload import get_child_arguments

    here = os.getcwd()
    os.chdir(ORIGINAL_CWD)  # the command line's script path is relative to it
    try:
        return get_child_arguments()
    finally:
        os.chdir(here)


def probe() -> int:
    """Start the same command line as a check of the new code; its pid (the master reaps
    it, and re-execs only if it exits 0)."""
    args = _command_line()
    env = {k: v for k, v in os.environ.items() if k != ENV}
    env[PROBE_ENV] = "1"
    here = os.getcwd()
    os.chdir(ORIGINAL_CWD)
    try:
        return os.posix_spawn(args[0], args, env)
    finally:
        os.chdir(here)


def execute(state: dict[str, Any]) -> None:
    """Replace this process with a fresh run of the same command (returns only if the exec
    failed, with the environment and the directory as they were)."""
    args = _command_line()
    here = os.getcwd()
    kept = [fd for _, fds in _CARRY.values() for fd in fds]
    os.environ[ENV] = json.dumps({**state, "carry": {k: v for k, (v, _) in _CARRY.items()}})
    try:
        for fd in kept:
            os.set_inheritable(fd, True)
        os.chdir(ORIGINAL_CWD)
        os.execv(args[0], args)
    finally:  # only reached when execv failed
        for fd in kept:
            os.set_inheritable(fd, False)
        os.environ.pop(ENV, None)
        os.chdir(here)
