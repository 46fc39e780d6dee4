"""``shared-socket`` and the ``=N`` references of socket options, with the real server."""

from __future__ import annotations

import errno
import os
import re
import signal
import socket

import requests

from tests.e2e.test_systemd import _activated, _listening_socket
from tests.server import run_command, wait_for


def _held(port: int) -> bool:
    """True if something already listens on 127.0.0.1:port (our bind fails)."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
        return False


def _reload(server) -> None:
    before = set(server.worker_pids())
    done = server.stderr().count("reload complete")
    os.kill(server.pid, signal.SIGHUP)  # the master re-execs: the sockets must follow
    wait_for(lambda: server.stderr().count("reload complete") > done, 60, "the reload")
    wait_for(lambda: not before & set(server.worker_pids()), 30, "the old workers to go")


def test_reference_serves_the_shared_socket_and_survives_reload(start_server, tmp_path):
    path = str(tmp_path / "shared.sock")
    server = start_server(["--shared-socket", path, "--shared-socket", "127.0.0.1:0",
                           "--http-socket", "=1", "--socket", "=0", "--processes", "1"])
    out = server.stdout()
    assert "(http-socket =1, HTTP/1.1)" in out and "(socket =0, uwsgi protocol" in out
    assert "not served" not in out
    assert requests.get(server.url + "/hello", timeout=10).text == "hello world"
    assert oct(os.stat(path).st_mode & 0o777) == "0o660"  # chmod-socket applies
    _reload(server)
    assert requests.get(server.url + "/hello", timeout=10).text == "hello world"


def test_unreferenced_shared_socket_is_bound_not_served_and_kept(start_server):
    server = start_server(["--shared-socket", "127.0.0.1:0", "--shared-socket", "127.0.0.1:0",
                           "--http-socket", "=1", "--processes", "1"])
    m = re.search(r"shared-socket =0 127\.0\.0\.1:(\d+): bound, not served", server.stdout())
    assert m, server.stdout()
    port = int(m.group(1))
    assert _held(port)
    assert requests.get(server.url + "/hello", timeout=10).text == "hello world"
    # The workers do not accept on it: a connection is queued, never answered.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"GET /hello HTTP/1.0\r\n\r\n")
        conn.settimeout(1.0)
        try:
            got = conn.recv(100)
        except TimeoutError:
            got = None
        assert got is None
    _reload(server)
    assert _held(port)  # still bound by the new master image
    assert requests.get(server.url + "/hello", timeout=10).text == "hello world"


def test_reference_errors_are_one_line():
    r = run_command(["--shared-socket", "127.0.0.1:0", "--http-socket", "=1"])
    assert r.returncode != 0
    assert r.stderr.strip().splitlines()[-1].endswith(
        "http-socket =1: unable to use shared socket 1: only 1 shared-socket option is given (=0)")
    r = run_command(["--socket", "=0"])
    assert r.returncode != 0
    assert r.stderr.strip().splitlines()[-1].endswith(
        "socket =0: unable to use shared socket 0: no shared-socket option is given")
    r = run_command(["--shared-socket", "127.0.0.1:0", "--socket", "=0", "--http-socket", "=0"])
    assert r.returncode != 0
    assert r.stderr.strip().splitlines()[-1].endswith(
        "socket =0: shared socket 0 is already served by http-socket")
    r = run_command(["--http-socket", "=x"])
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1
    assert "invalid value '=x' for option 'http-socket'" in r.stderr


def test_shared_socket_from_systemd(start_server):
    """The shared socket's address is the one systemd passed: that socket is used."""
    sock = _listening_socket()
    port = sock.getsockname()[1]
    with sock:
        server = _activated(start_server, sock, ["--shared-socket", f"127.0.0.1:{port}",
                                                  "--http-socket", "=0", "--processes", "1"])
        assert server.url == f"http://127.0.0.1:{port}"
        assert requests.get(f"http://127.0.0.1:{port}/hello", timeout=10).text == "hello world"
