"""Property-based tests of the sans-I/O parsers (hypothesis).

Invariants checked on arbitrary bytes, cut at arbitrary points: the parsers answer ``None``
(need more), a ``Request``, or a ``ProtocolError`` with a documented status, never anything
else; the answer does not depend on how the bytes were split; no more than ``limit`` bytes
of head or body are ever held or returned. Valid messages, generated from the RFC 9112
grammar, round-trip: serialize, parse, and the environ and body come back exactly.

The strategies (``http_messages``, ``chunked_bodies``...) are also used by
``test_http_vs_h11.py``. Runs are derandomized (the same examples on every run) and
bounded so the whole file stays well under 20 s.
"""

from __future__ import annotations

import os
import string
from dataclasses import dataclass, field

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from django_uwsgi_server.server.http import ChunkedDecoder, parse_head
from django_uwsgi_server.server.request import ProtocolError, Request
from django_uwsgi_server.server.uwsgi_protocol import MAX_VARS, build_packet, parse_packet

# The statuses a ProtocolError may carry (request.py, README).
HTTP_STATUSES = {400, 405, 408, 413, 414, 417, 431, 501, 505}
CHUNKED_STATUSES = {400, 413, 431}
UWSGI_STATUSES = {400, 431, 501}

LIMIT = 65535  # the buffer-size default

# PROPERTY_SCALE=50 pytest ... explores 50x more examples, randomly, for a local deep run.
SCALE = int(os.environ.get("PROPERTY_SCALE", "1"))


def fast(max_examples: int):
    """Deterministic, bounded settings: CI sees the same examples on every run."""
    return settings(
        max_examples=max_examples * SCALE,
        deadline=None,
        derandomize=SCALE == 1,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# -- grammar pieces (RFC 9110 / 9112 / 3986) ------------------------------------------------

TCHAR = "!#$%&'*+-.^_`|~" + string.digits + string.ascii_letters
UNRESERVED = string.ascii_letters + string.digits + "-._~"
SUB_DELIMS = "!$&'()*+,;="
PCHAR = UNRESERVED + SUB_DELIMS + ":@"
VCHAR = "".join(chr(c) for c in range(0x21, 0x7F))
OBS_TEXT = "".join(chr(c) for c in range(0x80, 0x100))
FIELD_VCHAR = VCHAR + OBS_TEXT

# Header names whose meaning the generators control (framing, Host, persistence); random
# names avoid them so the expected environ stays easy to state.
RESERVED_NAMES = {"host", "content-length", "transfer-encoding", "expect", "connection",
                  "upgrade", "te", "trailer"}

tokens = st.text(TCHAR, min_size=1, max_size=12)
plain_names = st.text(TCHAR.replace("_", ""), min_size=1, max_size=12).filter(
    lambda n: n.lower() not in RESERVED_NAMES
)
header_names = st.one_of(
    plain_names,
    # a small pool so that names repeat (joined), differ in case only, or are dropped ("_")
    st.sampled_from(["X-Dup", "x-dup", "X-DUP", "Cookie", "cookie", "Accept",
                     "Content-Type", "X_Under", "x-forwarded_for"]),
)


@st.composite
def pct_escape(draw) -> tuple[str, bytes]:
    byte = draw(st.integers(0, 255))
    text = "%" + format(byte, "02X" if draw(st.booleans()) else "02x")
    return text, bytes([byte])


def _uri_text(alphabet: str, max_size: int):
    """A run of URI characters and %XX escapes: (as sent, percent-decoded bytes)."""
    item = st.one_of(st.sampled_from(alphabet).map(lambda c: (c, c.encode("ascii"))), pct_escape())
    return st.lists(item, max_size=max_size).map(
        lambda items: ("".join(t for t, _ in items), b"".join(b for _, b in items))
    )


@st.composite
def origin_paths(draw) -> tuple[str, bytes]:
    """absolute-path = 1*( "/" segment ): (as sent, decoded bytes)."""
    segments = draw(st.lists(_uri_text(PCHAR, 8), min_size=1, max_size=4))
    return ("".join("/" + t for t, _ in segments), b"".join(b"/" + b for _, b in segments))


queries = st.one_of(st.none(), _uri_text(PCHAR + "/?", 12).map(lambda q: q[0]))

hosts = st.tuples(
    st.one_of(
        st.text(string.ascii_lowercase + string.digits + "-.", min_size=1, max_size=20),
        st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t))),
        st.sampled_from(["localhost", "[::1]", "[2001:db8::7]", "EXAMPLE.com", "a_b.example"]),
    ),
    st.one_of(st.just(""), st.just(":"), st.integers(0, 65535).map(lambda p: f":{p}")),
).map("".join)


@st.composite
def field_values(draw) -> tuple[str, str]:
    """(field-value, the field line's text after the colon with random OWS around it)."""
    words = draw(st.lists(st.text(FIELD_VCHAR, min_size=1, max_size=10), max_size=4))
    value = ""
    for i, word in enumerate(words):
        if i:
            value += draw(st.text(" \t", min_size=1, max_size=3))
        value += word
    before = draw(st.text(" \t", max_size=2))
    after = draw(st.text(" \t", max_size=2))
    return value, before + value + after


def environ_key(name: str) -> str | None:
    """The documented header -> environ mapping (None: dropped)."""
    if "_" in name:
        return None
    key = name.upper().replace("-", "_")
    return key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key


def join_headers(fields: list[tuple[str, str]]) -> dict[str, str]:
    """Headers as environ keys; repeated lines joined (Cookie with "; ", RFC 9113 §8.2.3)."""
    environ: dict[str, str] = {}
    for name, value in fields:
        key = environ_key(name)
        if key is None:
            continue
        if key in environ:
            environ[key] += ("; " if key == "HTTP_COOKIE" else ", ") + value
        else:
            environ[key] = value
    return environ


# -- chunked bodies --------------------------------------------------------------------------


@dataclass
class Chunked:
    raw: bytes  # the chunked framing, from the first chunk-size line to the final CRLF
    body: bytes  # what it de-chunks to
    trailers: list[tuple[str, str]] = field(default_factory=list)


@st.composite
def chunk_exts(draw, h11_compat: bool) -> str:
    """chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )."""
    out = ""
    for i in range(draw(st.integers(0, 2))):
        # h11's chunk-header regex has no BWS before the first ";" (see test_http_vs_h11)
        bws = st.just("") if h11_compat and i == 0 else st.text(" \t", max_size=2)
        out += draw(bws) + ";" + draw(st.text(" \t", max_size=1)) + draw(tokens)
        kind = draw(st.sampled_from(["none", "token", "quoted"]))
        if kind != "none":
            out += draw(st.text(" \t", max_size=1)) + "=" + draw(st.text(" \t", max_size=1))
            if kind == "token":
                out += draw(tokens)
            else:
                qd = st.sampled_from("\t !" + "".join(chr(c) for c in range(0x23, 0x7F) if c != 0x5C)
                                     + "\xe9\xff")
                qp = st.sampled_from('\t "\\a\xe9').map(lambda c: "\\" + c)
                out += '"' + "".join(draw(st.lists(st.one_of(qd, qp), max_size=6))) + '"'
    return out


@st.composite
def chunked_bodies(draw, h11_compat: bool = False, max_body: int = 300) -> Chunked:
    body = draw(st.binary(max_size=max_body))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(body) - 1)), max_size=6))) if body else []
    bounds = [0] + [c for c in cuts if c < len(body)] + [len(body)]
    raw = ""
    out = b""
    for a, b in zip(bounds, bounds[1:], strict=False):
        if a == b:
            continue
        size = format(b - a, "X" if draw(st.booleans()) else "x")
        size = "0" * draw(st.integers(0, 16 - len(size))) + size
        raw_line = size + draw(chunk_exts(h11_compat)) + "\r\n"
        raw += raw_line
        out_piece = body[a:b]
        out += out_piece
        raw += out_piece.decode("latin-1") + "\r\n"
    raw += "0" * draw(st.integers(1, 3)) + draw(chunk_exts(h11_compat)) + "\r\n"
    trailers = []
    for _ in range(draw(st.integers(0, 3))):
        name = draw(plain_names)
        value, sent = draw(field_values())
        trailers.append((name, value))
        raw += f"{name}:{sent}\r\n"
    raw += "\r\n"
    assert out == body
    return Chunked(raw.encode("latin-1"), body, trailers)


# -- whole requests ----------------------------------------------------------------------


@dataclass
class Message:
    raw: bytes  # head + framed body (+ any pipelined bytes)
    head_len: int  # bytes parse_head must consume, leading empty lines included
    request_line_end: int  # offset just past the request line's CRLF
    method: str
    target: str
    version: str
    fields: list[tuple[str, str]]  # (name as sent, field-value) in order
    body: bytes
    framing: str  # "none", "length", "chunked"
    content_length: int | None
    keep_alive: bool
    expect_continue: bool
    environ: dict[str, str]
    trailers: list[tuple[str, str]] = field(default_factory=list)


@st.composite
def http_messages(draw, h11_compat: bool = False, max_headers: int = 20) -> Message:
    """A valid HTTP/1.x request in origin-form and what parsing it must give.

    ``h11_compat`` keeps to the subset h11 also accepts (see test_http_vs_h11.py).
    """
    method = draw(st.one_of(st.sampled_from(["GET", "POST", "PUT", "DELETE", "OPTIONS",
                                             "PATCH", "HEAD"]), tokens))
    if method == "CONNECT":
        method = "GET"  # 501, by design
    path, decoded = draw(origin_paths())
    query = draw(queries)
    target = path if query is None else path + "?" + query
    version = draw(st.sampled_from(["HTTP/1.1", "HTTP/1.1", "HTTP/1.0"]))
    is11 = version == "HTTP/1.1"

    lines: list[tuple[str, str, str]] = []  # (name, value, text after the colon)
    for _ in range(draw(st.integers(0, max_headers))):
        name = draw(header_names)
        value, sent = draw(field_values())
        lines.append((name, value, sent))

    def insert(name: str, value: str) -> None:
        lines.insert(draw(st.integers(0, len(lines))), (name, value, " " + value))

    if is11 or draw(st.booleans()):
        insert(draw(st.sampled_from(["Host", "host", "HOST"])), draw(hosts))
    connection = draw(st.sampled_from([None, "close", "keep-alive", "Keep-Alive", "close, foo",
                                       "foo,,bar"]))
    if connection is not None:
        insert("Connection", connection)
    expect = draw(st.sampled_from([None, "100-continue", "100-Continue"]))
    if expect is not None:
        insert("Expect", expect)

    framing = draw(st.sampled_from(["none", "length", "chunked"] if is11 else ["none", "length"]))
    body = b""
    content_length = None
    chunked = None
    if framing == "length":
        body = draw(st.binary(max_size=300))
        content_length = len(body)
        form = draw(st.sampled_from(["plain", "zeros", "list", "repeat"]))
        if form == "plain":
            insert("Content-Length", str(content_length))
        elif form == "zeros":
            insert("content-length", "0" * draw(st.integers(1, 5)) + str(content_length))
        elif form == "list":
            insert("Content-Length", f"{content_length}, {content_length}")
        else:
            insert("Content-Length", str(content_length))
            insert("Content-Length", str(content_length))
    elif framing == "chunked":
        chunked = draw(chunked_bodies(h11_compat=h11_compat))
        body = chunked.body
        codings = ["chunked", "Chunked", "CHUNKED"]
        if not h11_compat:
            codings += ["chunked,", ", chunked"]  # empty list elements (RFC 9110 §5.6.1)
        insert("Transfer-Encoding", draw(st.sampled_from(codings)))

    leading = "" if h11_compat else "\r\n" * draw(st.sampled_from([0, 0, 0, 1, 4]))
    request_line = f"{method} {target} {version}\r\n"
    head = leading + request_line + "".join(f"{n}:{s}\r\n" for n, _, s in lines) + "\r\n"
    raw = head.encode("latin-1")
    if framing == "length":
        raw += body
    elif chunked is not None:
        raw += chunked.raw

    fields = [(n, v) for n, v, _ in lines]
    environ = {
        "REQUEST_METHOD": method,
        "REQUEST_URI": target,
        "SCRIPT_NAME": "",
        "SERVER_PROTOCOL": version,
        "PATH_INFO": decoded.decode("latin-1"),
        "QUERY_STRING": query or "",
    }
    environ.update(join_headers(fields))
    if content_length is not None:
        environ["CONTENT_LENGTH"] = str(content_length)
    if connection is None:
        keep_alive = is11
    else:
        conn_tokens = {t.strip(" \t").lower() for t in connection.split(",")}
        keep_alive = "close" not in conn_tokens and (is11 or "keep-alive" in conn_tokens)
    return Message(
        raw=raw,
        head_len=len(head),
        request_line_end=len(leading) + len(request_line),
        method=method,
        target=target,
        version=version,
        fields=fields,
        body=body,
        framing=framing,
        content_length=content_length,
        keep_alive=keep_alive,
        expect_continue=expect is not None and is11,
        environ=environ,
        trailers=chunked.trailers if chunked else [],
    )


# -- arbitrary byte streams ------------------------------------------------------------------

SPICE = [b"\r\n", b"\r", b"\n", b" ", b"\t", b":", b",", b";", b"\x00", b"\x7f", b"\xff",
         b"%", b"_", b"?", b"#", b"/", b"*", b"0", b"9", b"a", b"\"", b"\\", b"HTTP/1.1",
         b"GET ", b"Host: x\r\n", b"\r\n\r\n", b"Transfer-Encoding: chunked\r\n",
         b"Content-Length: 7\r\n", b"Expect: 100-continue\r\n", b"chunked"]
INSERTS = [b"\r", b"\n", b"\r\n", b"\x00", b" ", b"\t", b":", b"0", b"9", b"f", b";", b"=",
           b'"', b"\xe9", b"_", b"%"]


@st.composite
def mutated(draw, base) -> bytes:
    """``base`` with a few byte-level edits: flips, inserts, deletes, duplications."""
    data = bytearray(draw(base))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "dup", "truncate"]))
        pos = draw(st.integers(0, len(data)))
        if op == "flip" and pos < len(data):
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data[pos:pos] = draw(st.sampled_from(INSERTS))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 8))]
        elif op == "dup":
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 16))]
        elif op == "truncate":
            del data[pos:]
    return bytes(data)


http_streams = st.one_of(
    mutated(http_messages(max_headers=6).map(lambda m: m.raw)),
    st.binary(max_size=200),
    st.lists(st.sampled_from(SPICE), max_size=30).map(b"".join),
)


@st.composite
def splits(draw, data: bytes) -> list[int]:
    """Cumulative end offsets, the last being len(data)."""
    ends = draw(st.sets(st.integers(0, len(data)), max_size=8))
    return sorted(ends | {len(data)})


def pieces_at(data: bytes, ends: list[int]) -> list[bytes]:
    return [data[a:b] for a, b in zip([0] + ends[:-1], ends, strict=True)]


# -- parse_head ------------------------------------------------------------------------------


def head_outcome(buf: bytes, limit: int):
    """("none",) / ("request", summary) / ("error", status), checking the invariants."""
    try:
        result = parse_head(buf, limit)
    except ProtocolError as exc:
        assert exc.status in HTTP_STATUSES, (exc.status, exc.message)
        assert exc.message.isascii() and exc.message.isprintable(), exc.message
        return ("error", exc.status)
    if result is None:
        assert len(buf) <= limit  # an incomplete head is only held while it fits
        return ("none",)
    req, consumed = result
    assert isinstance(req, Request)
    assert 0 < consumed <= min(len(buf), limit)
    assert consumed == req.head_size
    assert buf[consumed - 4 : consumed] == b"\r\n\r\n"
    assert all(type(k) is str and type(v) is str for k, v in req.environ.items())
    assert req.version in ("HTTP/1.0", "HTTP/1.1")
    assert not (req.chunked and req.content_length is not None)
    return ("request", (consumed, req.environ, req.method, req.version, req.content_length,
                        req.chunked, req.keep_alive, req.expect_continue))


def check_split_independent(outcome, data: bytes, ends: list[int], *args) -> None:
    whole = outcome(data, *args)
    event(f"{whole[0]} {whole[1] if whole[0] == 'error' else ''}")
    seen = None
    for end in ends:
        got = outcome(data[:end], *args)
        if seen is None:
            if got[0] == "none":
                continue
            seen = got
            assert got[0] == whole[0], (end, got, whole)
            if got[0] == "request":
                assert got == whole, end
        else:
            # once decided, more bytes do not change the decision
            assert got[0] == seen[0], (end, got, seen)
            if got[0] == "request":
                assert got == seen, end
    if seen is None:
        assert whole == ("none",)


@fast(400)
@given(st.data(), http_streams, st.sampled_from([LIMIT, 8192, 256, 64, 16]))
def test_head_any_bytes_any_split(data, raw: bytes, limit: int) -> None:
    check_split_independent(head_outcome, raw, data.draw(splits(raw)), limit)


def _feed_chunked(decoder: ChunkedDecoder, pieces: list[bytes]) -> bytes:
    out = b""
    for piece in pieces:
        out += decoder.feed(piece)
    return out


@fast(250)
@given(st.data(), http_messages(), st.booleans())
def test_valid_requests_round_trip(data, msg: Message, pipelined: bool) -> None:
    after = b"GET /next HTTP/1.1\r\nHost: n\r\n\r\n" if pipelined else b""
    raw = msg.raw + after
    result = parse_head(raw, LIMIT)
    assert result is not None
    req, consumed = result
    assert consumed == msg.head_len
    assert req.environ == msg.environ
    assert (req.method, req.version) == (msg.method, msg.version)
    assert req.content_length == msg.content_length
    assert req.chunked == (msg.framing == "chunked")
    assert req.keep_alive == msg.keep_alive
    assert req.expect_continue == msg.expect_continue
    # the body, framed as the head says
    rest = raw[consumed:]
    if msg.framing == "chunked":
        decoder = ChunkedDecoder()
        ends = data.draw(splits(rest))
        pieces = pieces_at(rest, ends)
        assert _feed_chunked(decoder, pieces) == msg.body
        assert decoder.done
        assert decoder.leftover == after
    else:
        length = req.content_length or 0
        assert rest[:length] == msg.body
        assert rest[length:] == after
    # and every prefix of the head is "need more"
    for end in data.draw(splits(msg.raw[: consumed - 1])):
        assert parse_head(raw[:end], LIMIT) is None


@fast(150)
@given(http_messages(max_headers=8), st.integers(1, 700))
def test_head_limit(msg: Message, limit: int) -> None:
    """A head bigger than ``limit`` is refused (414/431), whole or fed a byte at a time."""
    raw = msg.raw[: msg.head_len]
    if msg.head_len <= limit:
        assert head_outcome(raw, limit)[0] == "request"
        return
    expected = 414 if msg.request_line_end > limit else 431
    assert head_outcome(raw, limit) == ("error", expected)
    for end in range(1, len(raw) + 1):
        got = head_outcome(raw[:end], limit)
        if got[0] != "none":
            assert got == ("error", expected), end
            assert end == limit + 1  # refused as soon as it is over, not later
            break
    else:
        raise AssertionError("never refused")


# -- ChunkedDecoder ----------------------------------------------------------------------


def chunked_outcome(pieces: list[bytes], limit: int | None):
    """Feed ``pieces``; ("ok", body so far, done, leftover) or ("error", status)."""
    decoder = ChunkedDecoder(limit)
    out = b""
    try:
        for piece in pieces:
            got = decoder.feed(piece)
            assert type(got) is bytes
            out += got
            # never more than limit bytes of body, nor more than a bounded framing line
            assert limit is None or len(out) <= limit
            assert len(decoder._line) <= 8192
    except ProtocolError as exc:
        assert exc.status in CHUNKED_STATUSES, (exc.status, exc.message)
        assert exc.message.isascii() and exc.message.isprintable(), exc.message
        assert limit is None or len(out) <= limit
        if exc.status == 413:
            assert limit is not None
        return ("error", exc.status)
    return ("ok", out, decoder.done, decoder.leftover if decoder.done else b"")


chunked_streams = st.one_of(
    mutated(chunked_bodies(max_body=60).map(lambda c: c.raw + b"GET / HTTP/1.1\r\n")),
    st.lists(st.sampled_from([b"0", b"1", b"5", b"a", b"F", b"\r\n", b";", b"x", b"=", b'"',
                              b"\\", b" ", b"\t", b"\n", b"hello", b"X: 1\r\n", b"\r\n\r\n"]),
             max_size=30).map(b"".join),
    st.binary(max_size=100),
)


@fast(300)
@given(st.data(), chunked_streams, st.one_of(st.none(), st.integers(0, 80)))
def test_chunked_any_bytes_any_split(data, raw: bytes, limit: int | None) -> None:
    whole = chunked_outcome([raw], limit)
    event(f"{whole[0]} {whole[1] if whole[0] == 'error' else whole[2]}")
    ends = data.draw(splits(raw))
    pieces = pieces_at(raw, ends)
    assert chunked_outcome(pieces, limit) == whole
    bytewise = chunked_outcome([raw[i : i + 1] for i in range(len(raw))], limit)
    assert bytewise == whole


@fast(150)
@given(st.data(), chunked_bodies(), st.integers(0, 400))
def test_chunked_limit(data, chunked: Chunked, limit: int) -> None:
    ends = data.draw(splits(chunked.raw))
    pieces = pieces_at(chunked.raw, ends)
    got = chunked_outcome(pieces, limit)
    if len(chunked.body) <= limit:
        assert got == ("ok", chunked.body, True, b"")
    else:
        assert got == ("error", 413)


# -- uwsgi -----------------------------------------------------------------------------------

CGI_KEYS = ["PATH_INFO", "QUERY_STRING", "SCRIPT_NAME", "SERVER_PROTOCOL", "REQUEST_URI",
            "CONTENT_TYPE", "SERVER_NAME", "SERVER_PORT", "REMOTE_ADDR", "DOCUMENT_ROOT"]
LATIN1 = "".join(chr(c) for c in range(256))
var_values = st.text(LATIN1, max_size=40)
ascii_uris = st.tuples(origin_paths(), queries, st.one_of(st.none(), st.text(PCHAR, max_size=5)))


SPECIAL_KEYS = {"REQUEST_METHOD", "CONTENT_LENGTH", "HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH",
                *CGI_KEYS}


def _uwsgi_key_ok(key: str) -> bool:
    # Random keys stay clear of the ones with a meaning (generated on purpose below) and of
    # those the parser rewrites: UWSGI_* (dropped), HTTP_CONTENT_* (folded into the CGI
    # ones); those have their own example tests.
    return not key.startswith("UWSGI_") and key not in SPECIAL_KEYS


@st.composite
def uwsgi_vars(draw) -> list[tuple[str, str]]:
    pairs = [("REQUEST_METHOD", draw(tokens))]
    for _ in range(draw(st.integers(0, 30))):
        kind = draw(st.sampled_from(["cgi", "http", "http", "other"]))
        if kind == "cgi":
            key = draw(st.sampled_from(CGI_KEYS))
        elif kind == "http":
            key = "HTTP_" + draw(st.one_of(
                st.sampled_from(["HOST", "COOKIE", "X_DUP", "ACCEPT"]),
                st.text(string.ascii_uppercase + "_", min_size=1, max_size=10)))
            if not _uwsgi_key_ok(key):
                continue
        else:
            key = draw(st.text(LATIN1, min_size=1, max_size=20).filter(_uwsgi_key_ok))
        if key == "REQUEST_URI":
            (path, _), query, frag = draw(ascii_uris)
            value = path + ("" if query is None else "?" + query) + ("" if frag is None else "#" + frag)
        else:
            value = draw(var_values)
        pairs.insert(draw(st.integers(0, len(pairs))), (key, value))
    length = draw(st.one_of(st.none(), st.just(""), st.integers(0, 10**12).map(str)))
    if length is not None:
        pairs.append(("CONTENT_LENGTH", length))
    return pairs


def uwsgi_expected(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """The documented shaping: HTTP_ repeats joined (Host: last wins), others last wins."""
    environ: dict[str, str] = {}
    for key, value in pairs:
        if key in environ and key.startswith("HTTP_") and key != "HTTP_HOST":
            environ[key] += ("; " if key == "HTTP_COOKIE" else ", ") + value
        else:
            environ[key] = value
    if environ.get("CONTENT_LENGTH") == "":
        del environ["CONTENT_LENGTH"]
    uri = environ.get("REQUEST_URI", "")
    if "PATH_INFO" not in environ:
        from urllib.parse import unquote_to_bytes

        path = uri.partition("?")[0].partition("#")[0]
        environ["PATH_INFO"] = unquote_to_bytes(path.encode("latin-1")).decode("latin-1")
    environ.setdefault("QUERY_STRING", uri.partition("?")[2].partition("#")[0])
    environ.setdefault("SCRIPT_NAME", "")
    environ.setdefault("SERVER_PROTOCOL", "HTTP/1.0")
    return environ


@fast(250)
@given(uwsgi_vars(), st.binary(max_size=50))
def test_uwsgi_round_trip(pairs: list[tuple[str, str]], body: bytes) -> None:
    packet = build_packet(pairs, body)
    result = parse_packet(packet, LIMIT)
    assert result is not None
    req, consumed = result
    datasize = int.from_bytes(packet[1:3], "little")
    assert consumed == 4 + datasize == len(packet) - len(body)
    assert req.head_size == datasize
    assert req.environ == uwsgi_expected(pairs)
    assert req.method == pairs[[k for k, _ in pairs].index("REQUEST_METHOD")][1]
    length = req.environ.get("CONTENT_LENGTH")
    assert req.content_length == (int(length) if length else None)
    for end in range(consumed):
        assert parse_packet(packet[:end], LIMIT) is None


def uwsgi_outcome(buf: bytes, limit: int):
    try:
        result = parse_packet(buf, limit)
    except ProtocolError as exc:
        assert exc.status in UWSGI_STATUSES, (exc.status, exc.message)
        # uwsgi_protocol quotes client bytes with !r, not ascii(): printable, maybe latin-1
        assert exc.message.isprintable(), exc.message
        return ("error", exc.status)
    datasize = int.from_bytes(buf[1:3], "little") if len(buf) >= 4 else None
    if result is None:
        assert datasize is None or len(buf) < 4 + datasize <= 4 + limit
        return ("none",)
    req, consumed = result
    assert isinstance(req, Request)
    assert datasize is not None and consumed == 4 + datasize <= len(buf)
    assert datasize <= limit
    assert req.method
    assert len(req.environ) <= MAX_VARS + 4  # + the defaults added after the count
    assert all(type(k) is str and type(v) is str for k, v in req.environ.items())
    assert req.content_length is None or req.content_length >= 0
    return ("request", (consumed, req.environ, req.method, req.version, req.content_length,
                        req.url_scheme))


@st.composite
def uwsgi_packets(draw) -> bytes:
    pairs = draw(uwsgi_vars())
    if draw(st.booleans()):
        # edit one key or value, then re-frame it so the vars walk itself is exercised
        i = draw(st.integers(0, len(pairs) - 1))
        key, value = pairs[i]
        edit = draw(mutated(st.just(value.encode("latin-1")))).decode("latin-1")
        pairs[i] = (key, edit) if draw(st.booleans()) else (edit or "K", value)
    return build_packet(pairs, draw(st.binary(max_size=10)),
                        modifier1=draw(st.sampled_from([0, 0, 0, 30, 1])))


uwsgi_streams = st.one_of(
    mutated(uwsgi_packets()),
    st.binary(max_size=100),
    st.tuples(st.sampled_from([b"\x00", b"\x1e", b"\x16"]), st.binary(max_size=80)).map(
        lambda t: t[0] + len(t[1]).to_bytes(2, "little") + b"\x00" + t[1]),
)


@fast(400)
@given(st.data(), uwsgi_streams, st.sampled_from([LIMIT, 4096, 64, 8]))
def test_uwsgi_any_bytes_any_split(data, raw: bytes, limit: int) -> None:
    check_split_independent(uwsgi_outcome, raw, data.draw(splits(raw)), limit)


# -- bugs the fuzzer found (fixed) ---------------------------------------------------------


def test_uwsgi_huge_content_length_is_a_400() -> None:
    packet = build_packet([("REQUEST_METHOD", "GET"), ("CONTENT_LENGTH", "1" * 4301)])
    assert uwsgi_outcome(packet, LIMIT) == ("error", 400)


def test_uwsgi_path_from_raw_latin1_uri() -> None:
    packet = build_packet([("REQUEST_METHOD", "GET"), ("REQUEST_URI", "/\xe9?q")])
    req, _ = parse_packet(packet, LIMIT)  # type: ignore[misc]
    assert req.environ["PATH_INFO"] == "/\xe9"  # as the http parser and nginx would give
