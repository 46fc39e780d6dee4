"""Locks shared by the master and every worker: ``uwsgi.lock(n)`` and the caches' locks.

A lock is one byte of a memfd locked with a POSIX record lock (``fcntl``), made before the
fork so that every worker locks the same file. Record locks belong to a process, so they
do not exclude the threads of one worker from each other: a per-process ``threading.Lock``
is taken first. Record locks vanish with the process that holds them, so a worker killed
by harakiri never leaves a lock held (uWSGI's pthread robust mutexes behave the same).
"""

from __future__ import annotations

import fcntl
import os
import struct
import threading

# struct flock on Linux: l_type, l_whence, l_start, l_len, l_pid (native alignment).
_FLOCK = struct.Struct("hhqqi4x")


class LockSet:
    """``count`` locks numbered 0..count-1."""

    def __init__(self, count: int, name: str = "locks", fd: int | None = None) -> None:
        """``fd``: lock bytes of an existing file (the same locks as a previous master
        image's, or a cache's own memory)."""
        self.count = count
        if fd is None:
            fd = os.memfd_create(f"django-uwsgi-server-{name}")
            os.ftruncate(fd, max(count, 1))
        self.fd = self._fd = fd
        self._threads = [threading.Lock() for _ in range(count)]
        self._owner = os.getpid()
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        # A lock some thread of the parent held is not held in the child (the record lock
        # is not inherited either).
        if self._owner != os.getpid():
            self._threads = [threading.Lock() for _ in range(self.count)]
            self._owner = os.getpid()

    def check(self, n: int) -> None:
        if not isinstance(n, int) or not 0 <= n < self.count:
            raise ValueError(f"invalid lock number {n!r}: this server has locks 0..{self.count - 1}"
                             f" (raise --locks for more)")

    def acquire(self, n: int) -> None:
        self.check(n)
        local = self._threads[n]
        local.acquire()
        try:
            fcntl.lockf(self._fd, fcntl.LOCK_EX, 1, n)
        except BaseException:
            local.release()
            raise

    def release(self, n: int) -> None:
        self.check(n)
        local = self._threads[n]
        if not local.locked():
            return  # as uWSGI: unlocking a free lock does nothing
        fcntl.lockf(self._fd, fcntl.LOCK_UN, 1, n)
        local.release()

    def holder(self, n: int) -> int:
        """The pid holding lock ``n``, 0 when it is free (uWSGI's stats ``locks``)."""
        self.check(n)
        if self._threads[n].locked():
            return os.getpid()
        probe = _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, n, 1, 0)
        l_type, _, _, _, pid = _FLOCK.unpack(fcntl.fcntl(self._fd, fcntl.F_GETLK, probe))
        return 0 if l_type == fcntl.F_UNLCK else pid

    def locked(self, n: int) -> bool:
        """Held by this process or by another one."""
        self.check(n)
        if self._threads[n].locked():
            return True
        probe = _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, n, 1, 0)
        l_type = _FLOCK.unpack(fcntl.fcntl(self._fd, fcntl.F_GETLK, probe))[0]
        return l_type != fcntl.F_UNLCK
