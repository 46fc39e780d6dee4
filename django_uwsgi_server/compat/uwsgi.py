"""``import uwsgi`` under runuwsgi: the commonly used part of uWSGI's Python API.

Installed as ``sys.modules["uwsgi"]`` only in runuwsgi's own processes (see
:func:`django_uwsgi_server.compat.runtime.install`), so that ``try: import uwsgi`` still
fails everywhere else. Names, arguments and return values follow uWSGI 2.0
(plugins/python/uwsgi_pymodule.c); what runuwsgi does not have raises
:class:`UnsupportedError` naming it.
"""

from __future__ import annotations

import os
import signal as _signal
import socket as _socket
from typing import Any

from .. import __version__
from ..server import signals as _signals
from ..server.logging import write_line as _write_line

UnsupportedError = _signals.UnsupportedError
_RT: Any = None

# Filled in by _configure(), as uWSGI fills them at startup.
opt: dict[str, Any] = {}
numproc = 0
started_on = 0
buffer_size = 0
version = f"django-uwsgi-server {__version__}".encode()
hostname = _socket.gethostname().encode()
SPOOL_OK, SPOOL_RETRY, SPOOL_IGNORE = -2, -1, 0


def _configure(runtime: Any) -> None:
    global _RT, opt, numproc, started_on, buffer_size
    from ..conf import DEFAULT

    _RT = runtime
    cfg = runtime.cfg
    opt = {}
    for name, value in cfg.as_dict().items():
        if cfg.origin(name) == DEFAULT or value is None or value == []:
            continue
        opt[name] = _opt_value(value)
    numproc = cfg.processes
    started_on = runtime.started_on
    buffer_size = cfg.buffer_size


def _opt_value(value: Any) -> Any:
    """As uWSGI gives them: a bare flag is True, a value bytes, a repeated option a list."""
    if isinstance(value, list):
        items = [_opt_value(v) for v in value]
        return items[0] if len(items) == 1 else items
    if value is True:
        return True
    if value is False:
        return b"false"
    return str(value).encode()


def _rt() -> Any:
    if _RT is None:
        raise UnsupportedError("the uwsgi module works only inside runuwsgi's processes")
    return _RT


# -- processes --------------------------------------------------------------------------
def worker_id() -> int:
    return _rt().wid


def masterpid() -> int:
    return _rt().master_pid


def mule_id() -> int:
    return 0


def i_am_the_spooler() -> bool:
    return False


def reload() -> bool:
    """Graceful reload of the whole server (SIGHUP to the master, as uWSGI)."""
    os.kill(masterpid(), _signal.SIGHUP)
    return True


def stop() -> bool:
    """Graceful stop (uWSGI's is immediate: in-flight requests are lost)."""
    os.kill(masterpid(), _signal.SIGINT)
    return True


def total_requests() -> int:
    board = _rt().scoreboard
    return board.total_requests() if board is not None else 0


def request_id() -> int:
    """Requests this worker id has served (uWSGI's counter: it grows as a request ends)."""
    rt = _rt()
    return int(rt.scoreboard.read(rt.slot)["requests"]) if rt.wid else 0


def workers() -> tuple[dict[str, Any], ...]:
    """One dict per worker id (its newest live process, starting or serving), with uWSGI's
    keys and types (checked against pyuwsgi: status is bytes); the numbers are the stats
    server's (server/stats_doc.py)."""
    from ..server.stats_doc import Proc, document

    rt = _rt()
    board = rt.scoreboard
    if board is None:
        return ()
    newest: dict[int, dict[str, float]] = {}
    slot_of: dict[int, int] = {}
    for slot in range(1, board.high_slot() + 1):
        info = board.read(slot)
        wid = int(info["wid"])
        if wid and info["pid"] and (wid not in newest or
                                    info["last_spawn"] > newest[wid]["last_spawn"]):
            newest[wid], slot_of[wid] = info, slot
    procs = [Proc(wid, int(info["pid"]), slot_of[wid]) for wid, info in newest.items()
             if _alive(int(info["pid"]))]
    doc = document(board=board, procs=procs, listeners=(), workers=0,
                   threads=rt.cfg.threads, master_pid=rt.master_pid, backlog=0)
    return tuple({key: entry[key] for key in _WORKER_KEYS} |
                 {"status": entry["status"].encode(), "apps": tuple(entry["apps"])}
                 for entry in doc["workers"] if entry["pid"])


_WORKER_KEYS = ("id", "pid", "requests", "delta_requests", "signals", "exceptions", "status",
                "rss", "vsz", "running_time", "last_spawn", "respawn_count", "tx", "avg_rt",
                "apps")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def setprocname(name: str) -> None:
    """The process name shown by top and ``ps -o comm`` (15 bytes: the kernel's limit);
    with the setproctitle package installed, the whole command line as uWSGI does (keeping
    the word runuwsgi, which uwsgi_reload looks for before it signals a pid)."""
    from ..server.pidfile import MARKER

    try:
        import setproctitle

        setproctitle.setproctitle(name if MARKER in name else f"{name} [{MARKER}]")
    except ImportError:
        pass
    try:
        with open("/proc/self/comm", "wb") as f:
            f.write(str(name).encode()[:15])
    except OSError:
        pass


def log(message: Any) -> bool:
    _write_line(str(message))
    return True


# -- locks ------------------------------------------------------------------------------
def lock(num: int = 0) -> None:
    _rt().locks.acquire(num)


def unlock(num: int = 0) -> None:
    _rt().locks.release(num)


def is_locked(num: int = 0) -> bool:
    return _rt().locks.locked(num)


# -- signals, timers, cron, file monitors -----------------------------------------------
def register_signal(signum: int, who: str, handler: Any) -> None:
    rt = _rt()
    _signals.check_signum(signum)
    _signals.check_target(who)
    if not callable(handler):
        raise TypeError("uwsgi.register_signal: the handler must be callable")
    if not rt.wid and signum in rt.handlers:
        raise ValueError(f"uwsgi signal {signum} is already registered (the master cannot "
                         f"re-register a signal, as in uWSGI)")
    rt.handlers[signum] = (who, handler)
    rt.tell_master(["reg", signum, who, os.getpid() if rt.wid else None])


def signal_registered(signum: int) -> bool:
    return _signals.check_signum(signum) in _rt().handlers


def signal(signum: int, remote: Any = None) -> None:
    if remote is not None:
        raise UnsupportedError("uwsgi.signal(num, remote) is not supported by runuwsgi: "
                               "there is no remote signal protocol")
    _rt().tell_master(["sig", _signals.check_signum(signum)])


def add_timer(signum: int, seconds: float) -> None:
    _rt().tell_master(["timer", _signals.check_signum(signum), _seconds(seconds), 0])


def add_rb_timer(signum: int, seconds: float, iterations: int = 0) -> None:
    if not isinstance(iterations, int) or iterations < 0:
        raise ValueError(f"uwsgi.add_rb_timer: iterations must be >= 0, not {iterations!r}")
    _rt().tell_master(["timer", _signals.check_signum(signum), _seconds(seconds), iterations])


def _seconds(seconds: Any) -> float:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
        raise ValueError(f"uwsgi timer: seconds must be a positive number, not {seconds!r}")
    return float(seconds)


_CRON_RANGES = (("minute", 59), ("hour", 23), ("day", 31), ("month", 12), ("weekday", 6))


def add_cron(signum: int, minute: int, hour: int, day: int, month: int, weekday: int) -> None:
    """-1 means any value, -N every N (value % N == 0), as uWSGI's cron."""
    fields = (minute, hour, day, month, weekday)
    for (name, top), value in zip(_CRON_RANGES, fields, strict=True):
        if not isinstance(value, int) or value > top or value < -top - 1 or value == 0 and \
                name in ("day", "month"):
            raise ValueError(f"uwsgi.add_cron: invalid {name} {value!r} (-1 any, -N every N, "
                             f"or a value up to {top})")
    _rt().tell_master(["cron", _signals.check_signum(signum), *fields])


def add_file_monitor(signum: int, path: str) -> None:
    path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    _rt().tell_master(["filemon", _signals.check_signum(signum), os.path.abspath(path)])


# -- harakiri ---------------------------------------------------------------------------
def set_user_harakiri(seconds: int) -> None:
    """Kill the current request (or the worker) after ``seconds``; 0 clears it. Cleared
    when the request ends."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
        raise ValueError(f"uwsgi.set_user_harakiri: seconds must be >= 0, not {seconds!r}")
    _rt().set_user_harakiri(seconds)


# -- caches -----------------------------------------------------------------------------
def _cache(name: Any) -> Any:
    caches = _rt().caches
    if name is None:
        if not caches:
            raise ValueError("no cache is configured: add --cache2 name=NAME,items=N")
        return next(iter(caches.values()))
    name = name.decode() if isinstance(name, bytes) else str(name)
    if "@" in name:
        raise UnsupportedError(f"uwsgi cache {name!r}: remote caches (name@server) are not "
                               f"supported by runuwsgi")
    try:
        return caches[name]
    except KeyError:
        raise ValueError(f"no cache named {name!r} (configured: "
                         f"{', '.join(caches) or 'none; add --cache2 name=NAME,items=N'})") \
            from None


def _bytes(value: Any, what: str) -> bytes:
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"uwsgi cache {what} must be str or bytes, not {type(value).__name__}")


def cache_get(key: Any, cache_name: Any = None) -> bytes | None:
    return _cache(cache_name).get(_bytes(key, "key"))


def cache_exists(key: Any, cache_name: Any = None) -> bool | None:
    return True if _cache(cache_name).exists(_bytes(key, "key")) else None


def cache_set(key: Any, value: Any, expires: int = 0, cache_name: Any = None) -> bool | None:
    """Only when the key is missing (or expired); None otherwise or when full, as uWSGI."""
    return _cache(cache_name).set(_bytes(key, "key"), _bytes(value, "value"), expires, False)


def cache_update(key: Any, value: Any, expires: int = 0, cache_name: Any = None) -> bool | None:
    return _cache(cache_name).set(_bytes(key, "key"), _bytes(value, "value"), expires, True)


def cache_del(key: Any, cache_name: Any = None) -> bool | None:
    return _cache(cache_name).delete(_bytes(key, "key"))


def cache_clear(cache_name: Any = None) -> bool:
    return _cache(cache_name).clear()


def cache_keys(cache_name: Any = None) -> list[bytes]:
    return _cache(cache_name).keys()


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    raise UnsupportedError(f"uwsgi.{name} is not supported by runuwsgi (django-uwsgi-server "
                           f"{__version__}): see 'The uwsgi module' in its README for what is")

