"""systemd: sd_notify messages (a test-side datagram socket plays systemd) and socket
activation (the test opens the listening socket and passes it as fd 3, as systemd does)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

from django_uwsgi_server.server.uwsgi_protocol import build_packet
from tests.server import TEST_PROJECT, run_command, wait_for


class FakeSystemd:
    """The notify socket systemd would listen on; collects the datagrams in order."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.1)
        self.messages: list[dict[str, str]] = []

    def wait(self, key: str, timeout: float = 30.0) -> dict[str, str]:
        """The next message holding ``key`` (the ones before it are kept in .messages)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            msg = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            self.messages.append(msg)
            if key in msg:
                return msg
        raise AssertionError(f"no {key} message within {timeout}s; got {self.messages}")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def systemd(tmp_path):
    fake = FakeSystemd(str(tmp_path / "notify"))
    yield fake
    fake.close()


def _worker_pids(server) -> set[int]:
    return set(server.worker_pids())


def test_notify_ready_status_reload_stopping(start_server, systemd):
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "2"],
                          env={"NOTIFY_SOCKET": systemd.path}, wait=False)
    ready = systemd.wait("READY")
    assert ready["READY"] == "1"
    assert ready["STATUS"] == "2 workers serving, 0 busy"
    # READY came once every worker accepts: the banner is out and a request succeeds now.
    wait_for(lambda: "Quit the server" in server.stdout(), 10, "the banner")
    server.wait_ready()
    r = requests.get(server.url + "/osenv", params={"k": "NOTIFY_SOCKET"}, timeout=10)
    assert r.json()["value"] is None  # the app's subprocesses cannot speak for the server

    before = _worker_pids(server)
    os.kill(server.pid, signal.SIGHUP)  # a re-exec of the master: the socket must follow
    reloading = systemd.wait("RELOADING")
    assert reloading["RELOADING"] == "1"
    usec = int(reloading["MONOTONIC_USEC"])
    assert abs(usec - time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000) < 60_000_000
    again = systemd.wait("READY")
    assert again["STATUS"] == "2 workers serving, 0 busy"
    # Ready again means the new workers serve (the old ones may still be finishing).
    after = _worker_pids(server)
    assert len(after - before) >= 2
    assert requests.get(server.url + "/hello", timeout=10).status_code == 200

    os.kill(server.pid, signal.SIGTERM)
    stopping = systemd.wait("STOPPING")
    assert stopping["STOPPING"] == "1"
    server.proc.wait(15)
    keys = [k for m in systemd.messages for k in m if k in ("READY", "RELOADING", "STOPPING")]
    assert keys == ["READY", "RELOADING", "READY", "STOPPING"]


def test_notify_status_counts_busy_workers(start_server, systemd):
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "2"],
                          env={"NOTIFY_SOCKET": systemd.path})
    msg = systemd.wait("READY")
    while msg["STATUS"] != "2 workers serving, 0 busy":  # the readiness probe's request
        msg = systemd.wait("STATUS", timeout=10)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as slow:
        slow.sendall(b"GET /sleep?s=3 HTTP/1.1\r\nHost: x\r\n\r\n")
        msg = systemd.wait("STATUS", timeout=10)
        assert msg["STATUS"] == "2 workers serving, 1 busy"
        assert slow.recv(100).startswith(b"HTTP/1.1 200")
    while msg["STATUS"] != "2 workers serving, 0 busy":
        msg = systemd.wait("STATUS", timeout=10)


def test_watchdog_pings(start_server, systemd):
    start_server(["--http-socket", "127.0.0.1:0", "--processes", "1"],
                 env={"NOTIFY_SOCKET": systemd.path, "WATCHDOG_USEC": "2000000"})
    systemd.wait("READY")
    times = []
    for _ in range(3):
        systemd.wait("WATCHDOG", timeout=5)
        times.append(time.monotonic())
    # every WATCHDOG_USEC / 2 = 1 s (the loop turns at least once a second)
    assert all(0.5 < b - a < 2.5 for a, b in zip(times, times[1:], strict=False)), times


def test_no_watchdog_for_another_pid(start_server, systemd):
    start_server(["--http-socket", "127.0.0.1:0", "--processes", "1"],
                 env={"NOTIFY_SOCKET": systemd.path, "WATCHDOG_USEC": "1000000",
                      "WATCHDOG_PID": "1"})
    systemd.wait("READY")
    with pytest.raises(AssertionError, match="no WATCHDOG message"):
        systemd.wait("WATCHDOG", timeout=2.5)


def test_notify_abstract_socket_and_mainpid_when_daemonized(start_server, tmp_path):
    name = f"durs-test-{os.getpid()}-{time.monotonic_ns()}"
    fake = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    fake.bind("\0" + name)
    fake.settimeout(30)
    pidfile = tmp_path / "server.pid"
    log = tmp_path / "daemon.log"
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "1",
                           "--daemonize", str(log), "--pidfile", str(pidfile)],
                          env={"NOTIFY_SOCKET": "@" + name}, wait=False)
    try:
        first = fake.recv(4096).decode()
        second = fake.recv(4096).decode()
        assert server.proc.wait(30) == 0  # the launcher is gone: MAINPID told systemd
        daemon_pid = int(pidfile.read_text())
        assert first == f"MAINPID={daemon_pid}"
        assert "READY=1" in second.splitlines()
    finally:
        fake.close()
        if pidfile.exists():
            pid = int(pidfile.read_text())
            os.kill(pid, signal.SIGTERM)
            wait_for(lambda: not os.path.exists(f"/proc/{pid}") or
                     "zombie" in open(f"/proc/{pid}/status").read().lower(), 20, "the daemon")


def uwsgi_request(address, uri: str) -> tuple[int, bytes, bytes]:
    """GET ``uri`` over the uwsgi protocol: (status, head, body)."""
    path, _, query = uri.partition("?")
    packet = build_packet([("REQUEST_METHOD", "GET"), ("PATH_INFO", path), ("REQUEST_URI", uri),
                           ("QUERY_STRING", query), ("SERVER_PROTOCOL", "HTTP/1.1"),
                           ("SERVER_NAME", "x"), ("SERVER_PORT", "80"), ("HTTP_HOST", "x")])
    with socket.create_connection(address, timeout=10) as s:
        s.sendall(packet)
        raw = b""
        while chunk := s.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), head, body


def _listening_socket(family=socket.AF_INET, address=("127.0.0.1", 0)) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.bind(address)
    sock.listen(64)
    return sock


# What systemd does before it execs the service (the pid stays the server's).
_MOVE_TO_FD3 = ("import os, sys; fd = int(sys.argv[1]); os.dup2(fd, 3); os.close(fd); "
                "os.environ['LISTEN_PID'] = str(os.getpid()); os.execv(sys.argv[2], sys.argv[2:])")


def _activated(start_server, sock, args, names=None):
    """Start the server the way systemd would: the socket as fd 3, LISTEN_FDS=1 and
    LISTEN_PID = the server's pid (a wrapper moves the fd to 3, then execs the command)."""
    fd = sock.fileno()
    assert fd != 3  # pytest holds fd 3 in this process
    os.set_inheritable(fd, True)
    env = {"LISTEN_FDS": "1"}
    if names:
        env["LISTEN_FDNAMES"] = names
    wrapper = [sys.executable, "-c", _MOVE_TO_FD3, str(fd)]
    return start_server(args, env=env, prefix=wrapper, pass_fds=(fd,))


def test_socket_activation_uwsgi_by_default(start_server):
    sock = _listening_socket()
    port = sock.getsockname()[1]
    with sock:
        server = _activated(start_server, sock, ["--processes", "2"])
        assert server.uwsgi_address == ("127.0.0.1", port)  # no default 127.0.0.1:8000
        assert "http" not in server.addresses
        status, _, body = uwsgi_request(("127.0.0.1", port), "/hello")
        assert status == 200 and body == b"hello world"
        # The app does not inherit the LISTEN_* variables nor the fd.
        status, _, body = uwsgi_request(("127.0.0.1", port), "/osenv?k=LISTEN_FDS")
        assert b'"value": null' in body
        workers = server.worker_pids()
        assert all(not os.path.exists(f"/proc/{w}/fd/3") or
                   os.readlink(f"/proc/{w}/fd/3").startswith("socket:") for w in workers)


def test_socket_activation_matches_configured_address(start_server):
    """A configured http-socket whose address is the inherited socket's uses it (no bind:
    binding would fail with 'address in use' since the test holds the port)."""
    sock = _listening_socket()
    port = sock.getsockname()[1]
    with sock:
        server = _activated(start_server, sock, ["--http-socket", f"127.0.0.1:{port}",
                                                  "--processes", "1"])
        assert requests.get(f"http://127.0.0.1:{port}/hello", timeout=10).text == "hello world"
        # The sockets survive the master's re-exec on reload.
        before = set(server.worker_pids())
        os.kill(server.pid, signal.SIGHUP)
        wait_for(lambda: "reload complete" in server.stderr(), 60, "the reload")
        wait_for(lambda: not before & set(server.worker_pids()), 30, "the old worker to go")
        assert requests.get(f"http://127.0.0.1:{port}/hello", timeout=10).text == "hello world"


def test_socket_activation_http_by_name_and_unix(start_server, tmp_path):
    path = str(tmp_path / "activated.sock")
    sock = _listening_socket(socket.AF_UNIX, path)
    with sock:
        server = _activated(start_server, sock, ["--processes", "1", "--http-socket",
                                                  "127.0.0.1:0", "--vacuum"], names="http")
        assert f"http+unix://{path}  (http-socket on inherited fd 3 (http), HTTP/1.1)" in \
            server.stdout()
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(10)
            client.connect(path)
            client.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := client.recv(4096):
                data += chunk
        assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"hello world")
        assert requests.get(server.url + "/hello", timeout=10).text == "hello world"
        server.stop()
        assert os.path.exists(path), "vacuum removed the socket file systemd owns"


@pytest.mark.parametrize("option", ["--http-socket", "--socket"])
def test_fd_scheme(start_server, option):
    sock = _listening_socket()
    port = sock.getsockname()[1]
    fd = sock.fileno()
    os.set_inheritable(fd, True)
    with sock:
        start_server([option, f"fd://{fd}", "--processes", "1"], pass_fds=(fd,))
        if option == "--http-socket":
            assert requests.get(f"http://127.0.0.1:{port}/hello", timeout=10).text == "hello world"
        else:
            status, _, body = uwsgi_request(("127.0.0.1", port), "/hello")
            assert (status, body) == (200, b"hello world")


def test_fd_scheme_errors():
    result = run_command(["--http-socket", "fd://57", "--processes", "1"])
    assert result.returncode != 0
    assert "fd://57: not an open socket" in result.stderr
    result = run_command(["--socket", "fd://x"])
    assert result.returncode != 0
    assert "fd:// takes a file descriptor number" in result.stderr


@pytest.mark.skipif(shutil.which("systemd-socket-activate") is None and not os.environ.get("CI"),
                    reason="needs systemd's systemd-socket-activate (.ci/run installs it)")
def test_real_systemd_socket_activate(start_server):
    """systemd's own tool: it listens, and on the first connection execs the server with
    LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES set as systemd would."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = start_server(["--processes", "1"], wait=False, prefix=[
        "systemd-socket-activate", "-l", f"127.0.0.1:{port}", "--fdname=http", "--"])

    def listening():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    wait_for(listening, 10, "systemd-socket-activate to listen")  # this connection execs it
    assert requests.get(f"http://127.0.0.1:{port}/hello", timeout=30).text == "hello world"
    server.wait_ready()
    assert f"http://127.0.0.1:{port}/  (http-socket on inherited fd 3 (http), HTTP/1.1)" in \
        server.stdout()


def test_listen_fds_naming_closed_descriptors_is_one_line():
    """LISTEN_FDS larger than what the launcher passed (a hand-written wrapper): one line
    naming it, not a traceback from the first closed descriptor."""
    wrapper = ("import os, sys; os.environ['LISTEN_PID'] = str(os.getpid()); "
               "os.execv(sys.argv[1], sys.argv[1:])")
    result = subprocess.run(
        [sys.executable, "-c", wrapper, sys.executable, str(TEST_PROJECT / "manage.py"),
         "runuwsgi", "--processes", "1"],
        cwd=str(TEST_PROJECT), env={**os.environ, "LISTEN_FDS": "40"}, capture_output=True,
        text=True, timeout=60, stdin=subprocess.DEVNULL, start_new_session=True)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    assert re.search(r"LISTEN_FDS=40: fd \d+ is not open", result.stderr), result.stderr
