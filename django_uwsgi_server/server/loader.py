"""Finding and importing the WSGI application (``module``, ``wsgi-file``, ``callable``...).

Without any of those options the app is Django's ``settings.WSGI_APPLICATION``, the same one
``runserver`` serves: we never guess the project layout.
"""

from __future__ import annotations

import glob
import importlib
import os
import runpy
import site
import sys
from typing import Any


class AppLoadError(Exception):
    """The application could not be found or imported; the message says which and why."""


def prepare_environment(cfg: Any) -> None:
    """Apply chdir, env, home and pythonpath — before the app is imported, as uWSGI does."""
    for item in cfg.env or ():
        key, _, value = item.partition("=")
        os.environ[key] = value
    if cfg.chdir:
        try:
            os.chdir(cfg.chdir)
        except OSError as exc:
            raise AppLoadError(f"chdir {cfg.chdir!r}: {exc.strerror}") from None
    if cfg.home:
        _activate_home(cfg.home)
    # uWSGI inserts "." first, then each entry at the front: the last one given wins.
    if cfg.pythonpath:
        for entry in cfg.pythonpath:
            for path in sorted(glob.glob(entry)) or [entry]:
                sys.path.insert(0, os.path.abspath(path))
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)


def _activate_home(home: str) -> None:
    """``home``/``virtualenv``: make that venv's site-packages importable.

    We already run inside an interpreter (uWSGI would set PYTHONHOME before starting one), so
    the venv must be for this Python version.
    """
    if os.path.realpath(home) == os.path.realpath(sys.prefix):
        return
    if not os.path.isdir(home):
        raise AppLoadError(f"home {home!r}: no such directory")
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    candidates = glob.glob(os.path.join(home, "lib", version, "site-packages"))
    if not candidates:
        raise AppLoadError(f"home {home!r}: no lib/{version}/site-packages in it — the "
                           f"virtualenv must be made with this Python ({sys.executable})")
    for path in candidates:
        site.addsitedir(path)


def load_app(cfg: Any) -> Any:
    """Import and return the WSGI callable named by the options (or WSGI_APPLICATION),
    wrapped like runserver's in the staticfiles handler when DEBUG is on."""
    from .static import debug_static

    try:
        if cfg.wsgi_file:
            return debug_static(_from_file(cfg.wsgi_file, cfg.callable), cfg)
        if cfg.module:
            return debug_static(_from_module(cfg.module, cfg.callable), cfg)
        from django.core.servers.basehttp import get_internal_wsgi_application

        return debug_static(get_internal_wsgi_application(), cfg)
    except AppLoadError:
        raise
    except Exception as exc:
        raise AppLoadError(f"could not import the WSGI application: "
                           f"{type(exc).__name__}: {exc}") from exc


def _pick(namespace: dict[str, Any], name: str, origin: str) -> Any:
    factory = name.endswith("()")
    attr = name[:-2] if factory else name
    if attr not in namespace:
        raise AppLoadError(f"{origin} has no attribute {attr!r} (set 'callable' or "
                           f"'module = pkg.mod:name')")
    app = namespace[attr]
    if factory:
        app = app()
    if not callable(app):
        raise AppLoadError(f"{origin}:{name} is not callable")
    return app


def _from_module(spec: str, default_callable: str) -> Any:
    module_name, _, name = spec.partition(":")
    module_name = module_name.strip()
    if module_name.endswith(".py") or "/" in module_name:
        return _from_file(module_name, name or default_callable)
    module = importlib.import_module(module_name)
    return _pick(vars(module), name or default_callable, module_name)


def _from_file(path: str, name: str) -> Any:
    if not os.path.isfile(path):
        raise AppLoadError(f"wsgi-file {path!r}: no such file")
    namespace = runpy.run_path(path, run_name="uwsgi_file_" + os.path.basename(path)
                               .replace(".", "_"))
    return _pick(namespace, name, path)
