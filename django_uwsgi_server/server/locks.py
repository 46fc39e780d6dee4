"""Locks shared by the master and every worker: ``uwsgi.lock(n)`` and the caches' locks.

A lock is one byte of a memfd locked with an open file description lock (``F_OFD_SETLKW``),
the memfd made before the fork so that every worker locks the same file. Each process opens
the file afresh (``/proc/self/fd``) right after the fork, so that each holds its locks
through a description of its own, which the kernel makes exclusive between processes.
They do not exclude the threads of one worker from each other: a per-process
``threading.Lock`` is taken first. The locks vanish with the process that holds them (its
description closes), so a worker killed by harakiri never leaves a lock held (uWSGI's
pthread robust mutexes behave the same).

Not classic POSIX record locks: those belong to the process, and the kernel's deadlock
check, which knows nothing of threads, answers EDEADLK when a thread asks for a lock held
by a process that waits for a lock another thread of the asker holds (a worker's thread
in ``uwsgi.lock()`` while its sibling is inside a cache call) - a wait, not a deadlock.
Closing any descriptor of the file would also drop all of a process's record locks.
"""

from __future__ import annotations

import fcntl
import os
import struct
import threading

# struct flock on Linux: l_type, l_whence, l_start, l_len, l_pid (native alignment).
_FLOCK = struct.Struct("hhqqi4x")
_PID = struct.Struct("<q")


class LockSet:
    """``count`` locks numbered 0..count-1."""

    def __init__(self, count: int, name: str = "locks", fd: int | None = None,
                 holders: bool = False) -> None:
        """``fd``: lock bytes of an existing file (the same locks as a previous master
        image's, or a cache's own memory). ``holders``: keep each holder's pid after the
        lock bytes (for the stats: an OFD lock has no owner pid), only in a file of our own."""
        self.count = count
        self._holders = holders
        if fd is None:
            fd = os.memfd_create(f"django-uwsgi-server-{name}")
            os.ftruncate(fd, max(count, 1))
        self.fd = fd
        self._fd = _reopen(fd)
        self._threads = [threading.Lock() for _ in range(count)]
        self._owner = os.getpid()
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        # A lock some thread of the parent held is not held in the child: the child gets
        # its own description (closing the inherited one leaves the parent's locks alone).
        if self._owner != os.getpid():
            self._threads = [threading.Lock() for _ in range(self.count)]
            self._owner = os.getpid()
            inherited, self._fd = self._fd, _reopen(self.fd)  # (on failure: keep it)
            os.close(inherited)

    def _lock(self, kind: int, n: int) -> None:
        fcntl.fcntl(self._fd, fcntl.F_OFD_SETLKW, _FLOCK.pack(kind, os.SEEK_SET, n, 1, 0))

    def check(self, n: int) -> None:
        if not isinstance(n, int) or not 0 <= n < self.count:
            raise ValueError(f"invalid lock number {n!r}: this server has locks 0..{self.count - 1}"
                             f" (raise --locks for more)")

    def acquire(self, n: int) -> None:
        self.check(n)
        local = self._threads[n]
        local.acquire()
        try:
            self._lock(fcntl.F_WRLCK, n)
        except BaseException:
            local.release()
            raise
        if self._holders:
            os.pwrite(self._fd, _PID.pack(os.getpid()), self.count + _PID.size * n)

    def release(self, n: int) -> None:
        self.check(n)
        local = self._threads[n]
        if not local.locked():
            return  # as uWSGI: unlocking a free lock does nothing
        if self._holders:
            os.pwrite(self._fd, _PID.pack(0), self.count + _PID.size * n)
        self._lock(fcntl.F_UNLCK, n)
        local.release()

    def holder(self, n: int) -> int:
        """The pid holding lock ``n``, 0 when it is free (uWSGI's stats ``locks``); -1 when
        it is held and this set keeps no holders. The kernel says whether it is held (a
        holder that died released it, whatever pid is left in the file)."""
        if not self.locked(n):
            return 0
        if self._threads[n].locked():
            return os.getpid()
        if not self._holders:
            return -1
        raw = os.pread(self._fd, _PID.size, self.count + _PID.size * n)
        pid = _PID.unpack(raw)[0] if len(raw) == _PID.size else 0
        return pid or -1  # (taken a moment ago: its holder has not written its pid yet)

    def locked(self, n: int) -> bool:
        """Held by this process or by another one."""
        self.check(n)
        if self._threads[n].locked():
            return True
        probe = _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, n, 1, 0)
        l_type = _FLOCK.unpack(fcntl.fcntl(self._fd, fcntl.F_OFD_GETLK, probe))[0]
        return l_type != fcntl.F_UNLCK


def _reopen(fd: int) -> int:
    """A new open file description of ``fd``'s file, for this process's locks only."""
    return os.open(f"/proc/self/fd/{fd}", os.O_RDWR | os.O_CLOEXEC)
