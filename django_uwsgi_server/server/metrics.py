"""Prometheus text exposition (format 0.0.4) of the stats document and the scoreboard's
request-duration histogram.

Names follow the uwsgi_exporter's where one exists (``uwsgi_worker_requests_total``...), so
dashboards written for it mostly work; counters are exact and never go backwards (they add
up every slot a worker id has used, and survive reloads).
"""

from __future__ import annotations

from typing import Any

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# (metric, type, help, worker-entry key, scale)
_PER_WORKER = (
    ("uwsgi_worker_requests_total", "counter", "Requests served by the worker id",
     "requests", 1),
    ("uwsgi_worker_exceptions_total", "counter", "Requests whose application raised",
     "exceptions", 1),
    ("uwsgi_worker_harakiri_total", "counter", "Requests killed by harakiri",
     "harakiri_count", 1),
    ("uwsgi_worker_transmitted_bytes_total", "counter", "Response bytes sent", "tx", 1),
    ("uwsgi_worker_running_time_seconds_total", "counter", "Time spent serving requests",
     "running_time", 1e-6),
    ("uwsgi_worker_rss_bytes", "gauge", "Resident memory of the worker process", "rss", 1),
    ("uwsgi_worker_vsz_bytes", "gauge", "Virtual memory of the worker process", "vsz", 1),
    ("uwsgi_worker_avg_response_time_seconds", "gauge",
     "uWSGI's running average of the response time", "avg_rt", 1e-6),
    ("uwsgi_worker_accepting", "gauge", "1 when the worker accepts requests", "accepting", 1),
)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def render(doc: dict[str, Any], histogram: tuple[list[tuple[float, int]], float, int]) -> str:
    """The exposition text for ``doc`` (stats_doc.document) and ``histogram``
    (stats_doc.histogram)."""
    out: list[str] = []

    def family(name: str, kind: str, text: str) -> None:
        out.append(f"# HELP {name} {text}")
        out.append(f"# TYPE {name} {kind}")

    workers = doc["workers"]
    family("uwsgi_listen_queue", "gauge", "Connections waiting in the accept queues (largest)")
    out.append(f"uwsgi_listen_queue {doc['listen_queue']}")
    family("uwsgi_socket_listen_queue", "gauge", "Connections waiting in a socket's accept queue")
    for sock in doc["sockets"]:
        out.append(f'uwsgi_socket_listen_queue{{socket="{_escape(sock["name"])}",'
                   f'proto="{sock["proto"]}"}} {sock["queue"]}')
    family("uwsgi_socket_max_queue", "gauge", "A socket's listen backlog")
    for sock in doc["sockets"]:
        out.append(f'uwsgi_socket_max_queue{{socket="{_escape(sock["name"])}",'
                   f'proto="{sock["proto"]}"}} {sock["max_queue"]}')
    family("uwsgi_workers", "gauge", "Worker processes running")
    out.append(f"uwsgi_workers {sum(1 for w in workers if w['pid'])}")
    family("uwsgi_busy_workers", "gauge", "Workers serving a request now")
    out.append(f"uwsgi_busy_workers {sum(1 for w in workers if w['status'] == 'busy')}")
    family("uwsgi_requests_in_flight", "gauge", "Requests being served now (all threads)")
    out.append(f"uwsgi_requests_in_flight {doc['load']}")
    for name, kind, text, key, scale in _PER_WORKER:
        family(name, kind, text)
        for w in workers:
            out.append(f'{name}{{worker="{w["id"]}"}} {_number(round(w[key] * scale, 6))}')
    family("uwsgi_worker_respawns_total", "counter",
           "Times the worker id was started again (respawn, recycling, reload)")
    for w in workers:
        out.append(f'uwsgi_worker_respawns_total{{worker="{w["id"]}"}} '
                   f'{max(w["respawn_count"] - 1, 0)}')
    family("uwsgi_worker_busy", "gauge", "1 while the worker serves a request")
    for w in workers:
        out.append(f'uwsgi_worker_busy{{worker="{w["id"]}"}} {int(w["status"] == "busy")}')
    buckets, total, count = histogram
    family("uwsgi_request_duration_seconds", "histogram",
           "Time from the request's start to its end, all workers")
    for bound, n in buckets:
        out.append(f'uwsgi_request_duration_seconds_bucket{{le="{_number(bound)}"}} {n}')
    out.append(f"uwsgi_request_duration_seconds_sum {_number(total)}")
    out.append(f"uwsgi_request_duration_seconds_count {count}")
    return "\n".join(out) + "\n"
