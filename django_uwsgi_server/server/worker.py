"""A worker process: accept connections, read request heads, run the app, keep alive.

One selector per worker watches the listening sockets and the idle keep-alive connections,
so an idle client never holds the worker (uWSGI's http11-socket serves one keep-alive
client until it leaves). A connection is served while it has a request; when it goes quiet
it goes back to the selector. With ``threads > 1`` the main thread only waits and
dispatches; a pool of threads serves.

Signals: SIGTERM, SIGINT and SIGHUP stop the worker gracefully (in-flight requests finish,
then idle connections are closed); SIGQUIT stops it at once.
"""

from __future__ import annotations

import os
import queue
import selectors
import signal
import socket
import threading
import time
from typing import Any

from . import http, uwsgi_protocol
from .connection import ClientGone, Connection
from .logging import write_line
from .request import ProtocolError
from .sockets import HTTP, Listener

IDLE = "idle"  # serve() result: the connection waits for its next request
_PARSERS = {HTTP: http.parse_head, "uwsgi": uwsgi_protocol.parse_packet}
# Requests served back to back on one connection before it yields to the others.
_BURST = 16


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
        self.idle: dict[int, Connection] = {}
        self.sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._returned: queue.SimpleQueue[Connection] = queue.SimpleQueue()
        self._work: queue.SimpleQueue[Connection | None] = queue.SimpleQueue()
        self._free = threads
        self._lock = threading.Lock()
        self._accepting = False

    # -- lifecycle -----------------------------------------------------------------------
    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._graceful)
        signal.signal(signal.SIGQUIT, lambda *_: os._exit(0))
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        signal.set_wakeup_fd(self._wake_w)
        self.sel.register(self._wake_r, selectors.EVENT_READ, None)
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
                    self._finish_idle(self._returned.get())
            for conn in list(self.idle.values()):
                self._finish_idle(conn)
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
                self.sel.register(listener.sock, selectors.EVENT_READ, listener)
            else:
                self.sel.unregister(listener.sock)

    # -- the loop ------------------------------------------------------------------------
    def _loop(self) -> None:
        last_sweep = time.monotonic()
        while not self.stop_requested:
            events = self.sel.select(1.0)
            for key, _ in events:
                data = key.data
                if data is None:
                    self._drain_wakeups()
                elif isinstance(data, Listener):
                    if self._accepting:
                        self._accept(data)
                else:
                    self._unidle(data)
                    self._dispatch(data)
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
            self._make_idle(conn)
        if self.threads > 1:
            self._set_accepting(self._free > 0 and not self.stop_requested)

    def _accept(self, listener: Listener) -> None:
        try:
            sock, peer = listener.sock.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return  # another worker took it
        except OSError as exc:
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
            if self.serve(conn) is IDLE:
                self._make_idle(conn)
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
            result = self.serve(conn)
            with self._lock:
                self._free += 1
            if result is IDLE:
                self._returned.put(conn)
            try:
                os.write(self._wake_w, b"\0")
            except BlockingIOError:
                pass

    # -- idle connections ----------------------------------------------------------------
    def _make_idle(self, conn: Connection) -> None:
        if self.stop_requested:
            self._finish_idle(conn)
            return
        conn.idle_since = time.monotonic()
        self.idle[conn.fd] = conn
        self.sel.register(conn.sock, selectors.EVENT_READ, conn)

    def _unidle(self, conn: Connection) -> None:
        self.sel.unregister(conn.sock)
        del self.idle[conn.fd]

    def _sweep(self, now: float) -> None:
        for conn in list(self.idle.values()):
            limit = self.keepalive_timeout if conn.requests else self.socket_timeout
            if now - conn.idle_since > limit:
                self._unidle(conn)
                conn.close()

    def _finish_idle(self, conn: Connection) -> None:
        """Stopping: a request that already arrived is answered, never dropped."""
        if conn.fd in self.idle:
            self._unidle(conn)
        try:
            if conn.sock.recv(1, socket.MSG_PEEK):
                self.serve(conn)
        except OSError:
            pass
        conn.close()

    # -- one connection ------------------------------------------------------------------
    def serve(self, conn: Connection) -> object:
        """Serve requests on ``conn`` while it has them; IDLE when it should wait."""
        parse = _PARSERS[conn.listener.protocol]
        limit = self.buffer_size
        handler = self.handler
        for _ in range(_BURST):
            try:
                req = None
                while True:
                    if not conn.buf:
                        if not self._ready(conn):
                            return IDLE
                        continue
                    parsed = parse(conn.buf, limit)
                    if parsed is not None:
                        req, used = parsed
                        del conn.buf[:used]
                        break
                    if not conn.fill():
                        conn.close()  # the client left in the middle of a request head
                        return None
            except ProtocolError as err:
                self._refuse(conn, err)
                conn.close()
                return None
            except ClientGone:
                conn.close()
                return None
            conn.requests += 1
            if not handler.serve(conn, req) or self.stop_requested:
                conn.close()
                return None
            if not conn.buf:
                return IDLE
        return IDLE  # pipelined requests left: back to the selector, for fairness

    def _ready(self, conn: Connection) -> bool:
        """Between requests, read without waiting: a quiet connection goes idle."""
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
