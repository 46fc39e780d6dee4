"""Hardening of the request parsers and the response path (issue #5), end to end.

Every case runs against a real ``runuwsgi`` subprocess with raw bytes over loopback sockets
and checks four things: the status we answer, whether the connection is closed or kept,
what the application saw (``/environ``, or the signal log: a smuggled or refused request
must never show up as ``started /...``), and that the worker still serves a fresh client.

The servers are module-scoped (one start each, not one per case); every case uses its own
paths, so the shared signal log and error log stay unambiguous.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
import requests

from django_uwsgi_server.server.uwsgi_protocol import build_packet
from tests.rawhttp import RawClient, Response, get
from tests.server import Server, stop_all, wait_for

HOST = "127.0.0.1"
BUFFER_SIZE = 16384
SOCKET_TIMEOUT = 2


# -- servers -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def module_server(tmp_path_factory):
    """Factory like ``start_server``, but the servers live for the whole module."""
    started: list[Server] = []

    def start(args: list[str]) -> Server:
        server = Server(tmp_path_factory.mktemp("hardening"), list(args), wait=False)
        started.append(server)
        server.wait_ready()
        return server

    yield start
    stop_all(started)


@pytest.fixture(scope="module")
def django(module_server):
    """The Django test project on an http socket and a uwsgi socket, one worker."""
    return module_server(["--http-socket", f"{HOST}:0", "--socket", f"{HOST}:0",
                          "--processes", "1", "--socket-timeout", str(SOCKET_TIMEOUT),
                          "--buffer-size", str(BUFFER_SIZE), "--limit-post", "1k"])


@pytest.fixture(scope="module")
def raw(module_server):
    """tests/testproject/rawapp.py, for responses Django would never produce."""
    return module_server(["--http-socket", f"{HOST}:0", "--processes", "1",
                          "--socket-timeout", str(SOCKET_TIMEOUT), "--module", "rawapp:app"])


# -- helpers -------------------------------------------------------------------------------

def exchange(server: Server, data: bytes, timeout: float = 6.0) -> tuple[Response, bool]:
    """Send ``data`` on a fresh connection: (the first response, whether the server closed)."""
    with RawClient(HOST, server.port, timeout=timeout) as c:
        c.send(data)
        response = c.read_response()
        return response, c.is_closed(timeout)


def assert_refused(server: Server, data: bytes, statuses: tuple[int, ...] = (400,)) -> Response:
    """A request we must refuse: an error status of ours, then the connection closes."""
    r, closed = exchange(server, data)
    assert r.status in statuses, r.raw_head
    assert r.raw_head.startswith(b"HTTP/1.1 "), "our protocol token, not the client's"
    assert r.headers.get("connection") == "close"
    assert closed, "the connection must close after a framing error"
    return r


def assert_serves(server: Server) -> None:
    """The (single) worker still answers a fresh client, promptly."""
    began = time.monotonic()
    r = requests.get(server.url + "/hello", timeout=5)
    assert (r.status_code, r.text) == (200, "hello world")
    assert time.monotonic() - began < 2.0


def assert_raw_serves(server: Server) -> None:
    r = requests.get(server.url + "/post", timeout=5)
    assert (r.status_code, r.content) == (200, b"raw:")


def assert_never_started(server: Server, *paths: str) -> None:
    lines = server.signal_lines()
    for path in paths:
        assert f"started {path}" not in lines, f"the app was called for {path}"


def smuggled(name: str) -> bytes:
    return get(f"/smuggled-{name}", host="a")


def environ_of(server: Server, data: bytes) -> dict:
    """Send a request for /environ on a keep-alive connection and check it stays usable."""
    with RawClient(HOST, server.port) as c:
        c.send(data)
        r = c.read_response()
        assert r.status == 200, r.raw_head + r.body[:300]
        c.send(get("/hello"))
        assert c.read_response().body == b"hello world", "the connection was kept"
        return json.loads(r.body)


def log_count(server: Server, text: str) -> int:
    return server.stderr().count(text)


# -- request line --------------------------------------------------------------------------

@pytest.mark.parametrize("line", [
    b"G(ET /x-badmethod1 HTTP/1.1",
    b"GE\x01T /x-badmethod2 HTTP/1.1",
    b"G\xc3\xa9T /x-badmethod3 HTTP/1.1",
    b"GET  /x-badmethod4 HTTP/1.1",
    b" GET /x-badmethod5 HTTP/1.1",
], ids=["paren", "ctl", "non-ascii", "double-space", "leading-space"])
def test_bad_method_token_is_400(django, line):
    assert_refused(django, line + b"\r\nHost: a\r\n\r\n")
    assert_never_started(django, *(f"/x-badmethod{i}" for i in range(1, 6)))
    assert_serves(django)


def test_absolute_form_target_overrides_host(django):
    env = environ_of(django, b"GET http://other.example/environ?q=1 HTTP/1.1\r\n"
                             b"Host: a\r\n\r\n")
    assert env["HTTP_HOST"] == "other.example"
    assert env["PATH_INFO"] == "/environ"
    assert env["QUERY_STRING"] == "q=1"


def test_options_asterisk_is_served(raw):
    with RawClient(HOST, raw.port) as c:
        c.send(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n")
        r = c.read_response()
        assert (r.status, r.body) == (200, b"raw:")
        c.send(get("/post"))
        assert c.read_response().body == b"raw:", "the connection was kept"
    wait_for(lambda: "closed *" in raw.signal_lines(), 5, "the app called with PATH_INFO *")


def test_connect_is_not_implemented(django):
    assert_refused(django, b"CONNECT other.example:443 HTTP/1.1\r\nHost: other.example:443\r\n"
                           b"\r\n" + smuggled("connect"), statuses=(501, 405))
    assert_never_started(django, "/smuggled-connect")
    assert_serves(django)


@pytest.mark.parametrize("version,status", [
    (b"HTTP/2.0", 505), (b"HTTP/1.2", 505), (b"HTTP/3.0", 505),
    (b"HTTP/1.1x", 400), (b"HTTX/1.1", 400), (b"http/1.1", 400), (b"HTTP/1", 400),
    (b"HTTP/01.1", 400), (b"HTTP/1.1\x00", 400),
])
def test_http_version(django, version, status):
    r = assert_refused(django, b"GET /x-version HTTP/1.1\r\n".replace(b"HTTP/1.1", version)
                       + b"Host: a\r\n\r\n", statuses=(status,))
    assert not r.raw_head.startswith(version + b" ")
    assert_never_started(django, "/x-version")
    assert_serves(django)


def test_status_line_never_echoes_the_client_version(django):
    with RawClient(HOST, django.port) as c:
        c.send(b"GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        r = c.read_response()
        assert r.raw_head.startswith(b"HTTP/1.1 200 OK\r\n")


# -- header fields -------------------------------------------------------------------------

BAD_FIELDS = {
    "space-before-colon": b"X-A : b",
    "tab-before-colon": b"X-A\t: b",
    "ctl-in-name": b"X-\x01A: b",
    "del-in-name": b"X-\x7fA: b",
    "non-ascii-name": b"X-\xc3\xa9: b",
    "empty-name": b": b",
    "no-colon": b"X-A b",
    "nul-in-value": b"X-A: a\x00b",
    "cr-in-value": b"X-A: a\rb",
    "lf-in-value": b"X-A: a\nX-B: b",
    "obs-fold": b"X-A: a\r\n b",
    "obs-fold-tab": b"X-A: a\r\n\tb",
    "leading-ws-first-line": b" X-A: b",
}


@pytest.mark.parametrize("field", BAD_FIELDS.values(), ids=list(BAD_FIELDS))
def test_bad_header_field_is_400(django, field):
    assert_refused(django, b"GET /x-badfield HTTP/1.1\r\nHost: a\r\n" + field + b"\r\n\r\n"
                   + smuggled("badfield"))
    assert_never_started(django, "/x-badfield", "/smuggled-badfield")
    assert_serves(django)


def test_header_whitespace_is_trimmed(django):
    env = environ_of(django, b"GET /environ HTTP/1.1\r\nHost:   a  \r\n"
                             b"X-Trim: \t  value  inner \t \r\nX-Empty: \t \r\n\r\n")
    assert env["HTTP_X_TRIM"] == "value  inner"
    assert env["HTTP_HOST"] == "a"
    assert env["HTTP_X_EMPTY"] == ""


@pytest.mark.parametrize("headers", [
    b"",
    b"Host: a\r\nHost: a\r\n",
    b"Host: a\r\nhost: b\r\n",
    b"Host: a b\r\n",
    b"Host: a/b\r\n",
    b"Host: user@a\r\n",
    b"Host: \r\n",
    b"Host: a:80:80 x\r\n",
], ids=["missing", "twice-same", "twice-different", "space", "slash", "userinfo", "empty",
        "junk"])
def test_bad_or_missing_host_is_400(django, headers):
    assert_refused(django, b"GET /x-host HTTP/1.1\r\n" + headers + b"\r\n")
    assert_never_started(django, "/x-host")
    assert_serves(django)


@pytest.mark.parametrize("order", ["spoof-first", "spoof-last"])
def test_underscore_header_cannot_spoof_its_dash_twin(django, order):
    spoof, good = b"X_Forwarded_For: evil\r\n", b"X-Forwarded-For: good\r\n"
    fields = spoof + good if order == "spoof-first" else good + spoof
    env = environ_of(django, b"GET /environ HTTP/1.1\r\nHost: a\r\n" + fields + b"\r\n")
    assert env["HTTP_X_FORWARDED_FOR"] == "good"
    assert not any("evil" in str(v) for v in env.values())


# -- framing and smuggling ----------------------------------------------------------------

POST = b"POST /x-framing HTTP/1.1\r\nHost: a\r\n"
FRAMING = {
    "te-cl": (b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", b"0\r\n\r\n", (400,)),
    "cl-te": (b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n", (400,)),
    "two-cl": (b"Content-Length: 5\r\nContent-Length: 6\r\n", b"hello!", (400,)),
    "cl-list": (b"Content-Length: 5, 6\r\n", b"hello!", (400,)),
    "cl-minus": (b"Content-Length: -1\r\n", b"", (400,)),
    "cl-plus": (b"Content-Length: +5\r\n", b"hello", (400,)),
    "cl-hex": (b"Content-Length: 0x5\r\n", b"hello", (400,)),
    "cl-suffix": (b"Content-Length: 5x\r\n", b"hello", (400,)),
    "cl-space": (b"Content-Length: 1 2\r\n", b"hello", (400,)),
    "cl-huge": (b"Content-Length: 1" + b"0" * 30 + b"\r\n", b"hello", (400, 413)),
    "te-gzip": (b"Transfer-Encoding: gzip\r\n", b"hello", (501, 400)),
    "te-chunked-gzip": (b"Transfer-Encoding: chunked, gzip\r\n", b"0\r\n\r\n", (400,)),
    "te-chunked-twice": (b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                         b"0\r\n\r\n", (400,)),
    "te-identity": (b"Transfer-Encoding: identity\r\n", b"", (400, 501)),
}


@pytest.mark.parametrize("headers,body,statuses", FRAMING.values(), ids=list(FRAMING))
def test_ambiguous_framing_is_refused(django, headers, body, statuses):
    assert_refused(django, POST + headers + b"\r\n" + body + smuggled("framing"), statuses)
    assert_never_started(django, "/x-framing", "/smuggled-framing")
    assert_serves(django)


def test_transfer_encoding_in_http10_is_400(django):
    assert_refused(django, b"POST /x-te10 HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"0\r\n\r\n" + smuggled("te10"))
    assert_never_started(django, "/x-te10", "/smuggled-te10")
    assert_serves(django)


BAD_CHUNKS = {
    "non-hex-size": (b"zz\r\nhello\r\n0\r\n\r\n", 400),
    "negative-size": (b"-5\r\nhello\r\n0\r\n\r\n", 400),
    "overflow-size": (b"ffffffffffffffffff\r\nhello\r\n0\r\n\r\n", 400),
    "size-0x": (b"0x5\r\nhello\r\n0\r\n\r\n", 400),
    "no-crlf-after-data": (b"5\r\nhelloXX0\r\n\r\n", 400),
    "too-much-data": (b"3\r\nhello\r\n0\r\n\r\n", 400),
    "space-before-size": (b" 5\r\nhello\r\n0\r\n\r\n", 400),
    "bare-lf-after-size": (b"5\nhello\r\n0\r\n\r\n", 400),
    "bare-lf-after-data": (b"5\r\nhello\n0\r\n\r\n", 400),
    "bare-lf-last-chunk": (b"5\r\nhello\r\n0\n\r\n", 400),
    "bad-extension": (b"5;a b\r\nhello\r\n0\r\n\r\n", 400),
    "ext-oversize": (b"5;" + b"a=b;" * 1500 + b"a\r\nhello\r\n0\r\n\r\n", 400),
    "bad-trailer": (b"5\r\nhello\r\n0\r\nbad trailer\r\n\r\n", 400),
    "trailer-oversize": (b"5\r\nhello\r\n0\r\nX-T: " + b"t" * 9000 + b"\r\n\r\n", 431),
}


@pytest.mark.parametrize("body,status", BAD_CHUNKS.values(), ids=list(BAD_CHUNKS))
def test_bad_chunked_framing_is_refused(django, body, status):
    began = time.monotonic()
    r = assert_refused(django, b"POST /x-chunk HTTP/1.1\r\nHost: a\r\n"
                               b"Transfer-Encoding: chunked\r\n\r\n" + body + smuggled("chunk"),
                       statuses=(status,))
    assert time.monotonic() - began < SOCKET_TIMEOUT, "answered at once, not on a timeout"
    assert r.status != 500
    assert_never_started(django, "/x-chunk", "/smuggled-chunk")
    assert_serves(django)


def test_valid_chunked_body_then_pipelined_request_stays_in_sync(django):
    """The control case for the refusals above: the same shapes, correctly framed."""
    with RawClient(HOST, django.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;a=b\r\nhello\r\n0\r\nX-T: t\r\n\r\n" + get("/hello"))
        assert c.read_response().body == b"hello"
        assert c.read_response().body == b"hello world"


# -- limits --------------------------------------------------------------------------------

def test_request_line_over_buffer_size_is_414(django):
    before = log_count(django, "--buffer-size")
    assert_refused(django, b"GET /x-long" + b"a" * (BUFFER_SIZE + 100) + b" HTTP/1.1\r\n"
                           b"Host: a\r\n\r\n", statuses=(414,))
    wait_for(lambda: log_count(django, "--buffer-size") > before, 5,
             "a log line naming buffer-size")
    assert_serves(django)


def test_headers_over_buffer_size_are_431(django):
    before = log_count(django, "--buffer-size")
    assert_refused(django, b"GET /x-bighead HTTP/1.1\r\nHost: a\r\nX-Big: "
                           + b"b" * (BUFFER_SIZE + 100) + b"\r\n\r\n", statuses=(431,))
    wait_for(lambda: log_count(django, "--buffer-size") > before, 5,
             "a log line naming buffer-size")
    assert_never_started(django, "/x-bighead")
    assert_serves(django)


def test_too_many_header_fields_are_431(django):
    # 1500 tiny fields fit in buffer-size (about 13 kB): the count, not the size, is the limit.
    fields = b"".join(b"h%d:v\r\n" % i for i in range(1500))
    assert len(fields) < BUFFER_SIZE - 100
    assert_refused(django, b"GET /x-manyfields HTTP/1.1\r\nHost: a\r\n" + fields + b"\r\n",
                   statuses=(431,))
    assert_never_started(django, "/x-manyfields")
    assert_serves(django)


def test_limit_post_content_length_is_413_before_the_app(django):
    with RawClient(HOST, django.port) as c:
        # The head alone: the answer must not wait for the body.
        c.send(b"POST /x-limit-cl HTTP/1.1\r\nHost: a\r\nContent-Length: 2000\r\n\r\n")
        r = c.read_response()
        assert r.status == 413
        assert c.is_closed()
    assert_never_started(django, "/x-limit-cl")
    assert_serves(django)


def test_limit_post_chunked_is_413_when_it_grows_past(django):
    chunk = b"200\r\n" + b"c" * 0x200 + b"\r\n"
    assert_refused(django, b"POST /x-limit-chunked HTTP/1.1\r\nHost: a\r\n"
                           b"Transfer-Encoding: chunked\r\n\r\n" + chunk * 3 + b"0\r\n\r\n",
                   statuses=(413,))
    assert_never_started(django, "/x-limit-chunked")
    assert_serves(django)


# -- slow clients --------------------------------------------------------------------------

class Drip:
    """A client sending ``data`` one byte every ``interval`` seconds, from a thread."""

    def __init__(self, port: int, data: bytes, interval: float = 0.5, prefix: bytes = b"") -> None:
        self.client = RawClient(HOST, port, timeout=8)
        if prefix:  # sent at once, before the drip
            self.client.send(prefix)
        self.data = data
        self.interval = interval
        self.stop = threading.Event()
        self.first_byte = time.monotonic()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for i in range(len(self.data)):
            if self.stop.is_set():
                return
            try:
                self.client.sock.send(self.data[i : i + 1])
            except OSError:
                return
            self.stop.wait(self.interval)

    def outcome(self) -> int | None:
        """The status the server answered with, or None when it just closed."""
        try:
            return self.client.read_response().status
        except (EOFError, ConnectionResetError):
            return None

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.client.close()


def test_slow_head_gets_408_within_socket_timeout(django):
    drip = Drip(django.port, b"GET /x-slowhead HTTP/1.1\r\nHost: a\r\n\r\n")
    try:
        for _ in range(3):  # served meanwhile, again and again
            assert_serves(django)
            drip.stop.wait(0.5)
        status = drip.outcome()
        elapsed = time.monotonic() - drip.first_byte
        assert status in (408, None)
        assert SOCKET_TIMEOUT - 0.5 < elapsed < SOCKET_TIMEOUT + 1.0, elapsed
    finally:
        drip.close()
    assert_never_started(django, "/x-slowhead")
    assert_serves(django)


def test_slowloris_as_many_as_workers_does_not_starve_others(start_server):
    server = start_server(["--http-socket", f"{HOST}:0", "--processes", "2",
                           "--socket-timeout", "10"])
    drips = [Drip(server.port, b"GET /x-loris HTTP/1.1\r\nHost: a\r\nX-Pad: " + b"p" * 50)
             for _ in range(4)]
    try:
        for _ in range(3):
            drips[0].stop.wait(0.5)
            assert_serves(server)
    finally:
        for drip in drips:
            drip.close()
    assert_never_started(server, "/x-loris")


STALLED = {
    # Django's request.body turns the timeout into UnreadablePostError and a 500 page: the
    # server must answer 408 instead (fixed in e3fbba4).
    "django-content-length": ("django", b"POST /echo HTTP/1.1\r\nHost: a\r\n"
                                        b"Content-Length: 100\r\n\r\n" + b"0123456789"),
    "django-chunked": ("django", b"POST /echo HTTP/1.1\r\nHost: a\r\n"
                                 b"Transfer-Encoding: chunked\r\n\r\n64\r\n0123456789"),
    "wsgi-content-length": ("raw", b"POST /x-stalled HTTP/1.1\r\nHost: a\r\n"
                                   b"Content-Length: 100\r\n\r\n" + b"0123456789"),
}


@pytest.mark.parametrize("which,data", STALLED.values(), ids=list(STALLED))
def test_stalled_body_is_408_or_closed_never_500(request, which, data):
    server = request.getfixturevalue(which)
    began = time.monotonic()
    with RawClient(HOST, server.port, timeout=8) as c:
        c.send(data)
        try:
            status = c.read_response().status
        except (EOFError, ConnectionResetError):
            status = None
        assert status in (408, None), f"got {status} for a body that never arrived"
        assert c.is_closed(3)
    assert time.monotonic() - began < SOCKET_TIMEOUT + 3
    if which == "django":
        assert_serves(server)
    else:
        assert_raw_serves(server)


def test_body_trickling_below_body_min_rate_gets_408(start_server):
    # One byte every 0.5 s never trips socket-timeout (2 s), but averages 2 bytes/s.
    server = start_server(["--http-socket", f"{HOST}:0", "--processes", "1",
                           "--socket-timeout", "2", "--body-min-rate", "100"])
    drip = Drip(server.port, b"x" * 400,
                prefix=b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 400\r\n\r\n")
    try:
        status = drip.outcome()
        elapsed = time.monotonic() - drip.first_byte
        assert status == 408
        assert elapsed < 2 + 3, elapsed  # the grace (socket-timeout) plus a few bytes' worth
    finally:
        drip.close()
    assert "body-min-rate" in server.stderr()
    assert_serves(server)


def test_body_at_body_min_rate_is_served(start_server):
    server = start_server(["--http-socket", f"{HOST}:0", "--processes", "1",
                           "--socket-timeout", "2", "--body-min-rate", "1000"])
    body = bytes(range(256)) * 12  # 3 KB in 300-byte pieces 0.1 s apart: 3000 bytes/s
    with RawClient(HOST, server.port, timeout=8) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(body))
        for i in range(0, len(body), 300):
            c.send(body[i:i + 300])
            time.sleep(0.1)  # the pace of the upload itself, not a wait for the server
        r = c.read_response()
    assert (r.status, r.body) == (200, body)


def test_post_buffering_reads_the_body_before_the_app(start_server):
    server = start_server(["--http-socket", f"{HOST}:0", "--processes", "1",
                           "--socket-timeout", "2", "--post-buffering", "4096",
                           "--module", "rawapp:app"])
    body = b"0123456789abcdef" * 4096  # 64 KB: past the memory part, into a temp file
    r = requests.post(server.url + "/pb", data=body, timeout=10)
    assert (r.status_code, r.content) == (200, b"raw:" + body)
    # A body that stops arriving is a 408 before the app is ever called.
    with RawClient(HOST, server.port, timeout=8) as c:
        c.send(b"POST /pb-stalled HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc")
        assert c.read_response().status == 408
        assert c.is_closed(3)
    assert "closed /pb-stalled" not in server.signal_lines()
    assert "closed /pb" in server.signal_lines()
    assert_raw_serves(server)


# -- responses (rawapp) --------------------------------------------------------------------

def read_until_closed(server: Server, data: bytes) -> bytes:
    with RawClient(HOST, server.port) as c:
        c.send(data)
        c.sock.settimeout(5)
        return c.read_all()


@pytest.mark.parametrize("path,logged", [
    ("/bad-header-crlf", "'X-Bad'"),
    ("/bad-header-lf", "'X-Bad'"),
    ("/bad-status", "invalid status line"),
])
def test_app_header_injection_is_500(raw, path, logged):
    wire = read_until_closed(raw, get(path) + get("/post"))
    assert wire.startswith(b"HTTP/1.1 500 "), wire[:200]
    for leak in (b"evil", b"X-Injected", b"Set-Cookie", b"never sent"):
        assert leak not in wire
    head, _, body = wire.partition(b"\r\n\r\n")
    assert b"connection: close" in head.lower()
    wait_for(lambda: logged in raw.stderr() and f"GET {path}" in raw.stderr(), 5,
             "a log line naming the culprit")
    assert_raw_serves(raw)


def test_hop_by_hop_headers_from_the_app_are_dropped_and_logged_once(start_server):
    server = start_server(["--http-socket", f"{HOST}:0", "--processes", "1",
                           "--module", "rawapp:app"])
    with RawClient(HOST, server.port) as c:
        for _ in range(2):
            c.send(get("/hop-many"))
            r = c.read_response()
            assert (r.status, r.body) == (200, b"ok")
            assert r.headers["content-length"] == "2"
            for name in ("keep-alive", "upgrade", "transfer-encoding", "connection"):
                assert name not in r.headers, r.raw_head
        c.send(get("/post"))
        assert c.read_response().body == b"raw:", "kept alive: the app's close was dropped"
    err = server.stderr()
    for name in ("Connection", "Keep-Alive", "Transfer-Encoding", "Upgrade"):
        assert err.count(f"hop-by-hop header {name!r}") == 1, err[-2000:]


def test_body_shorter_than_content_length_closes(raw):
    with RawClient(HOST, raw.port) as c:
        c.send(get("/short") + get("/post"))
        head = c.read_until(b"\r\n\r\n")
        assert b"Content-Length: 10" in head
        c.sock.settimeout(5)
        assert c.read_all() == b"abc", "the body ends with the close, not with /post's answer"
    assert_raw_serves(raw)


def test_body_longer_than_content_length_is_cut(raw):
    with RawClient(HOST, raw.port) as c:
        c.send(get("/long") + get("/post"))
        r = c.read_response()
        assert r.body == b"abc"
        c.sock.settimeout(5)
        rest = c.read_all()
        assert b"def" not in rest, "bytes past Content-Length reached the wire"
    assert_raw_serves(raw)


@pytest.mark.parametrize("method,path,status", [
    ("HEAD", "/stream-body", 200),
    ("HEAD", "/head-cl", 200),
    ("HEAD", "/not-modified", 304),
    ("GET", "/no-content-stream", 204),
    ("GET", "/no-content", 204),
    ("GET", "/not-modified", 304),
    ("GET", "/not-modified-whole", 304),
])
def test_bodiless_responses_carry_no_body(raw, method, path, status):
    with RawClient(HOST, raw.port) as c:
        c.send(f"{method} {path} HTTP/1.1\r\nHost: a\r\n\r\n".encode() + get("/post"))
        r = c.read_response(head_request=True)
        assert r.status == status
        assert "transfer-encoding" not in r.headers
        follow = c.read_response()
        assert (follow.status, follow.body) == (200, b"raw:"), "the stream is out of sync"


def test_204_never_carries_content_length(raw):
    with RawClient(HOST, raw.port) as c:
        c.send(get("/no-content-cl") + get("/post"))
        r = c.read_response()
        assert r.status == 204
        assert c.read_response().body == b"raw:"
        assert "content-length" not in r.headers, r.raw_head


def test_exc_info_before_any_byte_replaces_status_and_headers(raw):
    with RawClient(HOST, raw.port) as c:
        c.send(get("/exc-info-cl") + get("/post"))
        r = c.read_response()
        assert r.status == 503
        assert r.body == b"error page"
        assert r.headers.get("content-length") != "999", "the first call's length leaked"
        assert r.headers["content-type"] == "text/plain"
        for name in ("x-first", "set-cookie"):
            assert name not in r.headers
        assert c.read_response().body == b"raw:", "in sync"


# -- the uwsgi protocol --------------------------------------------------------------------

def _vars(path: str) -> list[tuple[str, str]]:
    return [("REQUEST_METHOD", "GET"), ("PATH_INFO", path), ("REQUEST_URI", path),
            ("SERVER_PROTOCOL", "HTTP/1.1"), ("HTTP_HOST", "a")]


def _with_block(block: bytes, modifier1: int = 0) -> bytes:
    return bytes([modifier1]) + len(block).to_bytes(2, "little") + b"\0" + block


_GOOD_BLOCK = build_packet(_vars("/uw-past"))[4:]
UWSGI_BAD = {
    "datasize-over-buffer-size": (b"\x00" + (BUFFER_SIZE + 1).to_bytes(2, "little") + b"\x00"
                                  + _GOOD_BLOCK, "exceeds buffer-size"),
    "truncated-key-length": (_with_block(build_packet(_vars("/uw-trunc"))[4:] + b"\x05"),
                             "truncated"),
    "key-past-end": (_with_block(build_packet(_vars("/uw-key"))[4:] + b"\x30\x00ABC"),
                     "truncated"),
    "value-past-end": (_with_block(build_packet(_vars("/uw-value"))[4:]
                                   + b"\x03\x00KEY\xf4\x01abc"), "runs past"),
    "zero-length-block": (b"\x00\x00\x00\x00", "empty uwsgi vars block"),
    "empty-key": (_with_block(build_packet(_vars("/uw-emptykey"))[4:] + b"\x00\x00\x01\x00v"),
                  "empty key"),
    "modifier1-5": (build_packet(_vars("/uw-mod5"), modifier1=5), "modifier1 5"),
    "modifier2": (build_packet(_vars("/uw-mod2"), modifier2=7), "modifier2 7"),
    "http-spoken": (b"GET /uw-http HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP spoken"),
    "bad-content-length": (build_packet(_vars("/uw-cl") + [("CONTENT_LENGTH", "5x")]),
                           "invalid CONTENT_LENGTH"),
}


def uwsgi_exchange(server: Server, packet: bytes, half_close: bool = False) -> bytes:
    with socket.create_connection(server.uwsgi_address, timeout=6) as s:
        s.sendall(packet)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            try:
                data = s.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)


@pytest.mark.parametrize("packet,logged", UWSGI_BAD.values(), ids=list(UWSGI_BAD))
def test_bad_uwsgi_packets_never_reach_the_app(django, packet, logged):
    before = log_count(django, logged)
    wire = uwsgi_exchange(django, packet)  # returns at EOF: the server ended the connection
    if wire:
        status = int(wire.split(b" ", 2)[1])
        assert 400 <= status < 600 and status != 500, wire[:200]
    wait_for(lambda: log_count(django, logged) > before, 5, f"a log line saying {logged!r}")
    assert_never_started(django, "/uw-past", "/uw-trunc", "/uw-key", "/uw-value",
                         "/uw-emptykey", "/uw-mod5", "/uw-mod2", "/uw-http", "/uw-cl")
    assert_serves(django)


def test_uwsgi_packet_cut_short_then_closed(django):
    packet = build_packet(_vars("/uw-cut"))
    wire = uwsgi_exchange(django, packet[: len(packet) // 2], half_close=True)
    assert b" 200 " not in wire[:20]
    assert_never_started(django, "/uw-cut")
    assert_serves(django)


def test_uwsgi_packet_cut_short_is_logged(django):
    before = len(django.stderr())
    packet = build_packet(_vars("/uw-cut-logged"))
    uwsgi_exchange(django, packet[: len(packet) // 2], half_close=True)
    assert_serves(django)  # the worker has moved on: anything it logs is already written
    new = [line for line in django.stderr()[before:].splitlines()
           if line and not line.startswith("[pid:")]  # request lines (/hello) do not count
    assert new, "no log line for a truncated uwsgi packet"


def test_uwsgi_still_serves_a_good_packet(django):
    wire = uwsgi_exchange(django, build_packet(_vars("/hello")))
    assert wire.startswith(b"HTTP/1.1 200 OK\r\n")
    assert wire.endswith(b"hello world")


def test_uwsgi_server_protocol_cannot_split_the_response(django):
    """The status line starts with the packet's SERVER_PROTOCOL: CR/LF in it must not let the
    peer write response headers of its own (fixed in uwsgi_protocol.py)."""
    wire = uwsgi_exchange(django, build_packet(
        [("REQUEST_METHOD", "GET"), ("PATH_INFO", "/hello"), ("HTTP_HOST", "a"),
         ("SERVER_PROTOCOL", "HTTP/1.1 200 OK\r\nX-Injected: 1\r\nX")]))
    head, _, body = wire.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200 OK\r\n"), head
    assert b"X-Injected" not in head
    assert body == b"hello world"
