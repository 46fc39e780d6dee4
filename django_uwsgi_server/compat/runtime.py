"""The state behind the ``uwsgi`` module in one runuwsgi process (master or worker).

:func:`early_install` (while Django sets up ``manage.py runuwsgi``) or :func:`install` (from
the command) runs in the master before the application is imported; the workers inherit
everything at fork, then ``Runtime._in_worker`` (called by the Hub right after the fork) and
:func:`worker_started` (once the worker is built) fill in who they are.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from typing import Any

from ..server import reload as reexec
from ..server.cache import SharedCache, parse_cache2
from ..server.locks import LockSet
from ..server.logging import write_line
from ..server.signals import Hub, Inbox, send


class Runtime:
    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        self.started_on = int(time.time())
        self.master_pid = os.getpid()
        # A reload's new master image takes over the locks and caches of the old one, so
        # that old and new workers share them while both serve.
        old = (reexec.inherited() or {}).get("uwsgi") or {"locks": None, "caches": {}}
        count = (cfg.locks or 0) + 1  # lock 0 plus --locks N, as uWSGI
        self.locks = LockSet(count, fd=_take(old["locks"], [count]), holders=True)
        self.caches: dict[str, SharedCache] = {}
        for text in cfg.cache2 or ():
            self._add_cache(text, parse_cache2(text), old["caches"])
        for fd, _spec in [old["locks"] or [None, None], *old["caches"].values()]:
            if fd is not None:
                os.close(fd)  # sizes changed or the cache is gone: not taken over
        self.hub = Hub(float(cfg.harakiri_graceful_timeout or 0))
        self.hub.child_hook = self._in_worker
        self.hub.carry_over = self._carry_over
        self.handlers: dict[int, tuple[str, Any]] = {}  # this process's signal handlers
        self.wid = 0
        self.slot = 0
        self.worker: Any = None
        self.inbox: Inbox | None = None
        self.user_harakiri: dict[int, float] = {}  # thread ident -> deadline (time.time)
        self._hk_lock = threading.Lock()

    def _add_cache(self, text: str, spec: dict[str, Any], old: dict[str, Any]) -> None:
        from ..conf.registry import ConfigError

        name = spec.pop("name")
        if name in self.caches:
            raise ConfigError(f"invalid value {text!r} for option 'cache2': a cache named "
                              f"{name!r} is already defined")
        fd = _take(old.get(name), [spec["items"], spec["blocksize"], spec["keysize"]])
        self.caches[name] = SharedCache(name, **spec, fd=fd)

    def _carry_over(self) -> dict[str, Any]:
        """For the reload's re-exec: the fds the new image takes over (see __init__)."""
        fds = {"locks": [self.locks.fd, [self.locks.count]],
               "caches": {n: [c.fd, c.spec()] for n, c in self.caches.items()}}
        for fd, _spec in [fds["locks"], *fds["caches"].values()]:
            os.set_inheritable(fd, True)
        return fds

    def _in_worker(self, fd: int, wid: int, slot: int) -> None:
        """Right after the fork, in the new worker."""
        self.wid, self.slot = wid, slot
        self.user_harakiri.clear()
        self.inbox = Inbox(fd, self.handlers, wid)

    @property
    def scoreboard(self) -> Any:
        master = self.hub.master
        return master.scoreboard if master is not None else None

    # -- messages to the master -------------------------------------------------------------
    def tell_master(self, msg: list[Any]) -> None:
        if self.wid:
            try:
                send(self.hub.worker_side()[0], msg)
            except BrokenPipeError:
                write_line(f"worker {self.wid}: the master that started this worker is gone "
                           f"(a reload?): {msg[0]} not delivered")
        else:
            self.hub.handle(msg)

    # -- set_user_harakiri -------------------------------------------------------------------
    def set_user_harakiri(self, seconds: float) -> None:
        ident = threading.get_ident()
        with self._hk_lock:
            if seconds > 0:
                self.user_harakiri[ident] = time.time() + seconds
            else:
                self.user_harakiri.pop(ident, None)
            if self.wid:
                self.hub.set_deadline(self.slot, min(self.user_harakiri.values(), default=0.0))

    def end_user_harakiri(self, ident: int) -> None:
        """The request of thread ``ident`` ended: uWSGI clears its user harakiri."""
        with self._hk_lock:
            self.user_harakiri.pop(ident, None)
            self.hub.set_deadline(self.slot, min(self.user_harakiri.values(), default=0.0))


def _take(entry: list[Any] | None, spec: list[int]) -> int | None:
    """An inherited fd whose sizes are still ``spec`` (else None, and it stays in ``entry``
    to be closed)."""
    if entry is None or entry[0] is None or entry[1] != spec:
        return None
    fd = entry[0]
    entry[0] = None
    os.set_inheritable(fd, False)  # only for the next re-exec
    return fd


RUNTIME: Runtime | None = None


def install(cfg: Any) -> Runtime:
    """Make ``import uwsgi`` and ``import uwsgidecorators`` work in this process (and in the
    workers it forks). Raises ConfigError for a bad ``cache2``. Done once: the early
    install (see :func:`early_install`) keeps what the apps registered meanwhile."""
    global RUNTIME
    if RUNTIME is not None:
        return RUNTIME
    RUNTIME = Runtime(cfg)
    from . import uwsgi

    sys.modules["uwsgi"] = uwsgi
    uwsgi._configure(RUNTIME)
    from . import uwsgidecorators

    sys.modules["uwsgidecorators"] = uwsgidecorators
    return RUNTIME


def hub() -> Hub | None:
    return RUNTIME.hub if RUNTIME is not None else None


def worker_started(worker: Any) -> None:
    """The worker is built (app loaded, privileges dropped): run the post-fork hooks."""
    rt = RUNTIME
    if rt is None:
        return
    rt.worker = worker
    worker.user_harakiri = rt.user_harakiri
    worker.end_user_harakiri = rt.end_user_harakiri
    worker.inbox = rt.inbox
    hook = getattr(sys.modules.get("uwsgi"), "post_fork_hook", None)
    if hook is not None:
        try:
            hook()
        except Exception:
            write_line(f"worker {rt.wid}: uwsgi.post_fork_hook failed:\n"
                       + traceback.format_exc().rstrip())


def early_install(argv: list[str]) -> None:
    """``manage.py runuwsgi``: install the modules while Django sets itself up, before the
    apps' models and ``AppConfig.ready()`` run (they may ``import uwsgi`` or use
    uwsgidecorators, as they do under uWSGI). Any problem with the options is left to the
    command, which reports it properly."""
    if RUNTIME is not None or len(argv) < 2 or argv[1] != "runuwsgi" or \
            {"-h", "--help", "--version"} & set(argv):
        return
    import contextlib
    import io

    from django.conf import settings

    from ..conf import build_config
    from ..management.commands.runuwsgi import Command

    try:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            parser = Command().create_parser(os.path.basename(argv[0]), "runuwsgi")
            options, _ = parser.parse_known_args(argv[2:])
            cli = {k: v for k, v in vars(options).items() if v is not None}
            # Also for --reload/--stop, --print-ini and --engine uwsgi: the apps' ready() runs
            # in those processes too, and must not fail on its `import uwsgi`.
            install(build_config(getattr(settings, "UWSGI", None), cli))
    except (Exception, SystemExit):
        return
