"""HTTP/1.1 over --http-socket: keep-alive, pipelining, chunked both ways, 100-continue, HEAD,
big bodies, file_wrapper, streaming — against the real server with real clients."""

import hashlib
import os
import time

import pytest
import requests

from tests.rawhttp import RawClient, get
from tests.server import wait_for


@pytest.fixture
def server(start_server):
    return start_server(["--http-socket", "127.0.0.1:0", "--processes", "2"])


def test_keepalive_reuses_the_connection(server):
    with RawClient("127.0.0.1", server.port) as c:
        pids = set()
        for _ in range(5):
            c.send(get("/pid"))
            r = c.read_response()
            assert r.status == 200
            assert "connection" not in r.headers
            pids.add(r.body)
        assert len(pids) == 1, "one connection is served by one worker"


def test_date_and_server_headers(server):
    r = requests.get(server.url + "/hello")
    assert r.headers["Server"] == "django-uwsgi-server"
    assert r.headers["Date"].endswith("GMT")
    assert r.headers["Content-Length"] == "11"


def test_pipelined_requests_answered_in_order(server):
    with RawClient("127.0.0.1", server.port) as c:
        c.send(get("/hello") + b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
               + get("/stream?n=2") + get("/hello", extra="Connection: close\r\n"))
        assert c.read_response().body == b"hello world"
        assert c.read_response().body == b"abc"
        assert c.read_response().body == b"chunk 0\nchunk 1\n"
        last = c.read_response()
        assert last.body == b"hello world"
        assert last.headers["connection"] == "close"
        assert c.is_closed()


def test_connection_close_is_honoured(server):
    with RawClient("127.0.0.1", server.port) as c:
        c.send(get("/hello", extra="Connection: close\r\n"))
        r = c.read_response()
        assert r.headers["connection"] == "close"
        assert c.is_closed()


def test_http10_closes_unless_keepalive_asked(server):
    with RawClient("127.0.0.1", server.port) as c:
        c.send(b"GET /hello HTTP/1.0\r\n\r\n")
        r = c.read_response()
        assert r.body == b"hello world"
        assert c.is_closed()
    with RawClient("127.0.0.1", server.port) as c:
        for _ in range(2):
            c.send(b"GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            r = c.read_response()
            assert r.headers["connection"] == "keep-alive"
    with RawClient("127.0.0.1", server.port) as c:
        # No Content-Length from the app and an HTTP/1.0 client: the close ends the body.
        c.send(b"GET /stream?n=3 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        r = c.read_response()
        assert r.body == b"chunk 0\nchunk 1\nchunk 2\n"
        assert "transfer-encoding" not in r.headers


def test_chunked_request_body_is_dechunked(server):
    def body():
        yield b"hello "
        yield b"chunked "
        yield b"world"

    r = requests.post(server.url + "/echo", data=body())
    assert r.status_code == 200
    assert r.content == b"hello chunked world"
    with RawClient("127.0.0.1", server.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;ext=1\r\nhello\r\n1\r\n \r\n0\r\nX-Trailer: yes\r\n\r\n" + get("/hello"))
        assert c.read_response().body == b"hello "
        assert c.read_response().body == b"hello world"


def test_chunked_response_when_no_content_length(server):
    with RawClient("127.0.0.1", server.port) as c:
        c.send(get("/stream?n=3"))
        r = c.read_response()
        assert r.headers["transfer-encoding"] == "chunked"
        assert r.body == b"chunk 0\nchunk 1\nchunk 2\n"
        c.send(get("/hello"))
        assert c.read_response().body == b"hello world"


def test_expect_100_continue(server):
    with RawClient("127.0.0.1", server.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
               b"Expect: 100-continue\r\n\r\n")
        interim = c.read_response()
        assert interim.status == 100
        c.send(b"12345")
        r = c.read_response()
        assert (r.status, r.body) == (200, b"12345")


def test_expect_100_continue_not_sent_when_app_ignores_body(server):
    with RawClient("127.0.0.1", server.port) as c:
        c.send(b"POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
               b"Expect: 100-continue\r\n\r\n")
        r = c.read_response()
        assert (r.status, r.body) == (200, b"hello world")
        # The body was never asked for, so the connection cannot be reused safely.
        assert r.headers["connection"] == "close"


def test_head_has_headers_but_no_body(server):
    with RawClient("127.0.0.1", server.port) as c:
        c.send(b"HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response(head_request=True)
        assert r.status == 200
        assert r.headers["content-length"] == "11"
        c.send(b"HEAD /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response(head_request=True)
        assert "transfer-encoding" not in r.headers
        c.send(get("/hello"))
        assert c.read_response().body == b"hello world", "no stray body bytes before"


def test_big_upload(server):
    data = os.urandom(8 << 20)
    r = requests.post(server.url + "/upload", data=data)
    assert r.json() == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def test_big_download(server):
    r = requests.get(server.url + "/big?size=5000000")
    assert len(r.content) == 5000000
    assert r.headers["Content-Length"] == "5000000"


def test_file_wrapper_uses_sendfile_from_current_position(server):
    r = requests.get(server.url + "/file?size=3000000")
    assert len(r.content) == 3000000
    expected = (bytes(range(256)) * 4096)[:3000000] if 3000000 <= 1 << 20 else None
    assert r.content[:1024] == bytes(range(256)) * 4
    r = requests.get(server.url + "/file?size=1000&seek=300")
    assert r.headers["Content-Length"] == "700"
    assert r.content == (bytes(range(256)) * 4)[300:1000]
    del expected
    wait_for(lambda: "via sendfile()" in server.stderr(), 5, "a sendfile log line")


def test_streaming_arrives_incrementally(server):
    with requests.get(server.url + "/stream?n=3&delay=0.5", stream=True) as r:
        start = time.monotonic()
        first = next(r.iter_content(chunk_size=None))
        assert first == b"chunk 0\n"
        assert time.monotonic() - start < 1.0, "the first chunk was held back"


def test_threads_serve_concurrently(start_server):
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "1",
                           "--threads", "4"])
    import concurrent.futures

    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: requests.get(server.url + "/sleep?s=1").text,
                                range(4)))
    assert results == ["slept"] * 4
    assert time.monotonic() - start < 3.0
    r = requests.get(server.url + "/environ").json()
    assert r["wsgi.multithread"] is True
    assert r["wsgi.multiprocess"] is False


def test_idle_keepalive_connections_do_not_block_others(start_server):
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "1"])
    idle = [RawClient("127.0.0.1", server.port) for _ in range(8)]
    try:
        for c in idle:
            c.send(get("/hello"))
            c.read_response()
        # Eight idle keep-alive clients and one worker: a new client is still served.
        r = requests.get(server.url + "/hello", timeout=5)
        assert r.text == "hello world"
        for c in idle:
            c.send(get("/hello"))
            assert c.read_response().body == b"hello world"
    finally:
        for c in idle:
            c.close()


def test_environ(server):
    r = requests.post(server.url + "/environ?a=1&b=%20", data=b"body",
                      headers={"X-Custom": "v", "Cookie": "a=1"})
    env = r.json()
    assert env["REQUEST_METHOD"] == "POST"
    assert env["PATH_INFO"] == "/environ"
    assert env["QUERY_STRING"] == "a=1&b=%20"
    assert env["SCRIPT_NAME"] == ""
    assert env["SERVER_PORT"] == str(server.port)
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["REMOTE_PORT"].isdigit()
    assert env["CONTENT_LENGTH"] == "4"
    assert env["HTTP_X_CUSTOM"] == "v"
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.version"] == [1, 0]
    assert env["wsgi.multiprocess"] is True
    assert env["wsgi.run_once"] is False
    assert env["wsgi.input.read"] == "body"
    assert "HTTP_CONTENT_LENGTH" not in env


def test_buffer_size_overflow_is_431_and_logged(start_server):
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "1",
                           "--buffer-size", "2048"])
    r = requests.get(server.url + "/hello", headers={"X-Big": "a" * 4000})
    assert r.status_code == 431
    wait_for(lambda: "buffer-size" in server.stderr(), 5, "a log line naming buffer-size")
    assert requests.get(server.url + "/hello").status_code == 200


def test_long_pipeline_is_answered_completely(server):
    with RawClient("127.0.0.1", server.port) as c:
        c.send(get("/hello") * 40)
        for _ in range(40):
            assert c.read_response().body == b"hello world"


def test_partial_heads_do_not_hold_the_worker(start_server):
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "1",
                           "--socket-timeout", "2"])
    slow = [RawClient("127.0.0.1", server.port) for _ in range(4)]
    try:
        for c in slow:
            c.send(b"GET /hello HTTP/1.1\r\nHost: x\r\n")  # and never the end of the head
        start = time.monotonic()
        assert requests.get(server.url + "/hello", timeout=5).text == "hello world"
        assert time.monotonic() - start < 1.0
        # The head has socket-timeout in all: then a 408 and the connection closes.
        r = slow[0].read_response()
        assert r.status == 408
        assert slow[0].is_closed()
        assert time.monotonic() - start < 5.0
    finally:
        for c in slow:
            c.close()


def test_slow_head_completes_within_deadline(server):
    with RawClient("127.0.0.1", server.port) as c:
        for piece in (b"GET /hel", b"lo HTTP/1.1\r\n", b"Host: x\r\n", b"\r\n"):
            c.send(piece)
            time.sleep(0.1)
        assert c.read_response().body == b"hello world"


def test_limit_post_answers_413_before_the_app(start_server):
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "1",
                           "--limit-post", "1k"])
    r = requests.post(server.url + "/upload", data=b"x" * 500000)
    assert r.status_code == 413
    assert not any(ln == "started /upload" for ln in server.signal_lines())

    def chunks():
        for _ in range(10):
            yield b"y" * 500
    r = requests.post(server.url + "/upload", data=chunks())
    assert r.status_code == 413
    assert requests.post(server.url + "/upload", data=b"z" * 1000).json()["size"] == 1000


def test_stalled_body_is_408_not_500(start_server):
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "1",
                           "--socket-timeout", "1"])
    with RawClient("127.0.0.1", server.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
        r = c.read_response()
        assert r.status == 408
        assert c.is_closed()
    assert requests.get(server.url + "/hello").text == "hello world"


def test_unix_socket_default_mode_is_0660(start_server, tmp_path):
    import stat

    path = tmp_path / "app.sock"
    start_server(["--socket", str(path), "--http-socket", "127.0.0.1:0", "--processes", "1"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o660
