"""The master: forks the workers, respawns the dead, stops everything cleanly.

Signal handlers only record the signal; one loop (woken by the signal's wakeup fd or once a
second) handles them and then does the housekeeping in small steps: reap, enforce the stop
deadline, spawn up to the target count (gunicorn's arbiter has the same shape).

Signals (the better defaults of uWSGI 2.1 and gunicorn):
  SIGTERM   graceful stop: workers finish in-flight requests, then exit (uWSGI: brutal reload)
  SIGINT    graceful stop, as Ctrl-C; a second one stops at once
  SIGQUIT   quick stop
  SIGHUP    restart the workers gracefully (new workers first, then the old ones drain)
  SIGTTIN / SIGTTOU   one worker more / fewer
"""

from __future__ import annotations

import os
import select
import signal
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from .logging import write_line
from .stats import MAX_WORKERS, Scoreboard

EXIT_APP_FAILED = 22  # uWSGI's code for "failed to load app", kept for familiarity
_HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGCHLD,
            signal.SIGTTIN, signal.SIGTTOU, signal.SIGUSR1)


class Master:
    def __init__(self, *, processes: int, make_worker: Callable[[int], Any],
                 stop_mercy: float = 60.0) -> None:
        self.target = processes
        self.make_worker = make_worker  # called in the forked child; returns an object with run()
        self.stop_mercy = stop_mercy
        self.pid = os.getpid()
        self.scoreboard = Scoreboard(max(MAX_WORKERS, 2 * processes))
        self.workers: dict[int, int] = {}  # pid -> worker id
        self.retiring: dict[int, int] = {}  # pids of workers told to stop (reload)
        self.retired_at: dict[int, float] = {}
        self.pending: list[int] = []
        self.stopping_since: float | None = None
        self.exit_code = 0
        self._respawns: list[float] = []
        self._hold_spawn_until = 0.0

    # -- lifecycle -----------------------------------------------------------------------
    def run(self) -> int:
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        self._wake = (wake_r, wake_w)
        for sig in _HANDLED:
            signal.signal(sig, self._record)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        signal.set_wakeup_fd(wake_w)
        try:
            self._spawn_missing()
            while True:
                try:
                    select.select([wake_r], [], [], 1.0)
                except InterruptedError:
                    pass
                self._drain(wake_r)
                for sig in self._take_signals():
                    self._handle(sig)
                self._reap()
                if self.stopping_since is not None:
                    if not self.workers and not self.retiring:
                        break
                    if time.monotonic() - self.stopping_since > self.stop_mercy:
                        self._kill_all(signal.SIGKILL, "taking too much time to die... NO MERCY")
                else:
                    self._spawn_missing()
                    self._kill_stuck_retirees()
        finally:
            signal.set_wakeup_fd(-1)
            for sig in _HANDLED:
                signal.signal(sig, signal.SIG_DFL)
            os.close(wake_r)
            os.close(wake_w)
        write_line("goodbye to django-uwsgi-server.")
        return self.exit_code

    def _record(self, signum: int, frame: Any) -> None:
        self.pending.append(signum)

    def _take_signals(self) -> list[int]:
        taken, self.pending = self.pending, []
        return taken

    @staticmethod
    def _drain(fd: int) -> None:
        try:
            while os.read(fd, 4096):
                pass
        except BlockingIOError:
            pass

    def _handle(self, sig: int) -> None:
        if sig in (signal.SIGTERM, signal.SIGINT):
            if self.stopping_since is None:
                name = "SIGTERM" if sig == signal.SIGTERM else "SIGINT"
                write_line(f"{name} received: stopping gracefully (in-flight requests finish; "
                           f"send SIGQUIT or press CONTROL-C again to stop at once)")
                self.stop(graceful=True)
            elif sig == signal.SIGINT:
                self.stop(graceful=False)
        elif sig == signal.SIGQUIT:
            write_line("SIGQUIT received: stopping at once")
            self.stop(graceful=False)
        elif sig == signal.SIGHUP and self.stopping_since is None:
            self.restart_workers()
        elif sig == signal.SIGTTIN and self.stopping_since is None:
            if self.target >= self.scoreboard.slots:
                write_line(f"SIGTTIN: already at the most workers ({self.target})")
                return
            self.target += 1
            write_line(f"SIGTTIN: one more worker ({self.target})")
        elif sig == signal.SIGTTOU and self.stopping_since is None and self.target > 1:
            self.target -= 1
            write_line(f"SIGTTOU: one worker fewer ({self.target})")
            for pid, wid in list(self.workers.items()):
                if wid > self.target:
                    self._retire(pid)
        elif sig == signal.SIGUSR1:
            self.log_summary()

    def stop(self, graceful: bool) -> None:
        if self.stopping_since is None:
            self.stopping_since = time.monotonic()
        self._kill_all(signal.SIGTERM if graceful else signal.SIGQUIT, "")

    def restart_workers(self) -> None:
        """Graceful worker restart: the new workers start accepting while the old ones drain."""
        write_line("SIGHUP received: restarting the workers gracefully")
        for pid in list(self.workers):
            self._retire(pid)
        self._spawn_missing()

    def log_summary(self) -> None:
        lines = [f"master pid {self.pid}: {len(self.workers)} workers, "
                 f"{self.scoreboard.total_requests()} requests served"]
        for pid, wid in sorted(self.workers.items(), key=lambda item: item[1]):
            info = self.scoreboard.read(wid)
            lines.append(f"  worker {wid} (pid: {pid}) requests={int(info['requests'])} "
                         f"exceptions={int(info['exceptions'])} respawns="
                         f"{int(info['respawn_count']) - 1}")
        write_line("\n".join(lines))

    # -- workers -------------------------------------------------------------------------
    def _retire(self, pid: int) -> None:
        wid = self.workers.pop(pid, None)
        if wid is None:
            return
        self.retiring[pid] = wid
        self.retired_at[pid] = time.monotonic()
        self._signal(pid, signal.SIGTERM)

    def _kill_stuck_retirees(self) -> None:
        """A worker told to stop (restart, fewer workers) gets stop_mercy to finish."""
        now = time.monotonic()
        for pid, since in list(self.retired_at.items()):
            if now - since > self.stop_mercy and pid in self.retiring:
                write_line(f"worker {self.retiring[pid]} (pid: {pid}) is taking too much time "
                           f"to die... NO MERCY")
                self._signal(pid, signal.SIGKILL)
                self.retired_at[pid] = now  # once per mercy period at most

    def _kill_all(self, sig: int, why: str) -> None:
        for pid in list(self.workers) + list(self.retiring):
            if why:
                write_line(f"worker {self.workers.get(pid) or self.retiring.get(pid)} "
                           f"(pid: {pid}) is {why}")
            self._signal(pid, sig)

    @staticmethod
    def _signal(pid: int, sig: int) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def _spawn_missing(self) -> None:
        if time.monotonic() < self._hold_spawn_until:
            return
        running = set(self.workers.values())
        for wid in range(1, self.target + 1):
            if wid not in running and time.monotonic() >= self._hold_spawn_until:
                self._spawn(wid)

    def _spawn(self, wid: int) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        # A signal landing between fork() and the worker's own handlers would run the
        # master's handler in the child and be lost: block them until the worker is ready.
        signal.pthread_sigmask(signal.SIG_BLOCK, _HANDLED)
        try:
            pid = os.fork()
            if pid == 0:
                self._child(wid)
        except OSError as exc:  # EAGAIN / ENOMEM: try again later rather than die
            write_line(f"fork() of worker {wid} failed: {exc.strerror}; retrying in 1 second")
            self._hold_spawn_until = time.monotonic() + 1.0
            return
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _HANDLED)
        self.workers[pid] = wid
        self.scoreboard.spawned(wid, pid)

    def _child(self, wid: int) -> None:
        code = 1
        try:
            signal.set_wakeup_fd(-1)
            for sig in _HANDLED:
                signal.signal(sig, signal.SIG_DFL)
            os.close(self._wake[0])
            os.close(self._wake[1])
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _HANDLED)  # now SIG_DFL: safe
            worker = self.make_worker(wid)
            if worker is None:
                code = EXIT_APP_FAILED
            else:
                code = worker.run()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self._buried(pid, status)

    def _buried(self, pid: int, status: int) -> None:
        self.retired_at.pop(pid, None)
        if pid in self.retiring:
            self.retiring.pop(pid)
            return
        wid = self.workers.pop(pid, None)
        if wid is None or self.stopping_since is not None:
            return
        code = os.waitstatus_to_exitcode(status)
        if code == EXIT_APP_FAILED:
            write_line(f"worker {wid} (pid: {pid}) could not load the application; "
                       f"stopping (need-app)")
            self.exit_code = 1
            self.stop(graceful=False)
            return
        how = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
        write_line(f"DAMN ! worker {wid} (pid: {pid}) died, {how} :( trying respawn ...")
        now = time.monotonic()
        self._respawns = [t for t in self._respawns if now - t < 1.0] + [now]
        if len(self._respawns) > max(self.target, 2):
            write_line("workers are dying too fast !!! waiting 1 second before respawning "
                       "(is the application crashing every worker?)")
            self._hold_spawn_until = now + 1.0
