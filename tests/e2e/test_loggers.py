"""``logger`` and ``req-logger`` with the real server: which lines reach which logger."""

from __future__ import annotations

import os
import signal
import socket
import stat

import pytest
import requests

from tests.server import run_command, wait_for


def _text(path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _reload(server) -> None:
    before = set(server.worker_pids())
    os.kill(server.pid, signal.SIGHUP)  # a master re-exec: the pipes must follow
    wait_for(lambda: not before & set(server.worker_pids()) and server.worker_pids(), 60,
             "new workers after the reload")
    server.wait_ready()


def test_req_logger_gets_requests_logger_the_rest(start_server, tmp_path):
    main, reqs = tmp_path / "main.log", tmp_path / "req.log"
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "1",
                           "--logger", f"file:{main}", "--req-logger", f"file:{reqs}"])
    assert requests.get(server.url + "/hello", timeout=10).text == "hello world"
    assert requests.get(server.url + "/error", timeout=10).status_code == 500
    wait_for(lambda: "GET /error" in _text(reqs), 20, "the request lines in req.log")
    wait_for(lambda: "boom from a view" in _text(main), 20, "Django's traceback in main.log")
    assert "GET /hello" in _text(reqs) and "(HTTP/1.1 200)" in _text(reqs)
    assert "spawned uWSGI master process" in _text(main)  # the master's own lines
    assert "GET /hello" not in _text(main) and "boom" not in _text(reqs)
    assert "GET /hello" not in server.stderr() and "spawned uWSGI master" not in server.stderr()
    assert stat.S_IMODE(os.stat(reqs).st_mode) == 0o640
    _reload(server)
    assert requests.get(server.url + "/hello?after", timeout=10).text == "hello world"
    wait_for(lambda: "GET /hello?after" in _text(reqs), 20, "a request line after the reload")
    assert "GET /hello?after" not in _text(main)


def test_without_req_logger_requests_go_to_logger_and_stdio(start_server, tmp_path):
    main = tmp_path / "main.log"
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "2",
                           "--logger", f"file:{main}", "--logger", "stdio"])
    for _ in range(20):
        assert requests.get(server.url + "/hello", timeout=10).status_code == 200
    wait_for(lambda: _text(main).count("GET /hello") == 20, 20, "20 request lines in main.log")
    wait_for(lambda: server.stderr().count("GET /hello") == 20, 20, "the same lines on stderr")
    lines = [line for line in _text(main).splitlines() if "GET /hello" in line]
    assert all(line.startswith("[pid: ") for line in lines)  # whole lines, never mixed


def test_socket_logger_sends_each_line_as_a_datagram(start_server):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(20)
        port = receiver.getsockname()[1]
        server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "1",
                               "--req-logger", f"socket:127.0.0.1:{port}"])
        requests.get(server.url + "/hello?udp", timeout=10)
        datagram = receiver.recv(65536)
        while b"GET /hello?udp" not in datagram:  # bounded by the socket timeout
            datagram = receiver.recv(65536)
        assert datagram.startswith(b"[pid: ") and datagram.endswith(b"\n")
        assert datagram.count(b"\n") == 1


@pytest.fixture
def dev_log():
    """A test-side /dev/log (what a syslog daemon listens on) for the C library's syslog();
    skipped where a real one exists (never depend on or disturb a syslog daemon) or when we
    may not create it."""
    if os.path.exists("/dev/log"):
        pytest.skip("/dev/log exists (a syslog daemon's): not replaced by the test")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.bind("/dev/log")
    except OSError as exc:
        sock.close()
        pytest.skip(f"cannot create /dev/log: {exc.strerror}")
    os.chmod("/dev/log", 0o666)
    sock.settimeout(20)
    yield sock
    sock.close()
    os.unlink("/dev/log")


def test_syslog_logger_ident_facility_and_priority(start_server, dev_log):
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "1",
                           "--req-logger", "syslog:shopreq,local3", "--logger", "syslog"])
    requests.get(server.url + "/hello?syslog", timeout=10)
    got: list[bytes] = []
    wait_for(lambda: got.append(dev_log.recv(65536)) or
             any(b"GET /hello?syslog" in m for m in got), 30, "the request line on /dev/log")
    line = next(m for m in got if b"GET /hello?syslog" in m)
    assert line.startswith(b"<158>")  # local3 (19) * 8 + info (6)
    assert b" shopreq: [pid: " in line and not line.endswith(b"\n")
    master = [m for m in got if b"spawned uWSGI master process" in m]
    assert master and master[0].startswith(b"<30>") and b" uwsgi: " in master[0]  # daemon.info


def test_bad_logger_is_one_line(tmp_path):
    r = run_command(["--logger", "journal:x"])
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1
    assert "option 'logger'" in r.stderr and "unknown logger plugin 'journal'" in r.stderr
    assert "file, socket, stdio, syslog" in r.stderr
    r = run_command(["--req-logger", f"file:{tmp_path}/missing/req.log"])
    assert r.returncode != 0
    assert r.stderr.strip().splitlines()[-1].endswith(
        f"req-logger file:{tmp_path}/missing/req.log: cannot open {tmp_path}/missing/req.log: "
        "No such file or directory")


def test_file_loggers_reopen_on_fifo_l_and_on_reload(start_server, tmp_path):
    """logrotate's way: move the file, then ``echo l > FIFO`` (or a reload with log-reopen)."""
    reqs, fifo = tmp_path / "req.log", tmp_path / "fifo"
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "1",
                           "--req-logger", f"file:{reqs}", "--log-reopen",
                           "--master-fifo", str(fifo)])
    requests.get(server.url + "/hello?one", timeout=10)
    wait_for(lambda: "GET /hello?one" in _text(reqs), 20, "the first line")
    moved = tmp_path / "req.log.1"
    reqs.rename(moved)
    with open(fifo, "w") as f:
        f.write("l")
    wait_for(lambda: reqs.exists(), 20, "a new req.log")
    requests.get(server.url + "/hello?two", timeout=10)
    wait_for(lambda: "GET /hello?two" in _text(reqs), 20, "the line in the new file")
    assert "hello?two" not in _text(moved)
    reqs.rename(moved)
    _reload(server)  # log-reopen: the reload reopens them too
    requests.get(server.url + "/hello?three", timeout=10)
    wait_for(lambda: "GET /hello?three" in _text(reqs), 20, "the line after the reload")
