"""From a merged Config to a running server: bind, load, banner, fork — the command's engine.

Kept out of the management command so that ``handle()`` only parses and validates (Django's
runserver has the same split).
"""

from __future__ import annotations

import os
import socket
import sys
import traceback
from typing import Any, TextIO

from .. import __version__
from .logging import RequestLog, redirect_output, write_line
from .master import Master
from .sockets import HTTP, UWSGI, BindError, Listener, bind, parse_address, somaxconn

# option -> protocol, in the order the banner lists them
SOCKET_OPTIONS = (("http_socket", HTTP), ("http11_socket", HTTP), ("http", HTTP),
                  ("socket", UWSGI), ("uwsgi_socket", UWSGI))


class ServerError(Exception):
    """A startup failure with a one-line explanation (bind errors, bad app...)."""


def bind_all(cfg: Any, out: TextIO) -> list[Listener]:
    backlog = cfg.listen
    limit = somaxconn()
    if backlog > limit:
        out.write(f"listen {backlog} is above net.core.somaxconn ({limit}); using {limit} "
                  f"(raise the sysctl to queue more)\n")
        backlog = limit
    listeners: list[Listener] = []
    try:
        for attr, protocol in SOCKET_OPTIONS:
            for text in getattr(cfg, attr) or ():
                option = attr.replace("_", "-")
                listeners.append(bind(parse_address(text), protocol, option, backlog,
                                      cfg.chmod_socket))
    except BindError as exc:
        for listener in listeners:
            listener.sock.close()
        raise ServerError(str(exc.strerror if isinstance(exc.strerror, str) else exc)) from None
    return listeners


def banner(cfg: Any, listeners: list[Listener], app_name: str, out: TextIO) -> None:
    import django
    from django.conf import settings

    threads = cfg.threads
    lines = [
        f"django-uwsgi-server {__version__} (Django {django.get_version()}), "
        f"using settings {settings.SETTINGS_MODULE!r}",
        f"Serving {app_name}" + (" (loaded in each worker: lazy-apps)" if cfg.lazy_apps else ""),
    ]
    for listener in listeners:
        if listener.protocol == HTTP:
            where = f"http://{listener.name}/" if listener.address.family != socket.AF_UNIX \
                else f"http+unix://{listener.name}"
            lines.append(f"  {where}  ({listener.option}, HTTP/1.1)")
        else:
            lines.append(f"  uwsgi://{listener.name}  ({listener.option}, uwsgi protocol: "
                         f"put nginx uwsgi_pass in front)")
        if listener.option == "http":
            lines.append("    (no separate HTTP router process: the workers speak HTTP)")
    lines.append(f"Master pid {os.getpid()}: {cfg.processes} worker"
                 f"{'s' if cfg.processes != 1 else ''} × {threads} thread"
                 f"{'s' if threads != 1 else ''}")
    lines.append("Quit the server with CONTROL-C (graceful; twice to stop at once).")
    out.write("\n".join(lines) + "\n")
    out.flush()


def serve(cfg: Any, app: Any, load_app: Any, listeners: list[Listener]) -> int:
    """Fork the workers and run the master loop until stopped; returns the exit code."""
    from .worker import Worker
    from .wsgi import Handler

    if cfg.logto:
        redirect_output(cfg.logto)
    _close_shared_resources()
    master: Master | None = None

    def make_worker(wid: int) -> Worker | None:
        the_app = app
        if the_app is None:
            try:
                the_app = load_app()
            except Exception:
                write_line(f"worker {wid}: could not load the application:\n"
                           + traceback.format_exc().rstrip())
                return None
        log = RequestLog(worker_id=wid, scoreboard=master.scoreboard if master else None,
                         enabled=not cfg.disable_logging, log_format=cfg.log_format,
                         x_forwarded_for=cfg.log_x_forwarded_for)
        handler = Handler(the_app, multithread=cfg.threads > 1, multiprocess=cfg.processes > 1,
                          keepalive=cfg.http_keepalive > 0, buffer_size=cfg.buffer_size,
                          limit_post=cfg.limit_post, add_headers=cfg.add_header or [],
                          log=log, stopping=lambda: False)
        worker = Worker(worker_id=wid, listeners=listeners, handler=handler,
                        threads=cfg.threads, socket_timeout=cfg.socket_timeout,
                        keepalive_timeout=cfg.http_keepalive, buffer_size=cfg.buffer_size,
                        master_pid=master.pid if master else os.getppid())
        handler.stopping = worker.stopping
        return worker

    master = Master(processes=cfg.processes, make_worker=make_worker)
    return master.run()


def _close_shared_resources() -> None:
    """Close DB and cache connections opened at import time: forked workers must not share
    them ("SSL error: decryption failed or bad record mac")."""
    try:
        from django.core.cache import caches
        from django.db import connections

        connections.close_all()
        caches.close_all()
    except Exception:  # Django not configured: a plain WSGI app
        pass
    sys.stdout.flush()
    sys.stderr.flush()
