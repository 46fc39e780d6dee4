"""``wsgi.input`` and ``wsgi.file_wrapper`` (PEP 3333).

The input stream reads exactly the request body — by Content-Length or de-chunked — and
then reports EOF; it never blocks past the body. It starts with whatever body bytes arrived
together with the head, and leaves bytes of a pipelined next request in the connection
buffer.
"""

from __future__ import annotations

import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

from .connection import ClientGone, ClientTimeout, Connection
from .http import ChunkedDecoder


class TooSlow(ClientTimeout):
    """The body arrives, but slower than body-min-rate."""


_CHUNK = 65536
_MAX_RECV = 1 << 20  # recv(n) allocates n bytes first: bound it


class InputStream:
    """The request body as a file-like object with standard ``io`` semantics.

    Unlike uWSGI, ``read(0)`` returns ``b""`` and ``readline(n)`` honours ``n``.
    """

    __slots__ = ("_conn", "_buf", "_remaining", "_on_first_read", "stalled", "_rate", "_size",
                 "_deadline_base")

    def __init__(self, conn: Connection, content_length: int | None,
                 on_first_read: Callable[[], None] | None = None, min_rate: int = 0) -> None:
        self._conn = conn
        self._on_first_read = on_first_read
        # body-min-rate: once the app reads, the body must keep arriving at min_rate bytes/s
        # on average after a grace of socket-timeout (Apache's RequestReadTimeout MinRate), so
        # a client trickling a byte just inside every socket-timeout cannot hold a worker.
        self._rate = min_rate
        self._deadline_base = 0.0
        # The option the body broke ("socket-timeout": it stopped arriving; "body-min-rate":
        # too slow), or "": the handler answers 408 whatever the app made of the error
        # (Django: UnreadablePostError, then a 500).
        self.stalled = ""
        size = self._size = content_length or 0
        pending = conn.buf
        if pending and size:
            with memoryview(pending) as view:  # one copy, released before the buffer shrinks
                self._buf = bytes(view[:size])
            del pending[:size]
        else:
            self._buf = b""
        self._remaining = size - len(self._buf)

    def _more(self) -> bool:
        """Receive more body bytes into the buffer; False at the end of the body."""
        if self._remaining <= 0:
            return False
        data = self._receive(min(self._remaining, _CHUNK))
        self._buf = self._buf + data if self._buf else data
        return True

    def _receive(self, size: int) -> bytes:
        """Up to ``size`` more bytes of the body from the socket (never past its end)."""
        if self._on_first_read is not None:
            callback, self._on_first_read = self._on_first_read, None
            callback()  # "100 Continue", only once the app really wants the body
        if self._rate and not self._deadline_base:
            self._deadline_base = time.monotonic() + self._conn.timeout
        try:
            data = self._conn.recv(size)
        except ClientTimeout:
            self.stalled = "socket-timeout"
            raise
        if not data:
            raise ClientGone("the client closed the connection in the middle of the body")
        self._remaining -= len(data)
        if self._rate and self._remaining > 0 and time.monotonic() > (
                self._deadline_base + (self._size - self._remaining) / self._rate):
            self.stalled = "body-min-rate"
            raise TooSlow(f"the request body arrived slower than body-min-rate "
                          f"({self._rate} bytes/s)")
        return data

    # -- file API ------------------------------------------------------------------------
    def read(self, size: int | None = -1) -> bytes:
        buf = self._buf
        if size is None or size < 0:
            size = len(buf) + self._remaining
        if size <= len(buf):
            self._buf = buf[size:]
            return buf[:size] if size < len(buf) else buf
        # Collect the pieces and join once: appending to one bytes object per recv() would
        # copy a large body over and over (Django reads request.body in one read(n)).
        parts = [buf]
        have = len(buf)
        self._buf = b""
        while have < size and self._remaining > 0:
            data = self._receive(min(self._remaining, size - have, _MAX_RECV))
            have += len(data)
            parts.append(data)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readline(self, size: int | None = -1) -> bytes:
        start = 0
        while True:
            pos = self._buf.find(b"\n", start)
            if pos >= 0:
                end = pos + 1
                break
            if size is not None and 0 <= size <= len(self._buf):
                end = size
                break
            start = len(self._buf)
            if not self._more():
                end = len(self._buf)
                break
        if size is not None and 0 <= size < end:
            end = size
        data, self._buf = self._buf[:end], self._buf[end:]
        return data

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                return lines

    def __iter__(self) -> Iterator[bytes]:
        while True:
            line = self.readline()
            if not line:
                return
            yield line

    def readable(self) -> bool:
        return True

    @property
    def remaining(self) -> int:
        """Body bytes the client has still to send (and the app has not read)."""
        return self._remaining

    def reusable(self, limit: int) -> bool:
        """Whether the connection can carry another request once the app is done: the unread
        body is small enough to discard, and was not held back for "100 Continue"."""
        return self._remaining <= 0 or (self._on_first_read is None and self._remaining <= limit)

    def drain(self, limit: int) -> bool:
        """Discard the unread body (up to ``limit`` bytes) so the connection can be reused.

        Returns False when the body could not be drained, and the connection must close.
        """
        if self._remaining <= 0:
            return True
        if self._on_first_read is not None or self._remaining > limit:
            return False  # a client waiting for "100 Continue" never sent the body
        try:
            while self._more():
                self._buf = b""
        except OSError:
            return False
        return True


def spool(stream: InputStream, memory: int) -> Any:
    """post-buffering: the whole body read before the app runs, in memory up to ``memory``
    bytes, then in a temporary file (uWSGI's semantics). Raises what reading raises."""
    spooled = tempfile.SpooledTemporaryFile(max_size=memory)
    while True:
        data = stream.read(_CHUNK)
        if not data:
            break
        spooled.write(data)
    spooled.seek(0)
    return spooled


def read_chunked(conn: Connection, limit: int | None, spool_size: int = 1 << 20) -> Any:
    """De-chunk a whole request body before the app runs, as nginx does.

    Django sizes ``wsgi.input`` by CONTENT_LENGTH alone (a chunked body would read as empty),
    so the body is spooled (memory up to ``spool_size``, then a temporary file) and the
    caller sets CONTENT_LENGTH. Bad framing or ``limit-post`` raise ProtocolError before the
    app is called. Bytes after the body stay in ``conn.buf`` (pipelining).
    """
    decoder = ChunkedDecoder(limit)
    spool = tempfile.SpooledTemporaryFile(max_size=spool_size)
    data = bytes(conn.buf)
    conn.buf = bytearray()
    while True:
        if data:
            spool.write(decoder.feed(data))
        if decoder.done:
            break
        data = conn.recv()
        if not data:
            raise ClientGone("the client closed the connection in the middle of the body")
    conn.buf = bytearray(decoder.leftover)
    spool.seek(0)
    return spool


class FileWrapper:
    """``wsgi.file_wrapper``: the worker sends a real file with ``os.sendfile``.

    It starts at the file's current position (Django's FileResponse sets Content-Length to
    size minus position; uWSGI sends from offset 0), and ``close()`` is the file's close —
    which Django points at ``response.close`` so that ``request_finished`` fires.
    """

    __slots__ = ("filelike", "blksize", "close")

    def __init__(self, filelike: Any, blksize: int = 8192) -> None:
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self) -> Iterator[bytes]:
        read = self.filelike.read
        blksize = self.blksize
        while True:
            data = read(blksize)
            if not data:
                return
            yield data

    def fileno(self) -> int | None:
        """The file descriptor to sendfile from, or None when it is not a regular file."""
        try:
            fd = self.filelike.fileno()
            if stat.S_ISREG(os.fstat(fd).st_mode):
                return fd
        except (AttributeError, OSError, ValueError):
            pass
        return None
