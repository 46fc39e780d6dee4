"""Development autoreload: restart the server when the code, a template or a translation
changes, as ``runserver`` does (``--autoreload``, on by default when DEBUG is; ``--noreload``;
uWSGI's ``--py-autoreload N`` also when DEBUG is off).

Django's reloader runs the command in a background thread, where Python allows no signal
handlers, so the master cannot run inside it. As runserver does, two processes instead:

* the **parent** (this command, started by the user) binds the listening sockets once, then
  runs the real server as a **child** (the same command line, ``RUN_MAIN=true``) that
  inherits them, restarts it when it exits with code 3, and forwards stop and reload
  signals. The sockets stay bound across restarts: a client connecting meanwhile waits in
  the listen queue instead of being refused.
* the **child** is a normal master with a watcher thread: Django's reloader
  (``django.utils.autoreload``: watchman or stat polling of every imported module, the
  template directories and the locale files) stops the master gracefully on a change and
  the child exits with 3.

Errors in the code do not stop the server: an exception while the checks import the
URLconf is shown and serving goes on (Django answers each request with its 500 page, which
shows the error when DEBUG is on); an application that cannot be loaded is replaced by one
answering 500 with the traceback (DEBUG only). The files of the error are watched, so the
fix restarts the server. A child that dies (a syntax error in settings or models stops
``manage.py`` itself) is restarted when one of the files the parent imported changes.
"""

from __future__ import annotations

import html
import json
import os
import select
import signal
import subprocess
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, TextIO

from ..conf import DEFAULT, ConfigError
from .logging import write_line

ENV = "DJANGO_UWSGI_SERVER_AUTORELOAD"  # in the child: the inherited sockets, the interval
RESTART = 3  # the child's exit code asking for a restart (Django's)
_STATE: dict[str, Any] | None = json.loads(os.environ[ENV]) if ENV in os.environ else None
_restart = threading.Event()


def interval(cfg: Any) -> int:
    """Seconds between checks for changes; 0 when autoreload is off."""
    if cfg.noreload:
        return 0
    given = cfg.origin("py-autoreload") != DEFAULT
    if given:
        seconds, name = cfg.py_autoreload, "py-autoreload"
    else:
        seconds, name = (1 if cfg.autoreload else 0), "autoreload"
    if seconds and (cfg.daemonize or cfg.daemonize2):
        if not given and cfg.origin("autoreload") == DEFAULT:
            return 0  # DEBUG's default does not apply to a daemon
        raise ConfigError(f"option {name!r} ({cfg.origin(name)}) does not go with daemonize: "
                          f"autoreload is for development in a terminal")
    return seconds


def is_child() -> bool:
    """True in the server process an autoreload parent started (also after its own reload
    re-exec)."""
    return _STATE is not None


# -- the parent --------------------------------------------------------------------------------

class _Parent:
    def __init__(self, listeners: list[Any], seconds: int, die_on_term: bool) -> None:
        self.listeners = listeners
        self.seconds = seconds
        # what stops the child gracefully (with die-on-term off SIGTERM reloads)
        self.graceful = signal.SIGTERM if die_on_term else signal.SIGINT
        self.child: subprocess.Popen[bytes] | None = None
        self.stops = 0

    def _signal(self, sig: int, frame: Any) -> None:
        if sig in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT):
            self.stops += 1
            # Ctrl-C reaches the child from the terminal too: what we add must not turn
            # the child's graceful stop into a quick one; a second Ctrl-C stops at once.
            forward = self.graceful if self.stops == 1 and sig != signal.SIGQUIT \
                else signal.SIGQUIT
        else:
            forward = sig
        if self.child is not None and self.child.poll() is None:
            os.kill(self.child.pid, forward)

    def run(self) -> int:
        from django.utils.autoreload import DJANGO_AUTORELOAD_ENV, get_child_arguments

        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP,
                    signal.SIGUSR1, signal.SIGUSR2, signal.SIGTTIN, signal.SIGTTOU):
            signal.signal(sig, self._signal)
        fds = []
        for listener in self.listeners:
            fd = listener.sock.fileno()
            os.set_inheritable(fd, True)
            fds.append([fd, listener.protocol, listener.option, str(listener.address)])
        env = {**os.environ, DJANGO_AUTORELOAD_ENV: "true",
               ENV: json.dumps({"listeners": fds, "seconds": self.seconds,
                                "parent": os.getpid()})}
        args = get_child_arguments()
        started = 0
        while True:
            self.child = subprocess.Popen(args, env=env, pass_fds=[f[0] for f in fds])
            started += 1
            code = self.child.wait()
            if self.stops:
                return code
            if code == RESTART:
                continue
            if started == 1 or code == 0:
                return code  # a first start that failed, or a stop asked of the child itself
            if not self._wait_for_change(code):
                return code

    def _wait_for_change(self, code: int) -> bool:
        """Watch what this process imported (settings, models...) and answer every request
        with a 500 meanwhile; True on a change."""
        from django.utils import autoreload as django_autoreload

        reloader = django_autoreload.StatReloader()

        def mtimes() -> dict[Any, float]:
            return dict(reloader.snapshot_files())

        before = mtimes()
        write_line(f"autoreload: the server exited with code {code}; it restarts when a "
                   f"file changes (CONTROL-C to quit)")
        body = (f"The server exited with code {code} (its error is in the server's output). "
                f"It restarts when a file changes.\n").encode()
        response = (b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n"
                    b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        deadline = time.monotonic() + self.seconds
        while not self.stops:
            ready, _, _ = select.select([lst.sock for lst in self.listeners], [], [],
                                        max(0.0, deadline - time.monotonic()))
            for sock in ready:
                _answer(sock, response)
            if time.monotonic() >= deadline:
                now = mtimes()
                if any(now.get(path, 0) > mtime for path, mtime in before.items()):
                    return True
                deadline = time.monotonic() + self.seconds
        return False


def _answer(listening: Any, response: bytes) -> None:
    try:
        conn, _ = listening.accept()
    except OSError:  # another process took it, or the client left
        return
    with conn:
        conn.settimeout(2)
        try:
            conn.recv(65536)  # the request head, unread it would turn the close into a reset
            conn.sendall(response)
        except OSError:
            pass


def run_parent(listeners: list[Any], seconds: int, die_on_term: bool) -> int:
    """Run the server as a child and restart it on changes; the child's last exit code."""
    try:
        return _Parent(listeners, seconds, die_on_term).run()
    finally:
        for listener in listeners:
            listener.sock.close()


# -- the child ---------------------------------------------------------------------------------

def inherited_listeners() -> list[Any] | None:
    """The parent's sockets, in the child; None elsewhere."""
    if _STATE is None:
        return None
    from .master import rearm_parent_death
    from .reload import listeners_from

    # Stop when the parent is killed: SIGINT, a graceful stop whatever die-on-term says
    # (SIGTERM would re-execute an orphan with die-on-term off). It lasts across a re-exec.
    rearm_parent_death(_STATE["parent"], signal.SIGINT)
    return listeners_from(_STATE["listeners"])


def guarded(fn: Callable[[], Any], out: TextIO) -> tuple[Any, BaseException | None]:
    """Run ``fn``; on an exception print it, have Django's reloader watch its file, and
    return it instead of raising."""
    from django.utils import autoreload as django_autoreload

    try:
        return fn(), None
    except Exception as exc:
        out.write("".join(traceback.format_exception(exc)))
        out.write("autoreload: serving on; fix the error and the server restarts\n")
        # The file to watch: the innermost error's (a file that failed to import is not
        # in sys.modules), as django.utils.autoreload.check_errors finds it.
        inner: BaseException = exc
        while inner.__cause__ is not None:
            inner = inner.__cause__
        filename = getattr(inner, "filename", None)
        if filename is None and inner.__traceback__ is not None:
            filename = traceback.extract_tb(inner.__traceback__)[-1].filename
        if filename and filename not in django_autoreload._error_files:
            django_autoreload._error_files.append(filename)
        return None, exc


def loader(load: Callable[[], Any], debug: bool, out: TextIO,
           broken: BaseException | None = None) -> Callable[[], Any]:
    """``load`` that returns :func:`error_app` instead of raising; at once when the code is
    already known to be ``broken`` (the URLconf: Django's own 500 page needs it)."""
    def load_or_error() -> Any:
        if broken is not None:
            return error_app(broken, debug)
        app, error = guarded(load, out)
        return app if error is None else error_app(error, debug)
    return load_or_error


def error_app(exc: BaseException, debug: bool) -> Callable[..., Any]:
    """A WSGI app answering 500: the traceback when DEBUG is on (like runserver's page)."""
    if debug:
        text = "".join(traceback.format_exception(exc))
        summary = html.escape("".join(traceback.format_exception_only(exc)).strip())
        body = (f"<!doctype html><title>{html.escape(type(exc).__name__)}</title>"
                f"<h1>The application could not be loaded</h1><h2>{summary}</h2>"
                f"<pre>{html.escape(text)}</pre>"
                f"<p>The server restarts when the file is fixed.</p>").encode()
    else:
        body = b"<!doctype html><title>Server Error (500)</title><h1>Server Error (500)</h1>"
    headers = [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))]

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("500 Internal Server Error", headers)
        return [body]

    return app


def watch() -> None:
    """Start Django's reloader in a thread of the child's master: on a change the master
    stops gracefully and :func:`exit_code` turns its exit into a restart."""
    from django.utils import autoreload as django_autoreload

    assert _STATE is not None
    reloader = django_autoreload.get_reloader()
    if isinstance(reloader, django_autoreload.StatReloader):
        reloader.SLEEP_TIME = _STATE["seconds"]
    master_pid = os.getpid()

    def changed(path: Any) -> None:
        # Templates and translations too: the workers' caches are not ours to reset.
        if os.getpid() != master_pid or _restart.is_set():
            return
        _restart.set()
        reloader.stop()
        write_line(f"autoreload: {path} changed, restarting")
        os.kill(master_pid, signal.SIGINT)

    reloader.notify_file_changed = changed
    announce = f"autoreload: watching for file changes with {type(reloader).__name__}"
    if isinstance(reloader, django_autoreload.StatReloader):
        snapshot = reloader.snapshot_files

        def first_snapshot() -> Any:  # say "watching" once a change would be seen
            yield from snapshot()
            if reloader.snapshot_files is not snapshot:
                reloader.snapshot_files = snapshot
                write_line(announce)

        reloader.snapshot_files = first_snapshot
    else:
        write_line(announce)
    threading.Thread(target=reloader.run, args=(threading.main_thread(),), daemon=True,
                     name="autoreload").start()


def exit_code(code: int) -> int:
    """The child's exit code: RESTART after a change stopped it."""
    return RESTART if _restart.is_set() else code
