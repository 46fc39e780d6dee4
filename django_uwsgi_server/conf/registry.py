"""Every option runuwsgi knows, declared once, and the converters for their value types.

One :class:`Option` row per uWSGI option. The command line, ``settings.UWSGI``, ini files,
``--help`` and the README reference are all generated from :data:`OPTIONS`, so an option
can't be known to one source and unknown to another.

Statuses:

* ``implemented``: does what uWSGI's option does (or the documented better behaviour).
* ``accepted``: a uWSGI option whose job we always do anyway (or that makes no sense
  here); it is validated and has no effect.
* ``planned``: a real uWSGI option we don't do yet. Using it is an error, never a silent
  no-op, so nobody deploys thinking e.g. ``harakiri`` protects them.
* ``unsupported``: an error too, with the reason and what to use instead.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..server.sockets import AddressError, parse_address

IMPLEMENTED = "implemented"
ACCEPTED = "accepted"
PLANNED = "planned"
UNSUPPORTED = "unsupported"

# Value kinds; converters below.
STR, PATH, INT, BOOL, SIZE, MODE, ADDRESS, ENV, HEADER = (
    "str", "path", "int", "bool", "size", "mode", "address", "env", "header",
)

SOCKETS = "Sockets"
PROCESSES = "Processes"
APPLICATION = "Application"
LIMITS = "Limits and timeouts"
LOGGING = "Logging"
MANAGEMENT = "Process management"
STATIC = "Static files"
OTHER = "Other"
GROUPS = (SOCKETS, PROCESSES, APPLICATION, LIMITS, LOGGING, MANAGEMENT, STATIC, OTHER)


class ConfigError(Exception):
    """A configuration problem; ``str()`` is the whole one-line message for the user."""


class _Invalid(ValueError):
    """Raised by a converter with what it expected; :meth:`Option.convert` adds the rest."""


@dataclass(frozen=True)
class Option:
    """One option: its names, value type, default, status and documentation."""

    name: str
    kind: str
    group: str
    status: str
    help: str
    aliases: tuple[str, ...] = ()
    short: str | None = None
    # A value, or a zero-argument callable (its docstring describes it in the docs).
    default: Any = None
    repeatable: bool = False
    min: int | None = None
    max: int | None = None
    # The value when the option is given without one (bare ini line, bare flag, True).
    bare: Any = None
    # unsupported: why and what to use instead; accepted: why it has no effect.
    note: str = ""
    # Checks a converted value further: returns None or raises ValueError(what was expected).
    check: Callable[[Any], None] | None = None

    @property
    def dest(self) -> str:
        """The attribute name on Config and the argparse dest."""
        return self.name.replace("-", "_")

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    def default_value(self) -> Any:
        """A fresh default: callables are evaluated, lists copied."""
        if callable(self.default):
            return self.default()
        if self.repeatable:
            return list(self.default or ())
        if self.kind == BOOL:
            return bool(self.default)
        return self.default

    def convert(self, value: Any, source: str) -> Any:
        """Convert one value (a string from ini/argv, or a Python value from settings).

        ``source`` names where it came from, for the error message.
        """
        try:
            if self.bare is not None and (value is True or (isinstance(value, str) and not value.strip())):
                return self.bare
            converted = _CONVERTERS[self.kind](self, value)
            if self.check is not None:
                try:
                    self.check(converted)
                except ValueError as exc:
                    raise _Invalid(str(exc)) from None
            return converted
        except _Invalid as exc:
            raise ConfigError(
                f"invalid value {value!r} for option {self.name!r} ({source}): expected {exc}"
            ) from None


def normalize(name: str) -> str:
    """Option names are case-insensitive and ``_`` and ``-`` are the same everywhere."""
    return name.strip().lower().replace("_", "-")


# --- converters -----------------------------------------------------------------------------


def _bounds(opt: Option, what: str) -> str:
    if opt.min is not None and opt.max is not None:
        return f"{what} from {opt.min} to {opt.max}"
    if opt.min is not None:
        return f"{what} >= {opt.min}"
    return what


def _check_bounds(opt: Option, n: int, expected: str) -> int:
    if (opt.min is not None and n < opt.min) or (opt.max is not None and n > opt.max):
        raise _Invalid(expected)
    return n


def _to_int(opt: Option, value: Any) -> int:
    expected = _bounds(opt, "a whole number")
    if isinstance(value, bool):  # True is an int to Python, not to a user
        raise _Invalid(expected)
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
        value = int(value)
    if not isinstance(value, int):
        raise _Invalid(expected)
    return _check_bounds(opt, value, expected)


_SIZE_RE = re.compile(r"(\d+)\s*([kmg]?)", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def _to_size(opt: Option, value: Any) -> int:
    expected = _bounds(opt, "a size in bytes (a whole number, optionally with a k, m or g suffix)")
    if isinstance(value, bool):
        raise _Invalid(expected)
    if isinstance(value, str):
        m = _SIZE_RE.fullmatch(value.strip())
        if not m:
            raise _Invalid(expected)
        value = int(m.group(1)) * _SIZE_UNITS[m.group(2).lower()]
    if not isinstance(value, int):
        raise _Invalid(expected)
    return _check_bounds(opt, value, expected)


_TRUE = {"", "true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def parse_bool(value: Any) -> bool:
    """uWSGI's spellings, but unknown text like ``ture`` is an error (uWSGI: on)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise _Invalid("true or false (also yes/no, on/off, 1/0; an empty value means true)")


def _to_bool(opt: Option, value: Any) -> bool:
    return parse_bool(value)


def _to_mode(opt: Option, value: Any) -> int:
    expected = "3 octal digits like 660 (an empty value, 1 or true mean 666)"
    if isinstance(value, bool):
        if value:
            return 0o666
        raise _Invalid(expected)
    if isinstance(value, int):
        # A Python int is the mode itself (0o660); 660 written as a decimal int is a
        # likely mistake, and it is > 0o777, so it is rejected rather than misread.
        if 0 <= value <= 0o777:
            return value
        raise _Invalid(expected + "; in Python write 0o660 or '660'")
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("1", "true"):
            return 0o666
        if re.fullmatch(r"[0-7]{3}", text):
            return int(text, 8)
    raise _Invalid(expected)


def _to_str(opt: Option, value: Any) -> str:
    if isinstance(value, str):
        return value
    raise _Invalid("a string")


def _to_path(opt: Option, value: Any) -> str:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str):
        return value
    raise _Invalid("a path (a string)")


def _to_address(opt: Option, value: Any) -> str:
    expected = ("a socket address (HOST:PORT, :PORT, [IPv6]:PORT, a unix socket path or fd://N "
                "for an inherited socket)")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # a bare port, as in {"http-socket": 8000}
    if not isinstance(value, str):
        raise _Invalid(expected)
    if value.strip().startswith("=") and opt.name in SOCKET_OPTIONS:
        if not value.strip()[1:].strip().isdigit():
            raise _Invalid("=N, a reference to shared-socket number N (=0 is the first)")
        return "=" + value.strip()[1:].strip()
    try:
        parse_address(value)
    except AddressError as exc:
        raise _Invalid(f"{expected}: {exc}") from None
    return value.strip()


def _to_env(opt: Option, value: Any) -> str:
    if not isinstance(value, str) or not value.partition("=")[0].strip() or "=" not in value:
        raise _Invalid("NAME=VALUE")
    return value


def _to_header(opt: Option, value: Any) -> str:
    if isinstance(value, str):
        name, colon, _ = value.partition(":")
        if colon and re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name):
            return value.strip()
    raise _Invalid("a header line 'Name: value'")


_CONVERTERS: dict[str, Callable[[Option, Any], Any]] = {
    STR: _to_str, PATH: _to_path, INT: _to_int, BOOL: _to_bool, SIZE: _to_size,
    MODE: _to_mode, ADDRESS: _to_address, ENV: _to_env, HEADER: _to_header,
}


def _logger_spec(value: str) -> None:
    from ..server.loggers import parse

    parse(value)


def _two_per_cpu() -> int:
    """2 × CPU cores"""
    try:
        cpus = len(os.sched_getaffinity(0))  # honours taskset/cgroup cpusets
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return 2 * max(cpus, 1)


def _debug() -> bool:
    """on when settings.DEBUG is (not with daemonize)"""
    from django.conf import settings

    return bool(settings.configured and settings.DEBUG)


# --- the declarations -------------------------------------------------------------------------

_O = Option
_IMPL, _ACC, _PLAN, _UNSUP = IMPLEMENTED, ACCEPTED, PLANNED, UNSUPPORTED
_NO_CHEAPER = "the number of workers is fixed; set processes"
_NO_DAEMONS = "runuwsgi does not supervise other programs; use systemd or another supervisor"
_NO_LOGIC = "config logic is not supported; put conditions in settings.UWSGI (Python)"

OPTIONS: tuple[Option, ...] = (
    # Sockets
    _O("socket", ADDRESS, SOCKETS, _IMPL, "listen with the uwsgi binary protocol (for nginx uwsgi_pass)",
       short="s", repeatable=True),
    _O("uwsgi-socket", ADDRESS, SOCKETS, _IMPL, "listen with the uwsgi protocol (same as socket)",
       repeatable=True),
    _O("http-socket", ADDRESS, SOCKETS, _IMPL,
       "listen with HTTP/1.1", repeatable=True),
    _O("http11-socket", ADDRESS, SOCKETS, _IMPL, "alias of http-socket", repeatable=True),
    _O("http", ADDRESS, SOCKETS, _IMPL, "served as http-socket, no router process", repeatable=True),
    _O("http-keepalive", INT, SOCKETS, _IMPL,
       "seconds an idle HTTP keep-alive connection is kept open; 0 turns keep-alive off",
       default=15, min=0, bare=15),
    _O("chmod-socket", MODE, SOCKETS, _IMPL, "chmod unix sockets after binding (bare: 666)",
       short="C", bare=0o666),
    _O("listen", INT, SOCKETS, _IMPL, "listen() backlog of every socket", short="l", default=1024, min=1),
    _O("thunder-lock", BOOL, SOCKETS, _ACC, "serialize accept() across workers",
       note="accept() is always serialized"),
    _O("shared-socket", ADDRESS, SOCKETS, _IMPL,
       "bind a socket first; socket options refer to it as =0, =1...", repeatable=True),
    _O("chown-socket", STR, SOCKETS, _IMPL, "chown unix sockets (user[:group])"),
    _O("reuse-port", BOOL, SOCKETS, _IMPL, "set SO_REUSEPORT on sockets"),
    # Processes
    _O("processes", INT, PROCESSES, _IMPL, "number of worker processes", aliases=("workers",),
       short="p", default=_two_per_cpu, min=1),
    _O("threads", INT, PROCESSES, _IMPL, "threads per worker", default=1, min=1),
    _O("enable-threads", BOOL, PROCESSES, _ACC, "enable Python threads", short="T",
       note="threads are always enabled"),
    _O("master", BOOL, PROCESSES, _ACC, "run a master process", short="M", default=True,
       note="there is always a master process"),
    _O("lazy-apps", BOOL, PROCESSES, _IMPL, "load the application in each worker after fork",
       default=False),
    _O("need-app", BOOL, PROCESSES, _IMPL, "exit with an error when the application can't be loaded",
       default=True),
    _O("lazy", BOOL, PROCESSES, _UNSUP, "load apps in workers; reload only workers",
       note="use lazy-apps (uWSGI itself discourages lazy)"),
    _O("cheaper", INT, PROCESSES, _UNSUP, "adaptive process spawning", note=_NO_CHEAPER),
    _O("cheaper-algo", STR, PROCESSES, _UNSUP, "adaptive spawning algorithm", note=_NO_CHEAPER),
    _O("cheaper-initial", INT, PROCESSES, _UNSUP, "workers started at first", note=_NO_CHEAPER),
    _O("idle", INT, PROCESSES, _UNSUP, "go idle after N seconds without requests",
       note="workers are never put to sleep"),
    _O("mule", STR, PROCESSES, _UNSUP, "add a mule process", repeatable=True,
       note="there are no mules; run background work as a separate service or task queue"),
    _O("mules", INT, PROCESSES, _UNSUP, "number of mules",
       note="there are no mules; run background work as a separate service or task queue"),
    _O("spooler", PATH, PROCESSES, _UNSUP, "run a spooler on a directory", short="Q", repeatable=True,
       note="there is no spooler; use a task queue (Celery, RQ, Django tasks)"),
    _O("spooler-processes", INT, PROCESSES, _UNSUP, "processes per spooler",
       note="there is no spooler; use a task queue (Celery, RQ, Django tasks)"),
    _O("emperor", STR, PROCESSES, _UNSUP, "run the Emperor",
       note="run one runuwsgi per project under systemd or another supervisor"),
    _O("attach-daemon", STR, PROCESSES, _UNSUP, "run and supervise a command", repeatable=True,
       note=_NO_DAEMONS),
    _O("smart-attach-daemon", STR, PROCESSES, _UNSUP, "supervise a command by pidfile",
       repeatable=True, note=_NO_DAEMONS),
    # Application
    _O("module", STR, APPLICATION, _IMPL, "WSGI module to load (pkg.mod[:callable])",
       aliases=("wsgi",), short="w"),
    _O("wsgi-file", PATH, APPLICATION, _IMPL, "load a WSGI file", aliases=("file",)),
    _O("callable", STR, APPLICATION, _IMPL, "name of the WSGI callable", default="application"),
    _O("chdir", PATH, APPLICATION, _IMPL, "change to this directory before loading the app"),
    _O("pythonpath", PATH, APPLICATION, _IMPL, "add a directory to sys.path",
       aliases=("python-path", "pp"), repeatable=True),
    _O("home", PATH, APPLICATION, _IMPL, "the virtualenv the server must run in",
       aliases=("virtualenv", "venv", "pyhome"), short="H"),
    _O("env", ENV, APPLICATION, _IMPL, "set an environment variable before the app loads",
       repeatable=True),
    _O("py-call-osafterfork", BOOL, APPLICATION, _ACC, "run os.register_at_fork hooks in workers",
       note="workers are forked with os.fork(), so the hooks always run"),
    _O("wsgi-env-behaviour", STR, APPLICATION, _ACC, "reuse (cheat) or rebuild (holy) the environ",
       note="every request always gets a fresh environ"),
    _O("py-autoreload", INT, APPLICATION, _IMPL,
       "restart when the code, a template or a translation changes, checking every N seconds "
       "(0 = off; also when DEBUG is off)", aliases=("python-autoreload", "py-auto-reload"), min=0),
    _O("autoreload", BOOL, APPLICATION, _IMPL,
       "restart when the code, a template or a translation changes, like runserver",
       default=_debug),
    _O("noreload", BOOL, APPLICATION, _IMPL, "never autoreload (runserver's flag)"),
    # Limits and timeouts
    _O("buffer-size", SIZE, LIMITS, _IMPL, "largest request head (HTTP headers, uwsgi vars)",
       short="b", default=65535, min=1024, max=1048576),
    _O("limit-post", SIZE, LIMITS, _IMPL, "largest request body (413 above it); 0 = no limit",
       default=0, min=0),
    _O("socket-timeout", INT, LIMITS, _IMPL, "seconds each socket read or write may wait",
       short="z", default=30, min=1),
    _O("post-buffering", SIZE, LIMITS, _IMPL,
       "read the whole body before calling the app (memory up to N bytes, then a temp file)",
       default=0, min=0),
    _O("body-min-rate", INT, LIMITS, _IMPL,
       "bytes/s a request body must average once the app reads it, after a grace of "
       "socket-timeout (408 below it); 0 = off", default=500, min=0),
    _O("harakiri", INT, LIMITS, _IMPL, "kill a worker whose request takes longer (seconds)",
       short="t", min=0),
    _O("harakiri-verbose", BOOL, LIMITS, _IMPL, "log more about harakiri victims"),
    _O("harakiri-graceful-timeout", INT, LIMITS, _IMPL,
       "seconds a harakiri'd request gets to unwind (traceback, 5xx, close()) before SIGKILL",
       default=3, min=0),
    # Logging
    _O("logto", PATH, LOGGING, _IMPL, "append the log to this file"),
    _O("disable-logging", BOOL, LOGGING, _IMPL, "don't log requests", short="L", default=False),
    _O("log-format", STR, LOGGING, _IMPL, "request log line template with %(var)",
       aliases=("logformat",)),
    _O("log-x-forwarded-for", BOOL, LOGGING, _IMPL, "log X-Forwarded-For as the client address",
       default=False),
    _O("log-date", STR, LOGGING, _IMPL,
       "prefix non-request log lines with the date (bare: ctime format; or a strftime format)",
       aliases=("logdate",), bare="%a %b %e %H:%M:%S %Y"),
    _O("log-master", BOOL, LOGGING, _IMPL,
       "workers log through a pipe to the master, which writes the log file", default=False),
    _O("log-reopen", BOOL, LOGGING, _IMPL, "reopen the log file when a reload starts (logrotate)",
       default=False),
    _O("log-maxsize", SIZE, LOGGING, _IMPL,
       "rotate the log file when it grows past this size (implies log-master)", min=0),
    _O("log-backupname", PATH, LOGGING, _IMPL,
       "name of the rotated log file (default: FILE.<unix time>)"),
    _O("log-micros", BOOL, LOGGING, _IMPL, "request times in microseconds"),
    _O("req-logger", STR, LOGGING, _IMPL,
       "send request lines to a logger: [name ]plugin[:args], plugin file, stdio, syslog or "
       "socket (implies log-master)", repeatable=True, check=_logger_spec),
    _O("logger", STR, LOGGING, _IMPL,
       "send the other log lines (and request lines without req-logger) to a logger: "
       "[name ]plugin[:args] (implies log-master)", repeatable=True, check=_logger_spec),
    _O("memory-report", BOOL, LOGGING, _IMPL, "log memory usage with each request", short="m"),
    _O("log-4xx", BOOL, LOGGING, _IMPL, "log 4xx responses even with disable-logging"),
    _O("log-5xx", BOOL, LOGGING, _IMPL, "log 5xx responses even with disable-logging"),
    _O("log-slow", INT, LOGGING, _IMPL, "log requests slower than N ms even with disable-logging",
       min=0),
    # Process management (issue #4)
    _O("die-on-term", BOOL, MANAGEMENT, _IMPL,
       "SIGTERM stops gracefully; false restores uWSGI 2.0's SIGTERM = brutal reload",
       default=True),
    _O("pidfile", PATH, MANAGEMENT, _IMPL, "write the master pid (before dropping privileges)"),
    _O("pidfile2", PATH, MANAGEMENT, _IMPL, "write the master pid (after dropping privileges)"),
    _O("daemonize", PATH, MANAGEMENT, _IMPL, "detach and log to this file", short="d"),
    _O("daemonize2", PATH, MANAGEMENT, _IMPL, "detach after the app loads and log to this file"),
    _O("uid", STR, MANAGEMENT, _IMPL, "setuid to this user"),
    _O("gid", STR, MANAGEMENT, _IMPL, "setgid to this group"),
    _O("vacuum", BOOL, MANAGEMENT, _IMPL, "remove sockets and pidfiles on exit"),
    _O("max-requests", INT, MANAGEMENT, _IMPL, "recycle a worker after N requests", short="R", min=0),
    _O("max-requests-delta", INT, MANAGEMENT, _IMPL, "stagger max-requests per worker", default=0,
       min=0),
    _O("min-worker-lifetime", INT, MANAGEMENT, _IMPL,
       "seconds before a worker may be recycled (uWSGI: 10)", default=0, min=0),
    _O("max-worker-lifetime", INT, MANAGEMENT, _IMPL, "recycle a worker after N seconds", min=0),
    _O("max-worker-lifetime-delta", INT, MANAGEMENT, _IMPL,
       "stagger max-worker-lifetime per worker", default=0, min=0),
    _O("reload-on-rss", INT, MANAGEMENT, _IMPL, "recycle a worker above N MB RSS", min=0),
    _O("reload-on-as", INT, MANAGEMENT, _IMPL, "recycle a worker above N MB address space", min=0),
    _O("evil-reload-on-rss", INT, MANAGEMENT, _IMPL, "kill a worker above N MB RSS", min=0),
    _O("worker-reload-mercy", INT, MANAGEMENT, _IMPL, "seconds a stopping worker gets before SIGKILL",
       default=60, min=1),
    _O("reload-mercy", INT, MANAGEMENT, _IMPL,
       "same as worker-reload-mercy (uWSGI uses it for other processes only)", min=1),
    _O("touch-reload", PATH, MANAGEMENT, _IMPL, "reload when this file is touched", repeatable=True),
    _O("touch-chain-reload", PATH, MANAGEMENT, _IMPL, "chain reload when this file is touched",
       repeatable=True),
    _O("chain-reload", BOOL, MANAGEMENT, _IMPL, "reload workers one at a time"),
    _O("master-fifo", PATH, MANAGEMENT, _IMPL, "control the master through a FIFO", repeatable=True),
    _O("reload", PATH, MANAGEMENT, _IMPL, "gracefully reload the server of this pidfile"),
    _O("stop", PATH, MANAGEMENT, _IMPL, "stop the server of this pidfile"),
    _O("auto-procname", BOOL, MANAGEMENT, _IMPL,
       "name processes 'uWSGI master' / 'uWSGI worker N' in ps (needs setproctitle)",
       default=True),
    _O("procname-prefix", STR, MANAGEMENT, _IMPL, "prepend this to process names"),
    _O("procname-prefix-spaced", STR, MANAGEMENT, _IMPL,
       "prepend this and a space to process names"),
    _O("procname-append", STR, MANAGEMENT, _IMPL, "append this to process names"),
    _O("procname-master", STR, MANAGEMENT, _IMPL, "the master's process name"),
    _O("procname", STR, MANAGEMENT, _IMPL, "the name of every process (workers and master)"),
    _O("stats", ADDRESS, MANAGEMENT, _IMPL,
       "serve uWSGI's JSON stats on this address (host:port, :port = loopback, unix path)",
       aliases=("stats-server",)),
    _O("stats-http", BOOL, MANAGEMENT, _IMPL, "serve the stats over HTTP (/metrics: Prometheus)"),
    _O("stats-minified", BOOL, MANAGEMENT, _IMPL, "minify the stats JSON"),
    _O("stats-allow-remote", BOOL, MANAGEMENT, _IMPL,
       "allow stats/metrics on a non-loopback address (refused by default)"),
    _O("stats-chmod", MODE, MANAGEMENT, _IMPL,
       "mode of a unix stats/metrics socket file (default 600)"),
    _O("metrics", ADDRESS, MANAGEMENT, _IMPL,
       "serve Prometheus metrics over HTTP on this address (same rules as stats)"),
    # Static files (server/static.py)
    _O("static-map", STR, STATIC, _IMPL,
       "serve files of DIR (or one file) under MOUNTPOINT: MOUNTPOINT=DIR, the mountpoint "
       "removed from the path", repeatable=True),
    _O("static-map2", STR, STATIC, _IMPL,
       "like static-map, but the whole path is looked up under DIR", repeatable=True),
    _O("check-static", PATH, STATIC, _IMPL,
       "serve DIR + PATH_INFO for any URL when that file exists, else the app",
       aliases=("static-check",), repeatable=True),
    _O("static-index", STR, STATIC, _IMPL, "file served for a directory (e.g. index.html)",
       repeatable=True),
    _O("static-skip-ext", STR, STATIC, _IMPL, "never serve paths ending with this as static",
       repeatable=True),
    _O("static-safe", PATH, STATIC, _IMPL,
       "a directory symlinks under the static roots may point into", repeatable=True),
    _O("static-expires-type", STR, STATIC, _IMPL,
       "Expires (and max-age) SECONDS from now by Content-Type: TYPE=SECONDS", repeatable=True),
    _O("static-expires-type-mtime", STR, STATIC, _IMPL,
       "like static-expires-type, SECONDS after the file's mtime", repeatable=True),
    _O("static-expires", STR, STATIC, _IMPL,
       "Expires SECONDS from now by file name: REGEX=SECONDS", repeatable=True),
    _O("static-expires-mtime", STR, STATIC, _IMPL,
       "like static-expires, SECONDS after the file's mtime", repeatable=True),
    _O("static-expires-uri", STR, STATIC, _IMPL,
       "Expires SECONDS from now by REQUEST_URI: REGEX=SECONDS", repeatable=True),
    _O("static-expires-uri-mtime", STR, STATIC, _IMPL,
       "like static-expires-uri, SECONDS after the file's mtime", repeatable=True),
    _O("static-expires-path-info", STR, STATIC, _IMPL,
       "Expires SECONDS from now by PATH_INFO: REGEX=SECONDS", repeatable=True),
    _O("static-expires-path-info-mtime", STR, STATIC, _IMPL,
       "like static-expires-path-info, SECONDS after the file's mtime", repeatable=True),
    _O("static-gzip-all", BOOL, STATIC, _IMPL,
       "serve FILE.gz (or FILE.br) with Content-Encoding when it exists and the client accepts it"),
    _O("static-gzip", STR, STATIC, _IMPL, "like static-gzip-all for file names matching a regex",
       repeatable=True),
    _O("static-gzip-dir", PATH, STATIC, _IMPL, "like static-gzip-all for files under a directory",
       aliases=("static-gzip-prefix",), repeatable=True),
    _O("static-gzip-ext", STR, STATIC, _IMPL, "like static-gzip-all for file names ending so",
       aliases=("static-gzip-suffix",), repeatable=True),
    _O("honour-range", BOOL, STATIC, _ACC, "honour Range requests for static files",
       note="Range is always honoured for static files"),
    _O("offload-threads", INT, STATIC, _ACC, "threads that send static files", min=0,
       note="the worker sends files with sendfile(), so the kernel does the copy; a worker "
            "thread stays busy while a slow client downloads (use threads, or nginx)"),
    _O("nostatic", BOOL, STATIC, _IMPL,
       "with DEBUG on, do not serve STATIC_URL from the staticfiles finders (runserver's flag)"),
    # Other
    _O("add-header", HEADER, OTHER, _IMPL, "add a header to every response", repeatable=True),
    _O("del-header", STR, OTHER, _IMPL, "remove a header from every response", repeatable=True),
    _O("cache2", STR, OTHER, _IMPL, "create a shared-memory cache for the uwsgi module's cache "
       "functions (name=NAME,items=N[,blocksize=BYTES][,keysize=BYTES])", repeatable=True),
    _O("locks", INT, OTHER, _IMPL, "create N more locks for uwsgi.lock(n) (lock 0 always exists)",
       default=0, min=0, max=4096),
    _O("engine", STR, OTHER, _IMPL,
       "the server: runuwsgi, or uwsgi to exec the real uWSGI (pip install "
       "'django-uwsgi-server[uwsgi]') with the same options", default="runuwsgi"),
    _O("ini", STR, OTHER, _IMPL, "read options from an ini file (FILE or FILE:section)",
       repeatable=True),
    _O("set-placeholder", ENV, OTHER, _IMPL, "define a %(name) placeholder for ini files",
       aliases=("set-ph",), repeatable=True),
    _O("yaml", STR, OTHER, _UNSUP, "read a yaml config file", aliases=("yml",), short="y",
       note="use ini or settings.UWSGI"),
    _O("json", STR, OTHER, _UNSUP, "read a json config file", short="j",
       note="use ini or settings.UWSGI"),
    _O("strict", BOOL, OTHER, _ACC, "reject unknown options", note="unknown options are always errors"),
    _O("if-env", STR, OTHER, _UNSUP, "config logic", note=_NO_LOGIC),
    _O("if-exists", STR, OTHER, _UNSUP, "config logic", note=_NO_LOGIC),
    _O("for", STR, OTHER, _UNSUP, "config logic", note=_NO_LOGIC),
    _O("endif", STR, OTHER, _UNSUP, "config logic", note=_NO_LOGIC),
    _O("include", STR, OTHER, _UNSUP, "include a config file", note="use ini = FILE"),
    _O("inherit", STR, OTHER, _UNSUP, "inherit a config file", note="use ini = FILE"),
)

BY_NAME: dict[str, Option] = {n: o for o in OPTIONS for n in o.names}
BY_DEST: dict[str, Option] = {o.dest: o for o in OPTIONS}
SOCKET_OPTIONS = ("socket", "uwsgi-socket", "http-socket", "http11-socket", "http")
DEFAULT_HTTP_SOCKET = "127.0.0.1:8000"


# Where planned work is tracked, for the "not implemented yet" error.
PLANNED_IN: dict[str, str] = {}  # option name -> "issue #N"


def default_text(opt: Option) -> str:
    """The default as documentation shows it ("" when there is none)."""
    value = opt.default
    if callable(value):
        return (value.__doc__ or value.__name__).strip()
    if opt.name == "http-socket":
        return f"{DEFAULT_HTTP_SOCKET} if no socket option is given"
    if opt.kind == BOOL:
        return "true" if value else "false"
    if value is None or value == []:
        return ""
    if opt.kind == MODE:
        return format(value, "03o")
    return str(value)


def get_option(name: str) -> Option | None:
    """The option called ``name`` (any alias, ``_`` or ``-``, any case), or None."""
    return BY_NAME.get(normalize(name))


def _check_registry() -> None:
    # Two options sharing a name would make one of them unreachable; fail at import.
    names = [n for o in OPTIONS for n in o.names] + [f"-{o.short}" for o in OPTIONS if o.short]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise RuntimeError(f"duplicate option names in the registry: {dupes}")


_check_registry()
