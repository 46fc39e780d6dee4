"""uWSGI signals: timers, cron, file monitors and ``uwsgi.signal()``, driven by the master.

A uWSGI signal is a number 0..255 with a target ("worker", "workers", "workerN",
"active-workers") and a handler that runs inside a worker. The master owns the timers, the
cron table and the file monitors and routes every raised signal to its target; the worker
runs the handler in its main loop, between requests, never in a request's thread.

Plumbing: workers send small framed messages (registrations, raised signals) to the master
on one shared pipe (each write is below PIPE_BUF, so writes of different workers never
interleave); the master writes a signal's number (one byte) to the target worker's own pipe,
which the worker's poller watches. Handlers are Python callables and stay in the process
that registered them: one registered in the master (a preloaded app) is inherited by every
worker at fork; one registered in a worker runs only in the workers that registered it.

``set_user_harakiri`` deadlines live in a small shared array (one per scoreboard slot) that
the master checks like ``harakiri``.
"""

from __future__ import annotations

import json
import mmap
import os
import signal
import struct
import time
import traceback
from typing import Any

from .logging import write_line

_FRAME = struct.Struct("<H")
_DEADLINE = struct.Struct("<d")
_TARGETS = ("", "worker", "worker0", "workers", "active-workers")
FILEMON_INTERVAL = 1.0


class UnsupportedError(AttributeError, NotImplementedError):
    """A uWSGI feature runuwsgi does not have (an AttributeError, so ``hasattr`` checks on
    the uwsgi module say False)."""


def check_target(target: str) -> str:
    if target in _TARGETS or (target.startswith("worker") and target[6:].isdigit()):
        return target
    if target.startswith(("mule", "spooler", "farm")):
        raise UnsupportedError(f"signal target {target!r} is not supported by runuwsgi: it has "
                               f"no mules, spoolers or farms (use 'worker', 'workers' or "
                               f"'workerN')")
    raise ValueError(f"unknown signal target {target!r} (expected 'worker', 'workers', "
                     f"'workerN' or 'active-workers')")


def check_signum(num: Any) -> int:
    if not isinstance(num, int) or not 0 <= num <= 255:
        raise ValueError(f"invalid signal number {num!r}: uWSGI signals are 0..255")
    return num


def cron_matches(fields: tuple[int, int, int, int, int], tm: time.struct_time) -> bool:
    """uWSGI's cron: -1 is any, -N every N (value % N == 0); day of month and day of week
    are ORed when both are given, as in crontab. Month 1..12, weekday 0..6 (0 = Sunday)."""
    minute, hour, day, month, weekday = fields
    now = (tm.tm_min, tm.tm_hour, tm.tm_mday, tm.tm_mon, (tm.tm_wday + 1) % 7)

    def ok(want: int, have: int) -> bool:
        return have % -want == 0 if want < 0 else have == want

    if not (ok(minute, now[0]) and ok(hour, now[1]) and ok(month, now[3])):
        return False
    if day >= 0 and weekday >= 0:
        return now[2] == day or now[4] == weekday
    return ok(day, now[2]) and ok(weekday, now[4])


def _fs_signature(path: str) -> tuple[Any, ...] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    sig: tuple[Any, ...] = (st.st_ino, st.st_mtime_ns, st.st_size, st.st_mode)
    if os.path.isdir(path):  # like inotify on a directory: its entries changing counts
        try:
            with os.scandir(path) as entries:
                sig += tuple(sorted((e.name, e.stat(follow_symlinks=False).st_mtime_ns,
                                     e.stat(follow_symlinks=False).st_size) for e in entries))
        except OSError:
            pass
    return sig


class Hub:
    """The master's side. Created before the app is imported (so that a preloaded app's
    registrations land here), attached to the Master when it starts."""

    def __init__(self, harakiri_grace: float = 0.0) -> None:
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        self._buf = b""
        self.master: Any = None
        self.harakiri_grace = harakiri_grace
        self.registered: dict[int, tuple[str, set[int] | None]] = {}  # num -> target, pids
        self.timers: list[list[Any]] = []  # [num, seconds, due, iterations left (0: forever)]
        self.crons: list[tuple[int, tuple[int, int, int, int, int]]] = []
        self.monitors: list[list[Any]] = []  # [num, path, signature]
        self._next_minute = (int(time.time()) // 60 + 1) * 60
        self._next_filemon = 0.0
        self._pending: list[int] = []  # raised before any worker was there
        self.chans: dict[int, int] = {}  # worker pid -> write end of its pipe
        self._rr = 0
        self._board: mmap.mmap | None = None
        self._hk: dict[int, tuple[float, float]] = {}  # pid -> (deadline fired, when)
        # Called in a new worker with (its signal pipe's read end, worker id, slot).
        self.child_hook: Any = None
        # Returns what a reload's new master image takes over (JSON-able, fds inheritable).
        self.carry_over: Any = None

    # -- the Master's hooks -------------------------------------------------------------
    def attach(self, master: Any) -> None:
        self.master = master
        if self._board is None:
            self._board = mmap.mmap(-1, _DEADLINE.size * (master.scoreboard.slots + 1))

    def fds(self) -> list[int]:
        return [self._r]

    def timeout(self, now: float, tick: float) -> float:
        due = [t[2] for t in self.timers]
        if self.crons:
            due.append(now + self._next_minute - time.time())
        if self.monitors:
            due.append(self._next_filemon)
        return max(0.0, min([tick, *(d - now for d in due)]))

    def before_fork(self) -> tuple[int, int]:
        return os.pipe()

    def forked(self, pid: int, chan: tuple[int, int]) -> None:
        os.close(chan[0])
        os.set_blocking(chan[1], False)
        self.chans[pid] = chan[1]

    def in_child(self, chan: tuple[int, int], wid: int, slot: int) -> None:
        """In the new worker: keep only its own read end and the shared write end."""
        os.close(chan[1])
        os.close(self._r)
        for fd in self.chans.values():
            os.close(fd)
        self.chans.clear()
        self.timers, self.crons, self.monitors = [], [], []
        if self.child_hook is not None:
            self.child_hook(chan[0], wid, slot)

    def gone(self, pid: int, slot: int) -> None:
        self.set_deadline(slot, 0.0)  # a killed worker's deadline is not its successor's
        fd = self.chans.pop(pid, None)
        if fd is not None:
            os.close(fd)
        self._hk.pop(pid, None)
        for _target, pids in self.registered.values():
            if pids is not None:
                pids.discard(pid)

    def tick(self, now: float) -> None:
        self._read()
        if self._pending and any(p.ready for p in self.master.procs.values()):
            pending, self._pending = self._pending, []
            for num in pending:
                self.route(num)
        for timer in self.timers:
            if timer[2] <= now:
                # Missed periods coalesce into this one signal (a timerfd's expirations
                # do too): no burst after a stall, and the timer keeps its phase.
                timer[2] += timer[1] * (int((now - timer[2]) // timer[1]) + 1)
                self.route(timer[0])
                if timer[3]:
                    timer[3] -= 1
                    if timer[3] == 0:
                        timer[2] = float("inf")
        if self.crons and time.time() >= self._next_minute:
            tm = time.localtime(self._next_minute)
            self._next_minute = (int(time.time()) // 60 + 1) * 60
            for num, fields in self.crons:
                if cron_matches(fields, tm):
                    self.route(num)
        if self.monitors and now >= self._next_filemon:
            self._next_filemon = now + FILEMON_INTERVAL
            for monitor in self.monitors:
                sig = _fs_signature(monitor[1])
                if sig != monitor[2]:
                    monitor[2] = sig
                    self.route(monitor[0])
        if self._board is not None:
            self._check_user_harakiri(now)

    # -- requests (from the master's own process, or read from the pipe) ---------------------
    def handle(self, msg: list[Any]) -> None:
        kind = msg[0]
        if kind == "sig":
            self.raise_signal(msg[1])
        elif kind == "reg":
            self.register(msg[1], msg[2], msg[3])
        elif kind == "timer":
            self.add_timer(msg[1], msg[2], msg[3])
        elif kind == "cron":
            self.add_cron(msg[1], tuple(msg[2:7]))
        elif kind == "filemon":
            self.add_file_monitor(msg[1], msg[2])

    def register(self, num: int, target: str, pid: int | None) -> None:
        """``pid`` None: registered in the master, so every worker has the handler."""
        old = self.registered.get(num)
        if pid is None or old is None or old[1] is None:
            self.registered[num] = (target, None if pid is None else {pid})
        else:
            old[1].add(pid)

    def add_timer(self, num: int, seconds: float, iterations: int = 0) -> None:
        # With lazy-apps every worker registers the same timer: one is enough.
        if any(t[0] == num and t[1] == seconds for t in self.timers):
            return
        self.timers.append([num, seconds, time.monotonic() + seconds, iterations])

    def add_cron(self, num: int, fields: tuple[int, int, int, int, int]) -> None:
        if (num, fields) not in self.crons:
            self.crons.append((num, fields))

    def add_file_monitor(self, num: int, path: str) -> None:
        if not any(m[0] == num and m[1] == path for m in self.monitors):
            self.monitors.append([num, path, _fs_signature(path)])

    def raise_signal(self, num: int) -> None:
        if self.master is None or not any(p.ready for p in self.master.procs.values()):
            self._pending.append(num)
        else:
            self.route(num)

    def route(self, num: int) -> None:
        entry = self.registered.get(num)
        if entry is None:
            write_line(f"uwsgi signal {num} raised but no handler is registered for it")
            return
        target, pids = entry
        from .master import SERVING

        procs = sorted((p for p in self.master.procs.values()
                        if p.state == SERVING and p.pid in self.chans
                        and (pids is None or p.pid in pids)), key=lambda p: p.wid)
        if target in ("workers", "active-workers"):
            chosen = [p for p in procs if p.ready or target == "workers"]
        elif target.startswith("worker") and target[6:].isdigit() and target != "worker0":
            chosen = [p for p in procs if p.wid == int(target[6:])]
        else:  # one worker: an idle one if there is one, in turn
            chosen = self._one(procs)
        if not chosen:
            write_line(f"uwsgi signal {num}: no worker to deliver it to (target "
                       f"{target or 'worker'!r})")
        for proc in chosen:
            try:
                os.write(self.chans[proc.pid], bytes((num,)))
            except BlockingIOError:
                write_line(f"uwsgi signal {num}: worker {proc.wid} (pid: {proc.pid}) has too "
                           f"many signals waiting; dropped")
            except OSError:
                pass

    def _one(self, procs: list[Any]) -> list[Any]:
        if not procs:
            return []
        self._rr += 1
        board = self.master.scoreboard
        ordered = procs[self._rr % len(procs):] + procs[: self._rr % len(procs)]
        for proc in ordered:
            if proc.ready and not board.read(proc.slot)["busy_since"]:
                return [proc]
        return ordered[:1]

    def _read(self) -> None:
        try:
            while True:
                data = os.read(self._r, 65536)
                if not data:
                    break
                self._buf += data
        except BlockingIOError:
            pass
        buf = self._buf
        while len(buf) >= 2:
            (size,) = _FRAME.unpack_from(buf)
            if len(buf) < 2 + size:
                break
            try:
                self.handle(json.loads(buf[2: 2 + size]))
            except Exception:
                write_line("uwsgi API: bad message from a worker:\n" + traceback.format_exc())
            buf = buf[2 + size:]
        self._buf = buf

    # -- set_user_harakiri ----------------------------------------------------------------
    def set_deadline(self, slot: int, deadline: float) -> None:
        if self._board is not None:
            _DEADLINE.pack_into(self._board, _DEADLINE.size * slot, deadline)

    def _check_user_harakiri(self, now: float) -> None:
        wall = time.time()
        for proc in list(self.master.procs.values()):
            (deadline,) = _DEADLINE.unpack_from(self._board, _DEADLINE.size * proc.slot)
            fired = self._hk.get(proc.pid)
            if not deadline or wall < deadline:
                continue
            if fired is None or fired[0] != deadline:
                self._hk[proc.pid] = (deadline, now)
                write_line(f"*** HARAKIRI ON WORKER {proc.wid} (pid: {proc.pid}) *** its "
                           f"set_user_harakiri() deadline passed {wall - deadline:.1f} s ago")
                info = self.master.scoreboard.read(proc.slot)
                self.master.scoreboard.set_field(proc.slot, "harakiri_count",
                                                 info["harakiri_count"] + 1)
                _kill(proc.pid, signal.SIGUSR2)
            elif fired[1] and now - fired[1] > self.harakiri_grace:
                write_line(f"HARAKIRI: worker {proc.wid} (pid: {proc.pid}) did not end within "
                           f"harakiri-graceful-timeout; SIGKILL")
                _kill(proc.pid, signal.SIGKILL)
                self._hk[proc.pid] = (deadline, 0.0)

    def worker_side(self) -> tuple[int, mmap.mmap | None]:
        return self._w, self._board


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


class Inbox:
    """The worker's side: the signals the master sends it, run by the worker's main loop."""

    def __init__(self, fd: int, handlers: dict[int, tuple[str, Any]], wid: int) -> None:
        self.fd = fd
        os.set_blocking(fd, False)
        self.handlers = handlers
        self.wid = wid

    def run(self) -> bool:
        """Run the handlers of the signals that arrived; False once the master that forked
        this worker is gone (re-executed by a reload): no more signals will come."""
        try:
            data = os.read(self.fd, 256)
        except BlockingIOError:
            return True
        if not data:
            return False
        for num in data:
            entry = self.handlers.get(num)
            if entry is None:
                write_line(f"worker {self.wid}: uwsgi signal {num} has no handler in this "
                           f"worker")
                continue
            try:
                entry[1](num)
            except Exception:
                write_line(f"worker {self.wid}: uwsgi signal {num} handler failed:\n"
                           + traceback.format_exc().rstrip())
        return True


def send(fd: int, msg: list[Any]) -> None:
    """A worker's message to the master (one atomic write)."""
    data = json.dumps(msg).encode()
    if len(data) + 2 > 4096:
        raise ValueError("uwsgi API message too long (a file monitor path over 4 KB?)")
    os.write(fd, _FRAME.pack(len(data)) + data)
