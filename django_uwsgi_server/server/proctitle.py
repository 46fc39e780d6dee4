"""Process titles like uWSGI's: ``uWSGI master (runuwsgi mysite)``, ``uWSGI worker 1
(runuwsgi mysite)`` in ``ps``, ``top`` and ``pgrep -f``, through ``setproctitle`` when it is
installed (the ``proctitle`` extra).

uWSGI's options keep their meaning: the title is ``procname-prefix`` (or
``procname-prefix-spaced`` and a space) + the name + ``procname-append``, where the name is
``procname-master`` for the master, ``procname`` for every process, or (``auto-procname``)
``uWSGI master`` / ``uWSGI worker N``. Unlike uWSGI, auto-procname is on by default, and
when no procname option is given the titles end with ``(runuwsgi PROJECT)``. A title always keeps
the word ``runuwsgi``: ``uwsgi_reload`` and ``--reload PIDFILE`` look for it before they
signal a pid.
"""

from __future__ import annotations

import os
from typing import Any

from .hooks import Hook
from .logging import write_line
from .pidfile import MARKER

_OPTIONS = ("procname_prefix", "procname_prefix_spaced", "procname_append", "procname_master",
            "procname")


def project_name() -> str:
    """The Django project's package (``mysite`` of ``mysite.settings``), else the app module."""
    module = os.environ.get("DJANGO_SETTINGS_MODULE", "")
    try:
        from django.conf import settings

        module = settings.SETTINGS_MODULE or module
    except Exception:  # not a configured Django project
        pass
    return module.split(".")[0] or os.path.basename(os.getcwd())


class ProcTitles(Hook):
    def __init__(self, cfg: Any, set_title: Any, project: str) -> None:
        self.set_title = set_title
        if cfg.procname_prefix_spaced is not None:
            self.prefix = cfg.procname_prefix_spaced + " "
        else:
            self.prefix = cfg.procname_prefix or ""
        self.append = cfg.procname_append or ""
        if not any(getattr(cfg, name) for name in _OPTIONS):
            self.append = f" ({MARKER} {project})"
        auto = cfg.auto_procname
        # None: leave that title alone (auto-procname off and no name given for it).
        self.master_name = cfg.procname_master or cfg.procname or ("uWSGI master" if auto else None)
        self.worker_name = cfg.procname or ("uWSGI worker {wid}" if auto else None)

    def title(self, name: str) -> str:
        title = f"{self.prefix}{name}{self.append}"
        return title if MARKER in title else f"{title} [{MARKER}]"

    def master_title(self) -> str | None:
        return None if self.master_name is None else self.title(self.master_name)

    def worker_title(self, wid: int) -> str | None:
        if self.worker_name is None:
            return None
        return self.title(self.worker_name.replace("{wid}", str(wid)))

    def started(self, master: Any) -> None:
        title = self.master_title()
        if title is not None:
            self.set_title(title)

    def child(self, wid: int) -> None:
        title = self.worker_title(wid)
        if title is not None:
            self.set_title(title)


def from_config(cfg: Any) -> ProcTitles | None:
    explicit = [name for name in _OPTIONS if getattr(cfg, name) is not None]
    if not cfg.auto_procname and not explicit:
        return None
    try:
        from setproctitle import setproctitle
    except ImportError:
        if explicit:
            write_line(f"warning: {explicit[0].replace('_', '-')} needs the setproctitle package "
                       f"(pip install 'django-uwsgi-server[proctitle]'); process titles unchanged")
        return None
    return ProcTitles(cfg, setproctitle, project_name())
