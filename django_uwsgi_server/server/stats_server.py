"""The stats server (``--stats``, ``--stats-http``) and the Prometheus endpoint
(``--metrics``), served by the master loop with non-blocking sockets.

Like uWSGI's, a raw stats connection gets the JSON document and is closed (the client sends
nothing); with ``stats-http`` the request is read first and the answer is an HTTP/1.0
response (``/metrics`` gives the Prometheus text there too). The master never waits on a
client: it accepts when select() says so, builds the document (under a millisecond), sends
what the socket takes; the rest goes out on later turns, and a client that does not read
within a few seconds is dropped. No thread: the master forks workers, and forking a
threaded process is unsafe.

Security (issue 5's rule): a TCP address that is not loopback is refused unless
``stats-allow-remote`` is set, and a unix socket file is created 0600 unless
``stats-chmod`` says otherwise (the stats reveal pids, paths, memory and traffic).
"""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import socket
import time
from collections.abc import Callable
from typing import Any

from .sockets import Address, AddressError, BindError, Listener, bind, parse_address

RAW, HTTP, METRICS = "raw", "http", "metrics"
_MAX_CONNECTIONS = 64
_REQUEST_WAIT = 1.0  # an HTTP client that sent no request by then gets the default page
_SEND_WAIT = 5.0
_MAX_HEAD = 8192


class StatsConfigError(ValueError):
    """A stats/metrics option that cannot be honoured; the message names the option."""


def stats_address(text: str, option: str, allow_remote: bool) -> Address:
    """Parse a stats/metrics address; ``:PORT`` means 127.0.0.1 here (not every interface,
    as for the serving sockets), and a non-loopback host needs ``stats-allow-remote``."""
    text = text.strip()
    if text.startswith(":") and text[1:].isdigit():
        text = "127.0.0.1" + text
    try:
        address = parse_address(text)
    except AddressError as exc:
        raise StatsConfigError(f"{option}: {exc}") from None
    if address.fd >= 0:  # parse_address allows it for the serving sockets only
        raise StatsConfigError(f"{option} {text}: inherited sockets are for serving; give "
                               f"{option} a host:port or a unix socket path")
    if address.family != socket.AF_UNIX and not allow_remote:
        try:
            loopback = ipaddress.ip_address(address.host).is_loopback
        except ValueError:
            loopback = address.host == "localhost"
        if not loopback:
            raise StatsConfigError(
                f"{option} {text}: not a loopback address; the stats show every worker's "
                f"pid, memory and requests to whoever connects — set stats-allow-remote = "
                f"true to serve them on {address.host}")
    return address


class _Client:
    __slots__ = ("sock", "kind", "inbox", "outbox", "deadline", "answered")

    def __init__(self, sock: socket.socket, kind: str) -> None:
        self.sock, self.kind = sock, kind
        self.inbox = b""
        self.outbox = b""
        self.answered = False
        self.deadline = time.monotonic() + _REQUEST_WAIT


class StatsServer:
    """Listening endpoints and their clients; the master calls ``fds``/``wfds`` before its
    select() and ``handle`` after it."""

    def __init__(self, endpoints: list[tuple[Listener, str]], build: Callable[[], dict],
                 metrics: Callable[[dict], str], minified: bool) -> None:
        self.endpoints = endpoints
        self.build = build
        self.metrics = metrics
        self.minified = minified
        self.clients: dict[int, _Client] = {}
        self._by_fd = {listener.sock.fileno(): (listener, kind) for listener, kind in endpoints}
        self._files: dict[str, int] = {}
        for listener, _ in endpoints:
            path = listener.address.path
            if path and not path.startswith("@"):
                try:
                    self._files[path] = os.stat(path).st_ino
                except OSError:
                    pass

    # -- master loop hooks ---------------------------------------------------------------
    def fds(self) -> list[int]:
        return [*self._by_fd, *(fd for fd, c in self.clients.items() if not c.answered)]

    def wfds(self) -> list[int]:
        return [fd for fd, c in self.clients.items() if c.outbox]

    def handle(self, readable: list[int], writable: list[int]) -> None:
        for fd in readable:
            if fd in self._by_fd:
                self._accept(*self._by_fd[fd])
            elif fd in self.clients:
                self._read(self.clients[fd])
        for fd in writable:
            if fd in self.clients:
                self._send(self.clients[fd])
        now = time.monotonic()
        for client in list(self.clients.values()):
            if client.deadline <= now:
                if client.answered:
                    self._close(client)  # not reading: drop it
                else:
                    self._answer(client, "/")

    def close(self) -> None:
        """The master exits: drop the clients, close and remove the unix socket files."""
        for client in list(self.clients.values()):
            self._close(client)
        for path, ino in self._files.items():
            try:
                if os.stat(path).st_ino == ino:  # not replaced by another server's since
                    os.unlink(path)
            except OSError:
                pass
        for listener, _ in self.endpoints:
            listener.sock.close()

    def close_in_child(self) -> None:
        """A forked worker must not hold the master's stats sockets."""
        for fd in [*self._by_fd, *self.clients]:
            try:
                os.close(fd)
            except OSError:
                pass

    def inheritable(self) -> list[list[Any]]:
        """What a reload's re-exec passes on (see ``inherit``); marks the fds inheritable."""
        state = []
        for listener, kind in self.endpoints:
            os.set_inheritable(listener.sock.fileno(), True)
            state.append([listener.sock.fileno(), kind, listener.option, str(listener.address)])
        return state

    def not_inheritable(self) -> None:
        for listener, _ in self.endpoints:
            os.set_inheritable(listener.sock.fileno(), False)

    # -- connections ---------------------------------------------------------------------
    def _accept(self, listener: Listener, kind: str) -> None:
        for _ in range(16):
            try:
                sock, _ = listener.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # ECONNABORTED, EMFILE...: the next turn tries again
                return
            if len(self.clients) >= _MAX_CONNECTIONS:
                sock.close()
                continue
            sock.setblocking(False)
            client = _Client(sock, kind)
            self.clients[sock.fileno()] = client
            if kind == RAW:
                self._answer(client, "")

    def _read(self, client: _Client) -> None:
        try:
            data = client.sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close(client)
            return
        client.inbox += data
        if b"\r\n\r\n" in client.inbox or b"\n\n" in client.inbox or \
                len(client.inbox) > _MAX_HEAD:
            line = client.inbox.split(b"\n", 1)[0].decode("latin-1").split()
            self._answer(client, line[1] if len(line) > 1 else "/")

    def _answer(self, client: _Client, path: str) -> None:
        client.answered = True
        client.deadline = time.monotonic() + _SEND_WAIT
        try:
            doc = self.build()
        except Exception as exc:  # never let a stats request take the master down
            body, ctype, status = f"stats unavailable: {exc}\n".encode(), "text/plain", "500"
        else:
            if client.kind == METRICS or path.split("?")[0] == "/metrics":
                from .metrics import CONTENT_TYPE

                body, ctype, status = self.metrics(doc).encode(), CONTENT_TYPE, "200"
            else:
                body = (json.dumps(doc, separators=(",", ":")) if self.minified
                        else json.dumps(doc, indent=1)).encode()
                ctype, status = "application/json", "200"
        if client.kind == RAW:
            client.outbox = body
        else:
            client.outbox = (f"HTTP/1.0 {status} {'OK' if status == '200' else 'Error'}\r\n"
                             f"Connection: close\r\n"
                             f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n"
                             ).encode() + body
        self._send(client)

    def _send(self, client: _Client) -> None:
        try:
            sent = client.sock.send(client.outbox)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(client)
            return
        client.outbox = client.outbox[sent:]
        if not client.outbox:
            self._close(client)

    def _close(self, client: _Client) -> None:
        self.clients.pop(client.sock.fileno(), None)
        try:
            if client.kind != RAW:  # the request was read: a plain close sends FIN
                client.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        client.sock.close()


def bind_endpoints(cfg: Any, backlog: int = 64) -> list[tuple[Listener, str]]:
    """Bind ``stats`` and ``metrics`` as configured (raises StatsConfigError or BindError)."""
    wanted = []
    if cfg.stats:
        wanted.append(("stats", cfg.stats, HTTP if cfg.stats_http else RAW))
    if cfg.metrics:
        wanted.append(("metrics", cfg.metrics, METRICS))
    mode = 0o600 if cfg.stats_chmod is None else cfg.stats_chmod
    bound: list[tuple[Listener, str]] = []
    try:
        for option, text, kind in wanted:
            address = stats_address(text, option, cfg.stats_allow_remote)
            bound.append((bind(address, kind, option, backlog, mode), kind))
    except BindError as exc:
        for listener, _ in bound:
            listener.sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise BindError(exc.errno, f"{exc.strerror} (is another server's stats "
                                       f"there?)") from None
        raise
    return bound


def inherit(state: list[list[Any]]) -> list[tuple[Listener, str]]:
    """The endpoints a reload's re-exec passed on (``StatsServer.inheritable``)."""
    endpoints = []
    for fd, kind, option, address in state:
        sock = socket.socket(fileno=fd)
        sock.setblocking(False)
        os.set_inheritable(fd, False)
        endpoints.append((Listener(sock, parse_address(address), kind, option), kind))
    return endpoints


_prebound: list[tuple[Listener, str]] | None = None


def prebind(cfg: Any) -> None:
    """Bind the stats/metrics endpoints with the serving sockets, before the banner, so a
    refused or busy address is the startup error it should be; ``start`` takes them."""
    global _prebound
    if cfg.stats or cfg.metrics:
        _prebound = bind_endpoints(cfg)


def release() -> None:
    """Startup failed after ``prebind``: close the endpoints, remove their socket files."""
    global _prebound
    if _prebound is not None:
        StatsServer(_prebound, dict, str, False).close()
        _prebound = None


def _user_locks() -> list[dict[str, int]]:
    """``uwsgi.lock(n)``'s locks as uWSGI lists them: their names and holders' pids."""
    from ..compat import runtime

    if runtime.RUNTIME is None:
        return []
    locks = runtime.RUNTIME.locks
    return [{f"user {n}": locks.holder(n)} for n in range(locks.count)]


def start(cfg: Any, get_master: Callable[[], Any]) -> StatsServer | None:
    """The stats server for this master (None when neither stats nor metrics is set): the
    endpoints a reload passed on, or freshly bound ones. Raises StatsConfigError/BindError."""
    from . import reload as reexec
    from . import stats_doc
    from .metrics import render
    from .sockets import somaxconn

    global _prebound
    state = reexec.inherited()
    if state is not None and state.get("stats"):
        endpoints = inherit(state["stats"])
    elif _prebound is not None:
        endpoints, _prebound = _prebound, None
    elif cfg.stats or cfg.metrics:
        endpoints = bind_endpoints(cfg)
    else:
        return None
    backlog = min(cfg.listen, somaxconn())
    from .logging import write_line

    for listener, kind in endpoints:
        what = {RAW: "Stats server", HTTP: "Stats server (HTTP)", METRICS: "Metrics server"}
        write_line(f"*** {what[kind]} enabled on {listener.name} ***")

    def build() -> dict:
        master = get_master()
        procs = [stats_doc.Proc(p.wid, p.pid, p.slot, p.state == "serving")
                 for p in list(master.procs.values())]
        return stats_doc.document(board=master.scoreboard, procs=procs,
                                  listeners=master.listeners, workers=master.target,
                                  threads=cfg.threads, master_pid=master.pid, backlog=backlog,
                                  locks=_user_locks())

    def metrics(doc: dict) -> str:
        return render(doc, stats_doc.histogram(get_master().scoreboard))

    return StatsServer(endpoints, build, metrics, bool(cfg.stats_minified))
