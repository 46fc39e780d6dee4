"""The uwsgi protocol on --socket: raw packets, and the real nginx uwsgi_pass in front."""

import hashlib
import os
import socket

import pytest
import requests

from django_uwsgi_server.server.uwsgi_protocol import build_packet
from tests.server import wait_for

NGINX_VARS = [
    ("QUERY_STRING", "a=1"), ("REQUEST_METHOD", "GET"), ("CONTENT_TYPE", ""),
    ("CONTENT_LENGTH", ""), ("REQUEST_URI", "/environ?a=1"), ("PATH_INFO", "/environ"),
    ("DOCUMENT_ROOT", "/usr/share/nginx/html"), ("SERVER_PROTOCOL", "HTTP/1.1"),
    ("REQUEST_SCHEME", "http"), ("REMOTE_ADDR", "10.1.2.3"), ("REMOTE_PORT", "5555"),
    ("SERVER_PORT", "80"), ("SERVER_NAME", "example.com"), ("HTTP_HOST", "example.com"),
    ("HTTP_X_FOO", "a"), ("HTTP_X_FOO", "b"),
]


def uwsgi_request(address, packet: bytes) -> bytes:
    with socket.create_connection(address, timeout=10) as s:
        s.sendall(packet)
        chunks = []
        while True:
            data = s.recv(65536)
            if not data:
                return b"".join(chunks)
            chunks.append(data)


@pytest.fixture
def server(start_server):
    return start_server(["--socket", "127.0.0.1:0", "--http-socket", "127.0.0.1:0",
                         "--processes", "2"])


def test_raw_packet_environ(server):
    raw = uwsgi_request(server.uwsgi_address, build_packet(NGINX_VARS))
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Date:" not in head and b"Server:" not in head
    env = requests.models.complexjson.loads(body)
    assert env["REMOTE_ADDR"] == "10.1.2.3"
    assert env["SERVER_NAME"] == "example.com"
    assert env["SERVER_PORT"] == "80"
    assert env["HTTP_X_FOO"] == "a, b", "Debian nginx 1.22 repeats a header as separate vars"
    assert "CONTENT_LENGTH" not in env
    assert env["wsgi.url_scheme"] == "http"


def test_raw_packet_with_body_and_https(server):
    body = os.urandom(200000)
    packet = build_packet([("REQUEST_METHOD", "POST"), ("PATH_INFO", "/upload"),
                           ("REQUEST_URI", "/upload"), ("SERVER_PROTOCOL", "HTTP/1.0"),
                           ("CONTENT_LENGTH", str(len(body))), ("HTTPS", "on"),
                           ("HTTP_HOST", "x")], body)
    raw = uwsgi_request(server.uwsgi_address, packet)
    head, _, payload = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200 OK")
    assert requests.models.complexjson.loads(payload)["sha256"] == hashlib.sha256(body).hexdigest()
    raw = uwsgi_request(server.uwsgi_address, build_packet(
        [("REQUEST_METHOD", "GET"), ("PATH_INFO", "/environ"), ("HTTPS", "on"),
         ("HTTP_HOST", "x"), ("SERVER_NAME", "x"), ("SERVER_PORT", "443")]))
    env = requests.models.complexjson.loads(raw.partition(b"\r\n\r\n")[2])
    assert env["wsgi.url_scheme"] == "https"


def test_bad_packets_close_and_worker_keeps_serving(server):
    for packet in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x00\x00\x00\x00",
                   b"\x07" + build_packet([("REQUEST_METHOD", "GET")])[1:]):
        raw = uwsgi_request(server.uwsgi_address, packet)
        assert not raw.startswith(b"HTTP/1.1 200")
    wait_for(lambda: "HTTP spoken on a uwsgi socket" in server.stderr(), 5, "a log line")
    raw = uwsgi_request(server.uwsgi_address, build_packet(NGINX_VARS))
    assert raw.startswith(b"HTTP/1.1 200 OK")


def test_behind_nginx(server, nginx_factory):
    host, port = server.uwsgi_address
    nginx = nginx_factory(f"{host}:{port}")
    r = requests.get(nginx.url + "/environ?q=%C3%A9", headers={"X-Foo": "1"})
    assert r.status_code == 200
    env = r.json()
    assert env["QUERY_STRING"] == "q=%C3%A9"
    assert env["HTTP_X_FOO"] == "1"
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    data = os.urandom(3 << 20)
    r = requests.post(nginx.url + "/upload", data=data)
    assert r.json()["sha256"] == hashlib.sha256(data).hexdigest()

    def chunks():
        yield b"abc"
        yield b"def"
    assert requests.post(nginx.url + "/echo", data=chunks()).content == b"abcdef"
    r = requests.get(nginx.url + "/file?size=2000000")
    assert len(r.content) == 2000000
    r = requests.get(nginx.url + "/stream?n=3")
    assert r.text == "chunk 0\nchunk 1\nchunk 2\n"
    assert requests.get(nginx.url + "/error").status_code == 500
    assert requests.head(nginx.url + "/hello").headers["Content-Length"] == "11"
    with socket.create_connection(("127.0.0.1", nginx.port), timeout=10) as s:
        s.sendall(b"GET /environ HTTP/1.1\r\nHost: x\r\nX-Foo: a\r\nX-Foo: b\r\n"
                  b"Connection: close\r\n\r\n")
        raw = b""
        while chunk := s.recv(65536):
            raw += chunk
    assert b'"HTTP_X_FOO": "a, b"' in raw
    # nginx may answer its client before our worker has closed the upstream connection.
    wait_for(lambda: sum(line.startswith("finished") for line in server.signal_lines()) == 8,
             5, "request_finished for each of the 8 requests")
    assert sum(line.startswith("started") for line in server.signal_lines()) == 8


def test_raw_app_exception_behind_nginx_is_500_not_502(start_server, nginx_factory):
    server = start_server(["--socket", "127.0.0.1:0", "--processes", "1",
                           "--module", "rawapp:app"])
    host, port = server.uwsgi_address
    nginx = nginx_factory(f"{host}:{port}")
    r = requests.get(nginx.url + "/raise-before")
    assert r.status_code == 500
    assert b"A server error occurred" in r.content


def test_unix_socket_behind_nginx(start_server, nginx_factory, tmp_path):
    path = tmp_path / "app.sock"
    server = start_server(["--socket", str(path), "--chmod-socket", "660",
                           "--http-socket", "127.0.0.1:0", "--processes", "1"])
    assert oct(path.stat().st_mode & 0o777) == "0o660"
    nginx = nginx_factory(f"unix:{path}")
    assert requests.get(nginx.url + "/hello").text == "hello world"
    assert server.pid
