"""What a runuwsgi worker knows about its server, for code that runs inside it (the admin
dashboard finds the master, the stats address and the master FIFO here).

``current`` is set in each worker right after the fork and is None in every other process:
the master, runserver, another WSGI server, a management command. That is how a view tells
it is not served by runuwsgi. A module attribute rather than an environment variable, so
processes the application starts (a subprocess running manage.py) do not inherit it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class WorkerInfo:
    master_pid: int
    worker_id: int
    cfg: Any  # the merged configuration the server runs with


current: WorkerInfo | None = None


def mark_worker(master_pid: int, worker_id: int, cfg: Any) -> None:
    global current
    current = WorkerInfo(master_pid, worker_id, cfg)
