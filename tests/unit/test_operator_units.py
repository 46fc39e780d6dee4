"""The pure parts of the operator features: log-date formats, process title composition,
and how inherited sockets are matched to socket options."""

from __future__ import annotations

import os
import socket
import time
import types

import pytest

from django_uwsgi_server.server import logging as srvlog
from django_uwsgi_server.server.proctitle import ProcTitles
from django_uwsgi_server.server.sockets import BindError, parse_address
from django_uwsgi_server.server.systemd import INHERITED, Activation


@pytest.fixture
def log_date():
    yield srvlog.set_log_date
    srvlog.set_log_date(None)


@pytest.mark.parametrize("value, expected", [
    (None, None), ("false", None), ("0", None), ("true", srvlog.CTIME), ("1", srvlog.CTIME),
    ("", srvlog.CTIME), ("%Y-%m-%d", "%Y-%m-%d"),
])
def test_log_date_values(log_date, value, expected):
    log_date(value)
    assert srvlog._date_format == expected


def test_log_date_prefixes_write_line_only(log_date, monkeypatch):
    written = []
    monkeypatch.setattr(srvlog.os, "write", lambda fd, data: written.append(data) or len(data))
    log_date("%Y")
    srvlog.write_line("hello")
    srvlog._write("[pid: 1|app: 0|req: 1/1] a request line")
    year = str(time.localtime().tm_year)
    assert written == [f"{year} - hello\n".encode(), b"[pid: 1|app: 0|req: 1/1] a request line\n"]


def _cfg(**options):
    values = dict.fromkeys(("procname_prefix", "procname_prefix_spaced", "procname_append",
                            "procname_master", "procname"))
    values.update(auto_procname=True)
    values.update(options)
    return types.SimpleNamespace(**values)


@pytest.mark.parametrize("options, master, worker", [
    ({}, "uWSGI master (runuwsgi shop)", "uWSGI worker 3 (runuwsgi shop)"),
    ({"procname_prefix": "eu-"}, "eu-uWSGI master [runuwsgi]", "eu-uWSGI worker 3 [runuwsgi]"),
    ({"procname_prefix_spaced": "runuwsgi:"}, "runuwsgi: uWSGI master",
     "runuwsgi: uWSGI worker 3"),
    ({"procname_append": " runuwsgi"}, "uWSGI master runuwsgi", "uWSGI worker 3 runuwsgi"),
    ({"procname_master": "boss"}, "boss [runuwsgi]", "uWSGI worker 3 [runuwsgi]"),
    ({"procname": "hand"}, "hand [runuwsgi]", "hand [runuwsgi]"),
    ({"auto_procname": False}, None, None),
    ({"auto_procname": False, "procname_master": "boss"}, "boss [runuwsgi]", None),
])
def test_titles(options, master, worker):
    titles = ProcTitles(_cfg(**options), set_title=None, project="shop")
    assert titles.master_title() == master
    assert titles.worker_title(3) == worker


@pytest.fixture
def listening():
    socks = []

    def make(family=socket.AF_INET, address=("127.0.0.1", 0), listen=True):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.bind(address)
        if listen:
            sock.listen(8)
        socks.append(sock)
        return sock

    yield make
    for sock in socks:
        sock.close()


def _activation(*socks, names=()):
    # Activation adopts the descriptors: give it duplicates so the fixture closes its own.
    fds = {os.dup(s.fileno()): (names[i] if i < len(names) else "") for i, s in enumerate(socks)}
    return Activation(fds)


def test_configured_address_takes_the_inherited_socket(listening):
    a, b = listening(), listening()
    port_a, port_b = a.getsockname()[1], b.getsockname()[1]
    act = _activation(a, b, names=("", "http-public"))
    assert act.take(parse_address(f"127.0.0.2:{port_a}"), "http", "http-socket") is None
    taken = act.take(parse_address(f"127.0.0.1:{port_a}"), "http", "http-socket")
    assert taken.protocol == "http" and taken.name == f"127.0.0.1:{port_a}"
    assert taken.option.startswith("http-socket" + INHERITED)
    rest = act.rest()
    assert [(r.protocol, r.name) for r in rest] == [("http", f"127.0.0.1:{port_b}")]
    assert rest[0].option.endswith("(http-public)")
    for listener in (taken, *rest):
        listener.sock.close()


def test_other_host_or_port_zero_do_not_match(listening):
    a = listening()
    port = a.getsockname()[1]
    act = _activation(a)
    assert act.take(parse_address(f"0.0.0.0:{port}"), "uwsgi", "socket") is None
    assert act.take(parse_address("127.0.0.1:0"), "uwsgi", "socket") is None
    rest = act.rest()
    assert rest[0].protocol == "uwsgi"  # uWSGI's default for an unclaimed socket
    rest[0].sock.close()


def test_unix_path_matches_relative_or_absolute(listening, tmp_path, monkeypatch):
    path = tmp_path / "s.sock"
    sock = listening(socket.AF_UNIX, str(path))
    monkeypatch.chdir(tmp_path)
    act = _activation(sock)
    taken = act.take(parse_address("./s.sock"), "uwsgi", "socket")
    assert taken is not None and taken.address.path == str(path)
    taken.sock.close()


def test_fd_scheme_needs_a_listening_stream_socket(listening):
    idle = listening(listen=False)
    with pytest.raises(BindError, match=r"socket fd://\d+: not a listening stream socket"):
        Activation({}).take(parse_address(f"fd://{idle.fileno()}"), "uwsgi", "socket")
    ok = listening()
    act = Activation({})
    fd = os.dup(ok.fileno())
    listener = act.take(parse_address(f"fd://{fd}"), "uwsgi", "socket")
    with pytest.raises(BindError, match="already used by another socket option"):
        act.take(parse_address(f"fd://{fd}"), "http", "http-socket")
    listener.sock.close()
