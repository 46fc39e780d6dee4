"""Graceful reloads: every worker is replaced by one running the new code, and the sockets
are never left unserved. The master owns one :class:`Reloader`; it works on the master's
process table (procs.py), and the master's loop drives it.

A reload marks the serving workers OLD; they keep serving while new workers with the same
ids are forked, and an OLD worker is told to stop (RETIRING) only when its replacement
reports that it accepts. A chain reload replaces one worker at a time. Without
``lazy-apps`` the new workers must fork from freshly imported code, so the master first
re-executes itself (same pid, same sockets, the old workers still its children; reload.py
carries the state across the exec), and before that a probe (the same command line in a
subprocess that only loads the application) checks that the new code loads: a settings or
models error must cost a log line, not the server.

Reloads asked for while one runs are queued and run in turn. A reload whose new workers
cannot load the application, or do not accept within the mercy, is abandoned: the OLD
workers serve on.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

from . import reload as reexec
from .logging import write_line
from .procs import HANDLED, OLD, SERVING, send_signal


class Reloader:
    """The reload in progress (or the probe before it) and those queued behind it."""

    def __init__(self, master: Any, inherited_chain: bool | None) -> None:
        self.master = master
        self.reload: dict[str, Any] | None = None  # the reload in progress
        self.queued: list[bool] = []  # reloads asked for meanwhile (chain?)
        self.probe: tuple[int, bool] | None = None  # (pid, chain) of the new-code check
        self._probe_since = 0.0
        # A re-exec'd image continues the reload its previous image started (chain?).
        self._inherited_chain = inherited_chain

    @property
    def busy(self) -> bool:
        """A reload runs, or its check of the new code does."""
        return self.reload is not None or self.probe is not None

    def resume(self) -> bool:
        """In a re-exec'd image: spawn the new generation; False on a fresh start."""
        if self._inherited_chain is None:
            return False
        self._continue_reload(self._inherited_chain)
        return True

    def start_reload(self, chain: bool, reexec_master: bool) -> None:
        master = self.master
        if self.reload is not None:
            write_line("a reload is already running: this one is queued")
            self.queued.append(chain)
            return
        for hook in master.hooks:
            hook.reload_starts(master)
        kind = "chain reload" if chain else "graceful reload"
        if reexec_master:
            if self.probe is not None:
                write_line("a reload is already being prepared: this one is queued")
                self.queued.append(chain)
                return
            # Check that the new code starts before replacing this image: a settings or
            # models error must cost a log line, not the server.
            write_line(f"{kind} (master pid: {master.pid}): checking that the new code loads "
                       f"(the workers keep serving)")
            try:
                self.probe = (reexec.probe(), chain)
                self._probe_since = time.monotonic()
            except Exception as exc:
                write_line(f"reload failed: could not start the check ({exc})")
            return
        write_line(f"{kind} of {master.target} workers starting (master pid: {master.pid})")
        for proc in master.procs.values():
            if proc.state == SERVING:
                proc.state = OLD
        self._continue_reload(chain)

    def reaped(self, pid: int, code: int) -> bool:
        """The master reaped ``pid``: True if it was the probe (and its verdict is acted on)."""
        if self.probe is None or pid != self.probe[0]:
            return False
        self._probed(code == 0)
        return True

    def _probed(self, ok: bool) -> None:
        assert self.probe is not None
        chain = self.probe[1]
        self.probe = None
        if not ok:
            write_line("reload failed: the new code does not start (see above); the workers "
                       "keep serving the old code — fix it and reload again")
            self._next_queued()
            return
        write_line(f"{'chain reload' if chain else 'graceful reload'}: re-executing the master "
                   f"with the new code (the workers keep serving meanwhile)")
        self._reexec(chain)

    def _next_queued(self) -> None:
        if self.queued and self.reload is None and self.probe is None:
            chain = self.queued.pop(0)
            self.start_reload(chain, reexec_master=not self.master.cfg.lazy_apps)

    def _continue_reload(self, chain: bool) -> None:
        """Workers of the previous generation are OLD; spawn the new ones."""
        master = self.master
        for proc in list(master.procs.values()):
            if proc.state == OLD and proc.wid > master.target:
                master._retire(proc)  # fewer workers now: nobody will replace these
        if master.no_app:
            write_line("reload failed: the new code does not load (see the traceback above); "
                       "the old workers keep serving — fix it and reload again")
            for proc in master.procs.values():
                if proc.state == OLD:
                    proc.state = SERVING
            return
        self.reload = {"chain": chain, "start": time.monotonic(),
                       "queue": list(range(1, master.target + 1))}
        if chain:
            write_line("chain reload starting...")
        master._spawn_missing()

    def check(self, now: float) -> None:
        """Once per master loop turn: the probe's deadline, the chain's next victim, the end
        of the reload (or its abandon), the next queued one."""
        master = self.master
        if self.probe is not None and now - self._probe_since > master.stop_mercy:
            write_line(f"reload failed: the check of the new code did not finish within "
                       f"{master.stop_mercy:g} s; killed it")
            send_signal(self.probe[0], signal.SIGKILL)  # reaped as a failed check
            self._probe_since = now + 3600
        rel = self.reload
        if rel is None:
            self._next_queued()
            return
        procs = master.procs
        if now - rel["start"] > master.stop_mercy and any(
                p.state == SERVING and not p.ready for p in procs.values()):
            write_line(f"reload abandoned: new workers did not start accepting within "
                       f"{master.stop_mercy:g} s; the old workers keep serving")
            self.abandon()
            return
        if rel["chain"]:
            queue = rel["queue"]
            while queue and any(p.wid == queue[0] and p.state == SERVING and p.ready
                                for p in procs.values()):
                queue.pop(0)
                if queue:
                    write_line(f"chain next victim is worker {queue[0]}")
        if any(p.state == OLD for p in procs.values()) or \
                any(p.state == SERVING and not p.ready for p in procs.values()) or \
                (rel["chain"] and rel["queue"]):
            return
        write_line(f"{'chain reloading' if rel['chain'] else 'reload'} complete: "
                   f"{master.target} workers in {time.monotonic() - rel['start']:.2f} s")
        self.reload = None
        self._next_queued()

    def abandon(self) -> None:
        """The new generation failed: stop its workers, the OLD ones serve again."""
        master = self.master
        for other in list(master.procs.values()):
            if other.state == SERVING and not other.ready:
                master._retire(other)
            elif other.state == OLD:
                other.state = SERVING
        self.reload = None
        master._hold_spawn_until = time.monotonic() + 1.0

    def _reexec(self, chain: bool) -> None:
        master = self.master
        now = time.monotonic()
        procs = [[p.pid, p.wid, p.slot, p.state, now - p.retired_at if p.retired_at else 0]
                 for p in master.procs.values()]
        listeners = []
        for listener in master.listeners:
            fd = listener.sock.fileno()
            os.set_inheritable(fd, True)
            listeners.append([fd, listener.protocol, listener.option, str(listener.address)])
        state = {"procs": procs, "scoreboard_fd": master.scoreboard.fd,
                 "slots": master.scoreboard.slots, "listeners": listeners, "chain": chain,
                 "target": master.target}
        if master.stats is not None:
            state["stats"] = master.stats.inheritable()
        if master.hub is not None and master.hub.carry_over is not None:
            state["uwsgi"] = master.hub.carry_over()  # locks and caches stay shared
        os.set_inheritable(master.scoreboard.fd, True)
        # Signals arriving while the new image starts wait in the (inherited) mask; those
        # already recorded here are raised again so that they wait there too.
        signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED)
        for sig in master._take_signals():
            if sig != signal.SIGCHLD:
                os.kill(os.getpid(), sig)
        if master.triggers is not None:
            master.triggers.close()
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            reexec.execute(state)
        except Exception as exc:
            for listener in master.listeners:
                os.set_inheritable(listener.sock.fileno(), False)
            os.set_inheritable(master.scoreboard.fd, False)
            if master.stats is not None:
                master.stats.not_inheritable()
            signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED)
            write_line(f"re-exec failed ({exc}); reloading the workers only")
            for proc in master.procs.values():
                if proc.state == SERVING:
                    proc.state = OLD
            self._continue_reload(chain)
