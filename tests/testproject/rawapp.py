"""Plain WSGI apps for paths Django never takes (it catches view exceptions itself).

Each app logs its close() calls to TEST_SIGNAL_LOG, like the Django project logs
request_finished, so the tests can count them.
"""
from testapp.apps import _record  # the same log file as Django's request signals


class Body:
    def __init__(self, path, chunks, fail_at=None):
        self.path = path
        self.chunks = chunks
        self.fail_at = fail_at

    def __iter__(self):
        for i, chunk in enumerate(self.chunks):
            if i == self.fail_at:
                raise RuntimeError("boom while iterating")
            yield chunk

    def close(self):
        _record(f"closed {self.path}")


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/raise-before":
        raise RuntimeError("boom before start_response")
    if path == "/raise-iter-first":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Body(path, [b"a", b"b"], fail_at=0)
    if path == "/raise-iter-later":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Body(path, [b"a" * 10, b"b", b"c"], fail_at=1)
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written ")
        return Body(path, [b"and iterated"])
    if path == "/exc-info":
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-First", "1")])
        try:
            raise ValueError("replaced")
        except ValueError:
            import sys
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")],
                           sys.exc_info())
        return Body(path, [b"error page"])
    if path == "/short":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "10")])
        return Body(path, [b"abc"])
    if path == "/long":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
        return Body(path, [b"abcdef"])
    if path == "/str-chunk":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Body(path, ["not bytes"])
    if path == "/hop":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Connection", "close"),
                                  ("Content-Length", "2")])
        return Body(path, [b"ok"])
    if path == "/no-content":
        start_response("204 No Content", [])
        return Body(path, [b"ignored body"])
    if path == "/empty-cl":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return Body(path, [])
    if path == "/own-date":
        start_response("200 OK", [("Date", "Thu, 01 Jan 2026 00:00:00 GMT"),
                                  ("Server", "mine"), ("Content-Length", "2")])
        return Body(path, [b"ok"])
    if path == "/head-cl":
        start_response("200 OK", [("Content-Length", "1000")])
        return Body(path, [b"" if environ["REQUEST_METHOD"] == "HEAD" else b"x" * 1000])
    # -- hardening (tests/e2e/test_hardening.py) --------------------------------------
    if path == "/bad-header-crlf":
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("X-Bad", "a\r\nX-Injected: evil")])
        return Body(path, [b"never sent"])
    if path == "/bad-header-lf":
        start_response("200 OK", [("X-Bad", "a\nSet-Cookie: evil=1")])
        return Body(path, [b"never sent"])
    if path == "/bad-status":
        start_response("200 OK\r\nX-Injected: evil", [("Content-Type", "text/plain")])
        return Body(path, [b"never sent"])
    if path == "/hop-many":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Connection", "close"),
                                  ("Keep-Alive", "timeout=99"), ("Transfer-Encoding", "chunked"),
                                  ("Upgrade", "websocket"), ("Content-Length", "2")])
        return Body(path, [b"ok"])
    if path == "/stream-body":
        # No Content-Length, several chunks, whatever the method: HEAD must drop them all.
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Body(path, [b"first ", b"second ", b"third"])
    if path == "/no-content-stream":
        start_response("204 No Content", [("X-Kind", "stream")])
        return Body(path, [b"body ", b"that must ", b"not be sent"])
    if path == "/not-modified":
        start_response("304 Not Modified", [("ETag", '"v1"')])
        return Body(path, [b"stale ", b"body"])
    if path == "/not-modified-whole":
        start_response("304 Not Modified", [("ETag", '"v1"')])
        return [b"stale body"]
    if path == "/no-content-cl":
        start_response("204 No Content", [("Content-Length", "5")])
        return Body(path, [b"hello"])
    if path == "/exc-info-cl":
        start_response("200 OK", [("Content-Type", "application/json"), ("X-First", "1"),
                                  ("Content-Length", "999"), ("Set-Cookie", "first=1")])
        try:
            raise ValueError("replaced")
        except ValueError:
            import sys
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")],
                           sys.exc_info())
        return Body(path, [b"error page"])
    if path == "/generator":
        def gen():
            start_response("200 OK", [("Content-Type", "text/plain")])
            yield b"from "
            yield b""
            yield b"a generator"
        return gen()
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return Body(path, [b"raw:", body])
