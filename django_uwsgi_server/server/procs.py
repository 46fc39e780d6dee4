"""The master's view of its workers: one :class:`Proc` per worker process, the generation it
belongs to, and the signals the master handles. Shared by the master loop (master.py), the
reloads (reloading.py) and the deadline checks (deadlines.py), which all work on the same
process table.

Generations: SERVING workers run the current code; a reload marks them OLD (they keep
serving until their replacement accepts); RETIRING workers were told to stop and are only
waited for (and killed when the mercy runs out).
"""

from __future__ import annotations

import os
import signal
import time

SERVING, OLD, RETIRING = "serving", "old", "retiring"
# What the master handles itself; blocked around fork() and across a re-exec.
HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGCHLD,
           signal.SIGTTIN, signal.SIGTTOU, signal.SIGUSR1, signal.SIGUSR2)


class Proc:
    """One worker process as the master sees it."""

    __slots__ = ("pid", "wid", "slot", "state", "ready", "since", "retired_at", "hk_busy",
                 "hk_at")

    def __init__(self, pid: int, wid: int, slot: int, state: str = SERVING,
                 ready: bool = False) -> None:
        self.pid, self.wid, self.slot, self.state, self.ready = pid, wid, slot, state, ready
        self.since = time.monotonic()
        self.retired_at = 0.0
        self.hk_busy = 0.0  # the busy_since harakiri already fired for
        self.hk_at = 0.0


def send_signal(pid: int, sig: int) -> None:
    """Signal a worker that may have exited already (it is reaped later)."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
