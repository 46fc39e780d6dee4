"""Reading uWSGI ini files: sections, lines, and magic variable substitution.

This follows uWSGI's own ini reader (core/ini.c), not :mod:`configparser`: keys repeat,
values keep inline ``;`` text and quotes, and a line without ``=`` is a key with an empty
value. The differences from uWSGI, on purpose:

* a missing section is an error (uWSGI only warns and starts without the options);
* magic variables are replaced in values only (uWSGI: in the whole file text), and an
  unknown ``%X`` is left as it is (uWSGI silently replaces it with nothing);
* ``%(name)`` and ``$(NAME)`` are replaced when the line is read, so they can only refer
  to options, placeholders and environment variables already set at that point.

Values from settings.UWSGI and the command line are never substituted (nor in uWSGI).
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable

from .registry import ConfigError

DEFAULT_SECTION = "uwsgi"

_MAGIC_RE = re.compile(r"%(?:\((?P<ref>[^)]*)\)|(?P<ch>.))|\$\((?P<env>[^)]*)\)", re.DOTALL)


def split_spec(spec: str) -> tuple[str, str]:
    """``FILE`` or ``FILE:section`` → (file, section), like uWSGI's ``--ini``."""
    path, colon, section = spec.rpartition(":")
    # A colon followed by something with a slash is part of the path, not a section.
    if colon and path and section and "/" not in section:
        return path, section
    return spec, DEFAULT_SECTION


def read_section(path: str, section: str, source: str) -> list[tuple[int, str, str]]:
    """The ``(line number, key, value)`` entries of ``[section]`` in the file at ``path``.

    ``source`` says where the file was named, for the error when it can't be read.
    Repeated sections are concatenated, as in uWSGI.
    """
    try:
        with open(path, encoding="utf-8-sig") as f:  # tolerate a BOM from Windows editors
            text = f.read()
    except FileNotFoundError:
        raise ConfigError(f"ini file {path!r} ({source}) does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"ini file {path!r} ({source}) can't be read: {exc}") from None
    entries: list[tuple[int, str, str]] = []
    found = inside = False
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip(" \t\r")
        if not line or line[0] in ";#":
            continue
        if line.startswith("[") and line.endswith("]"):
            inside = line[1:-1].strip() == section
            found = found or inside
            continue
        if inside:
            key, _, value = line.partition("=")
            entries.append((number, key.strip(), value.strip()))
    if not found:
        raise ConfigError(f"section [{section}] not found in ini file {path!r} ({source})")
    return entries


def magic_table(path: str, section: str) -> dict[str, str]:
    """uWSGI's magic ``%X`` variables for a config file."""
    abspath = os.path.abspath(path)
    directory = os.path.dirname(abspath)
    filename = os.path.basename(abspath)
    stem, ext = os.path.splitext(filename)
    table = {
        "d": directory.rstrip(os.sep) + os.sep,  # uWSGI's %d keeps the trailing slash
        "p": abspath,
        "s": filename,
        "n": stem,
        "e": ext[1:],
        "c": os.path.basename(directory),
        "x": section,
        "v": os.getcwd(),
        "h": socket.gethostname(),
        "k": str(os.cpu_count() or 1),
    }
    try:
        import grp
        import pwd

        table.update(u=str(os.getuid()), g=str(os.getgid()))
        table["U"] = pwd.getpwuid(os.getuid()).pw_name
        table["G"] = grp.getgrgid(os.getgid()).gr_name
    except (ImportError, KeyError):  # no such user in a container, or not POSIX
        pass
    return table


def substitute(
    value: str, magic: dict[str, str], lookup: Callable[[str], str | None], source: str
) -> str:
    """Replace magic variables, ``%(name)`` and ``$(ENV)`` in one ini value.

    ``lookup`` returns the value of an option or placeholder already set, or None.
    """

    def replace(m: re.Match[str]) -> str:
        if m.group("env") is not None:
            name = m.group("env")
            if name not in os.environ:
                raise ConfigError(f"environment variable {name!r} used as $({name}) ({source}) is not set")
            return os.environ[name]
        if m.group("ref") is not None:
            name = m.group("ref")
            found = lookup(name)
            if found is None:
                raise ConfigError(
                    f"%({name}) ({source}) refers to no option or placeholder set before it"
                )
            return found
        ch = m.group("ch")
        if ch == "%":
            return "%"
        return magic.get(ch, m.group(0))

    return _MAGIC_RE.sub(replace, value)
