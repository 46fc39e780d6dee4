"""The limits the master enforces on its workers from outside, once per loop turn: a
RETIRING worker past the mercy is killed, a request past ``harakiri`` is interrupted (and
its worker killed if it does not unwind in time), a worker past ``max-worker-lifetime`` is
replaced, and one over ``evil-reload-on-rss`` is killed.

These live in the master because a stuck worker cannot police itself; what a worker can do
(max-requests, reload-on-rss) it does in its own loop (worker.py).
"""

from __future__ import annotations

import signal
import time
from typing import Any

from .logging import write_line
from .procs import OLD, RETIRING, SERVING, Proc, send_signal


class Deadlines:
    """The deadline checks of one master (its procs, its scoreboard, its configuration)."""

    def __init__(self, master: Any) -> None:
        self.master = master
        self._last_rss_check = 0.0

    def check(self, now: float) -> None:
        master = self.master
        cfg = master.cfg
        wall = time.time()
        for proc in list(master.procs.values()):
            if proc.state == RETIRING and proc.retired_at and \
                    now - proc.retired_at > master.stop_mercy:
                write_line(f"worker {proc.wid} (pid: {proc.pid}) is taking too much time to "
                           f"die... NO MERCY !!!")
                send_signal(proc.pid, signal.SIGKILL)
                proc.retired_at = now
            if master.harakiri:
                self._check_harakiri(proc, wall, now)
            if cfg.max_worker_lifetime and proc.state == SERVING and proc.ready:
                limit = cfg.max_worker_lifetime + (proc.wid - 1) * cfg.max_worker_lifetime_delta
                if now - proc.since > limit:
                    write_line(f"worker {proc.wid} lifetime reached, it was running for "
                               f"{int(now - proc.since)} second(s)")
                    proc.state = OLD  # replaced first, then told to stop
        if cfg.evil_reload_on_rss and now - self._last_rss_check >= 3.0:
            self._last_rss_check = now
            self._check_evil_rss()

    def _check_harakiri(self, proc: Proc, wall: float, now: float) -> None:
        master = self.master
        scoreboard = master.scoreboard
        busy = scoreboard.read(proc.slot)["busy_since"]
        if not busy or wall - busy < master.harakiri:
            return
        if proc.hk_busy != busy:
            proc.hk_busy = busy
            proc.hk_at = now
            info = scoreboard.read(proc.slot)
            scoreboard.set_field(proc.slot, "harakiri_count", info["harakiri_count"] + 1)
            write_line(f"*** HARAKIRI ON WORKER {proc.wid} (pid: {proc.pid}, try: 1, "
                       f"graceful: yes) *** its request has run {wall - busy:.1f} s "
                       f"(harakiri = {master.harakiri})")
            if master.cfg.harakiri_verbose:
                write_line(f"HARAKIRI: -- syscall> {_proc_text(proc.pid, 'syscall')}")
                write_line(f"HARAKIRI: -- wchan> {_proc_text(proc.pid, 'wchan')}")
            send_signal(proc.pid, signal.SIGUSR2)
        elif now - proc.hk_at > (master.cfg.harakiri_graceful_timeout or 0):
            write_line(f"HARAKIRI: worker {proc.wid} (pid: {proc.pid}) did not end within "
                       f"harakiri-graceful-timeout; SIGKILL")
            send_signal(proc.pid, signal.SIGKILL)
            proc.hk_at = now + 3600  # once

    def _check_evil_rss(self) -> None:
        import psutil

        cfg = self.master.cfg
        limit = cfg.evil_reload_on_rss * 1024 * 1024
        for proc in list(self.master.procs.values()):
            try:
                rss = psutil.Process(proc.pid).memory_info().rss
            except psutil.Error:
                continue
            if rss >= limit:
                write_line(f"worker {proc.wid} (pid: {proc.pid}) uses {rss >> 20} MB, over "
                           f"evil-reload-on-rss ({cfg.evil_reload_on_rss} MB): SIGKILL")
                send_signal(proc.pid, signal.SIGKILL)


def _proc_text(pid: int, name: str) -> str:
    try:
        with open(f"/proc/{pid}/{name}") as f:
            return f.read().strip() or "-"
    except OSError:
        return "-"
