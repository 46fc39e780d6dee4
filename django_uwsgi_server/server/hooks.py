"""Operator features the master drives without knowing them: process titles, systemd
notifications, the log pipe. Each is a :class:`Hook`; the master calls every hook at a few
points of its life, so that these features stay in their own modules."""

from __future__ import annotations

from typing import Any


class Hook:
    """Every method is optional (a no-op here)."""

    def fds(self) -> list[int]:
        """File descriptors that should wake the master loop when readable."""
        return []

    def started(self, master: Any) -> None:
        """The master loop is about to start (also in an image re-executed by a reload)."""

    def tick(self, master: Any) -> None:
        """Once per master loop turn: after a wake-up or at least every second."""

    def reload_starts(self, master: Any) -> None:
        """A reload begins (before any new worker is forked or the master re-execs)."""

    def command(self, master: Any, letter: str) -> bool:
        """A master FIFO letter the master does not know itself; True if handled."""
        return False

    def child(self, wid: int) -> None:
        """In a freshly forked worker, before it loads or serves anything."""

    def close(self, master: Any) -> None:
        """The master loop is over (the workers are gone)."""


def build(cfg: Any, daemonized: bool) -> list[Hook]:
    """The hooks this configuration asks for (none costs anything on the request path)."""
    from . import logpipe, proctitle, systemd

    hooks: list[Hook] = []
    for hook in (proctitle.from_config(cfg), logpipe.from_config(cfg),
                 systemd.notifier_from_environment(daemonized)):
        if hook is not None:
            hooks.append(hook)
    return hooks
