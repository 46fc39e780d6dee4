"""Reload and control triggers polled by the master: ``touch-reload``, ``touch-chain-reload``
and ``master-fifo`` (uWSGI source: core/master_checks.c ``uwsgi_check_touches``,
core/fifo.c).

Sans-server: nothing here signals or forks. The master puts :meth:`Triggers.fds` in its
``select()``, calls :meth:`Triggers.check` on every loop turn and runs the returned commands,
which are uWSGI's master FIFO letters (a touched ``touch-reload`` file yields ``"r"``, a
touched ``touch-chain-reload`` file ``"c"``).
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass

# Every command letter uWSGI's master FIFO knows (process-model.md §5). The master decides
# which ones it implements; unknown bytes are dropped here so it never sees garbage.
FIFO_COMMANDS = frozenset("rRwWcqQspPlL+-fC")
# `echo r > fifo` appends a newline: uWSGI ignores bytes without a meaning, and logging
# these would make every shell-driven command produce noise.
_WHITESPACE = frozenset(b" \t\r\n\v\f")
# Upper bound of bytes consumed per check() so a writer flooding the FIFO cannot starve the
# master loop; the rest stays in the pipe, which keeps the fd readable for the next turn.
_READ_BUDGET = 64 * 1024
# How often a FIFO that could not be re-created is retried (and thus how often its failure
# could be noticed), in seconds of the clock given to check().
_RETRY_INTERVAL = 1.0


@dataclass
class _Touch:
    path: str
    command: str
    # Last mtime seen in nanoseconds, or None while the file is missing. Like uWSGI this is
    # the highest mtime ever seen: an mtime set backwards neither fires nor lowers the mark.
    mtime_ns: int | None


class Triggers:
    """Touch files and master FIFOs, polled by the master.

    Unlike uWSGI, which never removes its master FIFO, :meth:`close` removes the FIFO files
    this object created (if they are still the FIFOs we made), so a stopped server leaves no
    stale pipe behind. Nothing is removed on a reload re-exec: the master simply does not call
    :meth:`close` then, and the new image unlinks and re-creates the FIFOs at start, as uWSGI
    does.

    ``__init__`` raises :class:`OSError` when a FIFO cannot be created (uWSGI exits on that
    at start too); :meth:`check` never raises because of a vanished file or FIFO.
    """

    def __init__(
        self,
        *,
        touch_reload: list[str],
        touch_chain_reload: list[str],
        master_fifos: list[str],
        log: Callable[[str], None],
    ) -> None:
        self._log = log
        # close() in a forked worker must not remove the master's FIFOs.
        self._pid = os.getpid()
        self._closed = False
        self._touches = [_Touch(p, "r", None) for p in touch_reload] + [
            _Touch(p, "c", None) for p in touch_chain_reload
        ]
        # Recorded at start, not at the first check, so a touch made while the workers are
        # being spawned (between here and the first loop turn) is not lost.
        for touch in self._touches:
            touch.mtime_ns = self._mtime(touch.path)
            if touch.mtime_ns is None:
                log(
                    f"unable to stat() {touch.path}, events will be triggered as soon as "
                    "the file is created"
                )

        self._paths = list(master_fifos)
        self._slot = 0
        # path -> (st_dev, st_ino) of the FIFO we made there: close() removes only those.
        self._created: dict[str, tuple[int, int]] = {}
        self._rfd: int | None = None
        self._wfd: int | None = None
        self._open_id: tuple[int, int] | None = None
        # Set while the active FIFO is missing and could not be re-created; failures are
        # logged once per outage and retried at most every _RETRY_INTERVAL.
        self._failing = False
        self._retry_at = 0.0
        try:
            for path in self._paths:
                self._make_fifo(path)
            if self._paths:
                self._open(self._paths[0])
        except OSError:
            self.close()
            raise

    # -- public API ------------------------------------------------------------------------

    def fds(self) -> list[int]:
        """Read fds to include in the master's ``select()``: the active FIFO, if any."""
        return [] if self._rfd is None else [self._rfd]

    def check(self, now: float | None = None) -> list[str]:
        """Commands to run now, oldest first, as master FIFO letters.

        FIFO bytes come first (they were written before this call), then at most one ``"r"``
        and one ``"c"`` for touched files (several files touched at once are one reload).
        """
        if self._closed:
            return []
        if now is None:
            now = time.monotonic()
        commands = self._read_fifo(now)
        self._ensure_fifo(now)
        commands.extend(self._check_touches())
        return commands

    def close(self) -> None:
        """Close the FIFO fds and remove the FIFO files we created (master exit only).

        Safe to call twice and from a forked child, where it only closes the fds.
        """
        self._closed = True
        self._close_fds()
        if os.getpid() != self._pid:
            return
        for path, ident in self._created.items():
            try:
                st = os.lstat(path)
                # Someone may have replaced our FIFO (or another server re-created it): only
                # the exact FIFO we made is ours to remove.
                if stat.S_ISFIFO(st.st_mode) and (st.st_dev, st.st_ino) == ident:
                    os.unlink(path)
            except OSError:
                pass
        self._created.clear()

    # -- touch files -----------------------------------------------------------------------

    @staticmethod
    def _mtime(path: str) -> int | None:
        try:
            return os.stat(path).st_mtime_ns
        except OSError:
            # Missing, or unreadable directory: both mean "no file" to the trigger, and an
            # error here must never take the master down.
            return None

    def _check_touches(self) -> list[str]:
        fired: list[str] = []
        for touch in self._touches:
            mtime = self._mtime(touch.path)
            if mtime is None:
                touched = touch.mtime_ns is not None  # deleted
                touch.mtime_ns = None
            elif touch.mtime_ns is None:
                touched = True  # created after being missing
                touch.mtime_ns = mtime
            elif mtime > touch.mtime_ns:
                touched = True
                touch.mtime_ns = mtime
            else:
                touched = False  # unchanged, or set backwards (ignored, like uWSGI)
            if not touched:
                continue
            what = "grace them all" if touch.command == "r" else "chain reload"
            self._log(f"*** {touch.path} has been touched... {what} !!! ***")
            if touch.command not in fired:
                fired.append(touch.command)
        return fired

    # -- master FIFO -----------------------------------------------------------------------

    def _make_fifo(self, path: str) -> None:
        """Unlink whatever is at ``path`` and create a fresh FIFO there (uWSGI does the same,
        so a FIFO left by a crashed server, with a stale writer, is never reused)."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            pass
        else:
            if not stat.S_ISFIFO(st.st_mode):
                self._log(f"{path} exists and is not a FIFO, removing it")
            os.unlink(path)
        os.mkfifo(path, 0o600)
        st = os.lstat(path)
        self._created[path] = (st.st_dev, st.st_ino)

    def _open(self, path: str) -> None:
        rfd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            st = os.fstat(rfd)
            if not stat.S_ISFIFO(st.st_mode):
                raise OSError(f"{path} is not a FIFO")
            # Our own writer keeps the FIFO from ever having zero writers. Without it, once a
            # client closes its end, read() returns EOF and select() reports the fd readable
            # on every turn (a busy loop); uWSGI works around that by re-opening the FIFO on
            # each EOF, which also loses anything a racing writer sent. With a writer held
            # open, select() wakes only when there are bytes to read.
            wfd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            os.close(rfd)
            raise
        self._rfd, self._wfd = rfd, wfd
        self._open_id = (st.st_dev, st.st_ino)

    def _close_fds(self) -> None:
        for fd in (self._rfd, self._wfd):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._rfd = self._wfd = None
        self._open_id = None

    def _read_available(self, limit: int) -> bytes:
        """Every byte waiting in the active FIFO, up to ``limit``."""
        assert self._rfd is not None
        chunks: list[bytes] = []
        size = 0
        while size < limit:
            try:
                data = os.read(self._rfd, min(65536, limit - size))
            except BlockingIOError:
                break
            except OSError as exc:
                self._log(f"error reading master FIFO {self._paths[self._slot]}: {exc}")
                self._close_fds()  # _ensure_fifo() re-creates it
                break
            if not data:
                # EOF cannot happen while our writer is open; if it does anyway, re-open so
                # the fd does not stay readable for ever.
                self._close_fds()
                break
            chunks.append(data)
            size += len(data)
        return b"".join(chunks)

    def _read_fifo(self, now: float) -> list[str]:
        commands: list[str] = []
        budget = _READ_BUDGET
        # A slot switch opens another FIFO which may already hold bytes: read on until the
        # active FIFO is drained (or the budget is spent).
        while self._rfd is not None and budget > 0:
            data = self._read_available(budget)
            if not data:
                break
            budget -= len(data)
            for byte in data:
                ch = chr(byte)
                if ch in FIFO_COMMANDS:
                    commands.append(ch)
                elif 0x30 <= byte <= 0x39:
                    # Bytes after the digit, already read from the old FIFO, are still
                    # honoured: their writer had access to the FIFO that was active then.
                    self._switch(byte - 0x30, now)
                elif byte not in _WHITESPACE:
                    shown = ch if 0x21 <= byte < 0x7F else f"\\x{byte:02x}"
                    self._log(f"unknown master FIFO command '{shown}' ignored")
        return commands

    def _switch(self, slot: int, now: float) -> None:
        if slot >= len(self._paths):
            self._log(f"master FIFO slot {slot} is not configured, ignored")
            return
        if slot == self._slot and self._rfd is not None:
            # Re-opening the same FIFO would only drop bytes still queued in it.
            self._log(f"switched to FIFO slot {slot}")
            return
        self._close_fds()
        self._slot = slot
        self._failing = False
        self._retry_at = now  # open it right away
        self._ensure_fifo(now)
        if self._rfd is not None:
            self._log(f"switched to FIFO slot {slot}")

    def _ensure_fifo(self, now: float) -> None:
        """Make sure the active FIFO is open and still the file at its path; re-create it
        if it was removed or replaced under us."""
        if not self._paths:
            return
        path = self._paths[self._slot]
        if self._rfd is not None:
            try:
                st = os.lstat(path)
                ident: tuple[int, int] | None = (st.st_dev, st.st_ino)
            except OSError:
                ident = None
            if ident == self._open_id:
                return
            # Clients open the path, so a FIFO no longer reachable through it is useless.
            self._log(f"master FIFO {path} has vanished, re-creating it")
            self._close_fds()
            self._retry_at = now
        if now < self._retry_at:
            return
        try:
            st_created = self._created.get(path)
            try:
                st = os.lstat(path)
                current: tuple[int, int] | None = (st.st_dev, st.st_ino)
                is_fifo = stat.S_ISFIFO(st.st_mode)
            except FileNotFoundError:
                current, is_fifo = None, False
            # A slot whose FIFO we made at start is opened as is, so a client already
            # blocked opening it for writing is not cut off.
            if not (is_fifo and current is not None and current == st_created):
                self._make_fifo(path)
            self._open(path)
        except OSError as exc:
            if not self._failing:
                self._log(f"unable to create master FIFO {path}: {exc}, retrying")
            self._failing = True
            self._retry_at = now + _RETRY_INTERVAL
            return
        if self._failing:
            self._log(f"master FIFO {path} re-created")
        self._failing = False
