"""Reloading by re-exec: the master replaces its own image, keeping its pid, its listening
sockets, its scoreboard and its old workers, so that the new code is imported while the old
workers still serve (uWSGI re-execs too, but only after every worker has stopped).

The new image finds what it inherited in one environment variable, read once at import.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from typing import Any

ENV = "DJANGO_UWSGI_SERVER_REEXEC"
# Where the command started: the re-exec runs the same command line from there, whatever
# `chdir` did since (uWSGI: "chdir() to <original cwd>").
ORIGINAL_CWD = os.getcwd()
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
    from .sockets import Listener, parse_address

    listeners = []
    for fd, protocol, option, address in _STATE["listeners"]:
        sock = socket.socket(fileno=fd)
        sock.setblocking(False)
        os.set_inheritable(fd, True)
        listeners.append(Listener(sock, parse_address(address), protocol, option))
    return listeners


def execute(state: dict[str, Any]) -> None:
    """Replace this process with a fresh run of the same command (does not return)."""
    from django.utils.autoreload import get_child_arguments

    os.chdir(ORIGINAL_CWD)  # first: the command line's script path is relative to it
    args = get_child_arguments()
    os.environ[ENV] = json.dumps(state)
    os.execv(args[0], args)
    sys.exit(1)  # not reached
