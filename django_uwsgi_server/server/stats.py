"""The scoreboard: per-worker counters in memory shared by the master and every worker.

One slot per worker *process* (a reload briefly runs two workers with the same id, and
harakiri must know which of them is stuck). Each process writes only its own slot, so there
are no lost updates between processes; a lock serialises the threads of one worker. The
mapping lives in a memfd that survives the master's re-exec on reload, so the counters (and
the old workers' slots) carry over. It feeds the request log, harakiri, recycling, and the
stats server (uWSGI keeps the same numbers in its shared memory).
"""

from __future__ import annotations

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


class Scoreboard:
    def __init__(self, slots: int = MAX_WORKERS, fd: int | None = None) -> None:
        self.slots = slots
        size = _SLOT.size * (slots + 1)
        if fd is None:
            # Made inheritable only right before a reload's re-exec (not by the app's
            # subprocesses): the new master image maps the same memory.
            fd = os.memfd_create("django-uwsgi-server-scoreboard")
            os.ftruncate(fd, size)
        else:
            os.set_inheritable(fd, False)
        self.fd = fd
        self._mm = mmap.mmap(fd, size)
        self._lock = threading.Lock()

    def _offset(self, slot: int) -> int:
        if not 1 <= slot <= self.slots:
            raise IndexError(f"scoreboard slot {slot} out of range 1..{self.slots}")
        return _SLOT.size * slot

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
        if slot > struct.unpack_from("<Q", self._mm, 0)[0]:
            struct.pack_into("<Q", self._mm, 0, slot)

    def set_field(self, slot: int, name: str, value: float) -> None:
        index = FIELDS.index(name)
        fmt = "<d" if name in ("last_spawn", "busy_since") else "<Q"
        struct.pack_into(fmt, self._mm, self._offset(slot) + 8 * index, value)

    def busy(self, slot: int, since: float) -> None:
        """The oldest request in flight in this worker started at ``since`` (0: idle)."""
        struct.pack_into("<d", self._mm, self._offset(slot) + 8 * _BUSY, since)

    def finished(self, slot: int, tx: int, exception: bool) -> int:
        """Count one request of this worker; returns its requests since it was spawned.

        Only the four counters are rewritten: the master writes other fields of the slot.
        """
        off = self._offset(slot)
        with self._lock:
            req, delta, exc, total = _COUNTERS.unpack_from(self._mm, off)
            _COUNTERS.pack_into(self._mm, off, req + 1, delta + 1, exc + exception, total + tx)
        return delta + 1

    def total_requests(self) -> int:
        mm = self._mm
        size = _SLOT.size
        high = struct.unpack_from("<Q", mm, 0)[0]
        return sum(struct.unpack_from("<Q", mm, size * i)[0] for i in range(1, high + 1))
