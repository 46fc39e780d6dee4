"""The scoreboard: per-worker counters in memory shared by the master and every worker.

An anonymous ``MAP_SHARED`` mapping made by the master before it forks. Each worker writes
only its own slot, so there are no lost updates between processes; a lock serialises the
threads of one worker. It feeds the request log's instance-wide request count now, and the
stats server later (uWSGI keeps the same numbers in its shared memory).
"""

from __future__ import annotations

import mmap
import struct
import threading
import time

# requests, exceptions, tx bytes, pid, last_spawn, respawn_count, busy_since
_SLOT = struct.Struct("<QQQQdQd")
MAX_WORKERS = 256


class Scoreboard:
    def __init__(self, slots: int = MAX_WORKERS) -> None:
        self.slots = slots
        self._mm = mmap.mmap(-1, _SLOT.size * (slots + 1))
        self._lock = threading.Lock()

    def _offset(self, worker_id: int) -> int:
        if not 1 <= worker_id <= self.slots:
            raise IndexError(f"worker id {worker_id} out of range 1..{self.slots}")
        return _SLOT.size * worker_id

    def read(self, worker_id: int) -> dict[str, float]:
        fields = _SLOT.unpack_from(self._mm, self._offset(worker_id))
        keys = ("requests", "exceptions", "tx", "pid", "last_spawn", "respawn_count",
                "busy_since")
        return dict(zip(keys, fields, strict=True))

    def spawned(self, worker_id: int, pid: int) -> None:
        """Called by the master when it forks a worker into this slot."""
        off = self._offset(worker_id)
        req, exc, tx, _pid, _spawn, respawns, _busy = _SLOT.unpack_from(self._mm, off)
        _SLOT.pack_into(self._mm, off, req, exc, tx, pid, time.time(), respawns + 1, 0.0)
        # Slot 0 keeps the highest worker id in use, so totals only walk the live slots.
        if worker_id > struct.unpack_from("<Q", self._mm, 0)[0]:
            struct.pack_into("<Q", self._mm, 0, worker_id)

    def finished(self, worker_id: int, tx: int, exception: bool) -> int:
        """Count one request of this worker; returns the worker's request count."""
        off = self._offset(worker_id)
        with self._lock:
            req, exc, total_tx, pid, spawn, respawns, busy = _SLOT.unpack_from(self._mm, off)
            req += 1
            _SLOT.pack_into(self._mm, off, req, exc + exception, total_tx + tx, pid, spawn,
                            respawns, busy)
        return req

    def total_requests(self) -> int:
        mm = self._mm
        size = _SLOT.size
        high = struct.unpack_from("<Q", mm, 0)[0]
        return sum(struct.unpack_from("<Q", mm, size * i)[0] for i in range(1, high + 1))
