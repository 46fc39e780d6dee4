"""close() on the response iterable exactly once on every path, so Django's request_finished
fires once per request (the warning on Django's "How to use Django with uWSGI" page)."""

import socket
import time

import pytest
import requests

from tests.rawhttp import RawClient, get
from tests.server import wait_for


def finished(server, path):
    return server.signal_lines().count(f"finished {path}")


def started(server, path):
    return server.signal_lines().count(f"started {path}")


@pytest.fixture
def django_server(start_server):
    return start_server(["--http-socket", "127.0.0.1:0", "--processes", "1"])


@pytest.fixture
def raw_server(start_server):
    return start_server(["--http-socket", "127.0.0.1:0", "--processes", "1",
                         "--module", "rawapp:app", "--threads", "2"])


def test_request_finished_once_per_request_on_every_django_path(django_server):
    s = django_server
    requests.get(s.url + "/hello")
    requests.head(s.url + "/hello")
    requests.get(s.url + "/stream?n=3")
    requests.get(s.url + "/file?size=100000")
    requests.get(s.url + "/file?size=1000&seek=10")
    requests.post(s.url + "/echo", data=b"x" * 100000)
    assert requests.get(s.url + "/error").status_code == 500
    with RawClient("127.0.0.1", s.port) as c:  # keep-alive and pipelining
        c.send(get("/hello") * 3)
        for _ in range(3):
            c.read_response()
    expected = {"/hello": 5, "/stream": 1, "/file": 2, "/echo": 1, "/error": 1}
    for path, count in expected.items():
        wait_for(lambda p=path, n=count: finished(s, p) == n, 5,
                 f"{count} request_finished for {path} (got {finished(s, path)})")
        assert started(s, path) == count
    time.sleep(0.3)
    for path, count in expected.items():
        assert finished(s, path) == count, "request_finished fired more than once"


def test_request_finished_when_client_leaves_mid_stream(django_server):
    s = django_server
    with RawClient("127.0.0.1", s.port) as c:
        c.send(get("/stream?n=50&delay=0.1"))
        c.read_until(b"chunk 0\n")
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
    # The worker notices on a later write, stops iterating and still calls close().
    wait_for(lambda: finished(s, "/stream") == 1, 10, "request_finished after the abort")
    assert requests.get(s.url + "/hello").text == "hello world"


def test_request_finished_when_client_leaves_during_sendfile(django_server):
    s = django_server
    with RawClient("127.0.0.1", s.port) as c:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.send(get("/file?size=20000000"))
        c.read_until(b"\r\n\r\n")
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
    wait_for(lambda: finished(s, "/file") == 1, 10, "request_finished after the abort")
    assert requests.get(s.url + "/hello").text == "hello world"


@pytest.mark.parametrize("path,status,body", [
    ("/raise-before", 500, b"A server error occurred."),
    ("/raise-iter-first", 500, b"A server error occurred."),
    ("/exc-info", 500, b"error page"),
    ("/str-chunk", 500, b"A server error occurred."),
    ("/write", 200, b"written and iterated"),
    ("/generator", 200, b"from a generator"),
    ("/hop", 200, b"ok"),
    ("/post", 200, b"raw:"),
])
def test_raw_wsgi_paths(raw_server, path, status, body):
    r = requests.get(raw_server.url + path)
    assert r.status_code == status
    assert r.content.startswith(body)
    if path == "/exc-info":
        assert "X-First" not in r.headers, "headers of the first start_response leaked"
    if path == "/hop":
        assert r.headers.get("Connection") != "close"
    closes = 0 if path in ("/raise-before", "/generator") else 1
    if closes:
        wait_for(lambda: raw_server.signal_lines().count(f"closed {path}") == 1, 5,
                 f"close() for {path}")
    # The worker keeps serving after every failure.
    assert requests.get(raw_server.url + "/post").status_code == 200
    extra = 1 if path == "/post" else 0
    wait_for(lambda: raw_server.signal_lines().count("closed /post") == 1 + extra, 5,
             "close() of the follow-up request")
    assert raw_server.signal_lines().count(f"closed {path}") == closes + extra


def test_exception_after_bytes_sent_closes_the_connection(raw_server):
    with RawClient("127.0.0.1", raw_server.port) as c:
        c.send(get("/raise-iter-later"))
        head = c.read_until(b"\r\n\r\n")
        assert b"200 OK" in head
        c.sock.settimeout(5)
        rest = c.read_all()
        assert not rest.endswith(b"0\r\n\r\n"), "a cut response must not look complete"
    wait_for(lambda: raw_server.signal_lines().count("closed /raise-iter-later") == 1, 5,
             "close() after the failure")
    wait_for(lambda: "boom while iterating" in raw_server.stderr(), 5, "the traceback logged")


def test_content_length_mismatch(raw_server):
    with RawClient("127.0.0.1", raw_server.port) as c:
        c.send(get("/long"))
        r = c.read_response()
        assert r.body == b"abc", "bytes past Content-Length are cut"
        assert c.is_closed(), "and the connection is not reused"
    with RawClient("127.0.0.1", raw_server.port) as c:
        c.send(get("/short"))
        c.read_until(b"\r\n\r\n")
        c.sock.settimeout(5)
        assert c.read_all() == b"abc", "a short body ends with the connection closed"
    wait_for(lambda: "less than its Content-Length" in raw_server.stderr(), 5, "a log line")


def test_204_never_has_a_body(raw_server):
    with RawClient("127.0.0.1", raw_server.port) as c:
        c.send(get("/no-content") + get("/post"))
        r = c.read_response()
        assert r.status == 204
        assert "content-length" not in r.headers
        assert c.read_response().body == b"raw:"


def test_traceback_logged_with_request_line(raw_server):
    requests.get(raw_server.url + "/raise-before?x=1")
    wait_for(lambda: "GET /raise-before?x=1" in raw_server.stderr(), 5, "the request line")
    err = raw_server.stderr()
    assert "RuntimeError: boom before start_response" in err
    assert err.count("RuntimeError: boom before start_response") == 1


def test_empty_body_with_app_content_length_closes(raw_server):
    with RawClient("127.0.0.1", raw_server.port) as c:
        c.send(get("/empty-cl"))
        head = c.read_until(b"\r\n\r\n")
        assert b"Content-Length: 5" in head and b"Connection: close" in head
        assert c.is_closed()
    wait_for(lambda: "less than its Content-Length" in raw_server.stderr(), 5, "a log line")


def test_app_date_and_server_win(raw_server):
    r = requests.get(raw_server.url + "/own-date")
    assert r.headers["Date"] == "Thu, 01 Jan 2026 00:00:00 GMT"
    assert r.headers["Server"] == "mine"
    with RawClient("127.0.0.1", raw_server.port) as c:
        c.send(get("/own-date"))
        assert c.read_response().raw_head.count(b"Date:") == 1


def test_head_with_get_content_length_is_not_an_error(raw_server):
    with RawClient("127.0.0.1", raw_server.port) as c:
        c.send(b"HEAD /head-cl HTTP/1.1\r\nHost: x\r\n\r\n" + get("/post"))
        r = c.read_response(head_request=True)
        assert r.headers["content-length"] == "1000"
        assert "connection" not in r.headers
        assert c.read_response().body == b"raw:"
    assert "less than" not in raw_server.stderr()
