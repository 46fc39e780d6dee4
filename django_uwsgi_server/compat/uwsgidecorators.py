"""``import uwsgidecorators`` under runuwsgi: uWSGI's decorators over the ``uwsgi`` module.

Same names and arguments as uWSGI's uwsgidecorators.py. The signal-based ones allocate a
free signal number the way uWSGI's do (the lowest number with no handler in this process),
unless ``signum=`` is given. Mules, spoolers, farms, RPC and Erlang are not part of
runuwsgi: their decorators raise :class:`UnsupportedError` when applied.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

import uwsgi

UnsupportedError = uwsgi.UnsupportedError
postfork_chain: list[Any] = []


def get_free_signal() -> int:
    for signum in range(256):
        if not uwsgi.signal_registered(signum):
            return signum
    raise Exception("No free uwsgi signal available")


def postfork_chain_hook() -> None:
    for f in postfork_chain:
        f()


uwsgi.post_fork_hook = postfork_chain_hook


class postfork:  # noqa: N801 (uWSGI's names)
    """Run the function in every worker right after it is forked (and on each respawn),
    before it serves; ``@postfork(N)`` only in worker N."""

    def __init__(self, f: Any) -> None:
        if callable(f):
            self.wid, self.f = 0, f
        else:
            self.wid, self.f = f, None
        postfork_chain.append(self)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.f is None:  # @postfork(N) applied to the function
            self.f = args[0]
            return self
        if self.wid > 0 and self.wid != uwsgi.worker_id():
            return None
        return self.f()


class _signal_based:  # noqa: N801
    def __init__(self, **kwargs: Any) -> None:
        self.num = kwargs.get("signum")
        if self.num is None:
            self.num = get_free_signal()
        self.target = kwargs.get("target", "")

    def __call__(self, f: Callable[..., Any]) -> Callable[..., Any]:
        uwsgi.register_signal(self.num, self.target, f)
        self.arm()
        return f

    def arm(self) -> None:
        pass


class signal(_signal_based):  # noqa: N801
    def __init__(self, num: int, **kwargs: Any) -> None:
        super().__init__(signum=num, **kwargs)


class timer(_signal_based):  # noqa: N801
    def __init__(self, secs: float, **kwargs: Any) -> None:
        self.secs = secs
        super().__init__(**kwargs)

    def arm(self) -> None:
        uwsgi.add_timer(self.num, self.secs)


class rbtimer(timer):  # noqa: N801
    def arm(self) -> None:
        uwsgi.add_rb_timer(self.num, self.secs)


class cron(_signal_based):  # noqa: N801
    def __init__(self, minute: int, hour: int, day: int, month: int, dayweek: int,
                 **kwargs: Any) -> None:
        self.fields = (minute, hour, day, month, dayweek)
        super().__init__(**kwargs)

    def arm(self) -> None:
        uwsgi.add_cron(self.num, *self.fields)


class filemon(_signal_based):  # noqa: N801
    def __init__(self, fsobj: str, **kwargs: Any) -> None:
        self.fsobj = fsobj
        super().__init__(**kwargs)

    def arm(self) -> None:
        uwsgi.add_file_monitor(self.num, self.fsobj)


class lock:  # noqa: N801
    """Run the function holding uWSGI lock 0 (exclusive across workers and threads)."""

    def __init__(self, f: Callable[..., Any]) -> None:
        self.f = f
        functools.update_wrapper(self, f)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        uwsgi.lock()
        try:
            return self.f(*args, **kwargs)
        finally:
            uwsgi.unlock()


class harakiri:  # noqa: N801
    """``@harakiri(seconds)``: the call may last at most that long (set_user_harakiri)."""

    def __init__(self, seconds: int) -> None:
        self.seconds = seconds

    def __call__(self, f: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(f)
        def limited(*args: Any, **kwargs: Any) -> Any:
            uwsgi.set_user_harakiri(self.seconds)
            try:
                return f(*args, **kwargs)
            finally:
                uwsgi.set_user_harakiri(0)

        return limited


class thread:  # noqa: N801
    """Each call runs the function in a new daemon thread."""

    def __init__(self, f: Callable[..., Any]) -> None:
        self.f = f
        functools.update_wrapper(self, f)

    def __call__(self, *args: Any) -> Callable[..., Any]:
        threading.Thread(target=self.f, args=args, daemon=True).start()
        return self.f


def _unsupported(name: str, why: str) -> Callable[..., Any]:
    def decorator(*args: Any, **kwargs: Any) -> Any:
        raise UnsupportedError(f"uwsgidecorators.{name} is not supported by runuwsgi: {why}")

    decorator.__name__ = name
    return decorator


_NO_SPOOLER = "runuwsgi has no spooler (use a task queue such as Celery or django-q)"
_NO_MULES = "runuwsgi has no mules (use @timer/@cron, a thread, or a task queue)"
spool = _unsupported("spool", _NO_SPOOLER)
spoolforever = _unsupported("spoolforever", _NO_SPOOLER)
spoolraw = _unsupported("spoolraw", _NO_SPOOLER)
mulefunc = _unsupported("mulefunc", _NO_MULES)
mule = _unsupported("mule", _NO_MULES)
muleloop = _unsupported("muleloop", _NO_MULES)
mulemsg = _unsupported("mulemsg", _NO_MULES)
farm = _unsupported("farm", "runuwsgi has no mule farms")
rpc = _unsupported("rpc", "runuwsgi has no uWSGI RPC")
erlang = _unsupported("erlang", "runuwsgi has no Erlang bridge")
