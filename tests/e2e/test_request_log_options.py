"""uWSGI's request-log options (log-4xx, log-5xx, log-slow, log-micros, memory-report),
del-header and reuse-port, against the real server."""

import re
import socket

import requests

from tests.server import wait_for

LINE = re.compile(r"\[pid: \d+\|app: 0\|req: \d+/\d+\] .* (GET|HEAD) (\S+) => generated")


def logged_paths(server) -> list[str]:
    # (the test helper's readiness probe asks for /__ready__, a 404)
    return [m.group(2) for m in LINE.finditer(server.stderr()) if m.group(2) != "/__ready__"]


def test_disable_logging_still_logs_4xx_5xx_and_slow_requests(start_server):
    server = start_server(["--http-socket", "127.0.0.1:0", "--disable-logging", "--log-4xx",
                           "--log-5xx", "--log-slow", "300"])
    for path in ("/hello", "/missing-x", "/error", "/sleep?s=0.5", "/sleep?s=0"):
        requests.get(server.url + path, timeout=10)
    # The last request's line is written after its response: wait for the slow one.
    wait_for(lambda: "/sleep?s=0.5" in logged_paths(server), 10, "the slow request's line")
    requests.get(server.url + "/missing-y", timeout=10)
    wait_for(lambda: "/missing-y" in logged_paths(server), 10, "the last 404's line")
    assert logged_paths(server) == ["/missing-x", "/error", "/sleep?s=0.5", "/missing-y"]


def test_without_them_disable_logging_logs_no_request(start_server):
    server = start_server(["--http-socket", "127.0.0.1:0", "--disable-logging"])
    for path in ("/missing-x", "/error"):
        requests.get(server.url + path, timeout=10)
    server.stop()
    assert logged_paths(server) == []


def test_log_micros_and_memory_report(start_server):
    server = start_server(["--http-socket", "127.0.0.1:0", "--log-micros", "--memory-report"])
    requests.get(server.url + "/hello", timeout=10)
    line = wait_for(lambda: [x for x in server.stderr().splitlines() if "GET /hello" in x], 10,
                    "the request line")[0]
    m = re.match(r"\{address space usage: (\d+) bytes/(\d+)MB\} \{rss usage: (\d+) bytes/(\d+)MB\} "
                 r"\[pid: ", line)
    assert m, line
    vsz, vsz_mb, rss, rss_mb = map(int, m.groups())
    assert 10 << 20 < rss < vsz and vsz_mb == vsz >> 20 and rss_mb == rss >> 20
    assert re.search(r"generated 11 bytes in \d+ micros ", line), line


def test_del_header_removes_a_header_from_every_response(start_server):
    server = start_server(["--http-socket", "127.0.0.1:0", "--del-header", "X-Frame-Options",
                           "--del-header", "content-type", "--del-header", "Content-Length",
                           "--add-header", "X-Added: yes"])
    r = requests.get(server.url + "/hello", timeout=10)
    assert r.status_code == 200 and r.text == "hello world"
    assert "Content-Type" not in r.headers
    assert r.headers["X-Added"] == "yes"
    # The framing is never deleted: the client still knows where the body ends.
    assert r.headers["Content-Length"] == "11"


def test_reuse_port_lets_another_socket_bind_the_same_port(start_server):
    server = start_server(["--http-socket", "127.0.0.1:0", "--reuse-port"])
    other = socket.socket()
    try:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", server.port))  # EADDRINUSE without SO_REUSEPORT on ours
    finally:
        other.close()
    assert requests.get(server.url + "/hello", timeout=10).text == "hello world"


def test_without_reuse_port_the_port_is_exclusive(start_server):
    server = start_server(["--http-socket", "127.0.0.1:0"])
    other = socket.socket()
    try:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            other.bind(("127.0.0.1", server.port))
            bound = True
        except OSError:
            bound = False
    finally:
        other.close()
    assert not bound
