"""``engine = uwsgi``: replace this process with the real uWSGI, running the same options.

The options are the merged configuration translated by :mod:`..conf.uwsgi_ini` (our defaults
spelled out where uWSGI's differ), passed on uWSGI's command line, so a reload of uWSGI
(which re-executes its own command line) reads them again without any temporary file.
uWSGI comes from the ``pyuwsgi`` wheel (``pip install 'django-uwsgi-server[uwsgi]'``), run by
this interpreter: ``exec`` keeps the pid, so pidfiles, supervisors and tests see one process.
"""

from __future__ import annotations

import os
import sys
from typing import Any, TextIO

from ..conf import ConfigError
from ..conf.uwsgi_ini import to_argv, translate

ENGINES = ("runuwsgi", "uwsgi")
# pyuwsgi is an extension module (no ``python -m``); run() reads sys.argv like uwsgi does.
_BOOT = "import sys, pyuwsgi; sys.argv[0] = 'uwsgi'; sys.exit(pyuwsgi.run())"


class EngineError(Exception):
    """The real uWSGI cannot be started; the message is one line for the user."""


def check(cfg: Any) -> None:
    if cfg.engine not in ENGINES:
        raise ConfigError(f"invalid value {cfg.engine!r} for option 'engine' "
                          f"({cfg.origin('engine')}): expected runuwsgi or uwsgi")


def command(cfg: Any, warn: TextIO) -> list[str]:
    """The argv that starts uWSGI with ``cfg``; a warning on ``warn`` for each option set
    that uWSGI cannot honour (they change only runuwsgi's behaviour, so the same settings
    can drive both engines)."""
    try:
        import pyuwsgi  # noqa: F401  (a broken wheel fails here, not after the exec)
    except ImportError:
        raise EngineError("engine uwsgi: uWSGI is not installed in this environment "
                          "(pip install 'django-uwsgi-server[uwsgi]' installs the pyuwsgi wheel)") from None
    lines = translate(cfg)
    for line in lines:
        if line.why and line.key != "engine":
            warn.write(f"warning: option {line.key!r} ({cfg.origin(line.key)}) is not passed "
                       f"to uWSGI: {line.why}\n")
    # pyuwsgi's own idea of its binary is the interpreter with symlinks resolved, outside
    # the virtualenv, so its reload re-exec would fail (unbit/uwsgi#2478).
    return [sys.executable, "-c", _BOOT, *to_argv(lines), f"--binary-path={sys.executable}"]


def exec_uwsgi(cfg: Any, out: TextIO, err: TextIO) -> None:
    """Replace this process with uWSGI (returns only by raising EngineError)."""
    argv = command(cfg, err)
    out.write("Starting uWSGI (engine = uwsgi): " + " ".join(argv[3:]) + "\n")
    out.flush()
    err.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    # pyuwsgi starts Python before uWSGI reads --env, so os.environ would never see those
    # variables: hand them over in the environment as well.
    for item in cfg.env or ():
        key, _, value = item.partition("=")
        os.environ[key] = value
    try:
        os.execv(argv[0], argv)
    except OSError as exc:
        raise EngineError(f"engine uwsgi: cannot run {argv[0]}: {exc.strerror}") from None
