"""Touch files and master FIFOs, on real files in tmp_path (no server)."""

from __future__ import annotations

import os
import select
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from django_uwsgi_server.server.triggers import Triggers

S = 1_000_000_000  # one second in ns


class Log(list[str]):
    def __call__(self, msg: str) -> None:
        self.append(msg)


@pytest.fixture
def log() -> Log:
    return Log()


@pytest.fixture
def made() -> Iterator[list[Triggers]]:
    """Triggers built in a test, closed afterwards even when the test fails."""
    objs: list[Triggers] = []
    yield objs
    for obj in objs:
        obj.close()


def make(made: list[Triggers], log: Log, *, touch: list[str] | None = None,
         chain: list[str] | None = None, fifos: list[str] | None = None) -> Triggers:
    t = Triggers(touch_reload=touch or [], touch_chain_reload=chain or [],
                 master_fifos=fifos or [], log=log)
    made.append(t)
    return t


def set_mtime(path: Path, ns: int) -> None:
    os.utime(path, ns=(ns, ns))


def write(path: Path, data: bytes) -> None:
    # O_NONBLOCK: with no reader the open fails (ENXIO) instead of hanging the test.
    fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def readable(t: Triggers) -> list[int]:
    return select.select(t.fds(), [], [], 0)[0]


# -- touch files ---------------------------------------------------------------------------


def test_first_check_only_records(tmp_path: Path, made: list[Triggers], log: Log) -> None:
    f = tmp_path / "reload"
    f.touch()
    t = make(made, log, touch=[str(f)])
    assert t.check() == []
    assert t.check() == []
    assert log == []


def test_mtime_increase_fires_once(tmp_path: Path, made: list[Triggers], log: Log) -> None:
    f = tmp_path / "reload"
    f.touch()
    set_mtime(f, 1000 * S)
    t = make(made, log, touch=[str(f)])
    assert t.check() == []
    set_mtime(f, 1000 * S + 1)  # a nanosecond later still counts
    assert t.check() == ["r"]
    assert t.check() == []
    assert log == [f"*** {f} has been touched... grace them all !!! ***"]


def test_backwards_mtime_ignored(tmp_path: Path, made: list[Triggers], log: Log) -> None:
    f = tmp_path / "reload"
    f.touch()
    set_mtime(f, 1000 * S)
    t = make(made, log, touch=[str(f)])
    set_mtime(f, 500 * S)
    assert t.check() == []
    set_mtime(f, 900 * S)  # still below the highest mtime seen (uWSGI keeps the maximum)
    assert t.check() == []
    set_mtime(f, 1001 * S)
    assert t.check() == ["r"]
    assert log == [f"*** {f} has been touched... grace them all !!! ***"]


def test_delete_fires(tmp_path: Path, made: list[Triggers], log: Log) -> None:
    f = tmp_path / "reload"
    f.touch()
    t = make(made, log, touch=[str(f)])
    f.unlink()
    assert t.check() == ["r"]
    assert t.check() == []


def test_create_after_missing_fires(tmp_path: Path, made: list[Triggers], log: Log) -> None:
    f = tmp_path / "chain"
    t = make(made, log, chain=[str(f)])
    assert log == [
        f"unable to stat() {f}, events will be triggered as soon as the file is created"
    ]
    assert t.check() == []
    f.touch()
    assert t.check() == ["c"]
    assert t.check() == []
    assert log[1:] == [f"*** {f} has been touched... chain reload !!! ***"]


def test_touches_during_startup_are_not_lost(
    tmp_path: Path, made: list[Triggers], log: Log
) -> None:
    # The mtime is recorded when the object is built, so a touch before the first check
    # (while workers are spawned) fires on it.
    f = tmp_path / "reload"
    f.touch()
    set_mtime(f, 1000 * S)
    t = make(made, log, touch=[str(f)])
    set_mtime(f, 1001 * S)
    assert t.check() == ["r"]


def test_several_touched_files_one_command_each_kind(
    tmp_path: Path, made: list[Triggers], log: Log
) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for f in (a, b, c):
        f.touch()
        set_mtime(f, 1000 * S)
    t = make(made, log, touch=[str(a), str(b)], chain=[str(c)])
    for f in (a, b, c):
        set_mtime(f, 2000 * S)
    assert t.check() == ["r", "c"]
    assert len(log) == 3


# -- master FIFO -------------------------------------------------------------------------


def test_fifo_created_0600_replacing_old_file(
    tmp_path: Path, made: list[Triggers], log: Log
) -> None:
    f = tmp_path / "fifo"
    f.write_text("stale")
    t = make(made, log, fifos=[str(f)])
    st = f.lstat()
    assert stat.S_ISFIFO(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert log == [f"{f} exists and is not a FIFO, removing it"]
    assert len(t.fds()) == 1


def test_fifo_letters_in_order(tmp_path: Path, made: list[Triggers], log: Log) -> None:
    f = tmp_path / "fifo"
    t = make(made, log, fifos=[str(f)])
    write(f, b"rc\nq")
    assert readable(t) == t.fds()
    assert t.check() == ["r", "c", "q"]
    write(f, b"R")
    write(f, b"w\n")
    assert t.check() == ["R", "w"]
    assert log == []


def test_fifo_several_writers(tmp_path: Path, made: list[Triggers], log: Log) -> None:
    f = tmp_path / "fifo"
    t = make(made, log, fifos=[str(f)])
    w1 = os.open(f, os.O_WRONLY | os.O_NONBLOCK)
    w2 = os.open(f, os.O_WRONLY | os.O_NONBLOCK)
    try:
        os.write(w1, b"s")
        os.write(w2, b"p")
        os.close(w1)
        os.write(w2, b"+-")
        assert t.check() == ["s", "p", "+", "-"]
    finally:
        os.close(w2)
    assert t.check() == []
    assert readable(t) == []


def test_all_known_letters(tmp_path: Path, made: list[Triggers], log: Log) -> None:
    f = tmp_path / "fifo"
    t = make(made, log, fifos=[str(f)])
    write(f, b"rRwWcqQspPlL+-fC")
    assert "".join(t.check()) == "rRwWcqQspPlL+-fC"


def test_unknown_bytes_logged_and_ignored(
    tmp_path: Path, made: list[Triggers], log: Log
) -> None:
    f = tmp_path / "fifo"
    t = make(made, log, fifos=[str(f)])
    write(f, b"xr x\t\x00\r\n")
    assert t.check() == ["r"]
    assert log == [
        "unknown master FIFO command 'x' ignored",
        "unknown master FIFO command 'x' ignored",
        "unknown master FIFO command '\\x00' ignored",
    ]


def test_no_busy_loop_after_writer_closes(
    tmp_path: Path, made: list[Triggers], log: Log
) -> None:
    f = tmp_path / "fifo"
    t = make(made, log, fifos=[str(f)])
    assert readable(t) == []  # no writer has ever connected
    write(f, b"r\n")  # opens, writes, closes: the FIFO now has had a writer hang up
    assert readable(t) == t.fds()
    assert t.check() == ["r"]
    assert readable(t) == []
    assert t.check() == []
    assert readable(t) == []


def test_slot_switching(tmp_path: Path, made: list[Triggers], log: Log) -> None:
    f0, f1 = tmp_path / "fifo0", tmp_path / "fifo1"
    t = make(made, log, fifos=[str(f0), str(f1)])
    assert stat.S_ISFIFO(f1.lstat().st_mode)  # every slot is created at start
    write(f0, b"1\nr")  # bytes after the switch, already read, still count
    assert t.check() == ["r"]
    assert log == ["switched to FIFO slot 1"]
    # Slot 0 is no longer read: with no reader, a non-blocking writer is refused.
    with pytest.raises(OSError):
        write(f0, b"q")
    write(f1, b"c0")
    assert t.check() == ["c"]
    write(f0, b"Q")
    assert t.check() == ["Q"]
    assert log == ["switched to FIFO slot 1", "switched to FIFO slot 0"]


def test_slot_switch_reads_new_fifo_right_away(
    tmp_path: Path, made: list[Triggers], log: Log
) -> None:
    f0, f1 = tmp_path / "fifo0", tmp_path / "fifo1"
    t = make(made, log, fifos=[str(f0), str(f1)])
    write(f0, b"1")
    assert t.check() == []
    write(f1, b"s")
    assert t.check() == ["s"]


def test_unconfigured_slot_ignored(tmp_path: Path, made: list[Triggers], log: Log) -> None:
    f = tmp_path / "fifo"
    t = make(made, log, fifos=[str(f)])
    fds = t.fds()
    write(f, b"5r")
    assert t.check() == ["r"]
    assert log == ["master FIFO slot 5 is not configured, ignored"]
    assert t.fds() == fds
    write(f, b"q")
    assert t.check() == ["q"]


def test_fifo_recreated_if_deleted(tmp_path: Path, made: list[Triggers], log: Log) -> None:
    f = tmp_path / "fifo"
    t = make(made, log, fifos=[str(f)])
    f.unlink()
    assert t.check() == []
    assert t.check() == []
    assert log == [f"master FIFO {f} has vanished, re-creating it"]
    assert stat.S_ISFIFO(f.lstat().st_mode)
    write(f, b"r")
    assert t.check() == ["r"]
    t.close()
    assert not f.exists()


def test_fifo_whose_directory_vanished_never_raises(
    tmp_path: Path, made: list[Triggers], log: Log
) -> None:
    d = tmp_path / "run"
    d.mkdir()
    f = d / "fifo"
    t = make(made, log, fifos=[str(f)])
    f.unlink()
    d.rmdir()
    assert t.check(now=100.0) == []
    assert t.fds() == []
    assert t.check(now=100.5) == []
    assert t.check(now=102.0) == []
    assert len(log) == 2  # vanished + unable to create, not repeated
    d.mkdir()
    assert t.check(now=103.5) == []
    assert stat.S_ISFIFO(f.lstat().st_mode)
    assert log[-1] == f"master FIFO {f} re-created"
    write(f, b"w")
    assert t.check(now=104.0) == ["w"]


def test_close_removes_fifos(tmp_path: Path, made: list[Triggers], log: Log) -> None:
    f0, f1 = tmp_path / "fifo0", tmp_path / "fifo1"
    t = make(made, log, fifos=[str(f0), str(f1)])
    t.close()
    assert t.fds() == []
    assert not f0.exists() and not f1.exists()
    t.close()  # idempotent
    assert t.check() == []


def test_close_keeps_files_that_are_no_longer_our_fifos(
    tmp_path: Path, made: list[Triggers], log: Log
) -> None:
    f0, f1 = tmp_path / "fifo0", tmp_path / "fifo1"
    t = make(made, log, fifos=[str(f0), str(f1)])
    f1.unlink()
    f1.write_text("someone else's")
    t.close()
    assert not f0.exists()
    assert f1.read_text() == "someone else's"


def test_init_failure_raises_and_cleans_up(
    tmp_path: Path, made: list[Triggers], log: Log
) -> None:
    f0 = tmp_path / "fifo0"
    with pytest.raises(OSError):
        make(made, log, fifos=[str(f0), str(tmp_path / "missing" / "fifo1")])
    assert not f0.exists()


def test_fds_are_not_inherited(tmp_path: Path, made: list[Triggers], log: Log) -> None:
    t = make(made, log, fifos=[str(tmp_path / "fifo")])
    assert all(not os.get_inheritable(fd) for fd in t.fds())
