"""Collect options from settings.UWSGI, ini files and the command line into one Config.

Precedence, lowest first: defaults < ``settings.UWSGI`` < ini files < command line.

* Inside one source, later entries win for single-value options and accumulate for list
  options (repeated ini lines, repeated flags, ``pythonpath`` and ``pp`` together).
* Across sources, the highest source that sets an option wins, **lists included**: a list
  from a higher source *replaces* the lower one's (``--http-socket :9000`` replaces the
  http-socket list of settings.UWSGI). All ini files are one source, so lists accumulate
  across them, as in uWSGI.
* Ini files are read at the ini level wherever they are named (``ini`` in settings.UWSGI,
  ``--ini``, a positional ``FILE.ini``, or an ``ini`` line in another ini file, which is
  read at that line's position). Files named in settings.UWSGI come first.
* When no socket option of any kind is set anywhere, http-socket is ``127.0.0.1:8000``.

Names are case-insensitive, ``_`` equals ``-`` and aliases resolve to the canonical name.
Unknown names, bad values and planned or unsupported options are a :class:`ConfigError`.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterator, Mapping
from typing import Any

from .cli import is_ini_spec, parse_addrport
from .ini import magic_table, read_section, split_spec, substitute
from .registry import (
    BY_DEST,
    BY_NAME,
    DEFAULT_HTTP_SOCKET,
    ENV,
    MODE,
    OPTIONS,
    PLANNED,
    PLANNED_IN,
    SOCKET_OPTIONS,
    UNSUPPORTED,
    ConfigError,
    Option,
    get_option,
    normalize,
)

SETTINGS = "settings.UWSGI"
COMMAND_LINE = "command line"
DEFAULT = "default"
MAX_INI_DEPTH = 10


class Config:
    """The effective options: ``cfg.processes``, ``cfg.http_socket`` (a list)...

    Every option is present (defaults filled in), under its canonical name with ``_``.
    """

    __slots__ = ("_values", "_origins")

    def __init__(self, values: dict[str, Any], origins: dict[str, str]) -> None:
        object.__setattr__(self, "_values", values)
        object.__setattr__(self, "_origins", origins)

    def __getattr__(self, attr: str) -> Any:
        opt = BY_DEST.get(attr)
        if opt is None:
            raise AttributeError(f"no option {attr!r}")
        return self._values[opt.name]

    def __setattr__(self, attr: str, value: Any) -> None:
        raise AttributeError("Config is read-only")

    def _option(self, name: str) -> Option:
        opt = BY_DEST.get(name) or get_option(name)
        if opt is None:
            raise KeyError(name)
        return opt

    def origin(self, name: str) -> str:
        """Where the value came from: ``default``, ``settings.UWSGI``, ``/x.ini line 3``,
        ``command line``. For a list, where its first item came from."""
        return self._origins[self._option(name).name]

    def as_dict(self) -> dict[str, Any]:
        """Every option by canonical (dashed) name; lists are copies."""
        return {k: list(v) if isinstance(v, list) else v for k, v in self._values.items()}

    def __repr__(self) -> str:
        given = {k: v for k, v in self._values.items() if self._origins[k] != DEFAULT}
        return f"Config({given!r})"


def _where(source: str) -> str:
    return "on the command line" if source == COMMAND_LINE else f"in {source}"


def _unknown(name: str, source: str) -> ConfigError:
    close = difflib.get_close_matches(normalize(name), list(BY_NAME), n=1)
    hint = f" — did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"unknown option {name!r} {_where(source)}{hint}")


def _check_status(opt: Option, source: str) -> None:
    if opt.status == PLANNED:
        issue = f", {PLANNED_IN[opt.name]}" if opt.name in PLANNED_IN else ""
        raise ConfigError(
            f"option {opt.name!r} ({source}) is not implemented yet by runuwsgi (planned{issue})"
        )
    if opt.status == UNSUPPORTED:
        raise ConfigError(f"option {opt.name!r} ({source}) is not supported by runuwsgi: {opt.note}")


def _items(opt: Option, value: Any) -> list[Any]:
    """The values of a list option: settings may give one value, a list or (env) a dict."""
    if isinstance(value, (list, tuple)):
        return list(value)
    if opt.kind == ENV and isinstance(value, Mapping):
        return [f"{k}={v}" for k, v in value.items()]
    return [value]


def _text(opt: Option, value: Any) -> str | None:
    """An option's value as ini text, for ``%(name)``; lists give their first item."""
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if opt.kind == MODE:
        return format(value, "03o")
    return str(value)


class _Layer:
    """The options one source sets, converted, with where each came from."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.origins: dict[str, str] = {}

    def set(self, opt: Option, value: Any, source: str) -> None:
        if opt.repeatable:
            converted = [opt.convert(v, source) for v in _items(opt, value)]
            self.values.setdefault(opt.name, []).extend(converted)
            self.origins.setdefault(opt.name, source)
            return
        if isinstance(value, (list, tuple)):
            raise ConfigError(
                f"invalid value {value!r} for option {opt.name!r} ({source}): "
                "expected one value, not a list"
            )
        self.values[opt.name] = opt.convert(value, source)
        self.origins[opt.name] = source


class _Builder:
    def __init__(self, base_dir: str | None) -> None:
        self.base_dir = base_dir
        self.settings, self.ini, self.cli = _Layer(), _Layer(), _Layer()
        self.ini_specs: list[tuple[str, str]] = []  # (spec, source) to read, in order
        self.ini_read: list[str] = []
        self.ini_origin = DEFAULT
        self.placeholders: dict[str, str] = {}
        # Unknown ini keys: placeholders if some %(name) uses them, else errors at the end.
        self.tentative: dict[str, tuple[str, str]] = {}
        self.broken: dict[str, ConfigError] = {}  # placeholders whose own value failed
        self.used: set[str] = set()

    def take(self, layer: _Layer, opt: Option, value: Any, source: str) -> None:
        """Apply one (option, value) from settings or the command line."""
        _check_status(opt, source)
        if opt.name == "ini":
            for spec in _items(opt, value):
                spec = opt.convert(spec, source)
                if layer is self.settings and self.base_dir:
                    spec = os.path.join(self.base_dir, spec)
                self.ini_specs.append((spec, source))
            return
        layer.set(opt, value, source)
        if opt.name == "set-placeholder":
            for item in _items(opt, value):
                self._placeholder(item)

    def _placeholder(self, item: str) -> None:
        name, _, value = item.partition("=")
        self.placeholders[normalize(name)] = value

    def lookup(self, name: str) -> str | None:
        """The text of ``%(name)``: a placeholder, else the option's value so far."""
        key = normalize(name)
        if key in self.broken:
            raise self.broken[key]
        if key in self.placeholders:
            self.used.add(key)
            return self.placeholders[key]
        opt = BY_NAME.get(key)
        if opt is None:
            return None
        for layer in (self.ini, self.cli, self.settings):
            if opt.name in layer.values:
                return _text(opt, layer.values[opt.name])
        return _text(opt, opt.default_value())

    def read_ini(self, spec: str, source: str, stack: tuple[str, ...] = ()) -> None:
        path, section = split_spec(spec)
        here = f"{os.path.abspath(path)}:{section}"
        if here in stack:
            chain = " -> ".join((*stack, here))
            raise ConfigError(f"ini files include each other ({source}): {chain}")
        if len(stack) >= MAX_INI_DEPTH:
            raise ConfigError(f"ini files nested more than {MAX_INI_DEPTH} deep ({source})")
        entries = read_section(path, section, source)
        if not self.ini_read:
            self.ini_origin = source
        self.ini_read.append(spec)
        magic = magic_table(path, section)
        for number, key, raw in entries:
            label = f"{os.path.abspath(path)} line {number}"
            opt = get_option(key) if key else None
            if opt is None:
                # uWSGI keeps unknown keys as placeholders; we only allow that for keys
                # some %(name) uses, and report the rest as unknown in finish().
                name = normalize(key)
                self.tentative.setdefault(name, (key, label))
                try:
                    self.placeholders[name] = substitute(raw, magic, self.lookup, label)
                    self.broken.pop(name, None)
                except ConfigError as exc:
                    self.broken[name] = exc
                continue
            _check_status(opt, label)
            value = substitute(raw, magic, self.lookup, label)
            if opt.name == "ini":
                self.read_ini(opt.convert(value, label), label, (*stack, here))
                continue
            self.ini.set(opt, value, label)
            if opt.name == "set-placeholder":
                self._placeholder(value)

    def finish(self) -> Config:
        for key, (name, label) in self.tentative.items():
            if key not in self.used:
                raise _unknown(name, label)
        values: dict[str, Any] = {}
        origins: dict[str, str] = {}
        for opt in OPTIONS:
            for layer in (self.cli, self.ini, self.settings):
                if opt.name in layer.values:
                    values[opt.name] = layer.values[opt.name]
                    origins[opt.name] = layer.origins[opt.name]
                    break
            else:
                values[opt.name] = opt.default_value()
                origins[opt.name] = DEFAULT
        values["ini"], origins["ini"] = self.ini_read, self.ini_origin
        if not any(values[name] for name in SOCKET_OPTIONS):
            values["http-socket"] = [DEFAULT_HTTP_SOCKET]
        return Config(values, origins)


def _settings_entries(settings_dict: Mapping[str, Any]) -> Iterator[tuple[Option, Any]]:
    if not isinstance(settings_dict, Mapping):
        raise ConfigError(f"{SETTINGS} must be a dict, not {type(settings_dict).__name__}")
    for key, value in settings_dict.items():
        opt = get_option(key) if isinstance(key, str) else None
        if opt is None:
            raise _unknown(str(key), SETTINGS)
        yield opt, value


def build_config(
    settings_dict: Mapping[str, Any] | None,
    cli: Mapping[str, object] | None,
    *,
    base_dir: str | None = None,
) -> Config:
    """Merge defaults, ``settings.UWSGI``, ini files and the command line into a Config.

    ``cli`` is ``vars()`` of the argparse namespace (or call_command's options): keys that
    are not option dests are ignored, ``None`` values are skipped (Django's own
    ``--pythonpath`` default), and ``addrport`` becomes an http-socket (or an ini file when
    it ends in ``.ini``). ``base_dir`` is where relative ``ini`` paths in settings.UWSGI
    are looked up (default: the current directory). See the module docstring for the
    precedence rules.
    """
    builder = _Builder(base_dir)
    for opt, value in _settings_entries(settings_dict or {}):
        builder.take(builder.settings, opt, value, SETTINGS)
    for key, value in (cli or {}).items():
        if value is None:
            continue
        if key == "addrport":
            text = str(value)
            if is_ini_spec(text):
                builder.ini_specs.append((text, COMMAND_LINE))
            else:
                builder.cli.set(BY_NAME["http-socket"], parse_addrport(text), COMMAND_LINE)
        elif key in BY_DEST:
            builder.take(builder.cli, BY_DEST[key], value, COMMAND_LINE)
    for spec, source in list(builder.ini_specs):
        builder.read_ini(spec, source)
    return builder.finish()
