"""Parsing of logger specs and line splitting (server/loggers.py)."""

import pytest

from django_uwsgi_server.conf import ConfigError, build_config
from django_uwsgi_server.server.loggers import Loggers, LoggerSpecError, Spec, build, parse


def test_spec_forms():
    assert parse("file:/var/log/app.log") == Spec("", "file", "/var/log/app.log")
    assert parse("stdio") == Spec("", "stdio", "")
    assert parse("reqs syslog:app,local1") == Spec("reqs", "syslog", "app,local1")
    assert parse("socket:127.0.0.1:1717") == Spec("", "socket", "127.0.0.1:1717")
    # a space in the arguments is not an id: the id must be letters and digits
    assert parse("file:/tmp/a b.log") == Spec("", "file", "/tmp/a b.log")
    assert parse("file:logfile=/tmp/x.log").arg == "logfile=/tmp/x.log"


@pytest.mark.parametrize("text, message", [
    ("journal", "unknown logger plugin 'journal'"),
    ("file", "file:PATH, a path"),
    ("file:logfile=/tmp/x,maxsize=10", "maxsize is not supported"),
    ("stdio:x", "stdio without arguments"),
    ("syslog:app,nope", "not 'nope'"),
    ("socket:", "socket:HOST:PORT (UDP)"),
    ("socket:127.0.0.1:0", "a port other than 0"),
    ("socket:127.0.0.1:x", "the port must be a number"),
])
def test_bad_specs(text, message):
    with pytest.raises(LoggerSpecError) as info:
        parse(text)
    assert message in str(info.value)


def test_options_check_specs_when_read():
    cfg = build_config({"logger": ["file:/tmp/a", "stdio"]}, {"req_logger": ["syslog"]})
    assert cfg.logger == ["file:/tmp/a", "stdio"] and cfg.req_logger == ["syslog"]
    with pytest.raises(ConfigError) as info:
        build_config({"req-logger": "mongodb:x"}, {})
    assert str(info.value).startswith(
        "invalid value 'mongodb:x' for option 'req-logger' (settings.UWSGI): expected "
        "[name ]plugin[:args] with plugin one of file, socket, stdio, syslog")


def test_feed_writes_whole_lines_to_every_logger(tmp_path):
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    loggers = build([f"file:{a}", f"one file:logfile={b}"], "logger")
    assert isinstance(loggers, Loggers)
    loggers.feed(b"first\nsec")
    assert a.read_bytes() == b"first\n" and b.read_bytes() == b"first\n"
    loggers.feed(b"ond\nthird")
    assert a.read_bytes() == b"first\nsecond\n"
    loggers.flush()  # at exit, the unterminated rest is still written
    assert b.read_bytes() == b"first\nsecond\nthird\n"
    assert build([], "logger") is None
