"""A worker process: accept connections, read request heads, run the app, keep alive.

One poller per worker watches the listening sockets and the connections waiting for their
next request, so a quiet client never holds the worker (uWSGI's http11-socket serves one
keep-alive client until it leaves). A connection is served while it has a complete request;
when it goes quiet — even in the middle of a request head — it goes back to the poller.
With ``threads > 1`` the main thread only waits and dispatches; a pool of threads serves.

Signals: SIGTERM, SIGINT and SIGHUP stop the worker gracefully (in-flight requests finish,
requests that already arrived are answered, then idle connections are closed); SIGQUIT
stops it at once.
"""

from __future__ import annotations

import errno
import os
import queue
import select
import signal
import socket
import threading
import time
import traceback
from typing import Any

from . import http, uwsgi_protocol
from .connection import ClientGone, Connection
from .logging import write_line
from .request import ProtocolError
from .sockets import HTTP, Listener

IDLE = "idle"  # serve() result: the connection waits for its next request (or its rest)
_PARSERS = {HTTP: http.parse_head, "uwsgi": uwsgi_protocol.parse_packet}
# Requests served back to back on one connection before the others get a turn.
_BURST = 16
_ACCEPT_PAUSE = 0.5  # out of file descriptors: stop accepting this long


class Poller:
    """epoll with an fd -> object map (selectors builds key objects on every call).

    Listening sockets are registered with EPOLLEXCLUSIVE, so a new connection wakes one
    worker instead of all of them (the rest would only get EAGAIN from accept()).
    """

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._data: dict[int, Any] = {}

    def register(self, fd: int, data: Any, exclusive: bool = False) -> None:
        flags = select.EPOLLIN
        if exclusive:
            flags |= getattr(select, "EPOLLEXCLUSIVE", 0)
        self._epoll.register(fd, flags)
        self._data[fd] = data

    def unregister(self, fd: int) -> None:
        del self._data[fd]
        try:
            self._epoll.unregister(fd)
        except OSError:  # already closed: the kernel dropped it with the fd
            pass

    def poll(self, timeout: float) -> list[Any]:
        data = self._data
        return [data[fd] for fd, _ in self._epoll.poll(timeout) if fd in data]


class Worker:
    def __init__(self, *, worker_id: int, listeners: list[Listener], handler: Any,
                 threads: int, socket_timeout: float, keepalive_timeout: float,
                 buffer_size: int, master_pid: int) -> None:
        self.worker_id = worker_id
        self.listeners = listeners
        self.handler = handler
        self.threads = threads
        self.socket_timeout = socket_timeout
        self.keepalive_timeout = keepalive_timeout
        self.buffer_size = buffer_size
        self.master_pid = master_pid
        self.stop_requested = False
        self.idle: dict[int, Connection] = {}  # registered, waiting for bytes
        self.ready: list[Connection] = []  # a complete request is already buffered
        self.poller = Poller()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._returned: queue.SimpleQueue[Connection] = queue.SimpleQueue()
        self._work: queue.SimpleQueue[Connection | None] = queue.SimpleQueue()
        self._free = threads
        self._lock = threading.Lock()
        self._accepting = False
        self._accept_paused_until = 0.0

    # -- lifecycle -----------------------------------------------------------------------
    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._graceful)
        signal.signal(signal.SIGQUIT, lambda *_: os._exit(0))
        # Signals meant for the master (a whole process group or cgroup may get them) must
        # not stop (SIGTTIN/SIGTTOU's default) or kill (SIGUSR1/2's default) a worker.
        for sig in (signal.SIGTTIN, signal.SIGTTOU, signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(sig, signal.SIG_IGN)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        signal.set_wakeup_fd(self._wake_w)
        self.poller.register(self._wake_r, None)
        self._set_accepting(True)
        pool = [threading.Thread(target=self._thread_main, args=(core,), daemon=True,
                                 name=f"core-{core}") for core in range(self.threads)]
        if self.threads > 1:
            for t in pool:
                t.start()
        try:
            self._loop()
        finally:
            if self.threads > 1:
                for _ in pool:
                    self._work.put(None)
                for t in pool:
                    t.join()
                while not self._returned.empty():
                    self._finish(self._returned.get())
            for conn in self.ready + list(self.idle.values()):
                self._finish(conn)
        return 0

    def stopping(self) -> bool:
        return self.stop_requested

    def _graceful(self, signum: int, frame: Any) -> None:
        self.stop_requested = True

    def _set_accepting(self, on: bool) -> None:
        if on == self._accepting:
            return
        self._accepting = on
        for listener in self.listeners:
            if on:
                self.poller.register(listener.sock.fileno(), listener, exclusive=True)
            else:
                self.poller.unregister(listener.sock.fileno())

    # -- the loop ------------------------------------------------------------------------
    def _loop(self) -> None:
        last_sweep = time.monotonic()
        single = self.threads == 1
        while not self.stop_requested:
            # Connections with a buffered request must not wait for a poll timeout.
            for data in self.poller.poll(0 if self.ready else 1.0):
                if data is None:
                    self._drain_wakeups()
                elif isinstance(data, Listener):
                    if self._accepting:
                        self._accept(data)
                elif single:
                    self._serve_registered(data)
                else:
                    self._unidle(data)
                    self._dispatch(data)
            if self.ready:
                ready, self.ready = self.ready, []
                for conn in ready:
                    self._dispatch(conn)
            now = time.monotonic()
            if now - last_sweep >= 1.0:
                last_sweep = now
                self._sweep(now)
                if os.getppid() != self.master_pid:
                    write_line(f"worker {self.worker_id} (pid: {os.getpid()}): the master is "
                               f"gone; finishing and exiting")
                    self.stop_requested = True
        self._set_accepting(False)

    def _drain_wakeups(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        while True:
            try:
                conn = self._returned.get_nowait()
            except queue.Empty:
                break
            self._park(conn)
        if self.threads > 1:
            self._set_accepting(self._free > 0 and not self.stop_requested)

    def _accept(self, listener: Listener) -> None:
        try:
            sock, peer = listener.sock.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return  # another worker took it
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                # The listener stays readable: without a pause we would spin on it.
                write_line(f"worker {self.worker_id}: accept() on {listener.name} failed: "
                           f"{exc.strerror}; not accepting for {_ACCEPT_PAUSE} s")
                self._set_accepting(False)
                self._accept_paused_until = time.monotonic() + _ACCEPT_PAUSE
            else:
                write_line(f"worker {self.worker_id}: accept() on {listener.name} failed: {exc}")
            return
        sock.setblocking(False)
        if sock.family != socket.AF_UNIX:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = Connection(sock, peer, listener, self.socket_timeout)
        conn.idle_since = time.monotonic()
        self._dispatch(conn)

    def _dispatch(self, conn: Connection) -> None:
        if self.threads == 1:
            self._park(conn, self.serve(conn))
            return
        with self._lock:
            self._free -= 1
            if self._free <= 0:
                self._set_accepting(False)
        self._work.put(conn)

    def _thread_main(self, core: int) -> None:
        threading.current_thread().core_id = core  # type: ignore[attr-defined]
        while True:
            conn = self._work.get()
            if conn is None:
                return
            try:
                if self.serve(conn) is IDLE:
                    self._returned.put(conn)
            finally:
                with self._lock:
                    self._free += 1
                try:
                    os.write(self._wake_w, b"\0")
                except BlockingIOError:
                    pass

    # -- waiting connections -------------------------------------------------------------
    def _park(self, conn: Connection, result: object = IDLE) -> None:
        """After serve(): wait for more bytes, or queue a buffered request (pipelining)."""
        if result is not IDLE:
            return
        if self.stop_requested:
            self._finish(conn)
        elif conn.has_request:
            self.ready.append(conn)
        else:
            if not conn.buf:
                conn.idle_since = time.monotonic()
            self.idle[conn.fd] = conn
            self.poller.register(conn.fd, conn)

    def _serve_registered(self, conn: Connection) -> None:
        """One thread: no poll runs while a connection is served, so it stays registered —
        two epoll_ctl calls fewer per keep-alive request."""
        result = self.serve(conn)
        if result is IDLE and not conn.has_request and not self.stop_requested:
            if not conn.buf:
                conn.idle_since = time.monotonic()
            return
        self._unidle(conn)
        self._park(conn, result)

    def _unidle(self, conn: Connection) -> None:
        self.poller.unregister(conn.fd)
        del self.idle[conn.fd]

    def _sweep(self, now: float) -> None:
        if not self._accepting and self._accept_paused_until and \
                now >= self._accept_paused_until:
            self._accept_paused_until = 0.0
            self._set_accepting(self.threads == 1 or self._free > 0)
        for conn in list(self.idle.values()):
            # A started head gets socket-timeout in all, not per byte (slow-loris); a quiet
            # keep-alive connection gets http-keepalive.
            if conn.buf or not conn.requests:
                limit = self.socket_timeout
            else:
                limit = self.keepalive_timeout
            if now - conn.idle_since > limit:
                self._unidle(conn)
                if conn.buf:
                    self._refuse(conn, ProtocolError(408, "the request head did not arrive "
                                                     "within socket-timeout", "socket-timeout"))
                conn.close()

    def _finish(self, conn: Connection) -> None:
        """Stopping: a request that already arrived is answered, never dropped."""
        if conn.fd in self.idle:
            self._unidle(conn)
        try:
            if conn.has_request or conn.sock.recv(1, socket.MSG_PEEK):
                self.serve(conn)
        except OSError:
            pass
        conn.close()

    # -- one connection ------------------------------------------------------------------
    def serve(self, conn: Connection) -> object:
        """Serve the requests ``conn`` has; IDLE when it waits for more bytes."""
        try:
            return self._serve(conn)
        except Exception:
            # A bug of ours must cost one connection, not the worker (or a pool thread).
            write_line(f"worker {self.worker_id}: internal error while serving "
                       f"{conn.remote_addr or 'a unix socket client'}:\n"
                       + traceback.format_exc().rstrip())
            conn.close()
            return None

    def _serve(self, conn: Connection) -> object:
        parse = _PARSERS[conn.listener.protocol]
        limit = self.buffer_size
        handler = self.handler
        for _ in range(_BURST):
            try:
                while True:
                    parsed = parse(conn.buf, limit) if conn.buf else None
                    if parsed is not None:
                        break
                    # Never wait here: a slow or partial head goes back to the poller.
                    if not self._ready(conn):
                        conn.has_request = False
                        return IDLE
            except ProtocolError as err:
                self._refuse(conn, err)
                conn.close()
                return None
            except ClientGone:
                conn.close()
                return None
            req, used = parsed
            del conn.buf[:used]
            conn.requests += 1
            if not handler.serve(conn, req) or self.stop_requested:
                conn.close()
                return None
            if not conn.buf:
                conn.has_request = False
                return IDLE
        # A long pipeline: let the others have a turn; the rest is already buffered.
        conn.has_request = True
        return IDLE

    def _ready(self, conn: Connection) -> bool:
        """Read what has arrived, without waiting; False when nothing has."""
        try:
            data = conn.sock.recv(65536)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if not data:
            raise ClientGone("closed")
        conn.buf += data
        return True

    def _refuse(self, conn: Connection, err: ProtocolError) -> None:
        self.handler.log.protocol_error(conn, err)
        try:
            conn.sendall(http.error_response(err.status, err.message))
        except OSError:
            pass
