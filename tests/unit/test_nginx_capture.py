"""What a real nginx sends with uwsgi_pass, and what parse_packet makes of it.

A raw socket listener stands in for our server: it records each packet nginx sends and
answers a fixed HTTP response. Observed with Debian nginx 1.22.1 and its stock uwsgi_params
(`GET /p?x=1`, requests' default headers), in order:

    QUERY_STRING "x=1", REQUEST_METHOD "GET", CONTENT_TYPE "", CONTENT_LENGTH "",
    REQUEST_URI "/p?x=1", PATH_INFO "/p", DOCUMENT_ROOT "<prefix>/html",
    SERVER_PROTOCOL "HTTP/1.1", REQUEST_SCHEME "http", REMOTE_ADDR "127.0.0.1",
    REMOTE_PORT "<port>", SERVER_PORT "<port>", SERVER_NAME "localhost",
    HTTP_HOST "127.0.0.1"   <- Debian's params say `HTTP_HOST $host`: the client's port is
                               dropped and the client's own Host header is not sent again
    HTTP_USER_AGENT, HTTP_ACCEPT_ENCODING, HTTP_ACCEPT, HTTP_CONNECTION

* HTTPS is absent on plain http (`if_not_empty`); CONTENT_LENGTH/CONTENT_TYPE are sent empty.
* A repeated client header (`X-Foo: a`, `X-Foo: b`, or two `Cookie:` lines) arrives as
  repeated vars, one per line, in order: nginx 1.22 does not join them (>= 1.23 does).
* `include uwsgi_params; uwsgi_param HTTP_HOST $http_host;` sends HTTP_HOST twice.
* A chunked request body is de-chunked and sent with CONTENT_LENGTH set; the client's
  `Transfer-Encoding: chunked` still arrives as HTTP_TRANSFER_ENCODING.
* modifier1 is 0 unless `uwsgi_modifier1` says otherwise; a header with `_` never arrives.
"""

from __future__ import annotations

import queue
import re
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from django_uwsgi_server.server.request import ProtocolError, Request
from django_uwsgi_server.server.uwsgi_protocol import parse_packet
from tests.nginx import STOCK_UWSGI_PARAMS, Nginx, nginx_version

# Registers the fixture here too, so this file runs whether or not tests/conftest.py
# re-exports it; the fixture's explicit name keeps the alias out of the way.
from tests.nginx import nginx_factory as _nginx_factory  # noqa: F401

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
TIMEOUT = 5.0
# Debian/Ubuntu add `uwsgi_param HTTP_HOST $host;` to their packaged file (assumed to be
# `$host`, the only value they ship); upstream's file has no HTTP_HOST line.
STOCK_HOST_PARAM = STOCK_UWSGI_PARAMS.is_file() and bool(
    re.search(r"^\s*uwsgi_param\s+HTTP_HOST\s", STOCK_UWSGI_PARAMS.read_text(), re.MULTILINE)
)
STOCK_KEYS = {
    "QUERY_STRING",
    "REQUEST_METHOD",
    "CONTENT_TYPE",
    "REQUEST_URI",
    "PATH_INFO",
    "DOCUMENT_ROOT",
    "SERVER_PROTOCOL",
    "REQUEST_SCHEME",
    "REMOTE_ADDR",
    "REMOTE_PORT",
    "SERVER_PORT",
    "SERVER_NAME",
}


class Capture:
    """A one-connection-at-a-time uwsgi listener that keeps every packet nginx sends."""

    def __init__(self, family: int = socket.AF_INET, path: str = "") -> None:
        self.listener = socket.socket(family, socket.SOCK_STREAM)
        if family == socket.AF_UNIX:
            self.listener.bind(path)
            self.upstream = f"unix:{path}"
        else:
            self.listener.bind(("127.0.0.1", 0))
            self.upstream = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.listener.listen(16)
        # short, so the thread notices `stopping` promptly
        self.listener.settimeout(0.1)
        self.packets: queue.Queue[bytes] = queue.Queue()
        self.errors: list[BaseException] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, name="uwsgi-capture", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                try:
                    self._handle(conn)
                except Exception as error:  # surfaced by next_packet / teardown
                    self.errors.append(error)

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(TIMEOUT)
        buf = bytearray()
        while True:
            result = parse_packet(buf, 65535)
            if result is not None:
                request, consumed = result
                if len(buf) >= consumed + (request.content_length or 0):
                    break
            data = conn.recv(65536)
            if not data:
                raise ConnectionError(f"nginx closed after {len(buf)} bytes")
            buf += data
        self.packets.put(bytes(buf))
        conn.sendall(RESPONSE)

    def next_packet(self) -> bytes:
        try:
            return self.packets.get(timeout=TIMEOUT)
        except queue.Empty:
            raise AssertionError(f"no packet from nginx; listener errors: {self.errors}") from None

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(TIMEOUT)
        self.listener.close()
        assert not self.thread.is_alive()


def raw_vars(packet: bytes) -> list[tuple[str, str]]:
    """The vars exactly as on the wire (order and repeats kept), decoded independently."""
    datasize = int.from_bytes(packet[1:3], "little")
    pos, end, out = 4, 4 + datasize, []
    while pos < end:
        klen = int.from_bytes(packet[pos : pos + 2], "little")
        key = packet[pos + 2 : pos + 2 + klen]
        pos += 2 + klen
        vlen = int.from_bytes(packet[pos : pos + 2], "little")
        value = packet[pos + 2 : pos + 2 + vlen]
        pos += 2 + vlen
        out.append((key.decode("latin-1"), value.decode("latin-1")))
    return out


def parsed(packet: bytes, limit: int = 65535) -> tuple[Request, bytes]:
    result = parse_packet(packet, limit)
    assert result is not None
    request, consumed = result
    return request, packet[consumed:]


@pytest.fixture
def capture() -> Iterator[Capture]:
    server = Capture()
    yield server
    server.close()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment: loopback only
    yield session
    session.close()


@pytest.fixture
def proxy(capture: Capture, nginx_factory: Callable[..., Nginx]) -> Nginx:
    return nginx_factory(capture.upstream)


def raw_request(nginx: Nginx, head: bytes) -> bytes:
    """Send a hand-written request (repeated headers) and read the reply to EOF."""
    with socket.create_connection(("127.0.0.1", nginx.port), timeout=TIMEOUT) as sock:
        sock.sendall(head)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return reply


def test_get_with_query(capture: Capture, proxy: Nginx, http: requests.Session) -> None:
    response = http.get(proxy.url + "/p%20q/caf%C3%A9?x=1&y=%2F", timeout=TIMEOUT)
    assert (response.status_code, response.text) == (200, "ok")
    packet = capture.next_packet()
    assert packet[0] == 0 and packet[3] == 0
    wire = dict(raw_vars(packet))
    assert wire["CONTENT_LENGTH"] == "" and wire["CONTENT_TYPE"] == ""
    assert "HTTPS" not in wire

    request, rest = parsed(packet)
    environ = request.environ
    assert rest == b""
    assert STOCK_KEYS <= environ.keys()
    assert request.method == "GET"
    assert request.version == environ["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert request.content_length is None and "CONTENT_LENGTH" not in environ
    assert request.url_scheme == "http"
    # $document_uri: percent-decoded; PEP 3333 wants the UTF-8 bytes as latin-1 characters
    assert environ["PATH_INFO"] == "/p q/caf\xc3\xa9"
    assert environ["REQUEST_URI"] == "/p%20q/caf%C3%A9?x=1&y=%2F"
    assert environ["QUERY_STRING"] == "x=1&y=%2F"
    assert environ["SCRIPT_NAME"] == ""
    assert environ["SERVER_NAME"] == "localhost"
    assert environ["SERVER_PORT"] == str(proxy.port)
    assert environ["REMOTE_ADDR"] == "127.0.0.1"
    if STOCK_HOST_PARAM:
        # Debian's stock params: $host, without the client's port
        assert environ["HTTP_HOST"] == "127.0.0.1"
    else:
        assert environ["HTTP_HOST"] == f"127.0.0.1:{proxy.port}"
    assert [key for key, _ in raw_vars(packet)].count("HTTP_HOST") == 1


def test_post_body(capture: Capture, proxy: Nginx, http: requests.Session) -> None:
    response = http.post(
        proxy.url + "/form",
        data=b"hello world",
        headers={"Content-Type": "text/plain; charset=utf-8"},
        timeout=TIMEOUT,
    )
    assert response.text == "ok"
    packet = capture.next_packet()
    wire = dict(raw_vars(packet))
    assert wire["CONTENT_LENGTH"] == wire["HTTP_CONTENT_LENGTH"] == "11"
    assert wire["HTTP_CONTENT_TYPE"] == "text/plain; charset=utf-8"
    request, body = parsed(packet)
    assert request.method == "POST"
    assert request.content_length == 11
    assert body == b"hello world"
    assert request.environ["CONTENT_TYPE"] == "text/plain; charset=utf-8"
    assert "HTTP_CONTENT_LENGTH" not in request.environ
    assert "HTTP_CONTENT_TYPE" not in request.environ


def test_chunked_post_arrives_dechunked(
    capture: Capture, proxy: Nginx, http: requests.Session
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"first,"
        yield b"second," * 1000
        yield b"last"

    response = http.post(proxy.url + "/upload", data=chunks(), timeout=TIMEOUT)
    assert response.text == "ok"
    packet = capture.next_packet()
    request, body = parsed(packet)
    expected = b"first," + b"second," * 1000 + b"last"
    assert request.content_length == len(expected)
    assert request.environ["CONTENT_LENGTH"] == str(len(expected))
    assert body == expected
    assert request.chunked is False
    # the client's framing header is passed on even though the body is no longer chunked
    assert request.environ.get("HTTP_TRANSFER_ENCODING") == "chunked"


def test_repeated_headers_are_joined(capture: Capture, proxy: Nginx) -> None:
    reply = raw_request(
        proxy,
        b"GET /r HTTP/1.1\r\nHost: localhost\r\nX-Foo: a\r\nX-Other: z\r\nX-Foo: b\r\n"
        b"Cookie: a=1\r\nCookie: b=2; c=3\r\nConnection: close\r\n\r\n",
    )
    assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"\r\n\r\nok")
    packet = capture.next_packet()
    wire = raw_vars(packet)
    foo = [value for key, value in wire if key == "HTTP_X_FOO"]
    cookies = [value for key, value in wire if key == "HTTP_COOKIE"]
    if nginx_version() < (1, 23, 0):
        # nginx <= 1.22: one var per header line
        assert foo == ["a", "b"]
        assert cookies == ["a=1", "b=2; c=3"]
    else:
        assert foo == ["a, b"]
        assert cookies == ["a=1; b=2; c=3"]
    request, _ = parsed(packet)
    assert request.environ["HTTP_X_FOO"] == "a, b"
    assert request.environ["HTTP_COOKIE"] == "a=1; b=2; c=3"
    assert request.environ["HTTP_X_OTHER"] == "z"


def test_requests_cookie_header(capture: Capture, proxy: Nginx, http: requests.Session) -> None:
    http.get(proxy.url + "/", cookies={"sessionid": "abc", "csrftoken": "x y"}, timeout=TIMEOUT)
    request, _ = parsed(capture.next_packet())
    cookies = sorted(request.environ["HTTP_COOKIE"].split("; "))
    assert cookies[0] == "csrftoken=x y" or cookies[0].startswith("csrftoken=")
    assert cookies[1] == "sessionid=abc"


def test_header_with_underscore_is_dropped(
    capture: Capture, proxy: Nginx, http: requests.Session
) -> None:
    http.get(proxy.url + "/", headers={"X_Spoof": "1", "X-Real": "2"}, timeout=TIMEOUT)
    request, _ = parsed(capture.next_packet())
    assert "HTTP_X_SPOOF" not in request.environ
    assert request.environ["HTTP_X_REAL"] == "2"


def test_big_header(capture: Capture, proxy: Nginx, http: requests.Session) -> None:
    big = "v" * 6000  # under nginx's default 8k large_client_header_buffers
    http.get(proxy.url + "/", headers={"X-Big": big}, timeout=TIMEOUT)
    packet = capture.next_packet()
    request, _ = parsed(packet)
    assert request.environ["HTTP_X_BIG"] == big
    assert request.head_size == len(packet) - 4
    with pytest.raises(ProtocolError) as info:
        parse_packet(packet, 4096)  # uWSGI's default buffer-size
    assert info.value.status == 431 and info.value.option == "buffer-size"


def test_http_host_param_override_is_sent_twice(
    capture: Capture, nginx_factory: Callable[..., Nginx], http: requests.Session
) -> None:
    nginx = nginx_factory(capture.upstream, "uwsgi_param HTTP_HOST $http_host;")
    http.get(nginx.url + "/", timeout=TIMEOUT)
    packet = capture.next_packet()
    hosts = [value for key, value in raw_vars(packet) if key == "HTTP_HOST"]
    assert hosts == (["127.0.0.1"] if STOCK_HOST_PARAM else []) + [f"127.0.0.1:{nginx.port}"]
    request, _ = parsed(packet)
    # last wins for Host: joining would give Django "127.0.0.1, 127.0.0.1:PORT"
    assert request.environ["HTTP_HOST"] == f"127.0.0.1:{nginx.port}"


def test_modifier30_mount(
    capture: Capture, nginx_factory: Callable[..., Nginx], http: requests.Session
) -> None:
    nginx = nginx_factory(capture.upstream, "uwsgi_param SCRIPT_NAME /app;\nuwsgi_modifier1 30;")
    http.get(nginx.url + "/app/x/y?z=1", timeout=TIMEOUT)
    packet = capture.next_packet()
    assert packet[0] == 30
    request, _ = parsed(packet)
    assert request.environ["SCRIPT_NAME"] == "/app"
    assert request.environ["PATH_INFO"] == "/x/y"
    assert request.environ["QUERY_STRING"] == "z=1"


def test_https_param(
    capture: Capture, nginx_factory: Callable[..., Nginx], http: requests.Session
) -> None:
    # as a TLS-terminating nginx would send it (stock params: `HTTPS $https if_not_empty`)
    nginx = nginx_factory(capture.upstream, "uwsgi_param HTTPS on;")
    http.get(nginx.url + "/", headers={"X-Forwarded-Proto": "gopher"}, timeout=TIMEOUT)
    request, _ = parsed(capture.next_packet())
    assert request.url_scheme == "https"
    assert request.environ["HTTP_X_FORWARDED_PROTO"] == "gopher"


def test_unix_socket_upstream(
    tmp_path: Path,
    nginx_factory: Callable[..., Nginx],
    http: requests.Session,
) -> None:
    path = tmp_path / "uwsgi.sock"
    if len(str(path)) > 100:
        pytest.skip("tmp_path too long for a unix socket address")
    server = Capture(socket.AF_UNIX, str(path))
    try:
        nginx = nginx_factory(server.upstream)
        assert http.post(nginx.url + "/u", data=b"x", timeout=TIMEOUT).text == "ok"
        request, body = parsed(server.next_packet())
        assert request.environ["PATH_INFO"] == "/u" and body == b"x"
        assert request.environ["REMOTE_ADDR"] == "127.0.0.1"
    finally:
        server.close()


def test_nginx_stops_cleanly(capture: Capture, nginx_factory: Callable[..., Nginx]) -> None:
    nginx = nginx_factory(capture.upstream)
    process = nginx.process
    assert process is not None
    nginx.stop()
    assert process.returncode is not None
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", nginx.port), timeout=1).close()
    nginx.stop()  # idempotent
