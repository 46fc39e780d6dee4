"""The scoreboard: per-worker counters in memory shared by the master and every worker.

One slot per worker *process* (a reload briefly runs two workers with the same id, and
harakiri must know which of them is stuck). Each process writes only its own slot, so there
are no lost updates between processes; a lock serialises the threads of one worker. The
mapping lives in a memfd that survives the master's re-exec on reload, so the counters (and
the old workers' slots) carry over. It feeds the request log, harakiri, recycling, and the
stats server (uWSGI keeps the same numbers in its shared memory).

A slot is the header (FIELDS), the request-time totals (running_time and uWSGI's avg_rt,
both in microseconds), a request-duration histogram (Prometheus buckets, exact counts) and
per-core counters (requests, start of the request in flight) for the first CORES threads
(higher threads count as the last core).
"""

from __future__ import annotations

import bisect
import mmap
import os
import struct
import threading
import time

FIELDS = ("requests", "delta_requests", "exceptions", "tx", "pid", "wid", "last_spawn",
          "respawn_count", "busy_since", "harakiri_count", "accepting")
_SLOT = struct.Struct("<QQQQQQdQdQQ")
_BUSY = FIELDS.index("busy_since")
_COUNTERS = struct.Struct("<QQQQ")  # requests, delta_requests, exceptions, tx
MAX_WORKERS = 256
# Seconds; Prometheus' default buckets (the last, +Inf, is implicit).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CORES = 64
_RT = struct.Struct("<QQ")  # running_time, avg_rt (µs)
_Q = struct.Struct("<Q")
_D = struct.Struct("<d")
_RT_OFF = _SLOT.size
_HIST_OFF = _RT_OFF + _RT.size
_CORE = struct.Struct("<Qd")  # requests, in_request since (epoch s; 0: idle)
_CORE_OFF = _HIST_OFF + 8 * (len(BUCKETS) + 1)
SLOT_SIZE = _CORE_OFF + _CORE.size * CORES


class Scoreboard:
    def __init__(self, slots: int = MAX_WORKERS, fd: int | None = None) -> None:
        self.slots = slots
        size = SLOT_SIZE * (slots + 1)
        if fd is None:
            # Made inheritable only right before a reload's re-exec (not by the app's
            # subprocesses): the new master image maps the same memory.
            fd = os.memfd_create("django-uwsgi-server-scoreboard")
            os.ftruncate(fd, size)
        else:
            os.set_inheritable(fd, False)
        self.fd = fd
        self._mm = mmap.mmap(fd, size)
        # Word views for the per-request updates: an index is ~5x cheaper than struct.
        self._q = memoryview(self._mm).cast("Q")
        self._d = memoryview(self._mm).cast("d")
        self._lock = threading.Lock()

    def _offset(self, slot: int) -> int:
        if not 1 <= slot <= self.slots:
            raise IndexError(f"scoreboard slot {slot} out of range 1..{self.slots}")
        return SLOT_SIZE * slot

    def read(self, slot: int) -> dict[str, float]:
        return dict(zip(FIELDS, _SLOT.unpack_from(self._mm, self._offset(slot)), strict=True))

    def free_slot(self, used: set[int], wid: int = 0) -> int:
        """A slot no live process uses, preferring the one that last held ``wid`` (so a
        worker id keeps its cumulative counters across respawns)."""
        free = [slot for slot in range(1, self.slots + 1) if slot not in used]
        if not free:
            raise IndexError("no free scoreboard slot")
        wid_field = FIELDS.index("wid")
        for slot in free:
            if struct.unpack_from("<Q", self._mm, self._offset(slot) + 8 * wid_field)[0] == wid:
                return slot
        for slot in free:  # never used yet
            if struct.unpack_from("<Q", self._mm, self._offset(slot) + 8 * wid_field)[0] == 0:
                return slot
        return free[0]

    def spawned(self, slot: int, wid: int, pid: int) -> None:
        """The master forked ``pid`` as worker ``wid`` into ``slot``. Cumulative counters
        (requests, exceptions, tx, respawns, harakiri) carry over, as in uWSGI."""
        off = self._offset(slot)
        with self._lock:
            v = list(_SLOT.unpack_from(self._mm, off))
            v[1] = 0  # delta_requests
            v[4], v[5], v[6] = pid, wid, time.time()
            v[7] += 1
            v[8] = 0.0
            v[10] = 0
            _SLOT.pack_into(self._mm, off, *v)
            for core in range(CORES):  # a killed predecessor's requests are over
                _D.pack_into(self._mm, off + _CORE_OFF + _CORE.size * core + 8, 0.0)
        if slot > struct.unpack_from("<Q", self._mm, 0)[0]:
            struct.pack_into("<Q", self._mm, 0, slot)

    def set_field(self, slot: int, name: str, value: float) -> None:
        index = FIELDS.index(name)
        fmt = "<d" if name in ("last_spawn", "busy_since") else "<Q"
        struct.pack_into(fmt, self._mm, self._offset(slot) + 8 * index, value)

    def busy(self, slot: int, since: float) -> None:
        """The oldest request in flight in this worker started at ``since`` (0: idle)."""
        struct.pack_into("<d", self._mm, self._offset(slot) + 8 * _BUSY, since)

    def core_busy(self, slot: int, core: int, since: float) -> None:
        """The request in flight on thread ``core`` started at ``since`` (0: none)."""
        self._d[(self._offset(slot) + _CORE_OFF + _CORE.size * min(core, CORES - 1)) // 8
                + 1] = since

    def finished(self, slot: int, tx: int, exception: bool, duration: float = 0.0,
                 core: int = 0) -> int:
        """Count one request of this worker; returns its requests since it was spawned.

        Only this process's counters are rewritten: the master writes other fields.
        """
        q = self._q
        base = self._offset(slot) // 8
        us = int(duration * 1_000_000)
        rt = base + _RT_OFF // 8
        with self._lock:
            q[base] += 1  # requests, delta_requests, exceptions, tx
            delta = q[base + 1] = q[base + 1] + 1
            q[base + 2] += exception
            q[base + 3] += tx
            q[rt] += us
            # uWSGI's avg_rt: the mean of the previous value and this request's time.
            q[rt + 1] = (q[rt + 1] + us) // 2 if q[rt + 1] else us
            q[base + _HIST_OFF // 8 + bisect.bisect_left(BUCKETS, duration)] += 1
            q[base + (_CORE_OFF + _CORE.size * min(core, CORES - 1)) // 8] += 1
        return delta

    def timing(self, slot: int) -> tuple[int, int]:
        """(running_time, avg_rt) of a slot, in microseconds."""
        return _RT.unpack_from(self._mm, self._offset(slot) + _RT_OFF)

    def histogram(self, slot: int) -> list[int]:
        """Requests per duration bucket (BUCKETS, then +Inf), not cumulative."""
        off = self._offset(slot) + _HIST_OFF
        return list(struct.unpack_from(f"<{len(BUCKETS) + 1}Q", self._mm, off))

    def cores(self, slot: int, count: int) -> list[tuple[int, float]]:
        """(requests, in_request since) of the first ``count`` cores of a slot."""
        off = self._offset(slot) + _CORE_OFF
        return [_CORE.unpack_from(self._mm, off + _CORE.size * core)
                for core in range(min(count, CORES))]

    def high_slot(self) -> int:
        """The highest slot ever used."""
        return _Q.unpack_from(self._mm, 0)[0]

    def total_requests(self) -> int:
        mm = self._mm
        size = SLOT_SIZE
        high = struct.unpack_from("<Q", mm, 0)[0]
        return sum(struct.unpack_from("<Q", mm, size * i)[0] for i in range(1, high + 1))
