"""The master: forks the workers, replaces them (reloads, recycling, harakiri), stops them.

Signal handlers and triggers only record what was asked; one loop (woken by a signal, a
worker's report, a FIFO byte, or every half second) handles it, then does the housekeeping
in small steps: reap, reload progress, deadlines, spawn up to the target count.

Workers report to the master on a pipe: "accepting" once they serve, and "leaving" when they
decided to recycle themselves, so a replacement is forked at once.

Reloads never leave the sockets unserved: the new workers start while the old ones still
serve, and an old worker is told to stop only when its replacement accepts. How a reload
runs (probe of the new code, re-exec of the master, chain, queue, abandon) is reloading.py;
the master's loop drives it and owns the process table it works on (procs.py). The limits
enforced on workers from outside (harakiri, lifetime, evil RSS) are deadlines.py; the
SIGUSR1/SIGUSR2 reports are reports.py.

Signals: SIGTERM graceful stop (``die-on-term = false``: uWSGI 2.0's brutal reload), SIGINT
graceful stop and a second one quick, SIGQUIT quick stop, SIGHUP graceful reload,
SIGTTIN/SIGTTOU one worker more/fewer, SIGUSR1 a summary, SIGUSR2 what every worker is doing.
"""

from __future__ import annotations

import os
import select
import signal
import struct
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from . import reload as reexec
from . import reports
from .deadlines import Deadlines
from .logging import write_line
from .procs import HANDLED, OLD, RETIRING, SERVING, Proc, send_signal
from .reloading import Reloader
from .stats import MAX_WORKERS, Scoreboard

EXIT_APP_FAILED = 22  # uWSGI's code for "failed to load app"
EXIT_RECYCLED = 17  # the worker retired itself (max-requests, reload-on-rss, harakiri)
_REPORT = struct.Struct("<i")  # +pid: accepting; -pid: leaving soon


class Master:
    def __init__(self, cfg: Any, *, make_worker: Callable[[int, int, int], Any],
                 listeners: list[Any], on_ready: Callable[[], None] | None = None,
                 on_exit: Callable[[], None] | None = None, triggers: Any = None,
                 app_failed: bool = False, stats: Any = None,
                 hooks: list[Any] | None = None, hub: Any = None) -> None:
        self.cfg = cfg
        self.target = cfg.processes
        # make_worker(wid, slot, report_fd) runs in the forked child; returns an object with
        # run() -> exit code, or None when the application could not be loaded.
        self.make_worker = make_worker
        self.listeners = listeners
        self.on_ready = on_ready
        self.on_exit = on_exit
        self.triggers = triggers
        self.hooks = hooks or []  # see hooks.py: titles, sd_notify, the log pipe
        self.stats = stats  # stats_server.StatsServer: served from this loop, never blocking
        self.hub = hub  # the uwsgi module's signals, timers, cron (server/signals.py)
        self.stop_mercy = float(cfg.reload_mercy or cfg.worker_reload_mercy or 60)
        self.harakiri = cfg.harakiri or 0
        self.pid = os.getpid()
        self.procs: dict[int, Proc] = {}
        self.pending: list[int] = []
        self.stopping_since: float | None = None
        self.exit_code = 0
        self.no_app = app_failed  # a re-exec whose new code failed to import
        # need-app stops the server only if no worker ever loaded the app.
        self.served_once = False
        self._respawns: list[float] = []
        self._hold_spawn_until = 0.0
        state = reexec.inherited()
        slots = max(MAX_WORKERS, 2 * self.target + 8)
        if state is not None:
            self.scoreboard = Scoreboard(state["slots"], fd=state["scoreboard_fd"])
            now = time.monotonic()
            for pid, wid, slot, proc_state, retired_ago in state["procs"]:
                proc = Proc(pid, wid, slot, OLD if proc_state != RETIRING else RETIRING,
                            ready=True)
                if proc_state == RETIRING:
                    proc.retired_at = now - retired_ago  # the mercy keeps running
                self.procs[pid] = proc
            # SIGTTIN/SIGTTOU changes survive the reload.
            self.target = state.get("target", self.target)
            inherited_chain: bool | None = bool(state.get("chain"))
            self.served_once = True
        else:
            self.scoreboard = Scoreboard(slots)
            inherited_chain = None
        self.reloader = Reloader(self, inherited_chain)
        self.deadlines = Deadlines(self)

    # -- lifecycle -----------------------------------------------------------------------
    def run(self) -> int:
        wake_r, wake_w = os.pipe()
        self._report_r, self._report_w = os.pipe()
        for fd in (wake_r, wake_w, self._report_r):
            os.set_blocking(fd, False)
        self._wake = (wake_r, wake_w)
        for sig in HANDLED:
            signal.signal(sig, self._record)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        signal.set_wakeup_fd(wake_w)
        # A re-exec'd image starts with these blocked (see reloading.py): deliver them now.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED)
        reexec.forget()
        for hook in self.hooks:
            hook.started(self)
        if self.hub is not None:
            self.hub.attach(self)
        try:
            if not self.reloader.resume():
                write_line(f"spawned uWSGI master process (pid: {self.pid})")
                self._spawn_missing()
            if self.on_ready is not None:
                self.on_ready()
            self._loop(wake_r)
        finally:
            signal.set_wakeup_fd(-1)
            for sig in HANDLED:
                signal.signal(sig, signal.SIG_DFL)
            for fd in (wake_r, wake_w, self._report_r, self._report_w):
                os.close(fd)
            if self.stats is not None:
                self.stats.close()
        if self.triggers is not None:
            self.triggers.close()
        for hook in self.hooks:
            hook.close(self)
        if self.on_exit is not None:
            self.on_exit()
        write_line(f"goodbye to django-uwsgi-server (master pid: {self.pid}).")
        return self.exit_code

    def _loop(self, wake_r: int) -> None:
        tick = 0.5 if self.harakiri else 1.0
        while True:
            fds = [wake_r, self._report_r]
            if self.triggers is not None:
                fds += self.triggers.fds()
            for hook in self.hooks:
                fds += hook.fds()
            wfds = []
            if self.stats is not None:
                fds += self.stats.fds()
                wfds = self.stats.wfds()
            timeout = tick
            if self.hub is not None:
                fds += self.hub.fds()
                timeout = self.hub.timeout(time.monotonic(), tick)
            ready: tuple[list, list, list] = ([], [], [])
            try:
                ready = select.select(fds, wfds, [], timeout)
            except InterruptedError:
                pass
            if self.stats is not None:
                self.stats.handle(ready[0], ready[1])
            self._drain(wake_r)
            self._read_reports()
            if self.hub is not None:
                self.hub.tick(time.monotonic())
            for sig in self._take_signals():
                self._handle(sig)
            if self.triggers is not None and self.stopping_since is None:
                for command in self.triggers.check():
                    self.command(command)
            self._reap()
            for hook in self.hooks:
                hook.tick(self)
            now = time.monotonic()
            if self.stopping_since is not None:
                if not self.procs:
                    return
                if now - self.stopping_since > self.stop_mercy:
                    self._kill_all(signal.SIGKILL, "is taking too much time to die... NO MERCY")
                    self.stopping_since = now  # once per mercy period
                continue
            self.reloader.check(now)
            self._spawn_missing()
            self.deadlines.check(now)

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

    # -- commands ------------------------------------------------------------------------
    def _handle(self, sig: int) -> None:
        if sig == signal.SIGCHLD:
            return  # reaped on every turn
        if sig == signal.SIGTERM:
            if not self.cfg.die_on_term and self.stopping_since is None:
                write_line("SIGTERM received: brutal reload (die-on-term is false, as uWSGI 2.0)")
                self.command("R")
                return
            if self.stopping_since is None:
                write_line("SIGTERM received: stopping gracefully (in-flight requests finish; "
                           "send SIGQUIT to stop at once)")
            self.stop(graceful=True)
        elif sig == signal.SIGINT:
            if self.stopping_since is None:
                write_line("SIGINT received: stopping gracefully (press CONTROL-C again or send "
                           "SIGQUIT to stop at once)")
                self.stop(graceful=True)
            else:
                self.stop(graceful=False)
        elif sig == signal.SIGQUIT:
            write_line("SIGQUIT received: stopping at once")
            self.stop(graceful=False)
        elif sig == signal.SIGHUP:
            self.command("c" if self.cfg.chain_reload else "r")
        elif sig == signal.SIGTTIN:
            self.command("+")
        elif sig == signal.SIGTTOU:
            self.command("-")
        elif sig == signal.SIGUSR1:
            self.command("s")
        elif sig == signal.SIGUSR2:
            reports.log_busy(self)

    def command(self, letter: str) -> None:
        """One of uWSGI's master FIFO letters (signals map onto them too)."""
        if self.stopping_since is not None:
            return
        if letter in "rc":
            self.reloader.start_reload(chain=letter == "c", reexec_master=not self.cfg.lazy_apps)
        elif letter == "w":
            self.reloader.start_reload(chain=False, reexec_master=False)
        elif letter in "RW":
            write_line("brutal reload: workers stop at once")
            self._kill_all(signal.SIGQUIT, "")
            for proc in self.procs.values():
                proc.state = RETIRING
            self.reloader.reload = None
            self.reloader.start_reload(chain=False,
                                       reexec_master=letter == "R" and not self.cfg.lazy_apps)
        elif letter == "q":
            write_line("graceful stop requested")
            self.stop(graceful=True)
        elif letter == "Q":
            write_line("quick stop requested")
            self.stop(graceful=False)
        elif letter == "s":
            reports.log_summary(self)
        elif letter == "+":
            if self.target >= self.scoreboard.slots // 2 - 4:
                write_line(f"already at the most workers ({self.target})")
                return
            self.target += 1
            write_line(f"one more worker ({self.target})")
        elif letter == "-":
            if self.target <= 1:
                return
            self.target -= 1
            write_line(f"one worker fewer ({self.target})")
            for proc in list(self.procs.values()):
                if proc.wid > self.target and proc.state != RETIRING:
                    self._retire(proc)
        elif not any(hook.command(self, letter) for hook in self.hooks):
            write_line(f"master command {letter!r} is not supported by runuwsgi; ignored")

    def stop(self, graceful: bool) -> None:
        if self.stopping_since is None:
            self.stopping_since = time.monotonic()
        self._kill_all(signal.SIGTERM if graceful else signal.SIGQUIT, "")

    # -- workers -------------------------------------------------------------------------
    def _read_reports(self) -> None:
        try:
            data = os.read(self._report_r, 4096)
        except BlockingIOError:
            return
        for (value,) in _REPORT.iter_unpack(data[: len(data) // 4 * 4]):
            proc = self.procs.get(abs(value))
            if proc is None:
                continue
            if value > 0:
                proc.ready = True
                self.served_once = True
                self.scoreboard.set_field(proc.slot, "accepting", 1)
                # Its predecessor may stop now: the socket never lacks a server.
                for other in list(self.procs.values()):
                    if other.state == OLD and other.wid == proc.wid:
                        self._retire(other)
            elif proc.state == SERVING:
                proc.state = RETIRING  # leaving by itself: fork its replacement now
                proc.retired_at = time.monotonic()

    def _retire(self, proc: Proc) -> None:
        proc.state = RETIRING
        proc.retired_at = time.monotonic()
        send_signal(proc.pid, signal.SIGTERM)

    def _kill_all(self, sig: int, why: str) -> None:
        for proc in list(self.procs.values()):
            if why:
                write_line(f"worker {proc.wid} (pid: {proc.pid}) {why}")
            send_signal(proc.pid, sig)

    def _spawn_missing(self) -> None:
        if self.no_app or time.monotonic() < self._hold_spawn_until:
            return
        serving = {p.wid for p in self.procs.values() if p.state == SERVING}
        wids = range(1, self.target + 1)
        rel = self.reloader.reload
        if rel is not None and rel["chain"]:
            wids = rel["queue"][:1]  # one at a time
        for wid in wids:
            if wid not in serving and time.monotonic() >= self._hold_spawn_until:
                self._spawn(wid)

    def _spawn(self, wid: int) -> None:
        slot = self.scoreboard.free_slot({p.slot for p in self.procs.values()}, wid)
        self.scoreboard.spawned(slot, wid, 0)  # before the fork: the child writes next
        sys.stdout.flush()
        sys.stderr.flush()
        # A signal landing between fork() and the worker's own handlers would run the
        # master's handler in the child and be lost: block them until the worker is ready.
        signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED)
        chan = None
        try:
            if self.hub is not None:
                chan = self.hub.before_fork()  # the pipe the master sends it signals on
            pid = os.fork()
            if pid == 0:
                self._child(wid, slot, chan)
        except OSError as exc:  # EAGAIN / ENOMEM / EMFILE: try again later rather than die
            if chan is not None:
                os.close(chan[0])
                os.close(chan[1])
            write_line(f"fork() of worker {wid} failed: {exc.strerror}; retrying in 1 second")
            self._hold_spawn_until = time.monotonic() + 1.0
            return
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED)
        self.procs[pid] = Proc(pid, wid, slot)
        self.scoreboard.set_field(slot, "pid", pid)
        if chan is not None:
            self.hub.forked(pid, chan)
        if self.scoreboard.read(slot)["respawn_count"] > 1:
            write_line(f"Respawned uWSGI worker {wid} (new pid: {pid})")
        else:
            write_line(f"spawned uWSGI worker {wid} (pid: {pid}, cores: {self.cfg.threads})")

    def _child(self, wid: int, slot: int, chan: tuple[int, int] | None) -> None:
        code = 1
        try:
            signal.set_wakeup_fd(-1)
            for sig in HANDLED:
                signal.signal(sig, signal.SIG_DFL)
            os.close(self._wake[0])
            os.close(self._wake[1])
            os.close(self._report_r)
            if self.triggers is not None:
                self.triggers.close()  # in a child this only closes the FIFO fds
            if self.stats is not None:
                self.stats.close_in_child()
            _die_with_parent(self.pid)
            for hook in self.hooks:
                hook.child(wid)
            if chan is not None:
                self.hub.in_child(chan, wid, slot)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED)  # now SIG_DFL: safe
            worker = self.make_worker(wid, slot, self._report_w)
            code = EXIT_APP_FAILED if worker is None else worker.run()
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
        code = os.waitstatus_to_exitcode(status)
        if self.reloader.reaped(pid, code):
            return
        proc = self.procs.pop(pid, None)
        if proc is None:
            return
        if self.hub is not None:
            self.hub.gone(pid, proc.slot)
        if self.stopping_since is not None or proc.state in (RETIRING, OLD) or \
                code == EXIT_RECYCLED:
            lived = time.time() - self.scoreboard.read(proc.slot)["last_spawn"]  # across re-execs
            write_line(f"worker {proc.wid} (pid: {pid}) buried after {lived:.0f} seconds")
        if self.stopping_since is not None:
            return
        self.scoreboard.set_field(proc.slot, "accepting", 0)
        if proc.state in (RETIRING, OLD):
            return  # told to go, or already replaced (or being replaced)
        if code == EXIT_APP_FAILED:
            self._app_failed(proc)
            return
        if code == EXIT_RECYCLED:
            return  # it said why in its own log line; the replacement spawns below
        how = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
        write_line(f"DAMN ! worker {proc.wid} (pid: {pid}) died, {how} :( trying respawn ...")
        now = time.monotonic()
        if now - proc.since > 1.0:
            return  # it had been running: replace it at once
        # A crash loop is fresh workers dying: throttle those, not an OOM killer's victims.
        self._respawns = [t for t in self._respawns if now - t < 1.0] + [now]
        if len(self._respawns) > max(self.target, 2):
            write_line("workers are dying too fast !!! waiting 1 second before respawning "
                       "(is the application crashing every worker?)")
            self._hold_spawn_until = now + 1.0

    def _app_failed(self, proc: Proc) -> None:
        if self.reloader.reload is not None:
            write_line(f"reload failed: worker {proc.wid} could not load the application; "
                       f"the old workers keep serving")
            self.reloader.abandon()
            return
        if self.served_once:
            # Serving already: the code on disk broke under a lazy worker. Keep the others
            # serving and retry, rather than stop a live server.
            write_line(f"worker {proc.wid} (pid: {proc.pid}) could not load the application; "
                       f"retrying in 1 second")
            self._hold_spawn_until = time.monotonic() + 1.0
            return
        write_line(f"worker {proc.wid} (pid: {proc.pid}) could not load the application; "
                   f"stopping (need-app)")
        self.exit_code = 1
        self.stop(graceful=False)


def rearm_parent_death(master_pid: int, sig: int = signal.SIGTERM) -> None:
    """The kernel forgets the parent-death signal when a process changes its uid or gid:
    call again after dropping privileges. ``sig``: what stops this process gracefully (a
    master's SIGTERM is a reload when die-on-term is off: SIGINT)."""
    _die_with_parent(master_pid, sig)


def _die_with_parent(master_pid: int, sig: int = signal.SIGTERM) -> None:
    """Linux: the kernel sends SIGTERM (a graceful stop) to the worker if the master dies,
    at once rather than at the worker's next twice-a-second check."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, sig, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != master_pid:  # the master died before the line above
        os._exit(0)
