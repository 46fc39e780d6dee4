"""What the master tells the operator on demand: SIGUSR1 (or the master FIFO's ``s``) logs a
block of per-worker stats, uWSGI's "*** Starting stats ***"; SIGUSR2 logs what every worker
is doing. Read from the scoreboard, so a busy worker need not answer."""

from __future__ import annotations

import os
import time
from typing import Any

from .logging import write_line


def log_summary(master: Any) -> None:
    """SIGUSR1: a block of per-worker stats (uWSGI's "*** Starting stats ***")."""
    scoreboard = master.scoreboard
    wall = time.time()
    lines = [f"*** stats of master pid {master.pid}: {len(master.procs)} workers, "
             f"{scoreboard.total_requests()} requests served ***"]
    for proc in sorted(master.procs.values(), key=lambda p: (p.wid, p.pid)):
        info = scoreboard.read(proc.slot)
        busy = info["busy_since"]
        status = ("starting" if not proc.ready else
                  f"busy {wall - busy:.1f}s" if busy else "idle")
        avg = scoreboard.timing(proc.slot)[1]  # uWSGI's avg_rt, microseconds
        lines.append(f"worker {proc.wid} (pid: {proc.pid}) {status} [{proc.state}] "
                     f"requests: {int(info['delta_requests'])}/{int(info['requests'])} "
                     f"exceptions: {int(info['exceptions'])} "
                     f"harakiri: {int(info['harakiri_count'])} "
                     f"respawns: {int(info['respawn_count']) - 1} "
                     f"rss: {_rss(proc.pid) / 1048576:.1f} MB "
                     f"avg: {avg / 1000:.1f} ms "
                     f"running: {wall - info['last_spawn']:.0f}s")
    lines.append("*** end of stats ***")
    write_line("\n".join(lines))


def log_busy(master: Any) -> None:
    """SIGUSR2: one line per worker, busy for how long or idle."""
    wall = time.time()
    for proc in sorted(master.procs.values(), key=lambda p: (p.wid, p.pid)):
        busy = master.scoreboard.read(proc.slot)["busy_since"]
        what = f"busy for {wall - busy:.1f} s" if busy else "idle"
        write_line(f"worker {proc.wid} (pid: {proc.pid}, {proc.state}): {what}")


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
