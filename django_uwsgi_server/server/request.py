"""What a protocol parser hands to the worker: a parsed request head, or a ProtocolError.

Both parsers (``http`` and ``uwsgi_protocol``) are sans-I/O: they take bytes and return a
``Request`` (plus how many bytes the head used), ``None`` when more bytes are needed, or raise
``ProtocolError`` carrying the HTTP status the server should answer with (like h11's
``error_status_hint``).
"""

from __future__ import annotations


class ProtocolError(Exception):
    """The peer sent something we will not serve.

    ``status`` is the HTTP status to answer with (400, 408, 413, 414, 431, 501, 505);
    ``close`` is always true for framing errors: after one, the byte stream cannot be trusted.
    ``option`` names the server option whose limit was hit (for the log line), if any.
    """

    def __init__(self, status: int, message: str, option: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.option = option


class Request:
    """One request head, already shaped as the CGI part of a WSGI environ.

    ``environ`` holds only str -> str CGI keys (REQUEST_METHOD, PATH_INFO, QUERY_STRING,
    SERVER_PROTOCOL, REQUEST_URI, CONTENT_TYPE, CONTENT_LENGTH, HTTP_*...), latin-1 decoded.
    The worker adds the wsgi.* keys and the socket-derived ones (REMOTE_ADDR, SERVER_NAME...)
    when the parser did not provide them.
    """

    __slots__ = (
        "environ",
        "method",
        "version",
        "content_length",
        "chunked",
        "keep_alive",
        "expect_continue",
        "url_scheme",
        "head_size",
    )

    def __init__(
        self,
        environ: dict[str, str],
        method: str,
        version: str,
        content_length: int | None = None,
        chunked: bool = False,
        keep_alive: bool = False,
        expect_continue: bool = False,
        url_scheme: str = "http",
        head_size: int = 0,
    ) -> None:
        self.environ = environ
        self.method = method
        # "HTTP/1.1", "HTTP/1.0"; for a uwsgi packet the SERVER_PROTOCOL var (or "HTTP/1.0").
        self.version = version
        # None: no body framing header at all (a body of 0 bytes).
        self.content_length = content_length
        self.chunked = chunked
        self.keep_alive = keep_alive
        self.expect_continue = expect_continue
        self.url_scheme = url_scheme
        # Bytes of the head (request line + headers, or the uwsgi vars block); for the log.
        self.head_size = head_size

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.environ.get('REQUEST_URI', '')!r} {self.version}>"
