"""``logger`` and ``req-logger``: uWSGI's logger plugins, ``[name ]plugin[:args]``.

Plugins: ``file:PATH`` (or ``file:logfile=PATH``; appended to, created 0640), ``stdio``
(the master's stderr: the ``logto``/``daemonize`` file, the terminal or the journal),
``syslog[:ident[,facility]]`` (Python's ``syslog`` module: ``/dev/log``, priority INFO,
ident ``uwsgi`` and facility ``daemon`` by default, as uWSGI) and ``socket:ADDR`` (each line
as one datagram, newline included: ``HOST:PORT`` over UDP or a unix datagram socket path).
The optional ``name`` (letters and digits, then a space) is uWSGI's logger id for
``log-route``; it is accepted and shows in errors.

As in uWSGI, either option implies ``log-master`` (see logpipe.py): the workers write to
pipes and the master sends each complete line to every logger of the line's kind.
``req-logger`` gets the request lines through a pipe of their own; ``logger`` gets every
other line (the server's, Django's and the app's stdout/stderr) and also the request lines
when no ``req-logger`` is given. Destinations are opened once, by the master, before the
workers drop privileges; a worker's request path is one ``write`` to a pipe, as without
loggers.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

from .sockets import AddressError, parse_address

PLUGINS = ("file", "socket", "stdio", "syslog")
_FACILITIES = ("auth", "authpriv", "cron", "daemon", "ftp", "kern", "lpr", "mail", "news",
               "syslog", "user", "uucp", *(f"local{n}" for n in range(8)))


class LoggerSpecError(ValueError):
    """A logger spec that cannot work; the message says why."""


@dataclass(frozen=True)
class Spec:
    name: str  # uWSGI's logger id ("" when not given)
    plugin: str
    arg: str


def parse(text: str) -> Spec:
    """``[name ]plugin[:args]``, checked (a bad spec raises :class:`LoggerSpecError`)."""
    text = text.strip()
    name = ""
    head, space, rest = text.partition(" ")
    if space and head.isalnum() and rest.strip():  # uWSGI: an id is alphanumeric
        name, text = head, rest.strip()
    plugin, _, arg = text.partition(":")
    if plugin not in PLUGINS:
        raise LoggerSpecError(f"[name ]plugin[:args] with plugin one of {', '.join(PLUGINS)}: "
                              f"unknown logger plugin {plugin!r}")
    spec = Spec(name, plugin, arg.strip())
    _CHECKS[plugin](spec)
    return spec


def _check_file(spec: Spec) -> None:
    _file_path(spec)


def _file_path(spec: Spec) -> str:
    arg = spec.arg
    if arg.startswith("logfile="):  # uWSGI's key=value form
        keys = dict(item.partition("=")[::2] for item in arg.split(","))
        other = sorted(set(keys) - {"logfile"})
        if other:
            raise LoggerSpecError(f"file:PATH or file:logfile=PATH: the file logger's "
                                  f"{', '.join(other)} is not supported (log-maxsize rotates "
                                  f"the logto file)")
        arg = keys["logfile"]
    if not arg:
        raise LoggerSpecError("file:PATH, a path to append the log lines to")
    return arg


def _check_stdio(spec: Spec) -> None:
    if spec.arg:
        raise LoggerSpecError("stdio without arguments")


def _syslog_args(spec: Spec) -> tuple[str, str]:
    ident, _, facility = spec.arg.partition(",")
    return ident.strip() or "uwsgi", facility.strip() or "daemon"


def _check_syslog(spec: Spec) -> None:
    facility = _syslog_args(spec)[1]
    if facility not in _FACILITIES:
        raise LoggerSpecError(f"syslog[:ident[,facility]] with facility one of "
                              f"{', '.join(_FACILITIES)}, not {facility!r}")


def _socket_address(spec: Spec) -> tuple[int, Any]:
    expected = "socket:HOST:PORT (UDP) or socket:PATH (a unix datagram socket)"
    if not spec.arg:
        raise LoggerSpecError(expected)
    try:
        address = parse_address(spec.arg)
    except AddressError as exc:
        raise LoggerSpecError(f"{expected}: {exc}") from None
    if address.fd >= 0 or (address.family != socket.AF_UNIX and address.port == 0):
        raise LoggerSpecError(f"{expected}, with a port other than 0")
    if address.family == socket.AF_UNIX:
        path = address.path
        return socket.AF_UNIX, "\0" + path[1:] if path.startswith("@") else path
    return address.family, (address.host, address.port)


def _check_socket(spec: Spec) -> None:
    _socket_address(spec)


_CHECKS = {"file": _check_file, "stdio": _check_stdio, "syslog": _check_syslog,
           "socket": _check_socket}


# -- the destinations (opened in the master) -----------------------------------------------------
class _File:
    def __init__(self, spec: Spec) -> None:
        self.path = _file_path(spec)
        self.fd = -1
        self.reopen()

    def reopen(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        if self.fd >= 0:
            os.close(self.fd)
        self.fd = fd

    def write(self, line: bytes) -> None:
        write_all(self.fd, line)


class _Stdio:
    def __init__(self, spec: Spec) -> None:
        pass

    def reopen(self) -> None:
        pass  # fd 2 is reopened by log-reopen/log-maxsize themselves

    def write(self, line: bytes) -> None:
        write_all(2, line)


_syslog_opened: tuple[str, int] | None = None  # one ident per process in the C library


class _Syslog:
    def __init__(self, spec: Spec) -> None:
        import syslog

        self.syslog = syslog
        ident, facility = _syslog_args(spec)
        self.ident = ident
        self.facility = getattr(syslog, f"LOG_{facility.upper()}")

    def reopen(self) -> None:
        pass

    def write(self, line: bytes) -> None:
        global _syslog_opened
        if _syslog_opened != (self.ident, self.facility):
            self.syslog.openlog(self.ident, 0, self.facility)
            _syslog_opened = (self.ident, self.facility)
        self.syslog.syslog(self.syslog.LOG_INFO, line.rstrip(b"\n").decode("utf-8", "replace"))


class _Socket:
    def __init__(self, spec: Spec) -> None:
        family, self.target = _socket_address(spec)
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setblocking(False)  # a full receiver loses lines rather than stall the master

    def reopen(self) -> None:
        pass

    def write(self, line: bytes) -> None:
        try:
            self.sock.sendto(line, self.target)
        except OSError:
            pass  # UDP: nobody listening (yet) is not our problem, as in uWSGI


_PLUGIN_CLASSES = {"file": _File, "stdio": _Stdio, "syslog": _Syslog, "socket": _Socket}


class Loggers:
    """The loggers of one kind; ``feed`` takes pipe data, possibly cut mid-line."""

    def __init__(self, specs: list[Spec]) -> None:
        self.outs = [_PLUGIN_CLASSES[spec.plugin](spec) for spec in specs]
        self._rest = b""

    def feed(self, data: bytes) -> None:
        data = self._rest + data
        end = data.rfind(b"\n") + 1
        self._rest = data[end:]
        if end:
            self.lines(data[:end])

    def lines(self, data: bytes) -> None:
        for line in data.splitlines(keepends=True):
            for out in self.outs:
                out.write(line)

    def flush(self) -> None:
        if self._rest:
            rest, self._rest = self._rest, b""
            self.lines(rest + b"\n")

    def reopen(self) -> None:
        for out in self.outs:
            out.reopen()


def build(texts: list[str] | None, option: str) -> Loggers | None:
    """The loggers an option asks for, opened; None when it is not set. Raises
    :class:`LoggerSpecError` with a one-line message naming the option."""
    if not texts:
        return None
    try:
        return Loggers([parse(text) for text in texts])
    except LoggerSpecError as exc:
        raise LoggerSpecError(f"{option}: {exc}") from None
    except OSError as exc:
        raise LoggerSpecError(f"{option}: cannot open {exc.filename or 'the logger'}: "
                              f"{exc.strerror}") from None


def check(cfg: Any) -> str | None:
    """Why a file logger cannot be opened (tried before the server starts), or None."""
    for option in ("logger", "req-logger"):
        for text in getattr(cfg, option.replace("-", "_")) or ():
            spec = parse(text)
            if spec.plugin != "file":
                continue
            path = _file_path(spec)
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640))
            except OSError as exc:
                return f"{option} {text.strip()}: cannot open {path}: {exc.strerror}"
    return None


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except InterruptedError:
            continue
        except OSError:
            return
