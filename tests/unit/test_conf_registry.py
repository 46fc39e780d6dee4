"""The option registry and its value converters."""

import os
import re

import pytest

from django_uwsgi_server.conf import GROUPS, OPTIONS, ConfigError, get_option
from django_uwsgi_server.conf.registry import (
    ACCEPTED,
    IMPLEMENTED,
    PLANNED,
    UNSUPPORTED,
    default_text,
)


def convert(name, value, source="settings.UWSGI"):
    return get_option(name).convert(value, source)


def error(name, value, source="settings.UWSGI"):
    with pytest.raises(ConfigError) as info:
        convert(name, value, source)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_every_row_is_well_formed():
    statuses = {IMPLEMENTED, ACCEPTED, PLANNED, UNSUPPORTED}
    for opt in OPTIONS:
        assert opt.group in GROUPS, opt.name
        assert opt.status in statuses, opt.name
        assert opt.help and "\n" not in opt.help, opt.name
        assert re.fullmatch(r"[a-z0-9-]+", opt.name), opt.name
        if opt.status in (UNSUPPORTED, ACCEPTED):
            assert opt.note, f"{opt.name} needs a why"


def test_uwsgi_short_letters():
    expected = {"s": "socket", "p": "processes", "M": "master", "t": "harakiri",
                "R": "max-requests", "d": "daemonize", "b": "buffer-size", "l": "listen",
                "z": "socket-timeout", "C": "chmod-socket", "L": "disable-logging",
                "T": "enable-threads", "w": "module", "H": "home"}
    shorts = {o.short: o.name for o in OPTIONS if o.short}
    for letter, name in expected.items():
        assert shorts[letter] == name


@pytest.mark.parametrize("name, canonical", [
    ("workers", "processes"), ("WORKERS", "processes"), ("wsgi", "module"), ("file", "wsgi-file"),
    ("python_path", "pythonpath"), ("pp", "pythonpath"), ("virtualenv", "home"), ("venv", "home"),
    ("pyhome", "home"), ("stats_server", "stats"), ("logformat", "log-format"),
    ("max_requests", "max-requests"), ("py-auto-reload", "py-autoreload"),
])
def test_aliases_and_spellings(name, canonical):
    assert get_option(name).name == canonical


def test_unknown_name():
    assert get_option("proceses") is None


def test_default_processes_is_two_per_cpu():
    opt = get_option("processes")
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count()
    assert opt.default_value() == 2 * cpus
    assert default_text(opt) == "2 × CPU cores"


@pytest.mark.parametrize("value, expected", [
    (3, 3), ("3", 3), (" 12 ", 12), ("+4", 4),
])
def test_int_accepts(value, expected):
    assert convert("processes", value) == expected


@pytest.mark.parametrize("value", ["abc", "", "0", 0, -1, True, "1.5", 2.0, None])
def test_int_rejects(value):
    assert error("processes", value) == (
        f"invalid value {value!r} for option 'processes' (settings.UWSGI): "
        "expected a whole number >= 1"
    )


def test_int_error_names_the_source():
    assert error("threads", "x", "/etc/app.ini line 4") == (
        "invalid value 'x' for option 'threads' (/etc/app.ini line 4): expected a whole number >= 1"
    )


@pytest.mark.parametrize("value, expected", [
    (True, True), (False, False), ("", True), ("true", True), ("TRUE", True), ("1", True),
    ("yes", True), ("On", True), ("false", False), ("0", False), ("no", False), ("OFF", False),
    (1, True), (0, False),
])
def test_bool_accepts(value, expected):
    assert convert("lazy-apps", value) is expected


@pytest.mark.parametrize("value", ["ture", "enabled", 2, None, "y"])
def test_bool_rejects(value):
    assert error("lazy-apps", value) == (
        f"invalid value {value!r} for option 'lazy-apps' (settings.UWSGI): expected true or false "
        "(also yes/no, on/off, 1/0; an empty value means true)"
    )


@pytest.mark.parametrize("value, expected", [
    (4096, 4096), ("4096", 4096), ("64k", 65536), ("64K", 65536), ("1m", 1048576), ("1024", 1024),
])
def test_size_accepts(value, expected):
    assert convert("buffer-size", value) == expected


def test_size_suffix_g():
    assert convert("limit-post", "2g") == 2 * 1024**3
    assert convert("limit-post", 0) == 0


@pytest.mark.parametrize("value", ["1023", "2m", "lots", "64kb", "", True, 1.5])
def test_size_rejects(value):
    assert error("buffer-size", value) == (
        f"invalid value {value!r} for option 'buffer-size' (settings.UWSGI): expected a size in "
        "bytes (a whole number, optionally with a k, m or g suffix) from 1024 to 1048576"
    )


@pytest.mark.parametrize("value, expected", [
    ("660", 0o660), ("644", 0o644), ("", 0o666), ("1", 0o666), ("true", 0o666), (True, 0o666),
    (0o600, 0o600),
])
def test_mode_accepts(value, expected):
    assert convert("chmod-socket", value) == expected


@pytest.mark.parametrize("value", ["66", "0660", "888", "rw", False])
def test_mode_rejects(value):
    assert error("chmod-socket", value) == (
        f"invalid value {value!r} for option 'chmod-socket' (settings.UWSGI): "
        "expected 3 octal digits like 660 (an empty value, 1 or true mean 666)"
    )


def test_mode_decimal_int_gets_a_hint():
    assert error("chmod-socket", 660).endswith("; in Python write 0o660 or '660'")


@pytest.mark.parametrize("value, expected", [
    ("", 15), (True, 15), ("0", 0), (30, 30),
])
def test_http_keepalive(value, expected):
    assert convert("http-keepalive", value) == expected
    assert "expected a whole number >= 0" in error("http-keepalive", "-1")


@pytest.mark.parametrize("value", [":8000", "127.0.0.1:8000", "[::1]:8000", "/run/app.sock", "@abs"])
def test_address_accepts_and_keeps_the_text(value):
    assert convert("http-socket", value) == value


def test_address_int_is_a_port():
    assert convert("http-socket", 8000) == "8000"


@pytest.mark.parametrize("value", ["host:port", ":99999", "[nope]:80", "", 1.5])
def test_address_rejects(value):
    message = error("socket", value)
    assert message.startswith(
        f"invalid value {value!r} for option 'socket' (settings.UWSGI): expected a socket address "
        "(HOST:PORT, :PORT, [IPv6]:PORT, a unix socket path or fd://N for an inherited socket)"
    )


def test_address_fd_scheme():
    assert convert("socket", "fd://3") == "fd://3"
    assert "fd:// takes a file descriptor number" in error("http-socket", "fd://three")


@pytest.mark.parametrize("value, expected", [
    ("", "%a %b %e %H:%M:%S %Y"), (True, "%a %b %e %H:%M:%S %Y"), ("%Y-%m-%d", "%Y-%m-%d"),
])
def test_log_date_bare_is_ctime(value, expected):
    assert convert("logdate", value) == expected


def test_env():
    assert convert("env", "A=b=c") == "A=b=c"
    assert convert("env", "EMPTY=") == "EMPTY="
    for bad in ("NOEQUALS", "=value", 5):
        assert error("env", bad).endswith("expected NAME=VALUE")


def test_header():
    assert convert("add-header", "X-Frame-Options: DENY ") == "X-Frame-Options: DENY"
    for bad in ("no colon", "Bad Name: x", ": x", 3):
        assert error("add-header", bad).endswith("expected a header line 'Name: value'")


def test_str_and_path():
    assert convert("module", "a.wsgi:app") == "a.wsgi:app"
    assert error("module", 3).endswith("expected a string")
    from pathlib import Path
    assert convert("chdir", Path("/srv")) == "/srv"
    assert error("chdir", 3).endswith("expected a path (a string)")
