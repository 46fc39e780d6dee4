"""The merged configuration as real uWSGI options: ``runuwsgi --print-ini`` and
``--engine uwsgi``.

uWSGI must behave as runuwsgi does with the same settings, so the translation writes:

* every option that was set (settings.UWSGI, ini files, command line) under uWSGI's name;
* our defaults where uWSGI's default behaves differently and uWSGI has an option for ours
  (``master``, ``processes``, ``need-app``, ``die-on-term``, ``buffer-size``,
  ``socket-timeout``, ``listen``, ``min-worker-lifetime``, ``wsgi-env-behaviour``...);
* the application Django would serve (``module`` from ``WSGI_APPLICATION``, the settings
  module in ``env``, the import path manage.py set up), which uWSGI cannot guess;
* ``http11-socket`` for ``http-socket`` while keep-alive is on (uWSGI's ``http-socket``
  closes the connection after every response);
* options only runuwsgi has as comments saying why they were left out (the engine warns
  about each one that was set).

The result is a list of :class:`Line`; :func:`to_ini` and :func:`to_argv` render it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from .registry import BOOL, MODE, OPTIONS, SOCKET_OPTIONS, ConfigError, Option
from .sources import DEFAULT

UWSGI_MAX_BUFFER = 65535  # a 16-bit field in uWSGI; larger values are clamped silently

# Options only runuwsgi has (or whose uWSGI namesake means something else), and why.
RUNUWSGI_ONLY: dict[str, str] = {
    "engine": "chooses the server; uWSGI is already the one running",
    "autoreload": "runserver-style restart on code, template and translation changes; "
                  "uWSGI's nearest is py-autoreload (Python modules only)",
    "noreload": "runserver's flag; uWSGI never autoreloads unless py-autoreload is set",
    "chain-reload": "uWSGI has no such option: use its master FIFO 'c' or touch-chain-reload",
    "http-keepalive": "runuwsgi's idle keep-alive timeout; uWSGI's http-keepalive belongs to "
                      "its HTTP router, http11-socket uses socket-timeout",
    "body-min-rate": "runuwsgi's slowest allowed request body; uWSGI only has socket-timeout, "
                     "per wait",
    "stats-allow-remote": "runuwsgi refuses a non-loopback stats address without it; uWSGI "
                          "binds any address it is given",
    "stats-chmod": "runuwsgi's mode for a unix stats socket (default 0600)",
    "metrics": "runuwsgi's Prometheus endpoint; uWSGI needs an exporter reading its stats",
    "nostatic": "runserver's flag; uWSGI never serves STATIC_URL from the staticfiles "
                "finders (use static-map with collectstatic's STATIC_ROOT)",
    "set-placeholder": "placeholders are already substituted in the values below",
    "ini": "the files are already merged into the lines below",
    "reload": "a client command, not a server option",
    "stop": "a client command, not a server option",
}

# Our default differs from uWSGI's, and uWSGI has an option to get ours: always written.
_SPELLED_OUT = ("master", "processes", "need-app", "die-on-term", "buffer-size",
                "socket-timeout", "listen", "min-worker-lifetime")
# Accepted options describing what runuwsgi always does: written as uWSGI's switch for it.
# tcp-nodelay: runuwsgi always sets TCP_NODELAY; without it uWSGI's static files (headers,
# then sendfile) wait for the client's delayed ACK, 40 ms a response.
_ALWAYS = (("wsgi-env-behaviour", "holy"), ("py-call-osafterfork", "true"),
           ("strict", "true"), ("tcp-nodelay", "true"))


@dataclass(frozen=True)
class Line:
    """``key = value`` for uWSGI (``value`` None: a flag given bare), or a comment when
    ``why`` is set (the option is left out)."""

    key: str
    value: str | None
    why: str = ""
    flag: bool = False  # a boolean option: bare on uWSGI's command line when true


def _text(opt: Option, value: Any) -> str | None:
    if opt.kind == BOOL:
        return "true" if value else "false"
    if opt.kind == MODE:
        return format(value, "03o")
    return str(value)


def _given(cfg: Any, name: str) -> bool:
    return cfg.origin(name) != DEFAULT


def launcher_paths() -> list[str]:
    """Entries of sys.path a fresh interpreter would not have: those manage.py (or
    PYTHONPATH) added, which uWSGI's interpreter needs to import the project."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    try:
        out = subprocess.run([sys.executable, "-c", "import json,sys; print(json.dumps(sys.path))"],
                             env=env, capture_output=True, text=True, timeout=30, check=True,
                             cwd="/").stdout
        plain = set(json.loads(out))
    except (OSError, subprocess.SubprocessError, ValueError):
        plain = set()
    seen: list[str] = []
    for entry in sys.path:
        if entry and entry not in plain and os.path.isdir(entry) \
                and os.path.abspath(entry) not in seen:
            seen.append(os.path.abspath(entry))
    return seen


def _application(cfg: Any) -> list[Line]:
    """What uWSGI must load: runuwsgi serves WSGI_APPLICATION unless told otherwise."""
    from django.conf import settings

    lines = []
    env_keys = {item.partition("=")[0] for item in cfg.env or ()}
    if "DJANGO_SETTINGS_MODULE" not in env_keys and settings.configured:
        lines.append(Line("env", f"DJANGO_SETTINGS_MODULE={settings.SETTINGS_MODULE}"))
    if not cfg.chdir:
        lines.append(Line("chdir", os.getcwd()))
    # uWSGI inserts each pythonpath at the front: the last written comes first, so the
    # launcher's paths go first (reversed) and the user's after, as runuwsgi orders them.
    lines += [Line("pythonpath", path) for path in reversed(launcher_paths())]
    if not (cfg.module or cfg.wsgi_file) and settings.configured:
        target = getattr(settings, "WSGI_APPLICATION", None) or ""
        module, _, name = target.rpartition(".")
        if module:
            lines.append(Line("module", f"{module}:{name}"))
    return lines


def _socket_key(name: str, cfg: Any) -> str:
    if name in ("http-socket", "http11-socket"):
        return "http11-socket" if cfg.http_keepalive > 0 else "http-socket"
    return name


def translate(cfg: Any) -> list[Line]:
    """uWSGI lines for ``cfg`` (a merged Config), in registry order."""
    lines = _application(cfg)
    has_unix = False
    # uWSGI resolves =N when it reads the referring option: shared-socket must come first.
    for address in cfg.shared_socket or ():
        address = f"127.0.0.1:{address}" if address.isdigit() else address
        has_unix = has_unix or ":" not in address
        lines.append(Line("shared-socket", address))
    for opt in OPTIONS:
        name = opt.name
        value = getattr(cfg, opt.dest)
        if name in RUNUWSGI_ONLY:
            if _given(cfg, name) and value not in (None, [], False) and \
                    not (name == "engine" and value == "runuwsgi"):
                lines.append(Line(name, _text(opt, value) if not opt.repeatable else
                                  ", ".join(map(str, value)), RUNUWSGI_ONLY[name]))
            continue
        if name == "shared-socket":
            continue  # written first, above
        if name in SOCKET_OPTIONS:
            for address in value:
                if address.strip().isdigit():  # runuwsgi's loopback port; a file to uWSGI
                    address = f"127.0.0.1:{address.strip()}"
                has_unix = has_unix or ":" not in address and not address.startswith("=")
                lines.append(Line(_socket_key(name, cfg), address))
            continue
        if name == "buffer-size":
            if value > UWSGI_MAX_BUFFER:
                lines.append(Line(name, str(value), f"uWSGI's largest is {UWSGI_MAX_BUFFER}"))
            lines.append(Line(name, str(min(value, UWSGI_MAX_BUFFER))))
            continue
        if name == "listen":
            lines.append(Line(name, str(min(value, _somaxconn()))))
            continue
        if name == "reload-mercy" and value is not None:
            if not _given(cfg, "worker-reload-mercy"):
                # ours is worker-reload-mercy; uWSGI's reload-mercy is for other processes
                lines.append(Line("worker-reload-mercy", str(value)))
            continue
        if name == "stats" and value:
            lines.append(Line(name, _stats_address(cfg)))
            continue
        if name == "chmod-socket" and not _given(cfg, name):
            continue  # written below if a unix socket needs our 660
        if not (_given(cfg, name) or name in _SPELLED_OUT):
            continue
        if name == "master":
            value = True  # there is always a master here, whatever master = false says
        if opt.repeatable:
            lines += [Line(name, _text(opt, item)) for item in value]
        elif value is None or (opt.kind == BOOL and not value):
            continue  # uWSGI's flags are off unless given
        else:
            lines.append(Line(name, _text(opt, value), flag=opt.kind == BOOL))
    if has_unix and not _given(cfg, "chmod-socket"):
        lines.append(Line("chmod-socket", "660"))  # ours; uWSGI would follow the umask
    lines += [Line(key, value, flag=value == "true") for key, value in _ALWAYS
              if not any(line.key == key for line in lines)]
    return lines


def _stats_address(cfg: Any) -> str:
    """The stats address runuwsgi would bind (``:PORT`` and ``PORT`` are loopback here, every
    interface and a unix socket file to uWSGI); a non-loopback one without
    ``stats-allow-remote`` is refused for uWSGI as it is for runuwsgi."""
    from ..server.stats_server import StatsConfigError, stats_address

    try:
        return str(stats_address(cfg.stats, "stats", cfg.stats_allow_remote))
    except StatsConfigError as exc:
        raise ConfigError(str(exc)) from None


def _somaxconn() -> int:
    from ..server.sockets import somaxconn

    return somaxconn()


def _escape(value: str) -> str:
    # uWSGI expands %x magic in files (an unknown one becomes nothing); %( stays as is.
    return "".join("%%" if c == "%" and value[i + 1:i + 2] != "(" else c
                   for i, c in enumerate(value))


def to_ini(lines: list[Line], header: str = "") -> str:
    out = [f"; {text}" for text in header.splitlines()] + ["[uwsgi]"]
    for line in lines:
        if line.why:
            out.append(f"; {line.key} = {line.value}  -- left out: {line.why}")
        else:
            out.append(line.key if line.value is None else f"{line.key} = {_escape(line.value)}")
    return "\n".join(out) + "\n"


def to_argv(lines: list[Line]) -> list[str]:
    """uWSGI's command line: ``--key=value``; true flags bare (uWSGI's getopt rejects a
    value on a flag)."""
    argv = []
    for line in lines:
        if line.why:
            continue
        if line.flag:
            argv.append(f"--{line.key}")
        else:
            argv.append(f"--{line.key}={line.value}")
    return argv
