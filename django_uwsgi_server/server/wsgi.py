"""Calling the WSGI application for one request, exactly per PEP 3333.

The one rule this module exists for: the response iterable's ``close()`` is called exactly
once on every path (normal end, exception while iterating, client gone, HEAD, keep-alive,
file_wrapper), so Django's ``request_finished`` fires once per request and no database
connection leaks (Django's "How to use Django with uWSGI" warning).
"""

from __future__ import annotations

import os
import socket
import sys
import time
import traceback
from email.utils import formatdate
from typing import Any

from .body import FileWrapper, InputStream, read_chunked, spool
from .connection import ClientGone, Connection
from .http import STATUS_REASONS
from .request import ProtocolError, Request

# RFC 9110 §7.6.1: connection-specific headers are the server's business, not the app's.
HOP_BY_HOP = frozenset(("connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                        "te", "trailer", "transfer-encoding", "upgrade"))
NO_BODY_STATUS = frozenset((204, 304))
DRAIN_LIMIT = 1 << 20  # unread body bytes we discard to keep a connection; beyond, we close
SERVER_ERROR = (b"A server error occurred.  Please contact the administrator.\n")
# Only direct HTTP gets Date and Server: nginx drops an upstream's (uwsgi_hide_header).
SERVER_HEADER = b"Server: django-uwsgi-server\r\n"


class Harakiri(BaseException):
    """Raised in a request that ran past ``harakiri`` seconds.

    A BaseException, so that Django (which turns every Exception of a view into a 500) and
    the app's own ``except Exception`` let it through to us.
    """


class _DateCache:
    """The ``Date`` header line, rebuilt at most once a second (not per request)."""

    __slots__ = ("second", "line")

    def __init__(self) -> None:
        self.second = 0
        self.line = b""

    def get(self) -> bytes:
        now = int(time.time())
        if now != self.second:
            self.second = now
            self.line = b"Date: " + formatdate(now, usegmt=True).encode() + b"\r\n"
        return self.line


DATE = _DateCache()


class Exchange:
    """The state of one request/response: start_response, write(), framing and counters."""

    __slots__ = ("conn", "req", "handler", "http", "status", "code", "headers", "has_cl",
                 "content_length", "headers_sent", "chunked", "keep_alive", "sent", "head_bytes",
                 "header_count", "no_body", "via", "stream", "switches", "own_date", "own_server")

    def __init__(self, conn: Connection, req: Request, handler: Handler, http: bool) -> None:
        self.conn = conn
        self.req = req
        self.handler = handler
        self.http = http
        self.status: str | None = None
        self.code = 0
        self.headers: list[tuple[str, str]] = []
        self.has_cl = False
        self.content_length = 0
        self.headers_sent = False
        self.chunked = False
        self.keep_alive = req.keep_alive and http and handler.keepalive
        self.sent = 0  # body bytes written
        self.head_bytes = 0
        self.header_count = 0
        self.no_body = False
        self.via = ""
        self.stream: InputStream | None = None
        self.switches = 0
        self.own_date = False  # the app set Date / Server: ours are left out (RFC 9110)
        self.own_server = False

    # -- PEP 3333 callables --------------------------------------------------------------
    def start_response(self, status: str, headers: list, exc_info: Any = None) -> Any:
        if exc_info is not None:
            try:
                if self.headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response() called a second time without exc_info")
        if type(status) is not str:
            raise TypeError(f"status must be a str, not {type(status).__name__}")
        if len(status) < 4 or not status[:3].isdigit() or status[3] != " " or \
                "\n" in status or "\r" in status:
            raise ValueError(f"invalid status line {status[:80]!r}: expected '200 OK' style")
        clean = []
        has_cl = own_date = own_server = False
        deleted = self.handler.del_headers
        for name, value in headers:
            if type(name) is not str or type(value) is not str:
                raise TypeError(f"header {name!r}: names and values must be str")
            if "\n" in value or "\r" in value or "\0" in value or \
                    "\n" in name or "\r" in name or ":" in name:
                raise ValueError(f"header {name[:80]!r}: CR, LF or NUL are not allowed")
            lower = name.lower()
            if lower == "content-length":
                if not value.strip().isdigit():
                    raise ValueError(f"invalid Content-Length {value[:40]!r}")
                if has_cl:  # two lengths: clients would disagree on where the body ends
                    raise ValueError("the application set Content-Length twice")
                has_cl = True
                self.content_length = int(value)
            elif lower == "date":
                own_date = True
            elif lower == "server":
                own_server = True
            elif lower in HOP_BY_HOP:
                self.handler.warn_hop_by_hop(name)
                continue
            elif lower in deleted:  # del-header (never the framing: Content-Length stays)
                continue
            clean.append((name, value))
        code = int(status[:3])
        if has_cl and (code < 200 or code == 204):
            # RFC 9110 §8.6: never a Content-Length on 1xx and 204.
            clean = [(n, v) for n, v in clean if n.lower() != "content-length"]
            has_cl = False
        self.status = status
        self.code = code
        self.headers = clean
        self.has_cl = has_cl
        self.own_date = own_date
        self.own_server = own_server
        return self.write

    def write(self, data: bytes) -> None:
        if self.status is None:
            raise AssertionError("write() called before start_response()")
        if type(data) is not bytes:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise TypeError(f"response body chunks must be bytes, not {type(data).__name__}")
        head = b""
        if not self.headers_sent:
            if not data:
                return  # PEP 3333: headers wait for the first non-empty chunk
            head = self._head(None)  # sent together with the first chunk below
        if self.no_body or not data:
            if head:
                self.conn.sendall(head)
            return
        size = len(data)
        if self.has_cl:
            room = self.content_length - self.sent
            if size > room:
                self.handler.log_error(self.req, f"the app sent more than its Content-Length "
                                       f"({self.content_length}); the rest was cut")
                data = memoryview(data)[:room]
                size = room
                self.keep_alive = False
            self.conn.sendmsg([head, data])
        elif self.chunked:
            self.conn.sendmsg([head, b"%x\r\n" % size, data, b"\r\n"])
        else:
            self.conn.sendmsg([head, data])
        self.sent += size

    # -- framing -------------------------------------------------------------------------
    def _head(self, body_size: int | None) -> bytes:
        """Status line and headers, choosing the framing for the body that follows.

        ``body_size`` is the whole body's size when the server knows it before sending.
        """
        code = self.code
        self.no_body = no_body = (self.req.method == "HEAD" or code < 200
                                  or code in NO_BODY_STATUS)
        lines = [f"{n}: {v}\r\n" for n, v in self.headers]
        if not self.has_cl and body_size is not None and code >= 200 \
                and code not in NO_BODY_STATUS:
            self.has_cl = True
            self.content_length = body_size
            lines.append(f"Content-Length: {body_size}\r\n")
        if self.http:
            if not self.has_cl and not no_body:
                if self.req.version == "HTTP/1.1":
                    self.chunked = True
                    lines.append("Transfer-Encoding: chunked\r\n")
                else:
                    self.keep_alive = False  # HTTP/1.0: the end of the body is the close
            if self.handler.stopping() or (
                    self.stream is not None and not self.stream.reusable(DRAIN_LIMIT)):
                self.keep_alive = False
            text = "HTTP/1.1 " + self.status + "\r\n" + "".join(lines)
            head = text.encode("latin-1")
            if not self.own_date:
                head += DATE.get()
            if not self.own_server:
                head += SERVER_HEADER
            head += self.handler.extra_headers
            if not self.keep_alive:
                head += b"Connection: close\r\n"
            elif self.req.version == "HTTP/1.0":
                head += b"Connection: keep-alive\r\n"
        else:
            # uwsgi protocol: a raw status line, no framing of ours; the close ends the body.
            text = self.req.version + " " + self.status + "\r\n" + "".join(lines)
            head = text.encode("latin-1") + self.handler.extra_headers
        self.header_count = len(lines)
        head += b"\r\n"
        self.head_bytes = len(head)
        self.headers_sent = True
        return head

    def send_whole(self, body: bytes) -> None:
        """The whole body is known: one Content-Length, one syscall for head and body."""
        size = len(body)
        code = self.code
        if self.has_cl and size != self.content_length and not (
                self.req.method == "HEAD" or code < 200 or code in NO_BODY_STATUS):
            self.keep_alive = False
            if size > self.content_length:
                self.handler.log_error(self.req, f"the app sent more than its Content-Length "
                                       f"({self.content_length}); the rest was cut")
                body = body[: self.content_length]
            else:
                self.handler.log_error(self.req, f"the app sent {size} bytes, less than its "
                                       f"Content-Length ({self.content_length})")
            size = len(body)
        head = self._head(size)
        if self.no_body or not size:
            self.conn.sendall(head)
        elif size < 16384:
            self.conn.sendall(head + body)
        else:
            self.conn.sendmsg([head, body])
            self.sent = size
            return
        if not self.no_body:
            self.sent = size

    def send_file(self, wrapper: FileWrapper, fd: int) -> None:
        offset = 0
        try:
            offset = wrapper.filelike.tell()
        except (AttributeError, OSError):
            offset = os.lseek(fd, 0, os.SEEK_CUR)
        size = max(os.fstat(fd).st_size - offset, 0)
        if self.has_cl:
            size = min(size, self.content_length)
        head = self._head(size)
        if self.no_body:
            self.conn.sendall(head)
            return
        self.conn.sendmsg([head], socket.MSG_MORE)  # one packet with the file's first bytes
        self.via = " via sendfile() "
        self.sent = self.conn.sendfile(fd, offset, size)
        if self.sent < self.content_length:
            self.keep_alive = False

    def finish(self, result: Any) -> None:
        """Send the app's response iterable (close() is the caller's job)."""
        if self.status is None and not isinstance(result, (list, tuple)):
            # A generator app calls start_response on its first step.
            iterator = iter(result)
            first = b""
            for first in iterator:
                if first:
                    break
            self._require_start()
            self._stream_from(first, iterator)
            return
        self._require_start()
        if not self.headers_sent:
            if getattr(result, "streaming", True) is False:
                # Django's HttpResponse: its content is already one bytes object.
                self.send_whole(result.content)
                return
            if isinstance(result, FileWrapper):
                fd = result.fileno()
                if fd is not None:
                    self.send_file(result, fd)
                    return
            elif isinstance(result, (list, tuple)) and len(result) == 1:
                body = result[0]
                if not isinstance(body, bytes):
                    raise TypeError(f"response body chunks must be bytes, not "
                                    f"{type(body).__name__}")
                self.send_whole(body)
                return
        self._stream_from(b"", iter(result))

    def _require_start(self) -> None:
        if self.status is None:
            raise AssertionError("the application returned without calling start_response()")

    def _stream_from(self, first: bytes, iterator: Any) -> None:
        write = self.write
        if first:
            write(first)
        for chunk in iterator:
            self.switches += 1
            if chunk:
                write(chunk)
            elif type(chunk) is not bytes:
                raise TypeError(f"response body chunks must be bytes, not {type(chunk).__name__}")
        self.end()

    def end(self) -> None:
        if not self.headers_sent:
            self.send_whole(b"")  # checks an app Content-Length against the empty body
            return
        if self.chunked:
            self.conn.sendall(b"0\r\n\r\n")
        elif self.has_cl and self.sent < self.content_length and not self.no_body:
            self.handler.log_error(self.req, f"the app sent {self.sent} bytes, less than its "
                                   f"Content-Length ({self.content_length})")
            self.keep_alive = False

    def send_error(self, code: int, body: bytes) -> None:
        """An error page of ours, before any byte of the app's response was sent."""
        reason = STATUS_REASONS.get(code, b"Error").decode("latin-1")
        self.status = f"{code} {reason}"
        self.code = code
        self.headers = [("Content-Type", "text/plain; charset=utf-8")]
        self.has_cl = False
        self.chunked = False
        self.send_whole(body)


class Handler:
    """What a worker needs to serve requests: the app, the static environ, the log."""

    def __init__(self, app: Any, *, multithread: bool, multiprocess: bool, keepalive: bool,
                 buffer_size: int, limit_post: int, add_headers: list[str],
                 log: Any, stopping: Any, post_buffering: int = 0,
                 body_min_rate: int = 0, del_headers: list[str] | None = None) -> None:
        self.app = app
        self.del_headers = frozenset(h.strip().lower() for h in del_headers or ())
        self.post_buffering = post_buffering
        self.body_min_rate = body_min_rate
        self.keepalive = keepalive
        self.buffer_size = buffer_size
        self.limit_post = limit_post or None
        self.extra_headers = "".join(h.strip() + "\r\n" for h in add_headers).encode("latin-1")
        self.log = log
        self.stopping = stopping
        # Set by the worker: called when a request starts (with its start time) and ends.
        self.begin: Any = None
        self.end: Any = None
        self._warned: set[str] = set()
        self.base = {
            "wsgi.version": (1, 0),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": multithread,
            "wsgi.multiprocess": multiprocess,
            "wsgi.run_once": False,
            "wsgi.file_wrapper": FileWrapper,
            "SCRIPT_NAME": "",
        }
        self._listener_env: dict[int, dict[str, Any]] = {}

    def listener_environ(self, listener: Any) -> dict[str, Any]:
        """The environ part that only depends on the listening socket (built once)."""
        env = self._listener_env.get(id(listener))
        if env is None:
            env = dict(self.base)
            if listener.address.path:
                host, port = "localhost", "0"
            else:
                sockname = listener.sock.getsockname()
                host, port = sockname[0], str(sockname[1])
            env["SERVER_NAME"] = host
            env["SERVER_PORT"] = port
            self._listener_env[id(listener)] = env
        return env

    def warn_hop_by_hop(self, name: str) -> None:
        if name.lower() not in self._warned:
            self._warned.add(name.lower())
            self.log.error(f"the application set the hop-by-hop header {name!r}; "
                           f"it was dropped (RFC 9110 §7.6.1) — logged once per worker")

    def log_error(self, req: Request, message: str) -> None:
        env = req.environ
        self.log.error(f"{message} [{env.get('REQUEST_METHOD', '-')} "
                       f"{env.get('REQUEST_URI') or env.get('PATH_INFO', '-')}]")

    def serve(self, conn: Connection, req: Request) -> bool:
        """Run one request through the app; True when the connection may be reused."""
        start = time.time()
        if self.begin is not None:
            self.begin(start)
        try:
            return self._serve(conn, req, start)
        finally:
            if self.end is not None:
                self.end()

    def _serve(self, conn: Connection, req: Request, start: float) -> bool:
        http = conn.listener.protocol == "http"
        env = req.environ
        static = conn.environ
        if static is None:
            static = conn.environ = self.listener_environ(conn.listener)
        if http:
            env.update(static)
            env["REMOTE_ADDR"] = conn.remote_addr
            env["REMOTE_PORT"] = conn.remote_port
        else:
            # The peer's vars win for the CGI part (nginx's SERVER_NAME, SCRIPT_NAME...),
            # never for the wsgi.* keys, which are ours.
            for key, value in static.items():
                if key.startswith("wsgi."):
                    env[key] = value
                else:
                    env.setdefault(key, value)
            if "REMOTE_ADDR" not in env:
                env["REMOTE_ADDR"] = conn.remote_addr
                env["REMOTE_PORT"] = conn.remote_port
        env["wsgi.url_scheme"] = req.url_scheme
        ex = Exchange(conn, req, self, http)
        limit = self.limit_post
        if limit is not None and req.content_length is not None and req.content_length > limit:
            ex.keep_alive = False
            conn.linger = True
            self._reject(ex, ProtocolError(413, f"request body of {req.content_length} bytes "
                                           f"is over limit-post ({limit})", "limit-post"))
            self.log.request(conn, req, ex, start)
            return False
        on_first_read = None
        if req.expect_continue and http:
            def on_first_read() -> None:
                if not ex.headers_sent:
                    conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        if req.chunked:
            try:
                if on_first_read is not None:
                    on_first_read()
                stream: Any = read_chunked(conn, limit)
            except ProtocolError as err:
                ex.keep_alive = False
                conn.linger = True
                self._reject(ex, err)
                self.log.request(conn, req, ex, start)
                return False
            except ClientGone:
                return False
            env["CONTENT_LENGTH"] = str(stream.seek(0, 2))
            stream.seek(0)
            env["wsgi.input_terminated"] = True
        else:
            stream = InputStream(conn, req.content_length, on_first_read, self.body_min_rate)
            ex.stream = stream
            if self.post_buffering and req.content_length:
                try:
                    stream = spool(stream, self.post_buffering)
                except ClientGone:
                    if ex.stream.stalled:  # the app was never called: just the 408
                        ex.keep_alive = False
                        self._reject(ex, _stalled(ex.stream))
                        self.log.request(conn, req, ex, start)
                    return False
        env["wsgi.input"] = stream
        result = None
        try:
            result = self.app(env, ex.start_response)
            if ex.stream is not None and ex.stream.stalled:
                # The body stalled: answer that, not whatever the app made of the error.
                ex.keep_alive = False
                self._reject(ex, _stalled(ex.stream))
            else:
                ex.finish(result)
        except ClientGone:
            ex.keep_alive = False
        except Exception as exc:
            self._app_failed(ex, exc)
        except Harakiri as exc:
            self._harakiri(ex, exc, returned=result is not None)
        finally:
            if result is not None and hasattr(result, "close"):
                try:
                    result.close()
                except Exception:
                    self.log.exception(req, "the response's close() raised")
            if ex.stream is None:
                stream.close()  # the spooled chunked body (maybe a temporary file)
        if ex.stream is not None and ex.stream.remaining:
            if not ex.keep_alive or not ex.stream.drain(DRAIN_LIMIT):
                ex.keep_alive = False
                conn.linger = http  # unread body bytes: do not reset our own response away
        self.log.request(conn, req, ex, start)
        return ex.keep_alive

    def _harakiri(self, ex: Exchange, exc: Harakiri, returned: bool) -> None:
        ex.keep_alive = False
        if not returned:
            _django_request_finished()
        # A pool thread's Harakiri is raised as a bare class (PyThreadState_SetAsyncExc).
        limit = f" ({exc.args[0]} s)" if exc.args else ""
        self.log.exception(ex.req, f"HARAKIRI: the request ran past harakiri{limit}; "
                                   f"it was stuck here")
        if not ex.headers_sent:
            try:
                ex.send_error(504, b"The request took too long (harakiri).\n")
            except (ClientGone, OSError):
                pass

    def _app_failed(self, ex: Exchange, exc: Exception) -> None:
        ex.keep_alive = False
        if ex.stream is not None and ex.stream.stalled:
            self._reject(ex, _stalled(ex.stream))
            return
        self.log.exception(ex.req, "the application raised an exception")
        self.log.app_exception()
        if not ex.headers_sent:
            try:
                ex.send_error(500, SERVER_ERROR)
            except (ClientGone, OSError):
                pass

    def _reject(self, ex: Exchange, err: ProtocolError) -> None:
        self.log.protocol_error(ex.conn, err)
        if not ex.headers_sent:
            try:
                ex.send_error(err.status, f"{err.status} {err.message}\n".encode("latin-1",
                                                                                  "replace"))
            except (ClientGone, OSError):
                pass


def _stalled(stream: InputStream) -> ProtocolError:
    if stream.stalled == "body-min-rate":
        return ProtocolError(408, "the request body arrived too slowly (body-min-rate)",
                             "body-min-rate")
    return ProtocolError(408, "the request body stopped arriving (socket-timeout)",
                         "socket-timeout")


def _django_request_finished() -> None:
    """Interrupted inside Django's handler, before it returned a response: there is no
    close() to call, so send what HttpResponse.close() would (request_finished: closes the
    request's database connections)."""
    if "django.core.signals" not in sys.modules:
        return
    from django.core.signals import request_finished

    try:
        request_finished.send(sender=Handler)
    except Exception:
        traceback.print_exc()
