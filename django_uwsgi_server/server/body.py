"""``wsgi.input`` and ``wsgi.file_wrapper`` (PEP 3333).

The input stream reads exactly the request body — by Content-Length or de-chunked — and
then reports EOF; it never blocks past the body. It starts with whatever body bytes arrived
together with the head, and leaves bytes of a pipelined next request in the connection
buffer.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from typing import Any

from .connection import ClientGone, Connection
from .request import ProtocolError

_CHUNK = 65536


class InputStream:
    """The request body as a file-like object with standard ``io`` semantics.

    Unlike uWSGI, ``read(0)`` returns ``b""`` and ``readline(n)`` honours ``n``.
    """

    __slots__ = ("_conn", "_buf", "_remaining", "_decoder", "_on_first_read", "error")

    def __init__(self, conn: Connection, content_length: int | None, decoder: Any = None,
                 on_first_read: Callable[[], None] | None = None) -> None:
        self._conn = conn
        self._decoder = decoder
        self._on_first_read = on_first_read
        # A ProtocolError met while reading the body (bad chunk framing, limit-post): the
        # handler answers it with its own status instead of the app's 500.
        self.error: ProtocolError | None = None
        pending = conn.buf
        if decoder is not None:
            self._remaining = -1
            self._buf = b""
            if pending:
                conn.buf = bytearray()
                self._feed(pending)
        else:
            size = content_length or 0
            if pending:
                self._buf = bytes(pending[:size])
                del pending[:size]
            else:
                self._buf = b""
            self._remaining = size - len(self._buf)

    # -- filling -------------------------------------------------------------------------
    def _feed(self, data: bytes | bytearray) -> None:
        decoder = self._decoder
        try:
            decoded = decoder.feed(data)
        except ProtocolError as exc:
            self.error = exc
            raise
        self._buf = self._buf + decoded if self._buf else decoded
        if decoder.done:
            self._conn.buf = bytearray(decoder.leftover)

    def _at_eof(self) -> bool:
        if self._decoder is not None:
            return self._decoder.done
        return self._remaining <= 0

    def _more(self) -> bool:
        """Receive more body bytes into the buffer; False at the end of the body."""
        if self._at_eof():
            return False
        if self._on_first_read is not None:
            callback, self._on_first_read = self._on_first_read, None
            callback()  # "100 Continue", only once the app really wants the body
        if self._decoder is not None:
            data = self._conn.recv()
            if not data:
                raise ClientGone("the client closed the connection in the middle of the body")
            self._feed(data)
            return True
        data = self._conn.recv(min(self._remaining, _CHUNK))
        if not data:
            raise ClientGone("the client closed the connection in the middle of the body")
        self._remaining -= len(data)
        self._buf = self._buf + data if self._buf else data
        return True

    # -- file API ------------------------------------------------------------------------
    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            parts = [self._buf]
            self._buf = b""
            while self._more():
                parts.append(self._buf)
                self._buf = b""
            return b"".join(parts)
        while len(self._buf) < size and self._more():
            pass
        data, self._buf = self._buf[:size], self._buf[size:]
        return data

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

    def drain(self, limit: int) -> bool:
        """Discard the unread body (up to ``limit`` bytes) so the connection can be reused.

        Returns False when the body could not be drained, and the connection must close.
        """
        if self.error is not None:
            return False
        if self._at_eof():
            return True
        if self._on_first_read is not None:
            return False  # the client waits for "100 Continue": it never sent the body
        if self._remaining > limit:
            return False
        seen = 0
        try:
            while self._more():
                seen += len(self._buf)
                self._buf = b""
                if seen > limit:
                    return False
        except (OSError, ProtocolError):
            return False
        return True


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
