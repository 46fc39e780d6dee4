"""The command line: argparse flags for every option, runserver's addrport, clear errors.

Values are NOT converted by argparse: they reach :func:`~.sources.build_config` as the
strings the user typed, so a bad value gets the same one-line error as in an ini file
instead of argparse's usage dump.
"""

from __future__ import annotations

import argparse
import difflib
import re
from collections.abc import Iterable, Sequence
from typing import Any

from ..server.sockets import AddressError, parse_address
from .registry import (
    ACCEPTED,
    ADDRESS,
    BOOL,
    ENV,
    GROUPS,
    HEADER,
    INT,
    MODE,
    OPTIONS,
    PATH,
    PLANNED,
    SIZE,
    UNSUPPORTED,
    ConfigError,
    Option,
    default_text,
    get_option,
    normalize,
)

_METAVARS = {
    ADDRESS: "ADDRESS", ENV: "NAME=VALUE", HEADER: "'NAME: VALUE'", INT: "N", MODE: "MODE",
    PATH: "PATH", SIZE: "BYTES",
}


class _Append(argparse.Action):
    """``append`` that also copes with a plain string already in the namespace.

    Django's own ``--pythonpath`` (a store action with the same dest) may have put one there.
    """

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        current = getattr(namespace, self.dest, None)
        items = [] if current is None else [current] if isinstance(current, str) else list(current)
        items.append(values)
        setattr(namespace, self.dest, items)


def _help(opt: Option) -> str:
    text = opt.help
    default = default_text(opt)
    if default and opt.status != UNSUPPORTED:
        text += f" (default: {default})"
    if opt.kind == BOOL and opt.default is True:
        text += f"; --no-{opt.name} turns it off"
    if opt.status == ACCEPTED:
        text += f" [accepted, no effect: {opt.note}]"
    elif opt.status == PLANNED:
        text += " [planned, not implemented yet]"
    return text.replace("%", "%%")  # argparse formats help with %


def add_arguments(parser: argparse.ArgumentParser, *, addrport: bool = True) -> None:
    """Add every option (canonical name, aliases, short letter) to ``parser``.

    Flags use ``default=argparse.SUPPRESS`` so only given options appear in the namespace,
    with ``dest`` = the canonical name with ``_``. Flag strings the parser already has
    (Django's ``--pythonpath``) are skipped; the caller passes those values through.
    Planned and unsupported options are added too, so using them gets our clear error
    (unsupported ones are hidden from ``--help``). Boolean options are bare flags, plus a
    ``--no-NAME`` form. With ``addrport``, a runserver-style optional positional is added.
    """
    taken = parser._option_string_actions  # argparse has no public way to ask
    groups = {g.title: g for g in parser._action_groups}
    for title in GROUPS:
        if title not in groups:
            groups[title] = parser.add_argument_group(title)
    for opt in OPTIONS:
        flags = [f"--{n}" for n in opt.names] + ([f"-{opt.short}"] if opt.short else [])
        flags = [f for f in flags if f not in taken]
        if not flags:
            continue
        group = groups[opt.group]
        shown = argparse.SUPPRESS if opt.status == UNSUPPORTED else _help(opt)
        common: dict[str, Any] = {"dest": opt.dest, "default": argparse.SUPPRESS, "help": shown}
        if opt.kind == BOOL:
            group.add_argument(*flags, action="store_const", const=True, **common)
            if f"--no-{opt.name}" not in taken:
                group.add_argument(f"--no-{opt.name}", action="store_const", const=False,
                                   dest=opt.dest, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
            continue
        common["metavar"] = _METAVARS.get(opt.kind, "VALUE")
        if opt.repeatable:
            group.add_argument(*flags, action=_Append, **common)
        elif opt.bare is not None:
            group.add_argument(*flags, nargs="?", const="", **common)
        else:
            group.add_argument(*flags, **common)
    if addrport and not any(a.dest == "addrport" for a in parser._actions):
        parser.add_argument(
            "addrport", nargs="?", default=argparse.SUPPRESS, metavar="[ADDR:]PORT",
            help="serve HTTP here, like runserver (replaces http-socket); "
                 "a FILE.ini here is read like --ini",
        )


_ADDRPORT_RE = re.compile(
    r"""^(?:(?P<addr>
        (?P<ipv4>\d{1,3}(?:\.\d{1,3}){3}) |
        (?P<ipv6>\[[a-fA-F0-9:]+\]) |
        (?P<fqdn>[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*)
    ):)?(?P<port>\d+)$""",
    re.X,
)


def parse_addrport(text: str) -> str:
    """runserver's ``[ADDR:]PORT`` → an http-socket address (``8080`` → ``127.0.0.1:8080``)."""
    m = _ADDRPORT_RE.match(text.strip())
    error = ConfigError(f'"{text}" is not a valid port number or address:port pair.')
    if not m:
        raise error
    addr = m.group("addr") or "127.0.0.1"
    if addr == "0":  # runserver's shorthand
        addr = "0.0.0.0"
    result = f"{addr}:{m.group('port')}"
    try:
        parse_address(result)
    except AddressError:
        raise error from None
    return result


def is_ini_spec(text: str) -> bool:
    """Whether a positional argument names an ini file (``uwsgi app.ini`` style)."""
    return bool(re.search(r"\.ini(:[^/]*)?$", text.strip(), re.IGNORECASE))


def _long_flags() -> list[str]:
    return [f"--{n}" for o in OPTIONS for n in o.names]


def unknown_option_message(argv_word: str, known_flags: Iterable[str] = ()) -> str:
    """One line for an argument argparse didn't recognize, with the closest known flag.

    ``argv_word`` is the first word argparse reported (``--proceses`` or ``--x=1``);
    ``known_flags`` adds the parser's other flags (Django's) to the suggestions.
    """
    word = argv_word.strip()
    if not word.startswith("-"):
        return f"unexpected argument {word!r} on the command line"
    flag = word.split("=", 1)[0]
    hint = None
    opt = get_option(flag.lstrip("-")) if flag.startswith("--") else None
    if opt is not None:  # a known name in the wrong case or with underscores
        hint = f"--{normalize(flag.lstrip('-'))}"
    else:
        pool: Sequence[str] = [*_long_flags(), *(f for f in known_flags if f.startswith("--"))]
        close = difflib.get_close_matches(f"--{normalize(flag.lstrip('-'))}", pool, n=1)
        hint = close[0] if close and flag.startswith("--") else None
    message = f"unknown option {flag!r} on the command line"
    return f"{message} — did you mean {hint!r}?" if hint else message
