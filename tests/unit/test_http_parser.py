"""The sans-I/O HTTP/1.1 parser: request heads, chunked bodies and our error responses."""

from __future__ import annotations

import random
import time

import pytest

from django_uwsgi_server.server.http import (
    MAX_FIELDS,
    STATUS_REASONS,
    ChunkedDecoder,
    error_response,
    parse_head,
)
from django_uwsgi_server.server.request import ProtocolError, Request

LIMIT = 8192

BROWSER_GET = (
    b"GET /path/to/page?x=1&y=2 HTTP/1.1\r\n"
    b"Host: example.com\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n"
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    b"Accept-Language: en-US,en;q=0.5\r\n"
    b"Accept-Encoding: gzip, deflate, br\r\n"
    b"Connection: keep-alive\r\n"
    b"Cookie: csrftoken=abc; sessionid=xyz\r\n"
    b"Upgrade-Insecure-Requests: 1\r\n"
    b"\r\n"
)


def parse(raw: bytes, limit: int = LIMIT) -> Request:
    result = parse_head(raw, limit)
    assert result is not None, "head unexpectedly incomplete"
    request, consumed = result
    assert consumed == request.head_size
    return request


def status_of(raw: bytes, limit: int = LIMIT) -> int:
    with pytest.raises(ProtocolError) as info:
        parse_head(raw, limit)
    err = info.value
    # Messages go to logs and error pages: short, printable ASCII, no raw client bytes.
    assert err.message.isascii() and err.message.isprintable()
    assert len(err.message) < 250
    return err.status


def get(target: bytes = b"/", *headers: bytes, version: bytes = b"HTTP/1.1",
        method: bytes = b"GET", host: bool = True) -> bytes:
    lines = [method + b" " + target + b" " + version]
    if host:
        lines.append(b"Host: example.com")
    lines.extend(headers)
    return b"\r\n".join(lines) + b"\r\n\r\n"


# -- valid requests ----------------------------------------------------------------------


def test_browser_get() -> None:
    result = parse_head(BROWSER_GET, LIMIT)
    assert result is not None
    req, consumed = result
    assert consumed == len(BROWSER_GET) == req.head_size
    assert req.environ == {
        "REQUEST_METHOD": "GET",
        "REQUEST_URI": "/path/to/page?x=1&y=2",
        "SCRIPT_NAME": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "PATH_INFO": "/path/to/page",
        "QUERY_STRING": "x=1&y=2",
        "HTTP_HOST": "example.com",
        "HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 "
        "Firefox/120.0",
        "HTTP_ACCEPT": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        "HTTP_ACCEPT_LANGUAGE": "en-US,en;q=0.5",
        "HTTP_ACCEPT_ENCODING": "gzip, deflate, br",
        "HTTP_CONNECTION": "keep-alive",
        "HTTP_COOKIE": "csrftoken=abc; sessionid=xyz",
        "HTTP_UPGRADE_INSECURE_REQUESTS": "1",
    }
    assert (req.method, req.version, req.url_scheme) == ("GET", "HTTP/1.1", "http")
    assert req.keep_alive is True
    assert req.chunked is False and req.content_length is None
    assert req.expect_continue is False
    assert all(type(k) is str and type(v) is str for k, v in req.environ.items())


def test_post_with_content_length_leaves_the_body() -> None:
    raw = get(b"/submit", b"Content-Type: application/x-www-form-urlencoded",
              b"Content-Length: 7", method=b"POST")
    result = parse_head(raw + b"a=1&b=2", LIMIT)
    assert result is not None
    req, consumed = result
    assert consumed == len(raw)
    assert req.method == "POST"
    assert req.content_length == 7 and not req.chunked
    assert req.environ["CONTENT_TYPE"] == "application/x-www-form-urlencoded"
    assert req.environ["CONTENT_LENGTH"] == "7"
    assert "HTTP_CONTENT_TYPE" not in req.environ
    assert "HTTP_CONTENT_LENGTH" not in req.environ


def test_no_body_headers_means_no_content_keys() -> None:
    env = parse(get()).environ
    assert "CONTENT_TYPE" not in env and "CONTENT_LENGTH" not in env


@pytest.mark.parametrize("te", [b"chunked", b"Chunked", b"CHUNKED", b" chunked ", b"chunked,",
                                b", chunked"])
def test_chunked(te: bytes) -> None:
    req = parse(get(b"/up", b"Transfer-Encoding:" + te, method=b"PUT"))
    assert req.chunked is True
    assert req.content_length is None


@pytest.mark.parametrize(
    ("raw_cl", "expected"),
    [
        ([b"Content-Length: 0"], 0),
        ([b"Content-Length: 005"], 5),
        ([b"Content-Length: 5, 5"], 5),
        ([b"Content-Length: 5,5"], 5),
        ([b"Content-Length: 5", b"content-length: 5"], 5),
        ([b"Content-Length:  42 \t"], 42),
        ([b"Content-Length: " + b"9" * 18], 10**18 - 1),
    ],
)
def test_content_length_forms(raw_cl: list[bytes], expected: int) -> None:
    req = parse(get(b"/", *raw_cl, method=b"POST"))
    assert req.content_length == expected
    assert req.environ["CONTENT_LENGTH"] == str(expected)


def test_absolute_form_authority_replaces_host() -> None:
    req = parse(get(b"http://Other.Example:8080/a%20b?q=1", b"X-A: 1"))
    env = req.environ
    assert env["HTTP_HOST"] == "Other.Example:8080"
    assert env["PATH_INFO"] == "/a b"
    assert env["QUERY_STRING"] == "q=1"
    assert env["REQUEST_URI"] == "http://Other.Example:8080/a%20b?q=1"
    assert req.url_scheme == "http"


@pytest.mark.parametrize(
    ("target", "path", "query", "host"),
    [
        (b"http://h", "/", "", "h"),
        (b"http://h?x=1", "/", "x=1", "h"),
        (b"HTTPS://h:443/p", "/p", "", "h:443"),
        (b"http://[::1]:8000/", "/", "", "[::1]:8000"),
        (b"http://127.0.0.1/a?", "/a", "", "127.0.0.1"),
    ],
)
def test_absolute_form_variants(target: bytes, path: str, query: str, host: str) -> None:
    req = parse(get(target))
    assert (req.environ["PATH_INFO"], req.environ["QUERY_STRING"]) == (path, query)
    assert req.environ["HTTP_HOST"] == host
    # An https target does not make the connection secure: the scheme stays ours.
    assert req.url_scheme == "http"


def test_absolute_form_supplies_host_to_http10() -> None:
    req = parse(get(b"http://h.test/x", version=b"HTTP/1.0", host=False))
    assert req.environ["HTTP_HOST"] == "h.test"


def test_options_asterisk() -> None:
    req = parse(get(b"*", method=b"OPTIONS"))
    assert req.environ["PATH_INFO"] == "*"
    assert req.environ["REQUEST_URI"] == "*"
    assert req.environ["QUERY_STRING"] == ""


def test_unknown_method_is_parsed() -> None:
    assert parse(get(b"/dav", method=b"PROPFIND")).method == "PROPFIND"


@pytest.mark.parametrize(
    ("version", "headers", "keep_alive"),
    [
        (b"HTTP/1.0", [], False),
        (b"HTTP/1.0", [b"Connection: keep-alive"], True),
        (b"HTTP/1.0", [b"Connection: Keep-Alive"], True),
        (b"HTTP/1.0", [b"Connection: keep-alive, close"], False),
        (b"HTTP/1.1", [], True),
        (b"HTTP/1.1", [b"Connection: close"], False),
        (b"HTTP/1.1", [b"Connection: Upgrade, CLOSE"], False),
        (b"HTTP/1.1", [b"Connection: keep-alive", b"Connection: close"], False),
        (b"HTTP/1.1", [b"Connection: TE"], True),
    ],
)
def test_keep_alive(version: bytes, headers: list[bytes], keep_alive: bool) -> None:
    req = parse(get(b"/", *headers, version=version))
    assert req.keep_alive is keep_alive
    assert req.version == version.decode()
    assert req.environ["SERVER_PROTOCOL"] == version.decode()


def test_http10_without_host() -> None:
    req = parse(get(version=b"HTTP/1.0", host=False))
    assert "HTTP_HOST" not in req.environ
    assert req.keep_alive is False


def test_http10_empty_host_is_allowed() -> None:
    req = parse(b"GET / HTTP/1.0\r\nHost:\r\n\r\n")
    assert req.environ["HTTP_HOST"] == ""


def test_pipelined_requests() -> None:
    first = get(b"/one")
    second = get(b"/two", b"Connection: close")
    buf = bytearray(first + second + b"GET /thr")
    result = parse_head(buf, LIMIT)
    assert result is not None
    req, consumed = result
    assert consumed == len(first) and req.environ["PATH_INFO"] == "/one"
    del buf[:consumed]
    result = parse_head(buf, LIMIT)
    assert result is not None
    req, consumed = result
    assert consumed == len(second) and req.environ["PATH_INFO"] == "/two"
    assert req.keep_alive is False
    del buf[:consumed]
    assert parse_head(buf, LIMIT) is None


def test_repeated_headers_are_joined() -> None:
    env = parse(get(b"/", b"Accept: a/b", b"X-Multi: 1", b"accept: c/d", b"X-MULTI: 2",
                    b"Cookie: a=1", b"cookie: b=2; c=3")).environ
    assert env["HTTP_ACCEPT"] == "a/b, c/d"
    assert env["HTTP_X_MULTI"] == "1, 2"
    assert env["HTTP_COOKIE"] == "a=1; b=2; c=3"


def test_underscore_headers_are_dropped() -> None:
    env = parse(get(b"/", b"X_Forwarded_For: 6.6.6.6", b"X-Forwarded-For: 1.2.3.4",
                    b"Content_Length: 99", b"X_Only: 1")).environ
    assert env["HTTP_X_FORWARDED_FOR"] == "1.2.3.4"
    assert "CONTENT_LENGTH" not in env
    assert "HTTP_X_ONLY" not in env


def test_header_names_are_case_insensitive_and_mapped() -> None:
    env = parse(get(b"/", b"x-custom-thing: v", b"DNT: 1", b"X-1~!#$%&'*+.^`|: ok")).environ
    assert env["HTTP_X_CUSTOM_THING"] == "v"
    assert env["HTTP_DNT"] == "1"
    assert env["HTTP_X_1~!#$%&'*+.^`|"] == "ok"


@pytest.mark.parametrize(
    ("line", "value"),
    [
        (b"X-V: plain", "plain"),
        (b"X-V:nospace", "nospace"),
        (b"X-V:   \t padded \t  ", "padded"),
        (b"X-V: inner  \t spaces", "inner  \t spaces"),
        (b"X-V:", ""),
        (b"X-V:  \t ", ""),
        (b"X-V: caf\xe9 \xff", "caf\xe9 \xff"),  # obs-text is latin-1 (PEP 3333)
        (b'X-V: "quoted, with comma"', '"quoted, with comma"'),
    ],
)
def test_header_values(line: bytes, value: str) -> None:
    assert parse(get(b"/", line)).environ["HTTP_X_V"] == value


@pytest.mark.parametrize(
    ("target", "path", "query"),
    [
        (b"/", "/", ""),
        (b"/a%2Fb", "/a/b", ""),
        (b"/caf%C3%A9", "/caf\xc3\xa9", ""),  # UTF-8 bytes, each byte one latin-1 char
        (b"/%E9t%e9", "/\xe9t\xe9", ""),  # not UTF-8 at all: still one char per byte
        (b"/raw\xe9", "/raw\xe9", ""),
        (b"/bad%zz%4", "/bad%zz%4", ""),
        (b"/p?q=%20&r=a%2Fb", "/p", "q=%20&r=a%2Fb"),  # the query stays raw
        (b"/p??x", "/p", "?x"),
        (b"/p?", "/p", ""),
        (b"//double//slash", "//double//slash", ""),
        (b"/%00", "/\x00", ""),
    ],
)
def test_path_decoding(target: bytes, path: str, query: str) -> None:
    env = parse(get(target)).environ
    assert env["PATH_INFO"] == path
    assert env["QUERY_STRING"] == query
    assert env["REQUEST_URI"] == target.decode("latin-1")


@pytest.mark.parametrize("empty_lines", [1, 2, 4])
def test_leading_empty_lines_are_skipped(empty_lines: int) -> None:
    raw = b"\r\n" * empty_lines + BROWSER_GET
    result = parse_head(raw, LIMIT)
    assert result is not None
    assert result[1] == len(raw)
    assert result[0].environ["PATH_INFO"] == "/path/to/page"


def test_only_empty_lines_wait() -> None:
    for raw in (b"\r", b"\r\n", b"\r\n\r", b"\r\n\r\n", b"\r\n" * 4 + b"\r"):
        assert parse_head(raw, LIMIT) is None


@pytest.mark.parametrize(
    ("headers", "expect_continue"),
    [
        ([b"Expect: 100-continue"], True),
        ([b"Expect: 100-Continue"], True),
        ([b"Expect:"], False),
        ([], False),
    ],
)
def test_expect(headers: list[bytes], expect_continue: bool) -> None:
    req = parse(get(b"/", b"Content-Length: 3", *headers, method=b"POST"))
    assert req.expect_continue is expect_continue


def test_expect_in_http10_is_ignored() -> None:
    req = parse(get(b"/", b"Expect: 100-continue", version=b"HTTP/1.0"))
    assert req.expect_continue is False


@pytest.mark.parametrize(
    "host",
    [b"example.com", b"EXAMPLE.com:8000", b"127.0.0.1", b"127.0.0.1:80", b"[::1]",
     b"[2001:db8::1]:443", b"xn--bcher-kva.example", b"a-b_c.d~", b"h:", b"%41.example",
     b"[v1.fe80::a+en1]"],
)
def test_valid_hosts(host: bytes) -> None:
    assert parse(get(b"/", b"Host: " + host, host=False)).environ["HTTP_HOST"] == host.decode()


# -- invalid requests --------------------------------------------------------------------

INVALID = {
    # request line (RFC 9112 §3)
    "method not a token": (b"G@T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    "method with a slash": (b"GE/T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    "double space": (b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    "tab separator": (b"GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    "trailing space": (b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400),
    "leading space": (b" GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    "HTTP/0.9": (b"GET /\r\n\r\n", 400),
    "no target": (b"GET HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    "lowercase version": (b"GET / http/1.1\r\nHost: a\r\n\r\n", 400),
    "version garbage": (b"GET / HTTP/1.x\r\nHost: a\r\n\r\n", 400),
    "version no minor": (b"GET / HTTP/2\r\nHost: a\r\n\r\n", 400),
    "version long": (b"GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400),
    "HTTP/2.0": (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    "HTTP/1.2": (b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505),
    "HTTP/0.9 line": (b"GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505),
    "empty request line": (b"\r\n" * 5 + b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    "bare LF in request line": (b"GET / HTTP/1.1\nHost: a\r\n\r\n", 400),
    # request-target (RFC 9112 §3.2)
    "control char in target": (b"GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    "DEL in target": (b"GET /a\x7fb HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    "fragment in target": (b"GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    "relative target": (b"GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    "authority-form with GET": (b"GET example.com:443 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    "CONNECT": (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n", 501),
    "CONNECT origin-form": (b"CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", 501),
    "asterisk with GET": (b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    "asterisk with suffix": (b"OPTIONS *x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    "ftp scheme": (b"GET ftp://h/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    "userinfo": (b"GET http://u:p@h/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    "empty authority": (b"GET http:///p HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    "bad authority port": (b"GET http://h:8x/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    "scheme only": (b"GET http: HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    # Host (RFC 9112 §3.2)
    "missing Host": (b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", 400),
    "no headers at all 1.1": (b"GET / HTTP/1.1\r\n\r\n", 400),
    "two Host": (b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400),
    "two Host in 1.0": (b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    "empty Host 1.1": (b"GET / HTTP/1.1\r\nHost:\r\n\r\n", 400),
    "Host with space": (b"GET / HTTP/1.1\r\nHost: exa mple\r\n\r\n", 400),
    "Host with path": (b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
    "Host with userinfo": (b"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400),
    "Host bad port": (b"GET / HTTP/1.1\r\nHost: a:80x\r\n\r\n", 400),
    "Host port only": (b"GET / HTTP/1.1\r\nHost: :80\r\n\r\n", 400),
    "Host bad IPv6": (b"GET / HTTP/1.1\r\nHost: [::g]\r\n\r\n", 400),
    "Host unclosed IPv6": (b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400),
    "Host bad percent": (b"GET / HTTP/1.1\r\nHost: a%2\r\n\r\n", 400),
    "Host obs-text": (b"GET / HTTP/1.1\r\nHost: caf\xe9\r\n\r\n", 400),
    "absolute-form still needs Host": (b"GET http://h/ HTTP/1.1\r\n\r\n", 400),
    # field lines (RFC 9112 §5)
    "no colon": (b"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", 400),
    "space before colon": (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
    "tab before colon": (b"GET / HTTP/1.1\r\nHost: a\r\nX-A\t: 1\r\n\r\n", 400),
    "obs-fold": (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n  continued\r\n\r\n", 400),
    "obs-fold tab": (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\tcontinued\r\n\r\n", 400),
    "whitespace before first field": (b"GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400),
    "empty name": (b"GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n", 400),
    "non-ASCII name": (b"GET / HTTP/1.1\r\nHost: a\r\nX-\xe9: v\r\n\r\n", 400),
    "separator in name": (b"GET / HTTP/1.1\r\nHost: a\r\nX(A): v\r\n\r\n", 400),
    "NUL in value": (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x00b\r\n\r\n", 400),
    "CR in value": (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\rb\r\n\r\n", 400),
    "bare LF in value": (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\nb\r\n\r\n", 400),
    "bare LF line end": (b"GET / HTTP/1.1\r\nHost: a\nX-A: b\r\n\r\n", 400),
    "DEL in value": (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x7fb\r\n\r\n", 400),
    "ESC in value": (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: \x1b[31m\r\n\r\n", 400),
    "bare LF everywhere": (b"GET / HTTP/1.1\nHost: a\n\n", 400),
    "bare LF at the end": (b"GET / HTTP/1.1\r\nHost: a\n\r\n", 400),
    "TLS handshake": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400),
    "binary junk": (b"\x00\x01\x02", 400),
    # framing (RFC 9112 §6, RFC 9110 §8.6)
    "TE and CL": (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                  b"Content-Length: 5\r\n\r\n", 400),
    "CL and TE": (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n", 400),
    "TE in HTTP/1.0": (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    "TE not final chunked": (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip"
                             b"\r\n\r\n", 400),
    "TE gzip only": (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
    "TE identity": (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", 400),
    "TE empty": (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", 400),
    "TE chunked twice": (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n", 400),
    "TE chunked with params": (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;x=1"
                               b"\r\n\r\n", 400),
    "TE gzip, chunked": (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked"
                         b"\r\n\r\n", 501),
    "TE two lines gzip + chunked": (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n"
                                    b"Transfer-Encoding: chunked\r\n\r\n", 501),
    "TE underscore is dropped, not used": (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer_Encoding: "
                                           b"chunked\r\nContent-Length: x\r\n\r\n", 400),
    # expectations (RFC 9110 §10.1.1)
    "unknown expectation": (b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", 417),
    "100-continue plus unknown": (b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue, x\r\n"
                                  b"\r\n", 417),
}

for _value in [b"-1", b"+5", b"0x5", b"5x", b"1 2", b"", b"1e3", b"1.0", b"\xb2", b"5,",
               b"5,,5", b",5", b"5, 6", b"1_000", b"9" * 19, b"99999999999999999999999"]:
    INVALID[f"Content-Length {_value!r}"] = (
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: " + _value + b"\r\n\r\n", 400)
INVALID["two differing Content-Length lines"] = (
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400)
INVALID["Content-Length and an empty one"] = (
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length:\r\n\r\n", 400)


@pytest.mark.parametrize(("raw", "status"), INVALID.values(), ids=list(INVALID))
def test_invalid(raw: bytes, status: int) -> None:
    assert status_of(raw) == status


def test_error_messages_quote_client_bytes_safely() -> None:
    with pytest.raises(ProtocolError) as info:
        parse_head(b"GET / HTTP/1.1\r\nHost: a\r\nX-\xe9\x1b[2J" + b"x" * 500 + b": v\r\n\r\n",
                   LIMIT)
    message = info.value.message
    assert "\x1b" not in message and "\xe9" not in message
    assert "\\x1b" in message and "..." in message
    assert len(message) < 150


# -- incremental feeding -----------------------------------------------------------------


def _summary(result: tuple[Request, int] | None) -> tuple:
    assert result is not None
    req, consumed = result
    return (consumed, req.environ, req.method, req.version, req.content_length, req.chunked,
            req.keep_alive, req.expect_continue, req.head_size)


@pytest.mark.parametrize("kind", [bytes, bytearray])
def test_every_split_point(kind: type) -> None:
    head = b"\r\n" + get(b"/p?q", b"Content-Length: 4", b"Expect: 100-continue",
                         b"X-Long: " + b"v" * 50, method=b"POST")
    raw = head + b"body"
    expected = _summary(parse_head(raw, LIMIT))
    assert expected[0] == len(head)
    for n in range(len(raw) + 1):
        result = parse_head(kind(raw[:n]), LIMIT)
        if n < len(head):
            assert result is None, n
        else:
            assert _summary(result) == expected, n


def test_incremental_rejects_bare_lf_early() -> None:
    raw = b"GET / HTTP/1.1\nHost: a\n\n"
    for n in range(len(raw) + 1):
        prefix = raw[:n]
        if b"\n" in prefix:
            assert status_of(prefix) == 400
        else:
            assert parse_head(prefix, LIMIT) is None


# -- limits ------------------------------------------------------------------------------


def test_head_exactly_at_limit() -> None:
    head = get(b"/", b"X-Pad: " + b"p" * 100)
    size = len(head)
    assert parse_head(head, size) is not None
    assert parse_head(head + b"body bytes do not count", size) is not None
    assert parse_head(head[:-1], size) is None  # incomplete, len(buf) <= limit
    assert status_of(head, size - 1) == 431
    assert status_of(head[:-1], size - 2) == 431  # more than limit, still no end


def test_incomplete_within_limit_waits() -> None:
    partial = b"GET / HTTP/1.1\r\nHost: a\r\nX-Pad: " + b"p" * 50
    assert parse_head(partial, len(partial)) is None
    assert status_of(partial + b"p", len(partial)) == 431


def test_request_line_over_limit_is_414() -> None:
    line = b"GET /" + b"a" * 200 + b" HTTP/1.1\r\n"
    assert parse_head(line[:100], 100) is None
    assert status_of(line[:101], 100) == 414
    assert status_of(line + b"Host: a\r\n\r\n", 100) == 414
    # The request line (with its CRLF) exactly fits: the rest is a 431.
    assert status_of(line + b"Host: a\r\n", len(line)) == 431
    assert status_of(line + b"Host: a\r\n\r\n", len(line)) == 431


def test_limit_errors_name_the_option() -> None:
    for raw, limit in [(b"GET /" + b"a" * 100, 50), (get(b"/", b"X: " + b"x" * 100), 50)]:
        with pytest.raises(ProtocolError) as info:
            parse_head(raw, limit)
        assert info.value.option == "buffer-size"


def test_hostile_heads_stay_linear() -> None:
    big = 65536
    junk_heads = [
        b"GET / HTTP/1.1\r\nHost: a\r\nX-A: " + b"a " * (big // 2) + b"\x01\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n" + b"a" * big + b"\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X: a\r\n" * (big // 6) + b"bad line\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n" + b"Y:" + b"\t" * big + b"\x00\r\n\r\n",
        b"GET /" + b"%" * big + b"\x00 HTTP/1.1\r\nHost: a\r\n\r\n",
        b"G" * big + b"\r\n\r\n",
    ]
    for raw in junk_heads:
        began = time.perf_counter()
        assert status_of(raw, 2 * big) == 400
        assert time.perf_counter() - began < 0.25


def test_hostile_chunk_lines_stay_linear() -> None:
    for raw in [b"5" + b" " * 4000 + b"\r\n", b"5" + b";a" * 2000 + b"\x00\r\n",
                b'5;a="' + b'\\"' * 1900 + b"\r\n", b"5" + b";a=b" * 1000 + b"\x00\r\n",
                b"0\r\nX:" + b" \t" * 4000 + b"\x00\r\n\r\n",
                b"0\r\nX: " + b"a \t" * 2000 + b"\x00\r\n\r\n"]:
        began = time.perf_counter()
        with pytest.raises(ProtocolError) as info:
            ChunkedDecoder().feed(raw)
        assert info.value.status == 400
        assert time.perf_counter() - began < 0.05


def test_many_valid_headers() -> None:
    raw = get(b"/", *[b"X-H%d: v%d" % (i, i) for i in range(500)])
    env = parse(raw, len(raw)).environ
    assert env["HTTP_X_H499"] == "v499"


def test_too_many_header_fields_is_431() -> None:
    # Fields, not bytes: buffer-size alone lets a 1 MB head carry 250,000 of them.
    fits = get(b"/", *[b"h%d:" % i for i in range(MAX_FIELDS - 1)])  # + Host
    assert parse(fits, len(fits)).environ["HTTP_H1022"] == ""
    over = get(b"/", *[b"h%d:" % i for i in range(MAX_FIELDS)])
    assert status_of(over, len(over)) == 431
    repeated = get(b"/", *[b"A: b"] * MAX_FIELDS)
    assert status_of(repeated, len(repeated)) == 431
    # A bad line is still named as such, whatever the count.
    assert status_of(get(b"/", *[b"A: b"] * MAX_FIELDS, b"bad line"), 1 << 20) == 400


# -- chunked bodies ----------------------------------------------------------------------

CHUNKED = (
    b"5;name=value\r\nhello\r\n"
    b"1 ; a ; b=\"q\\\"uoted; \\\\ \xe9\"\t;c\r\n \r\n"
    b"00000000000000a\r\n0123456789\r\n"
    b"1A;ext\r\n" + b"z" * 26 + b"\r\n"
    b"0;last=1\r\n"
    b"Trailer-One: 1\r\n"
    b"Trailer-Two:  x y  \r\n"
    b"\r\n"
)
CHUNKED_BODY = b"hello 0123456789" + b"z" * 26
NEXT = b"GET /next HTTP/1.1\r\n"


def feed_all(pieces: list[bytes], limit: int | None = None) -> tuple[bytes, bytes]:
    decoder = ChunkedDecoder(limit)
    out = b""
    for piece in pieces:
        assert not decoder.done
        out += decoder.feed(piece)
    assert decoder.done
    return out, decoder.leftover


def test_chunked_one_piece() -> None:
    assert feed_all([CHUNKED + NEXT]) == (CHUNKED_BODY, NEXT)


def test_chunked_every_split_point() -> None:
    raw = CHUNKED + NEXT
    for n in range(len(raw) + 1):
        decoder = ChunkedDecoder()
        out = decoder.feed(raw[:n])
        if n < len(CHUNKED):
            assert not decoder.done, n
        out += decoder.feed(raw[n:])
        assert decoder.done, n
        assert (out, decoder.leftover) == (CHUNKED_BODY, NEXT), n


def test_chunked_byte_by_byte() -> None:
    pieces = [CHUNKED[i : i + 1] for i in range(len(CHUNKED))]
    assert feed_all(pieces) == (CHUNKED_BODY, b"")


@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_chunked_buffer_types(kind: type) -> None:
    raw = bytearray(CHUNKED + NEXT)
    decoder = ChunkedDecoder()
    out = decoder.feed(kind(raw) if kind is memoryview else raw)
    assert type(out) is bytes and type(decoder.leftover) is bytes
    assert (out, decoder.leftover) == (CHUNKED_BODY, NEXT)
    raw.clear()  # no view left exported on the caller's buffer
    assert decoder.leftover == NEXT


def test_chunked_data_is_returned_without_copy() -> None:
    decoder = ChunkedDecoder()
    assert decoder.feed(b"100000\r\n") == b""
    piece = b"x" * 65536
    assert decoder.feed(piece) is piece
    body = b"".join(decoder.feed(b"y" * 65536) for _ in range(15))
    assert len(body) == 15 * 65536
    assert decoder.feed(b"\r\n0\r\n\r\n") == b""
    assert decoder.done and decoder.leftover == b""


def test_chunked_big_body_in_odd_pieces() -> None:
    data = bytes(random.Random(7).randbytes(300_000))
    raw = b"".join(b"%x\r\n%s\r\n" % (len(part), part)
                   for part in (data[:100_000], data[100_000:250_000], data[250_000:]))
    raw += b"0\r\n\r\n"
    pieces = [raw[i : i + 4099] for i in range(0, len(raw), 4099)]
    assert feed_all(pieces) == (data, b"")


def test_chunked_feed_after_done_goes_to_leftover() -> None:
    decoder = ChunkedDecoder()
    assert decoder.feed(b"0\r\n\r\nGE") == b""
    assert decoder.done and decoder.leftover == b"GE"
    assert decoder.feed(b"T /") == b""
    assert decoder.leftover == b"GET /"


def test_chunked_empty_body() -> None:
    assert feed_all([b"0\r\n\r\n"]) == (b"", b"")
    assert feed_all([b"0", b"\r", b"\n", b"\r", b"\n"]) == (b"", b"")


def test_chunked_max_size_digits() -> None:
    decoder = ChunkedDecoder()
    decoder.feed(b"ffffffffffffffff\r\nabc")
    assert not decoder.done


def test_chunked_limit() -> None:
    assert feed_all([b"5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n"], limit=10)[0] == b"helloworld"
    decoder = ChunkedDecoder(limit=10)
    assert decoder.feed(b"5\r\nhello\r\n") == b"hello"
    with pytest.raises(ProtocolError) as info:
        decoder.feed(b"6\r\n")  # refused on the announced size, before the data
    assert info.value.status == 413 and info.value.option == "limit-post"
    with pytest.raises(ProtocolError):  # the decoder stays failed
        decoder.feed(b"world!\r\n0\r\n\r\n")
    with pytest.raises(ProtocolError) as info:
        ChunkedDecoder(limit=0).feed(b"1\r\nx")
    assert info.value.status == 413


BAD_CHUNKED = {
    "non-hex size": (b"g\r\n", 400),
    "negative size": (b"-1\r\n", 400),
    "0x prefix": (b"0x5\r\nhello\r\n", 400),
    "space before size": (b" 5\r\nhello\r\n", 400),
    "space after size": (b"5 \r\nhello\r\n", 400),
    "empty size": (b"\r\n", 400),
    "17 hex digits": (b"0" * 16 + b"5\r\nhello\r\n", 400),
    "overflow": (b"10000000000000000\r\n", 400),
    "plus sign": (b"+5\r\nhello\r\n", 400),
    "underscore": (b"1_0\r\n", 400),
    "bare LF after size": (b"5\nhello\r\n", 400),
    "bare CR after size": (b"5\rhello\r\n", 400),
    "bare LF after data": (b"5\r\nhello\n0\r\n\r\n", 400),
    "data too long": (b"5\r\nhelloX\r\n0\r\n\r\n", 400),
    "no CRLF after data": (b"5\r\nhelloXY", 400),
    "empty extension": (b"5;\r\nhello\r\n", 400),
    "extension without name": (b"5;=v\r\nhello\r\n", 400),
    "extension bad value": (b"5;a=b c\r\nhello\r\n", 400),
    "extension unterminated quote": (b'5;a="b\r\nhello\r\n', 400),
    "extension with NUL": (b"5;a=\x00\r\nhello\r\n", 400),
    "extension with LF": (b"5;a\nb\r\nhello\r\n", 400),
    "extension too long": (b"5;a=" + b"v" * 5000 + b"\r\n", 400),
    "size line too long in pieces": (b"5;a=" + b"v" * 4095, 400),
    "trailer without colon": (b"0\r\nbad trailer\r\n\r\n", 400),
    "trailer obs-fold": (b"0\r\nA: 1\r\n  2\r\n\r\n", 400),
    "trailer with bare LF": (b"0\r\nA: 1\n\r\n", 400),
    "last-chunk bare LF end": (b"0\r\n\n", 400),
    "trailers too big": (b"0\r\n" + b"X-T: " + b"t" * 9000 + b"\r\n\r\n", 431),
    "many trailers too big": (b"0\r\n" + b"X-T: tttt\r\n" * 1000 + b"\r\n", 431),
}


@pytest.mark.parametrize(("raw", "status"), BAD_CHUNKED.values(), ids=list(BAD_CHUNKED))
def test_bad_chunked(raw: bytes, status: int) -> None:
    with pytest.raises(ProtocolError) as info:
        ChunkedDecoder().feed(raw)
    assert info.value.status == status
    assert info.value.message.isascii() and info.value.message.isprintable()
    # The same error whatever the piece sizes (checked before or when the bytes arrive).
    decoder = ChunkedDecoder()
    with pytest.raises(ProtocolError) as info:
        for i in range(len(raw)):
            decoder.feed(raw[i : i + 1])
    assert info.value.status == status


# -- error responses ---------------------------------------------------------------------


def test_status_reasons() -> None:
    assert STATUS_REASONS[200] == b"OK"
    assert STATUS_REASONS[400] == b"Bad Request"
    assert STATUS_REASONS[431] == b"Request Header Fields Too Large"
    assert STATUS_REASONS[505] == b"HTTP Version Not Supported"


def _split_response(raw: bytes) -> tuple[bytes, dict[bytes, bytes], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.split(b"\r\n")
    headers = dict(line.split(b": ", 1) for line in lines)
    assert int(headers[b"Content-Length"]) == len(body)
    return status_line, headers, body


def test_error_response() -> None:
    status_line, headers, body = _split_response(error_response(400))
    assert status_line == b"HTTP/1.1 400 Bad Request"
    assert headers[b"Content-Type"] == b"text/plain; charset=utf-8"
    assert headers[b"Connection"] == b"close"
    assert body == b"400 Bad Request\n"


def test_error_response_keep_alive_and_message() -> None:
    status_line, headers, body = _split_response(
        error_response(431, "request head larger than buffer-size 4096", keep_alive=True))
    assert status_line == b"HTTP/1.1 431 Request Header Fields Too Large"
    assert b"Connection" not in headers
    assert body == b"431 Request Header Fields Too Large\nrequest head larger than buffer-size 4096\n"


def test_error_response_escapes_the_message() -> None:
    raw = error_response(400, "bad\r\nSet-Cookie: x=1\x00 caf\xe9 \u2603\x1b[0m")
    _, headers, body = _split_response(raw)
    assert b"Set-Cookie" not in headers
    assert body.isascii()
    assert body == b"400 Bad Request\nbad\\r\nSet-Cookie: x=1\\x00 caf\\xe9 \\u2603\\x1b[0m\n"
    assert not any(c < 0x20 and c not in b"\r\n" for c in raw)


def test_error_response_unknown_status() -> None:
    status_line, _, _ = _split_response(error_response(599))
    assert status_line.startswith(b"HTTP/1.1 599 ")


# -- fuzzing -----------------------------------------------------------------------------

SEEDS = [
    BROWSER_GET,
    get(b"/submit?a=b", b"Content-Length: 3", b"Expect: 100-continue", method=b"POST"),
    get(b"/up", b"Transfer-Encoding: chunked", method=b"PUT"),
    get(b"http://h:1/x%2Fy", b"Cookie: a=1", b"Cookie: b=2"),
    get(b"*", method=b"OPTIONS"),
    get(b"/", b"Connection: keep-alive", version=b"HTTP/1.0", host=False),
    b"\r\n" + get(b"/%E9", b"X_Dropped: 1", b"Content-Length: 1, 1", method=b"POST"),
]
SPICE = [b"\r\n", b"\r", b"\n", b" ", b"\t", b":", b",", b"\x00", b"\x7f", b"\xff", b"%", b"_",
         b"?", b"#", b"/", b"*", b"[", b"]", b"@", b"HTTP/1.1", b"Host: x\r\n", b"\r\n\r\n",
         b"Transfer-Encoding: chunked\r\n", b"Content-Length: 7\r\n", b"chunked", b"9"]
STATUSES = {400, 414, 417, 431, 501, 505}


def _mutate(rng: random.Random, raw: bytes) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        pos = rng.randrange(len(data) + 1)
        if op == 0 and data:
            del data[pos : pos + rng.randint(1, 8)]
        elif op == 1:
            data[pos:pos] = rng.choice(SPICE)
        elif op == 2 and data:
            data[min(pos, len(data) - 1)] = rng.randrange(256)
        elif op == 3:
            lines = bytes(data).split(b"\r\n")
            i = rng.randrange(len(lines))
            lines.insert(rng.randrange(len(lines) + 1), lines[i])
            data = bytearray(b"\r\n".join(lines))
        else:
            data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 6)))
    return bytes(data)


def _check(buf: bytes, limit: int) -> None:
    try:
        result = parse_head(buf, limit)
    except ProtocolError as exc:
        assert exc.status in STATUSES, (buf, exc.status)
        assert exc.message.isascii() and exc.message.isprintable()
        return
    if result is None:
        start = 0
        while buf.startswith(b"\r\n", start):
            start += 2
        assert len(buf) <= limit and b"\r\n\r\n" not in buf[start:]
        return
    req, consumed = result
    assert isinstance(req, Request)
    assert 0 < consumed <= min(len(buf), limit)
    assert buf[consumed - 4 : consumed] == b"\r\n\r\n"
    assert all(type(k) is str and type(v) is str for k, v in req.environ.items())
    assert req.version in ("HTTP/1.1", "HTTP/1.0")
    assert not (req.chunked and req.content_length is not None)


def test_fuzz_parse_head() -> None:
    rng = random.Random(20240601)
    began = time.perf_counter()
    for i in range(3000):
        if i % 10 == 0:
            buf = bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))
        elif i % 10 == 1:
            buf = b"".join(rng.choice(SPICE) for _ in range(rng.randint(1, 30)))
        else:
            buf = _mutate(rng, rng.choice(SEEDS))
        limit = rng.choice([LIMIT, LIMIT, 64, rng.randint(1, 400)])
        _check(buf, limit)
        _check(buf[: rng.randint(0, len(buf))], limit)
    assert time.perf_counter() - began < 5


def test_fuzz_chunked() -> None:
    rng = random.Random(99)
    began = time.perf_counter()
    for _ in range(2000):
        raw = _mutate(rng, CHUNKED + NEXT)
        decoder = ChunkedDecoder(limit=rng.choice([None, 30, 1000]))
        out = b""
        try:
            pos = 0
            while pos < len(raw):
                step = rng.randint(1, 40)
                out += decoder.feed(raw[pos : pos + step])
                pos += step
        except ProtocolError as exc:
            assert exc.status in {400, 413, 431}
            continue
        if decoder.done:
            assert raw.endswith(decoder.leftover)
        assert type(out) is bytes
    assert time.perf_counter() - began < 5
