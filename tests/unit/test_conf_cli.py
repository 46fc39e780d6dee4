"""The command line: add_arguments, addrport, unknown-option messages."""

import argparse

import pytest

from django_uwsgi_server.conf import (
    OPTIONS,
    ConfigError,
    add_arguments,
    build_config,
    parse_addrport,
    unknown_option_message,
)
from tests.planned import mark_planned


def make_parser():
    # Like Django's BaseCommand: it already owns --pythonpath and -v.
    parser = argparse.ArgumentParser(allow_abbrev=False)
    parser.add_argument("--pythonpath")
    parser.add_argument("-v", "--verbosity", type=int, default=1)
    parser.add_argument("--settings")
    add_arguments(parser)
    return parser


def config(argv, settings=None):
    return build_config(settings, vars(make_parser().parse_args(argv)))


def test_only_given_options_appear():
    ns = vars(make_parser().parse_args([]))
    assert ns == {"pythonpath": None, "verbosity": 1, "settings": None}


def test_every_option_is_reachable():
    parser = make_parser()
    flags = parser._option_string_actions
    for opt in OPTIONS:
        for name in opt.names:
            if name != "pythonpath":
                assert flags[f"--{name}"].dest == opt.dest
        if opt.short:
            assert flags[f"-{opt.short}"].dest == opt.dest


def test_long_short_alias_and_equals_forms():
    cfg = config(["-p", "3", "--threads=2", "-s", "/run/a.sock", "--socket", ":3031",
                  "--wsgi", "site.wsgi", "-b", "32k", "--http-socket", ":9000"])
    assert cfg.processes == 3 and cfg.origin("processes") == "command line"
    assert cfg.threads == 2
    assert cfg.socket == ["/run/a.sock", ":3031"]
    assert cfg.module == "site.wsgi"
    assert cfg.buffer_size == 32768
    assert cfg.http_socket == [":9000"]


def test_aliases_share_a_dest_and_last_wins():
    assert config(["--workers", "2", "--processes", "4"]).processes == 4


def test_bool_flags():
    cfg = config(["--lazy-apps", "-M", "--no-need-app", "-L", "-T"])
    assert cfg.lazy_apps is True and cfg.master is True and cfg.need_app is False
    assert cfg.disable_logging is True
    with pytest.raises(SystemExit):
        make_parser().parse_args(["--master=false"])  # flags take no value, as in uWSGI


def test_optional_value_options():
    cfg = config(["--chmod-socket", "--http-keepalive"])
    assert cfg.chmod_socket == 0o666 and cfg.http_keepalive == 15
    cfg = config(["-C", "660", "--http-keepalive", "0"])
    assert cfg.chmod_socket == 0o660 and cfg.http_keepalive == 0


def test_django_pythonpath_is_passed_through_and_aliases_append():
    assert config(["--pythonpath", "/a"]).pythonpath == ["/a"]
    assert config(["--pythonpath", "/a", "--pp", "/b", "--python-path", "/c"]).pythonpath == [
        "/a", "/b", "/c"]


def test_cli_beats_settings():
    cfg = config(["--http-socket", ":9000", "-p", "2"],
                 settings={"http-socket": [":1", ":2"], "processes": 8, "threads": 3})
    assert cfg.http_socket == [":9000"] and cfg.processes == 2 and cfg.threads == 3


def test_planned_and_unsupported_get_our_error_not_argparse(monkeypatch):
    mark_planned(monkeypatch, "req-logger")
    with pytest.raises(ConfigError) as info:
        config(["--req-logger", "file:/tmp/x"])
    assert str(info.value) == (
        "option 'req-logger' (command line) is not implemented yet by runuwsgi (planned)"
    )
    with pytest.raises(ConfigError) as info:
        config(["--cheaper", "2"])
    assert str(info.value).startswith("option 'cheaper' (command line) is not supported")


def test_bad_value_gets_our_error():
    with pytest.raises(ConfigError) as info:
        config(["--buffer-size", "huge"])
    assert str(info.value).startswith("invalid value 'huge' for option 'buffer-size' (command line)")


def test_addrport_positional():
    assert config(["8080"]).http_socket == ["127.0.0.1:8080"]
    assert config(["-p", "2", "0:8001"]).http_socket == ["0.0.0.0:8001"]
    assert config(["--socket", ":3031"]).http_socket == []


def test_ini_positional_and_flag(tmp_path):
    path = tmp_path / "app.ini"
    path.write_text("[uwsgi]\nprocesses = 3\nthreads = 2\n")
    assert config([str(path)]).processes == 3
    cfg = config(["--ini", str(path), "--threads", "7"])
    assert cfg.processes == 3 and cfg.threads == 7


def test_help_renders():
    text = make_parser().format_help()
    assert "Sockets:" in text and "Process management:" in text
    assert "--no-need-app turns it off" in text
    assert "--cheaper" not in text  # unsupported ones are hidden, still parsed


def test_existing_addrport_is_kept():
    parser = argparse.ArgumentParser()
    parser.add_argument("addrport", nargs="?")
    add_arguments(parser)
    assert [a.dest for a in parser._actions].count("addrport") == 1


@pytest.mark.parametrize("text, expected", [
    ("8080", "127.0.0.1:8080"),
    ("0.0.0.0:8080", "0.0.0.0:8080"),
    ("0:8080", "0.0.0.0:8080"),
    ("[::1]:8080", "[::1]:8080"),
    ("localhost:8080", "localhost:8080"),
    ("10.1.2.3:80", "10.1.2.3:80"),
])
def test_parse_addrport(text, expected):
    assert parse_addrport(text) == expected


@pytest.mark.parametrize("text", ["abc", ":8080", "localhost", "[::1]", "1.2.3.4:99999",
                                  "[zz]:80", "a b:80", ""])
def test_parse_addrport_errors(text):
    with pytest.raises(ConfigError) as info:
        parse_addrport(text)
    assert str(info.value) == f'"{text}" is not a valid port number or address:port pair.'


def test_unknown_option_message():
    assert unknown_option_message("--proceses") == (
        "unknown option '--proceses' on the command line — did you mean '--processes'?"
    )
    assert unknown_option_message("--max_requests=3") == (
        "unknown option '--max_requests' on the command line — did you mean '--max-requests'?"
    )
    assert unknown_option_message("--zzqqxx") == "unknown option '--zzqqxx' on the command line"
    assert unknown_option_message("-X") == "unknown option '-X' on the command line"
    assert unknown_option_message("9000") == "unexpected argument '9000' on the command line"
    assert unknown_option_message("--setings", ["--settings", "-v"]).endswith(
        "did you mean '--settings'?")


def test_unknown_option_via_argparse():
    parser = make_parser()
    _, extra = parser.parse_known_args(["--proceses", "3"])
    assert unknown_option_message(extra[0]).endswith("did you mean '--processes'?")


def test_with_djangos_command_parser():
    base = pytest.importorskip("django.core.management.base")

    class Command(base.BaseCommand):
        def add_arguments(self, parser):
            add_arguments(parser)

    parser = Command().create_parser("manage.py", "runuwsgi")
    options = vars(parser.parse_args(["--pythonpath", "/x", "-p", "3", "8001", "--no-color"]))
    cfg = build_config(None, options)
    assert cfg.processes == 3 and cfg.pythonpath == ["/x"]
    assert cfg.http_socket == ["127.0.0.1:8001"]
