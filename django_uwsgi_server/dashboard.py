"""The admin dashboard's data: which server the page shows, its stats document made into
rows for display, and the reload buttons (they send what ``manage.py uwsgi_reload`` sends).

Served by runuwsgi, the worker answering knows its master, stats address and master FIFO
(:mod:`.server.runtime`). Anywhere else (runserver, another WSGI server) the page says so
and falls back to ``settings.UWSGI``: its ``stats`` address for the figures, its
``pidfile`` / ``master-fifo`` for the buttons, as ``uwsgi_reload`` does.

The rows are formatted here once, for both the first HTML render and the JSON the page
polls, so the template and the script only lay out strings.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import psutil
from django.conf import settings

from . import __version__
from .conf import ConfigError, build_config
from .server import control, runtime
from .server.stats_client import StatsUnavailable, fetch_stats

STATS_EXAMPLE = 'UWSGI = {"stats": "127.0.0.1:9191"}'
FETCH_TIMEOUT = 1.5  # seconds; the page polls, a slow answer is better reported than awaited

WORKER_COLUMNS = ("Worker", "PID", "Status", "Requests", "Exceptions", "Harakiri", "RSS",
                  "Avg time", "Respawns", "Last spawn")
SOCKET_COLUMNS = ("Address", "Protocol", "Queue", "Max queue", "Shared")
MODES = {"graceful": "reload", "chain": "chain"}  # button -> control.ACTIONS key


class ReloadError(Exception):
    """The reload could not be sent; one line for the page."""


@dataclass(frozen=True)
class Target:
    """The server this page shows and acts on."""

    under_runuwsgi: bool
    worker_id: int | None
    master_pid: int | None
    stats: str | None
    fifo: str | None
    problem: str | None = None  # why no reload can be sent from here
    stats_http: bool = False  # stats-http: the stats server waits for a request first


def find_target() -> Target:
    info = runtime.current
    if info is not None:
        return Target(True, info.worker_id, info.master_pid, getattr(info.cfg, "stats", None),
                      _first(info.cfg.master_fifo), _other_user(info.master_pid),
                      bool(getattr(info.cfg, "stats_http", False)))
    try:
        cfg = build_config(getattr(settings, "UWSGI", None), {})
    except ConfigError as exc:
        return Target(False, None, None, None, None, f"settings.UWSGI: {exc}")
    fifo = _first(cfg.master_fifo)
    pidfile = cfg.pidfile or cfg.pidfile2
    pid = problem = None
    if pidfile:
        try:
            pid = control.master_pid(pidfile)
        except control.ControlError as exc:
            problem = str(exc)
    else:
        problem = "settings.UWSGI names no 'pidfile' or 'master-fifo' to find the server by"
    # A bad pidfile does not matter when the FIFO can carry the command.
    return Target(False, None, pid, getattr(cfg, "stats", None), fifo,
                  None if fifo else problem, bool(getattr(cfg, "stats_http", False)))


def _first(values: list[str] | None) -> str | None:
    return values[0] if values else None


def _other_user(master_pid: int) -> str | None:
    """With ``uid`` the workers cannot signal the master (root), nor write its 0600 FIFO."""
    me = os.geteuid()
    if me == 0:
        return None
    try:
        owner = psutil.Process(master_pid).uids().real
    except psutil.Error:
        return None
    if owner == me:
        return None
    return (f"the workers run as uid {me} ('uid' option) and the master as uid {owner}, so "
            f"a worker may not signal it; reload with manage.py uwsgi_reload as uid {owner}")


def buttons(target: Target) -> list[dict[str, Any]]:
    """The two reload buttons, each disabled with the reason when it cannot work."""
    chain_off = target.problem or (None if target.fifo else (
        "chain reload needs the master FIFO: add \"master-fifo\": \"/run/<project>.fifo\" "
        "to settings.UWSGI (or --master-fifo PATH)"))
    return [
        {"mode": "graceful", "label": "Graceful reload", "disabled": target.problem,
         "help": "New workers start with fresh code; each old worker stops once its "
                 "replacement accepts (SIGHUP to the master)."},
        {"mode": "chain", "label": "Chain reload", "disabled": chain_off,
         "help": "Workers are replaced one at a time (FIFO command 'c')."},
    ]


def reload(target: Target, mode: str) -> str:
    """Send the reload ``mode`` (graceful/chain); the line to show. Never waits: the worker
    running this is one of those being replaced."""
    if target.under_runuwsgi and os.getppid() != target.master_pid:
        raise ReloadError(f"the master (pid {target.master_pid}) is gone: this worker is "
                          f"stopping")
    if target.problem:
        raise ReloadError(target.problem)
    try:
        what = control.send(MODES[mode], pid=target.master_pid, fifo=target.fifo)
    except control.ControlError as exc:
        raise ReloadError(str(exc)) from None
    to = f"the runuwsgi master (pid {target.master_pid})" if target.master_pid else "the server"
    return f"sent {what} to {to}"


def snapshot(target: Target) -> dict[str, Any]:
    """Everything the page shows, as strings ready to lay out (the JSON endpoint's body)."""
    now = time.time()
    notices: list[dict[str, str]] = []
    if not target.under_runuwsgi:
        notices.append(_notice(
            "warning",
            f"This page is not served by runuwsgi: this process (pid {os.getpid()}) is not "
            f"one of its workers (runserver, a test client or another WSGI server). Figures "
            f"and reloads use settings.UWSGI to find a runuwsgi server."))
    doc: dict[str, Any] | None = None
    if not target.stats:
        notices.append(_notice(
            "error",
            f"The stats server is off, so there are no figures to show. Enable it in "
            f"settings: {STATS_EXAMPLE} (or runuwsgi --stats 127.0.0.1:9191), then restart "
            f"or reload the server."))
    else:
        try:
            doc = fetch_stats(target.stats, timeout=FETCH_TIMEOUT, http=target.stats_http)
        except StatsUnavailable as exc:
            notices.append(_notice("error", f"Could not read the stats server: {exc}."))
    workers = _workers(doc, target, now) if doc else []
    return {
        "ok": doc is not None,
        "updated": time.strftime("%H:%M:%S", time.localtime(now)),
        "notices": notices,
        "summary": _summary(doc, target, now),
        "workers": workers,
        "sockets": [{"cells": _socket_cells(s)} for s in (doc or {}).get("sockets") or []],
    }


def _notice(level: str, text: str) -> dict[str, str]:
    return {"level": level, "text": text}


def _summary(doc: dict[str, Any] | None, target: Target, now: float) -> list[list[str]]:
    if target.under_runuwsgi:
        page = f"worker {target.worker_id} (pid {os.getpid()})"
    else:
        page = f"not runuwsgi (pid {os.getpid()})"
    master = (doc or {}).get("pid") or target.master_pid
    items = [["Served by", page], ["Master PID", str(master or "unknown")],
             ["Uptime", _uptime(master, now)]]
    if doc is None:
        return items + [["django-uwsgi-server", __version__]]
    workers = doc.get("workers") or []
    states: dict[str, int] = {}
    for w in workers:
        states[str(w.get("status", "?"))] = states.get(str(w.get("status", "?")), 0) + 1
    detail = ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
    queue = str(doc.get("listen_queue", 0))
    if doc.get("listen_queue_errors"):
        queue += f" ({doc['listen_queue_errors']} overflows)"
    items += [
        ["Workers", f"{len(workers)} ({detail})" if detail else "0"],
        ["Requests", str(sum(int(w.get("requests") or 0) for w in workers))],
        ["Listen queue", queue],
        ["Version", str(doc.get("version", "?"))],
    ]
    return items


def _uptime(pid: Any, now: float) -> str:
    """The master's age: a reload re-executes it under the same pid, so this is the time
    since the server started, as uWSGI's uptime."""
    if not isinstance(pid, int):
        return "unknown"
    try:
        return duration(now - psutil.Process(pid).create_time())
    except psutil.Error:
        return "unknown (the master is not on this host)"


def _workers(doc: dict[str, Any], target: Target, now: float) -> list[dict[str, Any]]:
    rows = []
    for w in sorted(doc.get("workers") or [], key=lambda w: w.get("id", 0)):
        pid = w.get("pid")
        rows.append({
            "id": w.get("id"), "pid": pid, "status": str(w.get("status", "")),
            "current": target.under_runuwsgi and pid == os.getpid(),
            "cells": [str(w.get("id", "")), str(pid or ""), str(w.get("status", "")),
                      str(w.get("requests", 0)), str(w.get("exceptions", 0)),
                      str(w.get("harakiri_count", 0)), size(w.get("rss")),
                      f"{(w.get('avg_rt') or 0) / 1000:.1f} ms",
                      str(max(int(w.get("respawn_count") or 0) - 1, 0)),
                      _spawned(w.get("last_spawn"), now)],
        })
    return rows


def _socket_cells(sock: dict[str, Any]) -> list[str]:
    return [str(sock.get("name", "")), str(sock.get("proto", "")), str(sock.get("queue", 0)),
            str(sock.get("max_queue", 0)), "yes" if sock.get("shared") else "no"]


def size(value: Any) -> str:
    """Bytes as the operator reads them; 0 means "not sampled" in uWSGI's schema."""
    if not value:
        return "-"
    if value < 1 << 20:
        return f"{value / 1024:.0f} KiB"
    return f"{value / (1 << 20):.1f} MiB"


def duration(seconds: float) -> str:
    s = max(int(seconds), 0)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def _spawned(epoch: Any, now: float) -> str:
    if not epoch:
        return "-"
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))
    return f"{stamp} ({duration(now - epoch)} ago)"
