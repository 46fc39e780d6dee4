"""From a merged Config to a running server: bind, load, banner, fork — the command's engine.

Kept out of the management command so that ``handle()`` only parses and validates (Django's
runserver has the same split).
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import sys
import traceback
from typing import Any, TextIO

from .. import __version__
from ..compat import runtime as uwsgi_runtime
from . import hooks, logpipe, pidfile, privileges, runtime, shared, stats_server
from .loader import AppLoadError
from .logging import RequestLog, redirect_output, set_log_date, write_line
from .master import Master, rearm_parent_death
from .reload import is_reexec
from .sockets import HTTP, UWSGI, BindError, Listener, bind, parse_address, somaxconn
from .systemd import INHERITED, Activation

# option -> protocol, in the order the banner lists them
SOCKET_OPTIONS = (("http_socket", HTTP), ("http11_socket", HTTP), ("http", HTTP),
                  ("socket", UWSGI), ("uwsgi_socket", UWSGI))


class ServerError(Exception):
    """A startup failure with a one-line explanation (bind errors, bad app...)."""


def bind_all(cfg: Any, out: TextIO) -> list[Listener]:
    problem = logpipe.check(cfg)
    if problem:
        raise ServerError(problem)
    backlog = cfg.listen
    limit = somaxconn()
    if backlog > limit:
        out.write(f"listen {backlog} is above net.core.somaxconn ({limit}); using {limit} "
                  f"(raise the sysctl to queue more)\n")
        backlog = limit
    try:
        owner = privileges.parse_owner(cfg.chown_socket)
    except privileges.PrivilegeError as exc:
        raise ServerError(str(exc)) from None
    try:
        stats_server.prebind(cfg)
    except stats_server.StatsConfigError as exc:
        raise ServerError(str(exc)) from None
    except BindError as exc:
        raise ServerError(str(exc.strerror)) from None
    listeners: list[Listener] = []
    sharing = shared.SharedSockets(cfg.shared_socket or [])
    try:
        activation = Activation.from_environment()  # systemd's sockets (LISTEN_FDS), if any

        def bind_one(address: Any, protocol: str, option: str) -> Listener:
            return activation.take(address, protocol, option) or \
                bind(address, protocol, option, backlog, cfg.chmod_socket, owner,
                     bool(cfg.reuse_port))

        for attr, protocol in SOCKET_OPTIONS:
            option = attr.replace("_", "-")
            if activation and cfg.origin(option) == "default":
                continue  # systemd passed the sockets: no default 127.0.0.1:8000
            for text in getattr(cfg, attr) or ():
                if shared.is_reference(text):
                    address, label = sharing.resolve(text, option)
                    listeners.append(bind_one(address, protocol, label))
                else:
                    listeners.append(bind_one(parse_address(text), protocol, option))
        unserved = sharing.bind_unreferenced(lambda address, label: bind_one(address, UWSGI, label))
        listeners += activation.rest()
    except (BindError, shared.SharedSocketError) as exc:
        for listener in listeners:
            listener.sock.close()
        shared.close_on_error()
        stats_server.release()
        if isinstance(exc, shared.SharedSocketError):
            raise ServerError(str(exc)) from None
        raise ServerError(str(exc.strerror if isinstance(exc.strerror, str) else exc)) from None
    if unserved:
        out.write("\n".join(unserved) + "\n")
    return listeners


def write_pidfiles(path: str | None, path2: str | None,
                   identity: privileges.Identity | None) -> None:
    """``pidfile`` (after binding, before forking) and ``pidfile2`` (owned by uid/gid).

    Not called in a master image started by a reload re-exec: the pid is the same.
    """
    pid = os.getpid()
    try:
        if path:
            pidfile.write(path, pid)
        if path2:
            owner = None
            if identity is not None:
                owner = (-1 if identity.uid is None else identity.uid,
                         -1 if identity.gid is None else identity.gid)
            pidfile.write(path2, pid, owner)
    except pidfile.PidfileError as exc:
        if path:
            pidfile.remove(path, pid)
        raise ServerError(str(exc)) from None


def unix_socket_files(listeners: list[Listener]) -> list[tuple[str, int, int]]:
    """The unix socket files we serve, with their inode, for vacuum at exit (recorded from
    the path, so sockets inherited across a reload re-exec are covered too)."""
    files = []
    for listener in listeners:
        path = listener.address.path
        if listener.address.family != socket.AF_UNIX or not path or path.startswith("@") or \
                INHERITED in listener.option:  # systemd's file, not ours to remove
            continue
        try:
            st = os.stat(path)
        except OSError:
            continue
        if stat.S_ISSOCK(st.st_mode):
            files.append((os.path.abspath(path), st.st_dev, st.st_ino))
    return files


def cleanup(pid: int, pidfiles: list[str], sockets: list[tuple[str, int, int]]) -> None:
    """At the master's final exit: our pidfiles (if they still hold our pid) and, with
    vacuum, the unix socket files (if they are still the ones we created)."""
    for path in pidfiles:
        pidfile.remove(path, pid)
    for path, dev, ino in sockets:
        with contextlib.suppress(OSError):
            st = os.stat(path)
            if (st.st_dev, st.st_ino) == (dev, ino):
                os.unlink(path)


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
        if listener.option.split()[0] == "http":
            lines.append("    (no separate HTTP router process: the workers speak HTTP)")
    lines.append(f"Master pid {os.getpid()}: {cfg.processes} worker"
                 f"{'s' if cfg.processes != 1 else ''} × {threads} thread"
                 f"{'s' if threads != 1 else ''}")
    lines.append("Quit the server with CONTROL-C (graceful; twice to stop at once).")
    out.write("\n".join(lines) + "\n")
    out.flush()


def serve(cfg: Any, app: Any, load_app: Any, listeners: list[Listener],
          on_ready: Any = None, on_exit: Any = None, app_failed: bool = False,
          identity: privileges.Identity | None = None, daemon: Any = None,
          static: Any = None) -> int:
    """Fork the workers and run the master loop until stopped; returns the exit code.

    ``identity``: what each worker drops to (uid/gid) right after the fork, before it loads
    or serves anything; the master keeps its own. ``daemon``: the pipe to the daemonize
    launcher, which only the master may hold (its on_ready tells the launcher).

    ``app`` is None with lazy-apps (each worker loads it) and after a reload whose new code
    failed to import (``app_failed``: the old workers keep serving). ``static``: the static
    file rules (``static.build``), put in front of the app in each worker.
    """
    from .triggers import Triggers
    from .worker import Worker
    from .wsgi import Handler

    if cfg.logto and not is_reexec():
        redirect_output(cfg.logto)
    set_log_date(cfg.log_date)
    shared.keep_carried()
    _close_shared_resources()
    master: Master | None = None

    def make_worker(wid: int, slot: int, report_fd: int) -> Worker | None:
        if daemon is not None:
            daemon.close()
        if identity is not None:
            try:
                privileges.drop(identity)
            except privileges.PrivilegeError as exc:
                write_line(f"worker {wid}: {exc}")
                return None
            rearm_parent_death(os.getppid())  # the uid change cleared it
        the_app = app
        if the_app is None:
            try:
                the_app = load_app()
            except Exception as exc:
                # The app's own traceback (not ours around it), then the one-line reason.
                cause = exc.__cause__ if isinstance(exc, AppLoadError) else exc
                trace = "".join(traceback.format_exception(cause)).rstrip() if cause else ""
                write_line(f"worker {wid}: {trace}\n{exc}" if trace else f"worker {wid}: {exc}")
                return None
        if static is not None:
            the_app = static.wrap(the_app)
        assert master is not None
        runtime.mark_worker(master.pid, wid, cfg)
        log = RequestLog(worker_id=wid, slot=slot, scoreboard=master.scoreboard,
                         enabled=not cfg.disable_logging, log_format=cfg.log_format,
                         x_forwarded_for=cfg.log_x_forwarded_for, log_4xx=cfg.log_4xx,
                         log_5xx=cfg.log_5xx, log_slow=cfg.log_slow, micros=cfg.log_micros,
                         memory_report=cfg.memory_report)
        log.count_django_exceptions()
        handler = Handler(the_app, multithread=cfg.threads > 1, multiprocess=cfg.processes > 1,
                          keepalive=cfg.http_keepalive > 0, buffer_size=cfg.buffer_size,
                          limit_post=cfg.limit_post, add_headers=cfg.add_header or [],
                          log=log, stopping=lambda: False, post_buffering=cfg.post_buffering,
                          body_min_rate=cfg.body_min_rate, del_headers=cfg.del_header)
        worker = Worker(worker_id=wid, listeners=listeners, handler=handler, cfg=cfg,
                        master_pid=master.pid, slot=slot, scoreboard=master.scoreboard,
                        report_fd=report_fd)
        handler.stopping = worker.stopping
        uwsgi_runtime.worker_started(worker)  # the uwsgi module's post_fork_hook
        return worker

    triggers = None
    if cfg.touch_reload or cfg.touch_chain_reload or cfg.master_fifo:
        triggers = Triggers(touch_reload=cfg.touch_reload, touch_chain_reload=cfg.touch_chain_reload,
                            master_fifos=cfg.master_fifo, log=write_line)
    try:
        stats = stats_server.start(cfg, lambda: master)
    except (stats_server.StatsConfigError, BindError) as exc:
        raise ServerError(str(exc.strerror if isinstance(exc, BindError) else exc)) from None
    master = Master(cfg, make_worker=make_worker, listeners=listeners, on_ready=on_ready,
                    on_exit=on_exit, triggers=triggers, app_failed=app_failed, stats=stats,
                    hooks=hooks.build(cfg, daemonized=daemon is not None),
                    hub=uwsgi_runtime.hub())
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
