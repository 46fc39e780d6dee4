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
import struct
import threading
import time
import traceback
from typing import Any

from . import http, uwsgi_protocol
from .connection import ClientGone, Connection
from .logging import core_id, write_line
from .master import EXIT_RECYCLED
from .request import ProtocolError
from .signals import Inbox
from .sockets import HTTP, Listener
from .wsgi import Harakiri

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
    def __init__(self, *, worker_id: int, listeners: list[Listener], handler: Any, cfg: Any,
                 master_pid: int, slot: int = 0, scoreboard: Any = None,
                 report_fd: int | None = None) -> None:
        self.worker_id = worker_id
        self.listeners = listeners
        self.handler = handler
        self.threads = cfg.threads
        self.socket_timeout = cfg.socket_timeout
        self.keepalive_timeout = cfg.http_keepalive
        self.buffer_size = cfg.buffer_size
        self.master_pid = master_pid
        self.slot = slot
        self.scoreboard = scoreboard
        self.report_fd = report_fd
        self.exit_code = 0
        self.started = time.monotonic()
        self.served = 0
        self._served_at_sweep = 0
        self._quiet_sweeps = 0
        # uWSGI: worker N recycles at max-requests + (N - 1) * max-requests-delta.
        self.max_requests = (cfg.max_requests + (worker_id - 1) * cfg.max_requests_delta
                             if cfg.max_requests else 0)
        self.min_lifetime = cfg.min_worker_lifetime or 0
        self.rss_limit = (cfg.reload_on_rss or 0) << 20
        self.as_limit = (cfg.reload_on_as or 0) << 20
        self.harakiri = cfg.harakiri or 0
        self.in_flight: dict[int, float] = {}  # thread ident -> request start (time.time)
        self._flight_lock = threading.Lock()
        self._interrupted: set[int] = set()  # pool threads sent a Harakiri
        # The uwsgi module (compat/runtime.py) sets these: set_user_harakiri() deadlines
        # (thread ident -> time.time()) and where the master's signals arrive.
        self.user_harakiri: dict[int, float] = {}
        self.end_user_harakiri: Any = None
        self.inbox: Inbox | None = None
        self.stop_requested = False
        self.idle: dict[int, Connection] = {}  # registered, waiting for bytes
        self.ready: list[Connection] = []  # a complete request is already buffered
        self.poller = Poller()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._returned: queue.SimpleQueue[Connection] = queue.SimpleQueue()
        self._work: queue.SimpleQueue[Connection | None] = queue.SimpleQueue()
        self._free = self.threads
        self._lock = threading.Lock()
        self._accepting = False
        self._accept_paused_until = 0.0

    # -- lifecycle -----------------------------------------------------------------------
    def run(self) -> int:
        _tune_malloc()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._graceful)
        signal.signal(signal.SIGQUIT, lambda *_: os._exit(0))
        # Signals meant for the master (a whole process group or cgroup may get them) must
        # not stop (SIGTTIN/SIGTTOU's default) or kill (SIGUSR1/2's default) a worker.
        for sig in (signal.SIGTTIN, signal.SIGTTOU, signal.SIGUSR1):
            signal.signal(sig, signal.SIG_IGN)
        signal.signal(signal.SIGUSR2, self._harakiri)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        signal.set_wakeup_fd(self._wake_w)
        self.poller.register(self._wake_r, None)
        if self.inbox is not None:
            self.poller.register(self.inbox.fd, self.inbox)
        self._set_accepting(True)
        self.handler.begin = self.request_begins
        self.handler.end = self.request_ends
        self._report(os.getpid())  # accepting: a reload may now stop my predecessor
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
                    self._park(self._returned.get())
            self._wind_down()
        return self.exit_code

    def _wind_down(self, grace: float = 1.0) -> None:
        """Stopping: a keep-alive client in mid-conversation gets its next request answered
        (with Connection: close) rather than a connection closed under its feet; only the
        connections still quiet after ``grace`` seconds are closed unanswered."""
        for conn in self.ready:
            self._finish(conn)
        self.ready = []
        deadline = time.monotonic() + grace
        while self.idle:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for data in self.poller.poll(min(left, 0.1)):
                if isinstance(data, Connection):
                    self._finish(data)
                elif data is None:
                    self._drain_wakeups()
        for conn in list(self.idle.values()):
            self._unidle(conn)
            conn.close()

    def stopping(self) -> bool:
        return self.stop_requested

    def _report(self, value: int) -> None:
        if self.report_fd is not None:
            try:
                os.write(self.report_fd, struct.pack("<i", value))
            except OSError:
                pass

    def recycle(self, why: str) -> None:
        """Finish what is in flight (responses say Connection: close), then exit; the
        master forks the replacement as soon as it reads the report."""
        if self.stop_requested:
            return
        write_line(f"worker {self.worker_id} (pid: {os.getpid()}) recycled: {why}")
        self.stop_requested = True
        self.exit_code = EXIT_RECYCLED
        self._report(-os.getpid())

    # -- per request (called by the handler) ---------------------------------------------
    def request_begins(self, start: float) -> None:
        with self._flight_lock:
            self.in_flight[threading.get_ident()] = start
            if self.scoreboard is not None:
                self.scoreboard.busy(self.slot, min(self.in_flight.values()))
                self.scoreboard.core_busy(self.slot, core_id(), start)
        self.served += 1
        # Decided before the response is sent, so that it says Connection: close and no
        # keep-alive client races a closing socket.
        if self.max_requests and self.served >= self.max_requests and self._old_enough():
            self.recycle(f"max-requests reached ({self.served} requests)")
        elif (self.rss_limit or self.as_limit) and self._old_enough():
            rss, vsz = _memory()
            if self.rss_limit and rss >= self.rss_limit:
                self.recycle(f"reload-on-rss: {rss >> 20} MB")
            elif self.as_limit and vsz >= self.as_limit:
                self.recycle(f"reload-on-as: {vsz >> 20} MB")

    def request_ends(self) -> None:
        ident = threading.get_ident()
        with self._flight_lock:
            self.in_flight.pop(ident, None)
            if self.scoreboard is not None:
                self.scoreboard.busy(self.slot, min(self.in_flight.values(), default=0.0))
                self.scoreboard.core_busy(self.slot, core_id(), 0.0)
            if ident in self._interrupted:  # the request ended first: cancel the pending raise
                self._interrupted.discard(ident)
                _raise_in_thread(ident, None)
        if ident in self.user_harakiri:
            self.end_user_harakiri(ident)

    def _old_enough(self) -> bool:
        return time.monotonic() - self.started >= self.min_lifetime

    def _harakiri(self, signum: int, frame: Any) -> None:
        """The master says a request ran past harakiri: interrupt it where it is stuck, so
        its traceback is logged, the client gets a 504 and close() still runs."""
        user = self.user_harakiri
        if not self.harakiri and not user:
            return  # a stray SIGUSR2 (e.g. sent to the whole cgroup) interrupts nothing
        now = time.time()
        main = threading.main_thread().ident
        stuck = dict(self.in_flight)
        stuck.update((ident, 0.0) for ident in list(user) if ident not in stuck)
        for ident, start in stuck.items():
            late = self.harakiri and start and now - start >= self.harakiri - 0.05
            if not late and not user.get(ident, now + 1) <= now + 0.05:
                continue
            self.recycle("harakiri")
            if ident == main:
                # the limit counted from the request's start (set_user_harakiri's, if sooner)
                raise Harakiri(self.harakiri if late else round(user[ident] - (start or now)))
            if self._flight_lock.acquire(blocking=False):  # never wait in a signal handler
                try:
                    if ident in self.in_flight:
                        self._interrupted.add(ident)
                        _raise_in_thread(ident, Harakiri)
                finally:
                    self._flight_lock.release()

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
            for data in self.poller.poll(0 if self.ready else 0.5):
                if data is None:
                    self._drain_wakeups()
                elif isinstance(data, Listener):
                    if self._accepting:
                        self._accept(data)
                elif isinstance(data, Inbox):
                    # uwsgi signal handlers: between requests, in the main thread
                    if not data.run():
                        self.poller.unregister(data.fd)
                        self.inbox = None
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
            if now - last_sweep >= 0.5:
                last_sweep = now
                self._sweep(now)
                # Backs up the kernel's parent-death signal, which does not always arrive.
                if os.getppid() != self.master_pid:
                    write_line(f"worker {self.worker_id} (pid: {os.getpid()}): the master is "
                               f"gone; finishing and exiting")
                    self.stop_requested = True
        self._set_accepting(False)
        if self.inbox is not None:
            self.poller.unregister(self.inbox.fd)

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
        if conn.has_request:
            self.ready.append(conn)
        else:
            _went_quiet(conn)
            self.idle[conn.fd] = conn
            self.poller.register(conn.fd, conn)

    def _serve_registered(self, conn: Connection) -> None:
        """One thread: no poll runs while a connection is served, so it stays registered —
        two epoll_ctl calls fewer per keep-alive request."""
        result = self.serve(conn)
        if result is IDLE and not conn.has_request:
            _went_quiet(conn)
            return
        self._unidle(conn)
        self._park(conn, result)

    def _unidle(self, conn: Connection) -> None:
        self.poller.unregister(conn.fd)
        del self.idle[conn.fd]

    def _sweep(self, now: float) -> None:
        if self.served != self._served_at_sweep:
            self._served_at_sweep = self.served
            self._quiet_sweeps = 0
        else:
            self._quiet_sweeps += 1
            if self._quiet_sweeps == 2:  # a second without requests: give freed memory back
                _release_memory()
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
        except (Exception, Harakiri):
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
                if conn.buf and conn.listener.protocol != HTTP:
                    # From nginx this is a broken upstream connection: say so.
                    write_line(f"worker {self.worker_id}: {conn.remote_addr or 'unix'}: the "
                               f"peer closed in the middle of a uwsgi packet "
                               f"({len(conn.buf)} bytes received)")
                conn.close()
                return None
            req, used = parsed
            del conn.buf[:used]
            conn.requests += 1
            if not handler.serve(conn, req):
                conn.close()
                return None
            # Stopping after a keep-alive response: the client may be sending its next
            # request right now, so the connection waits (see _wind_down) instead of
            # being closed under it.
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


_TRIM_THRESHOLD = 16 << 20


def _tune_malloc() -> None:
    """glibc gives the top of the heap back to the system as soon as more than 128 KB of it
    is free: a worker reading 64 KB request bodies then grows and shrinks its heap on every
    request, and each new page is a fault the kernel zeroes (measured: uploads 15-20 % slower,
    depending on heap layout). Keep up to 16 MB while busy; ``_release_memory`` still hands
    it all back after a quiet second."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-1, _TRIM_THRESHOLD)  # -1: M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


def _release_memory() -> None:
    """glibc keeps freed heap pages (request bodies, Django's temporaries) for reuse; an
    idle worker hands them back to the system, once per quiet spell."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _went_quiet(conn: Connection) -> None:
    """Nothing buffered: the wait for the next request starts (keep-alive clock), and the
    connection keeps no large buffer (a bytearray keeps its allocation when emptied;
    thousands of idle keep-alive clients must not each hold an upload's worth). A partial
    head keeps its clock: the head has socket-timeout in all."""
    if not conn.buf:
        conn.idle_since = time.monotonic()
        if conn.buf.__sizeof__() > 16384:
            conn.buf = bytearray()


def _memory() -> tuple[int, int]:
    """(rss, vsz) of this process in bytes; /proc is a few microseconds, psutil elsewhere."""
    try:
        with open("/proc/self/statm", "rb") as f:
            vsz_pages, rss_pages = f.read().split()[:2]
        page = os.sysconf("SC_PAGE_SIZE")
        return int(rss_pages) * page, int(vsz_pages) * page
    except OSError:
        import psutil

        info = psutil.Process().memory_info()
        return info.rss, info.vms


def _raise_in_thread(ident: int, exc: type[BaseException] | None) -> None:
    """Raise ``exc`` in another thread at its next bytecode (a thread blocked in a system
    call only sees it when the call returns; the master's SIGKILL covers that case).
    ``None`` cancels a raise that has not happened yet."""
    import ctypes

    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(ident), ctypes.py_object(exc) if exc is not None else None)
