"""Request and error logging in uWSGI's formats.

The default request line is uWSGI's ``uwsgi_logit_simple`` line byte for byte, so existing
log parsers keep working; ``log-format`` takes uWSGI's ``%(var)`` names. Lines go straight
to fd 2 with one ``write`` (atomic for lines under PIPE_BUF, so workers do not interleave);
with ``req-logger`` a worker's request lines go to the request log pipe instead, and with
``logger`` the master's own lines go to its loggers (see loggers.py and logpipe.py).
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from .request import ProtocolError, Request

# Set in the environ by the static file layer (server/static.py): counted as uWSGI's
# per-core static_requests.
STATIC_KEY = "django_uwsgi_server.static"
_VAR = re.compile(r"%\((var\.[A-Za-z0-9_.-]+|[a-zA-Z]+)\)")


CTIME = "%a %b %e %H:%M:%S %Y"  # log-date's default: ctime(), as uWSGI prints it
_date_format: str | None = None


def set_log_date(fmt: str | None) -> None:
    """``log-date``: prefix non-request lines with ``strftime(fmt) + " - "`` (uWSGI's
    ``uwsgi_log``; request lines carry their own time). ``true`` means the ctime format."""
    global _date_format
    text = (fmt or "").strip()
    if text.lower() in ("", "false", "0", "no", "off"):
        _date_format = None if fmt is None or text else CTIME
    else:
        _date_format = CTIME if text.lower() in ("true", "1", "yes", "on") else fmt


# The master's own lines go to its loggers when ``logger`` is set (see logpipe.py); the
# workers' go to fd 2, which is then the log pipe.
_sink: Callable[[bytes], None] | None = None
# Where a worker writes its request lines: fd 2, or the request log pipe with req-logger.
_request_fd = 2


def set_sink(sink: Callable[[bytes], None] | None) -> None:
    global _sink
    _sink = sink


def set_request_fd(fd: int) -> None:
    global _request_fd
    _request_fd = fd


def write_line(line: str) -> None:
    if _date_format is not None:
        line = f"{time.strftime(_date_format)} - {line}"
    if _sink is not None:
        _sink((line if line.endswith("\n") else line + "\n").encode("utf-8", "replace"))
    else:
        _write(line)


def _write(line: str, fd: int = 2) -> None:
    data = (line if line.endswith("\n") else line + "\n").encode("utf-8", "replace")
    try:
        os.write(fd, data)
    except OSError:
        pass


def core_id() -> int:
    """The thread ("core" in uWSGI's words) serving the request; 0 without threads."""
    return getattr(threading.current_thread(), "core_id", 0)


def _vars(env: dict[str, Any]) -> tuple[int, int]:
    count = size = 0
    for key, value in env.items():
        if type(value) is str and "." not in key:
            count += 1
            size += len(key) + len(value) + 4
    return count, size


_PAGE = os.sysconf("SC_PAGE_SIZE")


def _memory() -> str:
    """memory-report: uWSGI's prefix, this process's address space and RSS."""
    with open("/proc/self/statm", "rb") as f:
        size, rss = (int(x) * _PAGE for x in f.read().split()[:2])
    return (f"{{address space usage: {size} bytes/{size >> 20}MB}} "
            f"{{rss usage: {rss} bytes/{rss >> 20}MB}} ")


class RequestLog:
    def __init__(self, *, worker_id: int, scoreboard: Any, enabled: bool, log_format: str | None,
                 x_forwarded_for: bool, slot: int = 0, log_4xx: bool = False,
                 log_5xx: bool = False, log_slow: int | None = None, micros: bool = False,
                 memory_report: bool = False) -> None:
        self.worker_id = worker_id
        # disable-logging turns request lines off, but these still log matching requests.
        self.log_4xx, self.log_5xx, self.log_slow = log_4xx, log_5xx, log_slow or 0
        self.micros = micros
        self.memory_report = memory_report
        self.slot = slot or worker_id
        self.pid = os.getpid()
        self.scoreboard = scoreboard
        self.enabled = enabled
        self.x_forwarded_for = x_forwarded_for
        self._exception = threading.local()
        self._template = self._compile(log_format) if log_format else None
        self.fd = _request_fd  # resolved once: fd 2, or req-logger's pipe

    # -- non-request lines ---------------------------------------------------------------
    def error(self, message: str) -> None:
        write_line(f"[worker {self.worker_id}] {message}")

    def exception(self, req: Request, message: str) -> None:
        env = req.environ
        uri = env.get("REQUEST_URI") or env.get("PATH_INFO", "")
        write_line(f"[worker {self.worker_id} pid {os.getpid()}] {message} while serving "
                   f"{env.get('REQUEST_METHOD', '-')} {uri} ({env.get('SERVER_PROTOCOL', '-')}):\n"
                   + traceback.format_exc().rstrip("\n"))

    def app_exception(self) -> None:
        self._exception.flag = True

    def count_django_exceptions(self) -> None:
        """Django turns a view's exception into a 500 response, so the WSGI server never
        sees it: count it for the stats (uWSGI's ``exceptions``) from Django's signal, sent
        in the request's thread."""
        try:
            from django.core.signals import got_request_exception
        except ImportError:
            return
        got_request_exception.connect(lambda sender, **kwargs: self.app_exception(),
                                      weak=False, dispatch_uid="django_uwsgi_server.exceptions")

    def protocol_error(self, conn: Any, err: ProtocolError) -> None:
        hint = f" (raise --{err.option} if the client is right)" if err.option else ""
        write_line(f"[worker {self.worker_id}] {conn.remote_addr or 'unix'}: "
                   f"{err.status} {err.message}{hint}")

    # -- request lines -------------------------------------------------------------------
    def request(self, conn: Any, req: Request, ex: Any, start: float) -> None:
        failed = getattr(self._exception, "flag", False)
        if failed:
            self._exception.flag = False
        tx = ex.sent + ex.head_bytes
        end = time.time()
        count = self.scoreboard.finished(self.slot, tx, failed, end - start, core_id(),
                                         STATIC_KEY in req.environ) if self.scoreboard else 0
        if not self.enabled and not self._still_logged(ex.code, end - start):
            return
        env = req.environ
        if self._template is not None:
            line = self._render(conn, req, ex, env, start, end)
        else:
            nvars, vsize = _vars(env)
            total = self.scoreboard.total_requests() if self.scoreboard else count
            addr = self._addr(env)
            line = (f"[pid: {self.pid}|app: 0|req: {count}/{total}] {addr} "
                    f"({env.get('REMOTE_USER', '')}) {{{nvars * 2} vars in {vsize} bytes}} "
                    f"[{time.ctime(start)}] {env.get('REQUEST_METHOD', '')} "
                    f"{env.get('REQUEST_URI', '')} => generated {ex.sent} bytes in "
                    f"{self._duration(end - start)}{ex.via or ' '}"
                    f"({env.get('SERVER_PROTOCOL', '')} {ex.code}) {ex.header_count} headers "
                    f"in {ex.head_bytes} bytes ({ex.switches} switches on core {core_id()})")
        if self.memory_report:
            line = _memory() + line
        _write(line, self.fd)

    def _still_logged(self, code: int, seconds: float) -> bool:
        return (self.log_4xx and 400 <= code < 500) or (self.log_5xx and code >= 500) or \
            (self.log_slow > 0 and seconds * 1000 >= self.log_slow)

    def _duration(self, seconds: float) -> str:
        if self.micros:  # log-micros: uWSGI's "N micros"
            return f"{int(seconds * 1_000_000)} micros"
        return f"{int(seconds * 1000)} msecs"

    def _addr(self, env: dict[str, Any]) -> str:
        if self.x_forwarded_for:
            forwarded = env.get("HTTP_X_FORWARDED_FOR")
            if forwarded:
                return forwarded
        return env.get("REMOTE_ADDR", "")

    def _compile(self, template: str) -> list[tuple[str, Callable[[_Line], Any] | None]]:
        """The template as (text, getter) pairs, resolved once rather than per request."""
        parts: list[tuple[str, Callable[[_Line], Any] | None]] = []
        pos = 0
        for m in _VAR.finditer(template):
            name = m.group(1)
            if name.startswith("var."):
                key = name[4:]
                getter: Callable[[_Line], Any] = lambda line, key=key: line.env.get(key, "")  # noqa: E731
            else:
                getter = _GETTERS.get(name, _unknown)
            parts.append((template[pos:m.start()], getter))
            pos = m.end()
        parts.append((template[pos:], None))
        return parts

    def _render(self, conn: Any, req: Request, ex: Any, env: dict[str, Any], start: float,
                end: float) -> str:
        line = _Line(self, req, ex, env, start, end)
        out = []
        for text, getter in self._template or ():
            out.append(text)
            if getter is not None:
                value = getter(line)
                out.append(str(value) if value not in ("", None) else "-")
        return "".join(out)


class _Line:
    """What one request's log line can show (the getters below read it)."""

    __slots__ = ("log", "req", "ex", "env", "start", "end")

    def __init__(self, log: RequestLog, req: Request, ex: Any, env: dict[str, Any],
                 start: float, end: float) -> None:
        self.log, self.req, self.ex, self.env, self.start, self.end = log, req, ex, env, start, end


def _unknown(line: _Line) -> str:
    return ""  # uWSGI prints "-" for a variable it does not know


_GETTERS: dict[str, Callable[[_Line], Any]] = {
    "uri": lambda ln: ln.env.get("REQUEST_URI", ""),
    "method": lambda ln: ln.env.get("REQUEST_METHOD", ""),
    "user": lambda ln: ln.env.get("REMOTE_USER", ""),
    "addr": lambda ln: ln.log._addr(ln.env),
    "host": lambda ln: ln.env.get("HTTP_HOST") or ln.env.get("SERVER_NAME", ""),
    "proto": lambda ln: ln.env.get("SERVER_PROTOCOL", ""),
    "uagent": lambda ln: ln.env.get("HTTP_USER_AGENT", ""),
    "referer": lambda ln: ln.env.get("HTTP_REFERER", ""),
    "status": lambda ln: ln.ex.code,
    "size": lambda ln: ln.ex.sent,
    "rsize": lambda ln: ln.ex.sent,
    "hsize": lambda ln: ln.ex.head_bytes,
    "cl": lambda ln: ln.env.get("CONTENT_LENGTH", ""),
    "micros": lambda ln: int((ln.end - ln.start) * 1_000_000),
    "msecs": lambda ln: int((ln.end - ln.start) * 1000),
    "secs": lambda ln: f"{ln.end - ln.start:.6f}",
    "time": lambda ln: int(ln.start),
    "epoch": lambda ln: int(ln.end),
    "ltime": lambda ln: time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime(ln.start)),
    "ctime": lambda ln: time.ctime(ln.start),
    "pid": lambda ln: ln.log.pid,
    "wid": lambda ln: ln.log.worker_id,
    "core": lambda ln: core_id(),
    "switches": lambda ln: ln.ex.switches,
    "vars": lambda ln: _vars(ln.env)[0] * 2,
    "pktsize": lambda ln: ln.req.head_size,
    "modifier1": lambda ln: 0,
    "modifier2": lambda ln: 0,
    "headers": lambda ln: ln.ex.header_count,
}


def redirect_output(path: str) -> None:
    """``logto``: send stdout and stderr (ours, Django's, the app's) to a file, appending."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
