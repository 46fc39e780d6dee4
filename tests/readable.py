"""A copy of the project that a worker running as ``nobody`` can import from.

On the development and CI machines the interpreter lives under /root (mode 0700): a process
that dropped to ``nobody`` cannot import anything new from it, which is exactly what a worker
must do when it loads the app after dropping privileges. So the privilege tests run the
server with a virtualenv made from the system's /usr/bin/python3 in a world-readable
directory, with Django and psutil installed by pip (cached across runs), and a fresh copy of
the package and the test project.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import django
import psutil

from tests.server import ROOT

SYSTEM_PYTHON = "/usr/bin/python3"
VENV = Path(f"/tmp/django-uwsgi-server-readable-venv-{django.__version__}-{psutil.__version__}")


class Unavailable(Exception):
    """Why the readable environment cannot be made here (the tests then skip)."""


def _world_readable(path: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(path):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            full = os.path.join(dirpath, name)
            if not os.path.islink(full):
                os.chmod(full, os.stat(full).st_mode | 0o444)


def venv_python() -> str:
    python = VENV / "bin" / "python"
    if (VENV / "ready").exists():
        return str(python)
    if os.geteuid() != 0:
        raise Unavailable("needs root (to change uid/gid)")
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        raise Unavailable(f"no {SYSTEM_PYTHON}")
    shutil.rmtree(VENV, ignore_errors=True)
    steps = [[SYSTEM_PYTHON, "-m", "venv", str(VENV)],
             [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
              f"Django=={django.__version__}", f"psutil=={psutil.__version__}"]]
    for step in steps:
        r = subprocess.run(step, capture_output=True, text=True, timeout=600,
                           stdin=subprocess.DEVNULL)
        if r.returncode:
            raise Unavailable(f"{' '.join(step[:3])} failed: {r.stderr.strip()[-500:]}")
    _world_readable(VENV)
    (VENV / "ready").touch()
    return str(python)


def project_copy() -> Path:
    """A fresh world-readable copy of the package and the test project; returns the
    project's directory (its manage.py puts the copy's root on sys.path)."""
    root = Path(tempfile.mkdtemp(prefix="django-uwsgi-server-readable-"))
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.sqlite3")
    shutil.copytree(ROOT / "django_uwsgi_server", root / "django_uwsgi_server", ignore=ignore)
    shutil.copytree(ROOT / "tests" / "testproject", root / "tests" / "testproject", ignore=ignore)
    _world_readable(root)
    return root / "tests" / "testproject"
