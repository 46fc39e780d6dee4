"""The dashboard's figures from a stats document as uWSGI 2.0 itself writes it (served on a
real unix socket, read by the real client), including statuses and gaps our server never
produces: the page must lay out whatever a uWSGI-schema stats server sends."""

import json
import os
import re
import socket
import threading
import time

from django_uwsgi_server import dashboard


def uwsgi_doc(now):
    return {
        "version": "2.0.30", "listen_queue": 3, "listen_queue_errors": 2, "signal_queue": 0,
        "load": 1, "pid": os.getpid(), "uid": 0, "gid": 0, "cwd": "/srv",
        "locks": [{"user 0": 0}],
        "sockets": [{"name": "127.0.0.1:3031", "proto": "uwsgi", "queue": 3, "max_queue": 100,
                     "shared": 0, "can_offload": 0}],
        "workers": [
            {"id": 2, "pid": 1002, "accepting": 1, "requests": 7, "exceptions": 1,
             "harakiri_count": 0, "status": "sig12", "rss": 0, "vsz": 0, "avg_rt": 2500,
             "respawn_count": 3, "last_spawn": now - 125},
            {"id": 1, "pid": 1001, "accepting": 1, "requests": 40, "exceptions": 0,
             "harakiri_count": 2, "status": "busy", "rss": 52_428_800, "vsz": 0, "avg_rt": 1234,
             "respawn_count": 1, "last_spawn": now - 3},
            {"id": 3, "pid": 0, "status": "cheap"},  # a cheaper-mode slot, most fields missing
        ],
    }


def serve_once(path, payload):
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    server.settimeout(10)

    def run():
        with server:
            conn, _ = server.accept()
            with conn:
                conn.sendall(payload)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_snapshot_of_a_uwsgi_document(tmp_path):
    path = str(tmp_path / "stats.sock")
    # Whole seconds as uWSGI writes them: 3 s ago is 3 s ago for the next second.
    now = int(time.time())
    thread = serve_once(path, json.dumps(uwsgi_doc(now), indent=4).encode())
    target = dashboard.Target(False, None, None, path, None, "no pidfile")
    data = dashboard.snapshot(target)
    thread.join(10)
    assert data["ok"] is True
    assert [n["level"] for n in data["notices"]] == ["warning"]  # not served by runuwsgi
    summary = dict(data["summary"])
    assert summary["Workers"] == "3 (1 busy, 1 cheap, 1 sig12)"
    assert summary["Requests"] == "47"
    assert summary["Listen queue"] == "3 (2 overflows)"
    assert summary["Version"] == "2.0.30"
    assert summary["Master PID"] == str(os.getpid())
    assert summary["Uptime"] != "unknown"  # this process stands in for the master
    assert [w["id"] for w in data["workers"]] == [1, 2, 3]
    first, second, third = (w["cells"] for w in data["workers"])
    assert first[:8] == ["1", "1001", "busy", "40", "0", "2", "50.0 MiB", "1.2 ms"]
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \([34] s ago\)$", first[9])
    # Respawns: the first spawn is not one (respawn_count 3 = two respawns), as
    # uwsgi_stats, the SIGUSR1 block and uwsgi_worker_respawns_total count them.
    assert first[8] == "0"
    assert second[6:9] == ["-", "2.5 ms", "2"]
    assert re.search(r"\(2 min [56] s ago\)$", second[9])
    assert third == ["3", "", "cheap", "0", "0", "0", "-", "0.0 ms", "0", "-"]
    assert data["sockets"] == [{"cells": ["127.0.0.1:3031", "uwsgi", "3", "100", "no"]}]
    assert [b["disabled"] for b in dashboard.buttons(target)] == ["no pidfile", "no pidfile"]


def test_stats_off_and_unreachable(tmp_path):
    off = dashboard.snapshot(dashboard.Target(True, 1, os.getppid(), None, None))
    assert off["ok"] is False and off["workers"] == []
    assert off["notices"][0]["text"].startswith("The stats server is off")
    assert 'UWSGI = {"stats": "127.0.0.1:9191"}' in off["notices"][0]["text"]
    gone = dashboard.snapshot(dashboard.Target(True, 1, os.getppid(),
                                               str(tmp_path / "nothing.sock"), None))
    assert gone["notices"][0]["text"].startswith("Could not read the stats server: no stats "
                                                 "server is listening on")


def test_formats():
    assert [dashboard.size(v) for v in (0, None, 5000, 3 << 20)] == ["-", "-", "5 KiB",
                                                                      "3.0 MiB"]
    assert [dashboard.duration(s) for s in (-1, 59, 61, 3 * 3600 + 5 * 60, 2 * 86400 + 7200)] \
        == ["0 s", "59 s", "1 min 1 s", "3 h 05 min", "2 d 2 h"]
