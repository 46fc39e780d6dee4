"""The stats document, in uWSGI's schema (``uwsgi_master_generate_stats``), built from the
scoreboard and what the kernel says about the processes and the listening sockets.

Shared by the stats server (``--stats``), the Prometheus exposition (``metrics.py``) and
anything else that wants the numbers (``uwsgi.workers()``): ``document()`` takes plain
values, not the master, so a worker can build it too (``procs_from_scoreboard``).

Per worker id, the cumulative counters (requests, exceptions, tx, harakiri_count,
running_time, respawn_count) add up every scoreboard slot that worker id has used: during
a reload the old and the new process of a worker id hold two slots, and the sum never goes
backwards. The per-process fields (pid, status, delta_requests, rss, last_spawn, avg_rt,
cores) are those of the process currently serving as that worker id.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable
from typing import Any

from .. import __version__
from .stats import BUCKETS, Scoreboard

# The fields of a worker's entry added over every slot of its worker id.
_SUMMED = ("requests", "exceptions", "tx", "harakiri_count", "respawn_count")


class Proc:
    """What the document needs to know about one worker process."""

    __slots__ = ("wid", "pid", "slot", "current")

    def __init__(self, wid: int, pid: int, slot: int, current: bool = True) -> None:
        self.wid, self.pid, self.slot, self.current = wid, pid, slot, current


def procs_from_scoreboard(board: Scoreboard) -> list[Proc]:
    """The live worker processes as the scoreboard alone shows them (outside the master):
    per worker id, the newest accepting slot."""
    newest: dict[int, tuple[float, Proc]] = {}
    for slot in range(1, board.high_slot() + 1):
        info = board.read(slot)
        if not info["accepting"] or not info["pid"]:
            continue
        wid = int(info["wid"])
        if wid not in newest or info["last_spawn"] > newest[wid][0]:
            newest[wid] = (info["last_spawn"], Proc(wid, int(info["pid"]), slot))
    return [proc for _, proc in newest.values()]


def document(*, board: Scoreboard, procs: Iterable[Proc], listeners: Iterable[Any],
             workers: int, threads: int, master_pid: int, backlog: int,
             locks: list[dict[str, int]] | None = None) -> dict[str, Any]:
    """The stats document (see the module docstring). ``workers``: the configured count
    (worker ids with no process are listed as ``cheap``, as uWSGI does); ``backlog``: the
    listen() backlog the sockets were given (the kernel shows it for unix sockets only);
    ``locks``: uWSGI's ``[{"user 0": pid holding it or 0}, ...]``."""
    sockets = [_socket_entry(listener, backlog) for listener in listeners]
    by_wid: dict[int, list[Proc]] = {}
    for proc in procs:
        by_wid.setdefault(proc.wid, []).append(proc)
    slots_of: dict[int, list[int]] = {}
    infos: dict[int, dict[str, float]] = {}
    for slot in range(1, board.high_slot() + 1):
        info = board.read(slot)
        infos[slot] = info
        if info["wid"]:
            slots_of.setdefault(int(info["wid"]), []).append(slot)
    entries = []
    now = time.time()
    for wid in range(1, max([workers, *by_wid]) + 1):
        current = [p for p in by_wid.get(wid, ()) if p.current] or by_wid.get(wid, [])
        proc = max(current, key=lambda p: infos.get(p.slot, {}).get("last_spawn", 0),
                   default=None)
        entries.append(_worker_entry(board, wid, proc, slots_of.get(wid, []), infos, threads,
                                     now))
    return {
        "version": __version__,
        "listen_queue": max((s["queue"] for s in sockets), default=0),
        "listen_queue_errors": 0,
        "signal_queue": 0,
        "load": sum(sum(c["in_request"] for c in w["cores"]) for w in entries),
        "pid": master_pid,
        "uid": os.getuid(),
        "gid": os.getgid(),
        "cwd": os.getcwd(),
        "locks": locks or [],
        "sockets": sockets,
        "workers": entries,
    }


def _worker_entry(board: Scoreboard, wid: int, proc: Proc | None, slots: list[int],
                  infos: dict[int, dict[str, float]], threads: int,
                  now: float) -> dict[str, Any]:
    sums = dict.fromkeys(_SUMMED, 0)
    running = 0
    for slot in slots:
        for key in _SUMMED:
            sums[key] += int(infos[slot][key])
        running += board.timing(slot)[0]
    info = infos.get(proc.slot) if proc is not None else None
    rss = vsz = 0
    cores: list[dict[str, Any]] = []
    if proc is None or info is None:
        status, pid, delta, accepting, last_spawn, avg_rt = "cheap", 0, 0, 0, 0, 0
    else:
        pid, delta = proc.pid, int(info["delta_requests"])
        accepting, last_spawn = int(info["accepting"]), int(info["last_spawn"])
        avg_rt = board.timing(proc.slot)[1]
        status = "busy" if info["busy_since"] else "idle"
        rss, vsz = _memory(pid)
        statics = board.static_requests(proc.slot, threads)
        for core, (requests, since) in enumerate(board.cores(proc.slot, threads)):
            cores.append({
                "id": core, "requests": requests, "static_requests": statics[core],
                "routed_requests": 0, "offloaded_requests": 0, "write_errors": 0,
                "read_errors": 0, "in_request": 1 if since else 0, "vars": [],
                "req_info": {"request_start": int(since)} if since else {},
            })
    return {
        "id": wid, "pid": pid, "accepting": accepting, "requests": sums["requests"],
        "delta_requests": delta, "exceptions": sums["exceptions"],
        "harakiri_count": sums["harakiri_count"], "signals": 0, "signal_queue": 0,
        "status": status, "rss": rss, "vsz": vsz, "running_time": running,
        "last_spawn": last_spawn, "respawn_count": sums["respawn_count"], "tx": sums["tx"],
        "avg_rt": avg_rt,
        "apps": [{"id": 0, "modifier1": 0, "mountpoint": "", "startup_time": 0,
                  "requests": sums["requests"], "exceptions": sums["exceptions"],
                  "chdir": ""}] if pid else [],
        "cores": cores,
    }


def histogram(board: Scoreboard) -> tuple[list[tuple[float, int]], float, int]:
    """The request-duration histogram of every request ever counted: cumulative
    (upper bound, count) pairs ending with +Inf, the sum in seconds, the count."""
    counts = [0] * (len(BUCKETS) + 1)
    total_us = 0
    for slot in range(1, board.high_slot() + 1):
        for i, n in enumerate(board.histogram(slot)):
            counts[i] += n
        total_us += board.timing(slot)[0]
    cumulative, running = [], 0
    for bound, n in zip([*BUCKETS, float("inf")], counts, strict=True):
        running += n
        cumulative.append((bound, running))
    return cumulative, total_us / 1_000_000, running


def _memory(pid: int) -> tuple[int, int]:
    try:
        with open(f"/proc/{pid}/statm") as f:
            vsz_pages, rss_pages = f.read().split()[:2]
    except (OSError, ValueError):
        return 0, 0
    page = os.sysconf("SC_PAGE_SIZE")
    return int(rss_pages) * page, int(vsz_pages) * page


def _socket_entry(listener: Any, backlog: int) -> dict[str, Any]:
    queue, max_queue = listen_queue(listener.sock)
    return {"name": listener.name, "proto": listener.protocol, "queue": queue,
            "max_queue": max_queue or backlog, "shared": 0, "can_offload": 0}


def listen_queue(sock: socket.socket) -> tuple[int, int]:
    """(connections waiting to be accepted, the listen backlog) of a listening socket, from
    the kernel: /proc/net/tcp{,6} for TCP (a LISTEN socket's rx_queue is its accept queue;
    the backlog is not shown there: 0), netlink sock_diag for unix sockets (both)."""
    try:
        inode = os.fstat(sock.fileno()).st_ino
    except OSError:
        return 0, 0
    if sock.family == socket.AF_UNIX:
        from .unix_diag import unix_queue

        return unix_queue(inode)
    table = "/proc/net/tcp6" if sock.family == socket.AF_INET6 else "/proc/net/tcp"
    wanted = str(inode)
    try:
        with open(table) as f:
            next(f, None)
            for line in f:
                fields = line.split()
                if len(fields) > 9 and fields[9] == wanted and fields[3] == "0A":
                    return int(fields[4].split(":")[1], 16), 0
    except OSError:
        pass
    return 0, 0
