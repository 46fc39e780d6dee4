"""The pieces behind the uwsgi module, across real forked processes: locks, the shared
cache, --cache2 parsing, cron matching."""

import os
import threading
import time

import pytest

from django_uwsgi_server.conf.registry import ConfigError
from django_uwsgi_server.server.cache import SharedCache, parse_cache2
from django_uwsgi_server.server.locks import LockSet
from django_uwsgi_server.server.signals import cron_matches


def _fork(body):
    """Run body() in a child process; returns its pid (reap with _wait)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            body()
            code = 0
        finally:
            os._exit(code)
    return pid


def _wait(pid, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    raise AssertionError(f"child {pid} did not finish within {timeout}s")


def test_lock_excludes_other_processes_and_threads(tmp_path):
    locks = LockSet(2)
    log = tmp_path / "log"

    def critical(tag):
        for _ in range(5):
            locks.acquire(1)
            try:
                with open(log, "a") as f:
                    f.write(f"in {tag}\n")
                time.sleep(0.005)
                with open(log, "a") as f:
                    f.write(f"out {tag}\n")
            finally:
                locks.release(1)

    def process_body():
        threads = [threading.Thread(target=critical, args=(f"{os.getpid()}-{i}",))
                   for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    pids = [_fork(process_body) for _ in range(3)]
    assert [_wait(pid) for pid in pids] == [0, 0, 0]
    lines = log.read_text().splitlines()
    assert len(lines) == 3 * 3 * 5 * 2
    for entry, leave in zip(lines[::2], lines[1::2], strict=True):
        assert entry.split()[0] == "in" and leave == "out " + entry.split()[1], lines


def test_is_locked_sees_other_processes_and_a_dead_holder_releases():
    locks = LockSet(1)
    r, w = os.pipe()

    def holder():
        locks.acquire(0)
        os.write(w, b"x")
        time.sleep(30)

    pid = _fork(holder)
    try:
        assert os.read(r, 1) == b"x"
        assert locks.locked(0)
    finally:
        os.kill(pid, 9)
        _wait(pid)
        os.close(r)
        os.close(w)
    assert not locks.locked(0)  # the kernel dropped the dead holder's record lock
    locks.acquire(0)
    assert locks.locked(0)
    locks.release(0)
    locks.release(0)  # releasing a free lock does nothing, as in uWSGI
    with pytest.raises(ValueError, match="invalid lock number 1"):
        locks.acquire(1)


def test_holder_names_the_holding_process_and_forgets_a_dead_one():
    # The stats list each lock with its holder's pid; an OFD lock has none, so the set
    # keeps it (the kernel still decides whether the lock is held).
    locks = LockSet(2, holders=True)
    r, w = os.pipe()

    def holder():
        locks.acquire(1)
        os.write(w, b"x")
        time.sleep(30)

    assert [locks.holder(0), locks.holder(1)] == [0, 0]
    pid = _fork(holder)
    try:
        assert os.read(r, 1) == b"x"
        assert [locks.holder(0), locks.holder(1)] == [0, pid]
    finally:
        os.kill(pid, 9)
        _wait(pid)
        os.close(r)
        os.close(w)
    assert locks.holder(1) == 0  # killed while holding it: released, not its pid
    locks.acquire(1)
    assert locks.holder(1) == os.getpid()
    locks.release(1)
    assert locks.holder(1) == 0


def _someone_waits_on(fd, timeout=10.0):
    """Wait until a process sleeps on a lock of ``fd``'s file (a "->" line in /proc/locks;
    by inode: the pid of a description lock shows as -1)."""
    inode = f":{os.fstat(fd).st_ino} "
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open("/proc/locks") as f:
            if any("->" in line and inode in line for line in f):
                return
        time.sleep(0.01)
    raise AssertionError("nobody waited on the lock")


def test_no_false_deadlock_between_threaded_processes():
    """The usual ``uwsgi.lock(); cache_get(); ...`` pattern with threads: process A holds
    lock 0 and waits for the cache's lock, held for a moment by a thread of process B while
    another thread of B asks for lock 0. That is no deadlock (B's first thread lets go),
    but process-owned POSIX record locks make the kernel answer EDEADLK to B."""
    locks = LockSet(1)
    cache = SharedCache("dl", items=4, blocksize=8, keysize=4)
    r, w = os.pipe()

    def process_a():
        os.read(r, 1)
        locks.acquire(0)
        cache.get(b"k")  # waits for B's cache lock
        locks.release(0)

    pid = _fork(process_a)
    got = []
    try:
        with cache:
            os.write(w, b"x")
            _someone_waits_on(cache.fd)

            def other_thread():
                try:
                    locks.acquire(0)
                    got.append("locked")
                    locks.release(0)
                except OSError as exc:
                    got.append(exc)

            t = threading.Thread(target=other_thread)
            t.start()
            deadline = time.monotonic() + 2  # EDEADLK comes at once; a wait just waits
            while not got and time.monotonic() < deadline:
                time.sleep(0.01)
        t.join(10)
        assert got == ["locked"]
    finally:
        assert _wait(pid) == 0
        os.close(r)
        os.close(w)


def test_cache_is_shared_with_forked_processes():
    cache = SharedCache("t", items=8, blocksize=32, keysize=16)
    assert cache.set(b"a", b"1", 0, update=False)
    assert cache.set(b"a", b"2", 0, update=False) is None
    pid = _fork(lambda: (cache.set(b"child", b"yes", 0, False), cache.set(b"a", b"3", 0, True)))
    assert _wait(pid) == 0
    assert cache.get(b"child") == b"yes"
    assert cache.get(b"a") == b"3"
    assert sorted(cache.keys()) == [b"a", b"child"]


def test_cache_bounds_expiry_and_slot_reuse():
    cache = SharedCache("t2", items=4, blocksize=8, keysize=4)
    assert cache.set(b"k" * 5, b"v", 0, False) is None  # key over keysize
    assert cache.set(b"k", b"v" * 9, 0, False) is None  # value over blocksize
    for i in range(4):
        assert cache.set(f"k{i}".encode(), b"v", 0, False)
    assert cache.set(b"k9", b"v", 0, False) is None  # full
    assert cache.delete(b"k1")
    assert cache.set(b"k9", b"v", 0, False)  # the deleted slot is reused
    assert cache.delete(b"missing") is None
    for i in (0, 2, 3):
        assert cache.get(f"k{i}".encode()) == b"v"  # found past the reused slot
    cache.clear()
    assert cache.keys() == []
    assert cache.set(b"e", b"x", 1, False)
    assert cache.exists(b"e")
    time.sleep(1.05)
    assert cache.get(b"e") is None and not cache.exists(b"e")
    for i in range(4):  # expired items leave their slots
        assert cache.set(f"n{i}".encode(), b"v", 0, False)


@pytest.mark.parametrize("text, expected", [
    ("name=a,items=10", {"name": "a", "items": 10, "blocksize": 65536, "keysize": 2048}),
    ("name=b, maxitems=3, blocksize=100, keysize=10, blocks=3",
     {"name": "b", "items": 3, "blocksize": 100, "keysize": 10}),
])
def test_parse_cache2(text, expected):
    assert parse_cache2(text) == expected


@pytest.mark.parametrize("text, message", [
    ("items=10", "expected name=NAME"),
    ("name=a", "expected items=N"),
    ("name=a,items=0", "items must be a positive integer"),
    ("name=a,items=2,store=/tmp/x", "unknown key 'store'"),
    ("name=a,items=2,blocks=5", "one item per block"),
    ("name=a,items=100000000,blocksize=1000000", "GiB of memory"),
])
def test_parse_cache2_errors(text, message):
    with pytest.raises(ConfigError, match=message) as info:
        parse_cache2(text)
    assert "'cache2'" in str(info.value)


def _tm(text):
    return time.strptime(text, "%Y-%m-%d %H:%M")


@pytest.mark.parametrize("fields, when, expected", [
    ((-1, -1, -1, -1, -1), "2026-11-25 10:37", True),
    ((30, 2, -1, -1, -1), "2026-11-25 02:30", True),
    ((30, 2, -1, -1, -1), "2026-11-25 02:31", False),
    ((-5, -1, -1, -1, -1), "2026-11-25 10:35", True),  # every 5 minutes
    ((-5, -1, -1, -1, -1), "2026-11-25 10:37", False),
    ((0, 0, 1, -1, -1), "2026-12-01 00:00", True),
    ((0, 0, -1, 11, -1), "2026-11-25 00:00", True),  # month 1..12
    ((0, 0, -1, 12, -1), "2026-11-25 00:00", False),
    ((0, 0, -1, -1, 0), "2026-11-29 00:00", True),  # Sunday is 0
    ((0, 0, -1, -1, 3), "2026-11-25 00:00", True),  # a Wednesday
    ((0, 0, 1, -1, 3), "2026-11-25 00:00", True),  # day OR weekday, as crontab
    ((0, 0, 2, -1, 4), "2026-11-25 00:00", False),
])
def test_cron_matches(fields, when, expected):
    assert cron_matches(fields, _tm(when)) is expected


def test_a_timer_late_by_several_periods_fires_once():
    """Missed periods are coalesced into one signal (as uWSGI's timerfd timers): the master
    busy for 5.5 s does not get a 1-second timer firing twice in a row afterwards."""
    from types import SimpleNamespace

    from django_uwsgi_server.server.signals import Hub

    hub = Hub()
    hub.master = SimpleNamespace(procs={})
    routed = []
    hub.route = routed.append
    hub.add_timer(5, 1.0)
    due = hub.timers[0][2]
    hub.tick(due + 5.5)
    assert routed == [5]
    hub.tick(due + 5.6)
    assert routed == [5]
    assert hub.timers[0][2] == due + 6.0  # the timer keeps its phase
    hub.tick(due + 6.0)
    assert routed == [5, 5]
