"""No option is planned any more; the planned-option error is tested on an implemented option
marked planned for the test (Option is a frozen dataclass: its __dict__ is patched)."""

from __future__ import annotations

from django_uwsgi_server.conf import registry


def mark_planned(monkeypatch, name: str) -> None:
    """Make option ``name`` planned until the test ends."""
    monkeypatch.setitem(registry.BY_NAME[name].__dict__, "status", registry.PLANNED)


# For a subprocess: `python -c PLANNED_BOOT NAME ARGS...` runs `manage.py runuwsgi ARGS` with
# option NAME marked planned.
PLANNED_BOOT = (
    "import os, runpy, sys\n"
    "sys.path.insert(0, os.path.dirname(os.path.dirname(os.getcwd())))  # the repository\n"
    "from django_uwsgi_server.conf import registry\n"
    "registry.BY_NAME[sys.argv[1]].__dict__['status'] = registry.PLANNED\n"
    "sys.argv = ['manage.py', 'runuwsgi', *sys.argv[2:]]\n"
    "runpy.run_path('manage.py', run_name='__main__')\n"
)
