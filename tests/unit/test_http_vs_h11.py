"""Differential test: our HTTP/1.1 request parser against h11, on valid input.

For every request here (hypothesis-generated from the RFC 9112 grammar, plus a fixed corpus
of tricky-but-valid ones) h11, as a server, and ``parse_head`` + ``ChunkedDecoder`` must
both accept, and agree on the method, target, HTTP version, header fields, framing and
body.

Where the two differ on purpose, the generated input stays inside what both accept, and
``DIFFERENCES`` below pins each difference (both sides' verdicts), so neither parser's
behaviour drifts unnoticed:

* We are stricter (h11 accepts, we refuse): obs-fold (RFC 9112 §5.2 allows either), bare
  LF line endings (§2.2 allows either; we refuse as a smuggling guard), "#" or a relative
  path or an unknown scheme or userinfo in the target (not RFC 9112 request-targets),
  asterisk-form with a method other than OPTIONS (§3.2.4; SSDP's "M-SEARCH *" included), CONNECT (501), Host values that
  are not RFC 3986 host[:port] (and an empty Host in 1.1, RFC 9110 §4.2.1), unknown
  expectations (417, RFC 9110 §10.1.1), Transfer-Encoding together with Content-Length or
  in HTTP/1.0 (§6.1), CTLs in field values (RFC 9110 §5.5), chunk-size lines with trailing
  whitespace or a malformed extension (§7.1.1), HTTP/1.2+ (505; RFC 9110 §6.2 would let
  us answer as 1.1), and length digits beyond our parsers' bounds: Content-Length over 18
  digits and chunk-size over 16 hex digits, even when leading zeros make the value small.
* h11 is stricter (we accept, h11 refuses): empty lines before the request line (RFC 9112
  §2.2: a server SHOULD ignore at least one), BWS before a chunk extension's ";" (§7.1.1
  grammar), empty list elements in Transfer-Encoding ("chunked," RFC 9110 §5.6.1),
  obs-text in the target, and a Content-Length list of equal values written differently
  ("01, 1").
* Accepted by both, shaped differently: we drop header names containing "_" (h11 keeps
  them), rewrite Host from an absolute-form target (RFC 9112 §3.2.2; h11 leaves the
  target and Host as sent), normalize Content-Length to its decimal value, and keep
  HTTP/1.0 connections alive on "Connection: keep-alive" (h11 never does).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import h11
import pytest
from hypothesis import given

from django_uwsgi_server.server.http import ChunkedDecoder, parse_head
from django_uwsgi_server.server.request import ProtocolError
from tests.unit.test_parser_properties import Message, fast, http_messages, join_headers

LIMIT = 16384  # h11's default max_incomplete_event_size


def h11_parse(raw: bytes):
    """(Request event, body, trailers, waiting-for-100) from h11 acting as a server."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=LIMIT)
    conn.receive_data(raw)
    request = conn.next_event()
    assert isinstance(request, h11.Request), request
    expect_continue = conn.they_are_waiting_for_100_continue
    body = b""
    while True:
        event = conn.next_event()
        if isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            return request, body, list(event.headers), expect_continue
        else:
            raise AssertionError(f"h11: unexpected {event!r} (body incomplete?)")


def ours_parse(raw: bytes):
    """(Request, body) from parse_head + ChunkedDecoder; the body must be complete."""
    result = parse_head(raw, LIMIT)
    assert result is not None, "head incomplete"
    req, consumed = result
    rest = raw[consumed:]
    if req.chunked:
        decoder = ChunkedDecoder()
        body = decoder.feed(rest)
        assert decoder.done, "chunked body incomplete"
        assert decoder.leftover == b""
    else:
        body = rest[: req.content_length or 0]
        assert len(body) == (req.content_length or 0), "body incomplete"
    return req, body


def compare(raw: bytes) -> None:
    h_req, h_body, h_trailers, h_expect = h11_parse(raw)
    req, body = ours_parse(raw)
    env = req.environ

    assert req.method == h_req.method.decode("ascii")
    assert env["REQUEST_URI"] == h_req.target.decode("ascii")
    assert req.version == "HTTP/" + h_req.http_version.decode("ascii")

    # Header fields as the environ holds them. h11 lowercases names, and already folds
    # repeated Content-Length lines into one.
    fields = [(n.decode("ascii"), v.decode("latin-1")) for n, v in h_req.headers]
    expected = join_headers(fields)
    h_length = expected.pop("CONTENT_LENGTH", None)
    h_te = expected.pop("HTTP_TRANSFER_ENCODING", None)
    ours = {k: v for k, v in env.items() if k.startswith("HTTP_") or k == "CONTENT_TYPE"}
    te = ours.pop("HTTP_TRANSFER_ENCODING", None)
    if env["REQUEST_URI"][0] not in "/*":
        # absolute-form: its authority replaces Host (RFC 9112 §3.2.2)
        expected["HTTP_HOST"] = urlsplit(env["REQUEST_URI"]).netloc
    assert ours == expected

    # framing: h11 reads a chunked body iff Transfer-Encoding is present (only "chunked"
    # is allowed there), else Content-Length, else none.
    assert req.chunked == (h_te is not None)
    if h_te is not None:
        assert te is not None and te.lower() == h_te == "chunked"
    assert req.content_length == (int(h_length) if h_length is not None else None)
    if req.content_length is not None:
        assert env["CONTENT_LENGTH"] == str(int(h_length))  # type: ignore[arg-type]
    assert body == h_body
    assert req.expect_continue == h_expect
    if req.version == "HTTP/1.1":
        h_close = any(v.lower() == b"close"
                      for n, value in h_req.headers if n == b"connection"
                      for v in (t.strip(b" \t") for t in value.split(b",")))
        assert req.keep_alive == (not h_close)
    return None


@fast(200)
@given(http_messages(h11_compat=True))
def test_generated_requests_agree(msg: Message) -> None:
    compare(msg.raw)
    # and both match what the generator meant
    req, body = ours_parse(msg.raw)
    assert req.environ == msg.environ and body == msg.body
    _, _, trailers, _ = h11_parse(msg.raw)
    assert [(n.decode(), v.decode("latin-1")) for n, v in trailers] == [
        (n.lower(), v) for n, v in msg.trailers
    ]


H = b"Host: example.com\r\n"
TE = b"Transfer-Encoding: chunked\r\n"

CORPUS = {
    "minimal": b"GET / HTTP/1.1\r\n" + H + b"\r\n",
    "http/1.0 no host": b"GET / HTTP/1.0\r\n\r\n",
    "http/1.0 body": b"POST /f HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc",
    "extension method": b"M-SEARCH / HTTP/1.1\r\n" + H + b"\r\n",
    "lowercase method": b"get / HTTP/1.1\r\n" + H + b"\r\n",
    "all tchar method": b"!#$%&'*+-.^_`|~09azAZ / HTTP/1.1\r\n" + H + b"\r\n",
    "options asterisk": b"OPTIONS * HTTP/1.1\r\n" + H + b"\r\n",
    "absolute-form": b"GET http://example.com:8080/a%20b?x=1 HTTP/1.1\r\n" + H + b"\r\n",
    "absolute-form no path": b"GET HTTPS://example.com?q HTTP/1.1\r\n" + H + b"\r\n",
    "absolute-form ipv6": b"GET http://[::1]:80/ HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
    "path escapes": b"GET /a%2Fb/%E9%00%25//c;p=1/@:$&'()*+,=~ HTTP/1.1\r\n" + H + b"\r\n",
    "query with ? and /": b"GET /p??a=/b?&c=%3D%zz HTTP/1.1\r\n" + H + b"\r\n",
    "empty query": b"GET /p? HTTP/1.1\r\n" + H + b"\r\n",
    "host with port": b"GET / HTTP/1.1\r\nHost: example.com:8000\r\n\r\n",
    "host empty port": b"GET / HTTP/1.1\r\nHost: example.com:\r\n\r\n",
    "host ipv4": b"GET / HTTP/1.1\r\nHost: 192.0.2.1\r\n\r\n",
    "host ipv6": b"GET / HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n",
    "host ipvfuture": b"GET / HTTP/1.1\r\nHost: [v1.fe80::a+en1]\r\n\r\n",
    "host pct-encoded": b"GET / HTTP/1.1\r\nHost: ex%41mple.com\r\n\r\n",
    "http/1.0 empty host": b"GET / HTTP/1.0\r\nHost:\r\n\r\n",
    "all tchar name": b"GET / HTTP/1.1\r\n" + H + b"!#$%&'*+-.^`|~09azAZ: v\r\n\r\n",
    "empty value": b"GET / HTTP/1.1\r\n" + H + b"X-Empty:\r\nX-Blank: \t \r\n\r\n",
    "no space after colon": b"GET / HTTP/1.1\r\nHost:example.com\r\nX:y\r\n\r\n",
    "inner tabs and spaces": b"GET / HTTP/1.1\r\n" + H + b"X:\t a \t b  c\t\r\n\r\n",
    "obs-text value": b"GET / HTTP/1.1\r\n" + H + b"X: caf\xe9 \xa0\x85\xff\r\n\r\n",
    "all vchar value": b"GET / HTTP/1.1\r\n" + H + b"X: " + bytes(range(0x21, 0x7F)) + b"\r\n\r\n",
    "repeated header": b"GET / HTTP/1.1\r\n" + H + b"Accept: a\r\nX: 1\r\naccept: b\r\n\r\n",
    "repeated cookie": b"GET / HTTP/1.1\r\n" + H + b"Cookie: a=1\r\nCOOKIE: b=2\r\n\r\n",
    "underscore name": b"GET / HTTP/1.1\r\n" + H + b"X_Forwarded_For: 1\r\n\r\n",
    "content-type": b"POST / HTTP/1.1\r\n" + H + b"content-TYPE: text/plain\r\nContent-Length: 0\r\n\r\n",
    "long value": b"GET / HTTP/1.1\r\n" + H + b"X-Long: " + b"v" * 8000 + b"\r\n\r\n",
    "many headers": b"GET / HTTP/1.1\r\n" + H + b"".join(b"X-%d: %d\r\n" % (i, i) for i in range(200)) + b"\r\n",
    "connection close": b"GET / HTTP/1.1\r\n" + H + b"Connection: Keep-Alive, CLOSE\r\n\r\n",
    "expect 100-continue": b"PUT / HTTP/1.1\r\n" + H + b"Expect: 100-Continue\r\nContent-Length: 1\r\n\r\nx",
    "expect in 1.0": b"PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
    "content-length 0": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 0\r\n\r\n",
    "content-length zeros": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 0003\r\n\r\nabc",
    "content-length list": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3 ,3,\t3\r\n\r\nabc",
    "content-length twice": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3\r\ncontent-length: 3\r\n\r\nabc",
    "body looks like http": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 30\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "binary body": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 256\r\n\r\n" + bytes(range(256)),
    "chunked empty": b"POST / HTTP/1.1\r\n" + H + TE + b"\r\n0\r\n\r\n",
    "chunked case": b"POST / HTTP/1.1\r\n" + H + b"transfer-encoding: ChUnKeD\r\n\r\n1\r\nx\r\n0\r\n\r\n",
    "chunked hex sizes": b"POST / HTTP/1.1\r\n" + H + TE + b"\r\nA\r\n0123456789\r\n000000000000000f\r\n" + b"y" * 15 + b"\r\n0000\r\n\r\n",
    "chunked extensions": b"POST / HTTP/1.1\r\n" + H + TE + b'\r\n3;a;b=c;d="q\\"\\\\ ;x"\r\nabc\r\n0;last\r\n\r\n',
    "chunked ext bws after ;": b"POST / HTTP/1.1\r\n" + H + TE + b"\r\n3; a = b ;\tc\r\nabc\r\n0\r\n\r\n",
    "chunked trailers": b"POST / HTTP/1.1\r\n" + H + TE + b"\r\n3\r\nabc\r\n0\r\nX-Sum: 1\r\nX-Other:  a b \r\n\r\n",
    "chunked data with crlf": b"POST / HTTP/1.1\r\n" + H + TE + b"\r\n4\r\n\r\n\r\n\r\n0\r\n\r\n",
    "chunked big": b"POST / HTTP/1.1\r\n" + H + TE + b"\r\n2710\r\n" + b"z" * 10000 + b"\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("raw", CORPUS.values(), ids=list(CORPUS))
def test_corpus_agrees(raw: bytes) -> None:
    compare(raw)


def _ours(raw: bytes) -> int | str:
    """200-ish "ok" for a complete request (and body), else our error status."""
    try:
        ours_parse(raw)
    except ProtocolError as exc:
        return exc.status
    return "ok"


def _h11(raw: bytes) -> str:
    try:
        h11_parse(raw)
    except h11.RemoteProtocolError:
        return "error"
    return "ok"


# (request, our verdict, h11's verdict): the intentional differences of the docstring.
DIFFERENCES = {
    "obs-fold": (b"GET / HTTP/1.1\r\n" + H + b"X: a\r\n b\r\n\r\n", 400, "ok"),
    "bare LF": (b"GET / HTTP/1.1\nHost: a\n\n", 400, "ok"),
    "fragment in target": (b"GET /#f HTTP/1.1\r\n" + H + b"\r\n", 400, "ok"),
    "relative target": (b"GET foo HTTP/1.1\r\n" + H + b"\r\n", 400, "ok"),
    "ftp target": (b"GET ftp://b/x HTTP/1.1\r\n" + H + b"\r\n", 400, "ok"),
    "userinfo": (b"GET http://u@a/ HTTP/1.1\r\n" + H + b"\r\n", 400, "ok"),
    "asterisk with GET": (b"GET * HTTP/1.1\r\n" + H + b"\r\n", 400, "ok"),
    "asterisk with M-SEARCH": (b"M-SEARCH * HTTP/1.1\r\n" + H + b"\r\n", 400, "ok"),
    "CONNECT": (b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 501, "ok"),
    "invalid host": (b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, "ok"),
    "host port not digits": (b"GET / HTTP/1.1\r\nHost: a:b\r\n\r\n", 400, "ok"),
    "empty host in 1.1": (b"GET / HTTP/1.1\r\nHost:\r\n\r\n", 400, "ok"),
    "unknown expectation": (b"GET / HTTP/1.1\r\n" + H + b"Expect: x\r\n\r\n", 417, "ok"),
    "te and cl": (b"POST / HTTP/1.1\r\n" + H + TE + b"Content-Length: 5\r\n\r\n0\r\n\r\n",
                  400, "ok"),
    "te in 1.0": (b"POST / HTTP/1.0\r\n" + TE + b"\r\n0\r\n\r\n", 400, "ok"),
    "CTL in value": (b"GET / HTTP/1.1\r\n" + H + b"X: a\x01b\x7f\r\n\r\n", 400, "ok"),
    "chunk size trailing ws": (b"POST / HTTP/1.1\r\n" + H + TE + b"\r\n1 \r\nx\r\n0\r\n\r\n",
                               400, "ok"),
    "chunk ext junk": (b"POST / HTTP/1.1\r\n" + H + TE + b"\r\n1;a b\r\nx\r\n0\r\n\r\n",
                       400, "ok"),
    "HTTP/1.2": (b"GET / HTTP/1.2\r\n" + H + b"\r\n", 505, "ok"),
    "19-digit content-length": (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: "
                                + b"0" * 18 + b"1\r\n\r\nx", 400, "ok"),
    "17-digit chunk-size": (b"POST / HTTP/1.1\r\n" + H + TE + b"\r\n" + b"0" * 16
                            + b"1\r\nx\r\n0\r\n\r\n", 400, "ok"),
    "empty line first": (b"\r\nGET / HTTP/1.1\r\n" + H + b"\r\n", "ok", "error"),
    "bws before chunk-ext": (b"POST / HTTP/1.1\r\n" + H + TE + b"\r\n1 ;a\r\nx\r\n0\r\n\r\n",
                             "ok", "error"),
    "te empty element": (b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: , chunked\r\n\r\n"
                         b"0\r\n\r\n", "ok", "error"),
    "obs-text target": (b"GET /caf\xe9 HTTP/1.1\r\n" + H + b"\r\n", "ok", "error"),
    "content-length 01, 1": (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 01, 1\r\n\r\nx",
                             "ok", "error"),
}


@pytest.mark.parametrize(("raw", "ours", "theirs"), DIFFERENCES.values(), ids=list(DIFFERENCES))
def test_known_differences(raw: bytes, ours: int | str, theirs: str) -> None:
    assert (_ours(raw), _h11(raw)) == (ours, theirs)
