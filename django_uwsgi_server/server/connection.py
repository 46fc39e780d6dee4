"""One accepted client connection and its blocking-with-timeout I/O.

Sockets stay non-blocking: the fast path is a plain ``recv``/``sendmsg`` with no extra
syscall, and only when the kernel says EAGAIN do we ``poll`` for up to ``socket-timeout``
seconds (CPython's own timeout sockets poll before *every* call).
"""

from __future__ import annotations

import os
import select
import socket
import time

_POLLIN = select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR
_POLLOUT = select.POLLOUT | select.POLLHUP | select.POLLERR
RECV_SIZE = 65536


class ClientGone(OSError):
    """The peer closed the connection, reset it, or stayed silent past socket-timeout.

    An OSError, so that Django turns it into ``UnreadablePostError`` when it surfaces from a
    ``wsgi.input`` read inside a view.
    """


class ClientTimeout(ClientGone):
    """The peer sent nothing for socket-timeout seconds (a stalled client)."""


class Connection:
    __slots__ = ("sock", "fd", "listener", "buf", "remote_addr", "remote_port", "timeout",
                 "requests", "idle_since", "has_request", "linger", "environ", "_poll")

    def __init__(self, sock: socket.socket, peer: object, listener: object, timeout: float) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.listener = listener
        self.buf = bytearray()
        if isinstance(peer, tuple):
            self.remote_addr = peer[0]
            self.remote_port = str(peer[1])
        else:  # unix socket peers have no address
            self.remote_addr = ""
            self.remote_port = ""
        self.timeout = timeout
        self.requests = 0
        self.idle_since = 0.0
        self.has_request = False  # a complete request head is already in buf (pipelining)
        self.linger = False  # the peer may still be sending a body we did not read
        self.environ: dict | None = None  # the per-listener environ part, set by the handler
        self._poll: select.poll | None = None

    def wait(self, events: int) -> None:
        if self._poll is None:
            self._poll = select.poll()
            self._poll.register(self.fd, events)
        else:
            self._poll.modify(self.fd, events)
        if not self._poll.poll(self.timeout * 1000):
            raise ClientTimeout("timed out (socket-timeout)")

    def recv(self, size: int = RECV_SIZE) -> bytes:
        """Bytes from the peer, waiting up to socket-timeout; b"" at EOF."""
        while True:
            try:
                return self.sock.recv(size)
            except BlockingIOError:
                self.wait(_POLLIN)
            except OSError as exc:  # reset, unreachable, timed out: the client is gone
                raise ClientGone(str(exc)) from None

    def sendall(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            try:
                sent = self.sock.send(view)
            except BlockingIOError:
                self.wait(_POLLOUT)
                continue
            except OSError as exc:
                raise ClientGone(str(exc)) from None
            view = view[sent:]

    def sendmsg(self, buffers: list, flags: int = 0) -> None:
        """Send several buffers in one syscall when the kernel takes them all (the usual case)."""
        try:
            sent = self.sock.sendmsg(buffers, (), flags)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            raise ClientGone(str(exc)) from None
        for buf in buffers:
            size = len(buf)
            if sent >= size:
                sent -= size
                continue
            self.sendall(memoryview(buf)[sent:])
            sent = 0

    def sendfile(self, fileno: int, offset: int, count: int) -> int:
        """Send ``count`` bytes of a file with os.sendfile; returns bytes sent."""
        total = 0
        while total < count:
            try:
                sent = os.sendfile(self.fd, fileno, offset + total, count - total)
            except BlockingIOError:
                self.wait(_POLLOUT)
                continue
            except OSError as exc:
                raise ClientGone(str(exc)) from None
            if sent == 0:  # the file shrank under us
                break
            total += sent
        return total

    def close(self) -> None:
        if self.linger:
            self._linger()
        try:
            self.sock.close()
        except OSError:
            pass

    def _linger(self, seconds: float = 1.0, limit: int = 1 << 20) -> None:
        """Close without destroying our last response (RFC 9112 §9.6).

        Closing a socket that still has unread request bytes makes the kernel send a reset,
        and the client may lose our answer (a 413, a 500) before reading it. So: half-close,
        then read and discard what the client still sends, for a bounded time and size.
        """
        self.linger = False
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            return
        deadline = time.monotonic() + seconds
        seen = 0
        poller = select.poll()
        poller.register(self.fd, _POLLIN)
        while seen < limit:
            left = deadline - time.monotonic()
            if left <= 0 or not poller.poll(left * 1000):
                return
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                return
            if not data:
                return
            seen += len(data)
