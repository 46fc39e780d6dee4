"""Request and error logging in uWSGI's formats.

The default request line is uWSGI's ``uwsgi_logit_simple`` line byte for byte, so existing
log parsers keep working; ``log-format`` takes uWSGI's ``%(var)`` names. Lines go straight
to fd 2 with one ``write`` (atomic for lines under PIPE_BUF, so workers do not interleave).
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

# Apache "combined", documented as a ready-made log-format.
COMBINED = ('%(addr) - %(user) [%(ltime)] "%(method) %(uri) %(proto)" %(status) %(size) '
            '"%(referer)" "%(uagent)"')
_VAR = re.compile(r"%\((var\.[A-Za-z0-9_.-]+|[a-zA-Z]+)\)")


def write_line(line: str) -> None:
    data = (line if line.endswith("\n") else line + "\n").encode("utf-8", "replace")
    try:
        os.write(2, data)
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


class RequestLog:
    def __init__(self, *, worker_id: int, scoreboard: Any, enabled: bool, log_format: str | None,
                 x_forwarded_for: bool, slot: int = 0) -> None:
        self.worker_id = worker_id
        self.slot = slot or worker_id
        self.pid = os.getpid()
        self.scoreboard = scoreboard
        self.enabled = enabled
        self.x_forwarded_for = x_forwarded_for
        self.app_exceptions = 0
        self._exception = threading.local()
        self._template = self._compile(log_format) if log_format else None

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
        count = self.scoreboard.finished(self.slot, tx, failed) if self.scoreboard else 0
        if not self.enabled:
            return
        end = time.time()
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
                    f"{int((end - start) * 1000)} msecs{ex.via or ' '}"
                    f"({env.get('SERVER_PROTOCOL', '')} {ex.code}) {ex.header_count} headers "
                    f"in {ex.head_bytes} bytes ({ex.switches} switches on core {core_id()})")
        write_line(line)

    def _addr(self, env: dict[str, Any]) -> str:
        if self.x_forwarded_for:
            forwarded = env.get("HTTP_X_FORWARDED_FOR")
            if forwarded:
                return forwarded
        return env.get("REMOTE_ADDR", "")

    @staticmethod
    def _compile(template: str) -> list[tuple[str, str]]:
        parts: list[tuple[str, str]] = []
        pos = 0
        for m in _VAR.finditer(template):
            parts.append((template[pos:m.start()], m.group(1)))
            pos = m.end()
        parts.append((template[pos:], ""))
        return parts

    def _render(self, conn: Any, req: Request, ex: Any, env: dict[str, Any], start: float,
                end: float) -> str:
        duration = end - start
        getters: dict[str, Callable[[], Any]] = {
            "uri": lambda: env.get("REQUEST_URI", ""),
            "method": lambda: env.get("REQUEST_METHOD", ""),
            "user": lambda: env.get("REMOTE_USER", ""),
            "addr": lambda: self._addr(env),
            "host": lambda: env.get("HTTP_HOST") or env.get("SERVER_NAME", ""),
            "proto": lambda: env.get("SERVER_PROTOCOL", ""),
            "uagent": lambda: env.get("HTTP_USER_AGENT", ""),
            "referer": lambda: env.get("HTTP_REFERER", ""),
            "status": lambda: ex.code,
            "size": lambda: ex.sent,
            "rsize": lambda: ex.sent,
            "hsize": lambda: ex.head_bytes,
            "cl": lambda: env.get("CONTENT_LENGTH", ""),
            "micros": lambda: int(duration * 1_000_000),
            "msecs": lambda: int(duration * 1000),
            "secs": lambda: f"{duration:.6f}",
            "time": lambda: int(start),
            "epoch": lambda: int(end),
            "ltime": lambda: time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime(start)),
            "ctime": lambda: time.ctime(start),
            "pid": lambda: self.pid,
            "wid": lambda: self.worker_id,
            "core": core_id,
            "switches": lambda: ex.switches,
            "vars": lambda: _vars(env)[0] * 2,
            "pktsize": lambda: req.head_size,
            "modifier1": lambda: 0,
            "modifier2": lambda: 0,
            "headers": lambda: ex.header_count,
        }
        out = []
        for text, name in self._template or ():
            out.append(text)
            if not name:
                continue
            if name.startswith("var."):
                value = env.get(name[4:], "")
            else:
                getter = getters.get(name)
                value = getter() if getter is not None else ""
            out.append(str(value) if value not in ("", None) else "-")
        return "".join(out)


def redirect_output(path: str) -> None:
    """``logto``: send stdout and stderr (ours, Django's, the app's) to a file, appending."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
