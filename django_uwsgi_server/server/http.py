"""Sans-I/O HTTP/1.1 request parsing (RFC 9112), modelled on h11: bytes in, request out.

``parse_head`` turns the bytes received so far on a connection into a ``Request`` whose
``environ`` is already the CGI part of a WSGI environ; ``ChunkedDecoder`` de-chunks a request
body. Neither touches a socket or a clock, so both are tested by feeding bytes.

``parse_head`` is the server's hot path: one ``find`` for the end of the head, one latin-1
decode, then precompiled regexes that run in C. Every regex is linear on any input (no nested
ambiguous repeats, no unanchored scanning), so a hostile head of ``limit`` bytes costs
``O(limit)``.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from urllib.parse import unquote_to_bytes

from .request import ProtocolError, Request

__all__ = ["MAX_FIELDS", "STATUS_REASONS", "ChunkedDecoder", "error_response", "parse_head"]

HTTP11 = "HTTP/1.1"
HTTP10 = "HTTP/1.0"

# RFC 9110 §5.6.2: token = 1*tchar.
_TCHAR = r"!#$%&'*+\-.^_`|~0-9A-Za-z"

# RFC 9112 §3: request-line = method SP request-target SP HTTP-version, single SPs (we do
# not take the §3 "MAY parse on whitespace" leniency: differing splits are a smuggling
# vector). The target excludes CTLs, SP and "#" (a fragment is never part of a
# request-target, §3.2); obs-text (0x80-0xFF) is let through like Django's runserver does.
_REQUEST_LINE_RE = re.compile(rf"([{_TCHAR}]+) ([^\x00-\x20\x7f#]+) (HTTP/[0-9]\.[0-9])")
_VERSION_RE = re.compile(r"HTTP/[0-9]\.[0-9]")

# RFC 9112 §5 / RFC 9110 §5.5: field-line = field-name ":" OWS field-value OWS, where the
# value is VCHAR/obs-text words separated by SP/HTAB. The value group cannot start or end
# with whitespace, so it comes out trimmed. CR, LF, NUL and the other CTLs never match.
# Groups: name, leading OWS, value. The leading OWS is matched atomically (a lookahead
# captures it, the backreference consumes it; Python 3.10 has no possessive "*+"): left
# backtrackable, it and the trailing OWS could share a run of blanks in O(n^2) ways.
_FIELD = (
    rf"([{_TCHAR}]+):(?=([ \t]*))\2((?:[^\x00-\x20\x7f]+(?:[ \t]+[^\x00-\x20\x7f]+)*)?)"
    r"[ \t]*\r\n"
)
_FIELD_RE = re.compile(_FIELD)
# The block is cut with split(), which extracts every field in one C call; the pieces
# between matches (every 4th item) must all be empty, or some line is not a field line.
# The (?m)^ anchor lets a match start only at a line start, so the scan over junk stays
# linear instead of retrying the whole pattern at every offset.
_FIELD_SPLIT_RE = re.compile("(?m)^" + _FIELD)
_TOKEN_RE = re.compile(rf"[{_TCHAR}]+")
_TCHAR_BYTES = frozenset(i for i in range(128) if _TOKEN_RE.fullmatch(chr(i)))

# RFC 9110 §4.2.1 / RFC 3986 §3.2.2: host = IP-literal / IPv4address / reg-name, with an
# optional port = *DIGIT. reg-name covers IPv4; an empty host is invalid for "http" URIs.
_UNRESERVED_SUBDELIMS = r"A-Za-z0-9\-._~!$&'()*+,;="
_HOST_RE = re.compile(
    rf"(?:(?:[{_UNRESERVED_SUBDELIMS}]|%[0-9A-Fa-f]{{2}})+"
    r"|\[[0-9A-Fa-f:.]+\]"
    rf"|\[v[0-9A-Fa-f]+\.[{_UNRESERVED_SUBDELIMS}:]+\])"
    r"(?::[0-9]*)?"
)
# RFC 9112 §3.2.2 absolute-form; the target already has no "#" and no whitespace.
_ABSOLUTE_RE = re.compile(r"([A-Za-z][A-Za-z0-9+\-.]*)://([^/?]*)([^?]*)(?:\?(.*))?")
_CONTENT_LENGTH_RE = re.compile(r"[0-9]{1,18}")  # 18 digits: no int() of a 10 kB number

# Header field lines per request head: buffer-size bounds their bytes, this their number
# (each becomes an environ key Django copies; repeats are joined). The uwsgi parser's
# MAX_VARS is the same bound for what nginx forwards.
MAX_FIELDS = 1024

# RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request line
# (clients that send a stray CRLF after a POST body); more than a few is not a client bug.
_MAX_EMPTY_LINES = 4

# Header name -> environ key ("" = dropped). Filled lazily; bounded because the names come
# from clients, and each worker process lives for many requests.
_KEYS: dict[str, str] = {}
_MAX_KEYS = 2048
_SPECIAL_KEYS = {"CONTENT_TYPE": "CONTENT_TYPE", "CONTENT_LENGTH": "CONTENT_LENGTH"}


def _environ_key(name: str) -> str:
    # Names with "_" are dropped: once "-" becomes "_", "X_Forwarded_For" would be
    # indistinguishable from (and could override) "X-Forwarded-For". Django's runserver,
    # nginx and Apache drop them too.
    if "_" in name:
        key = ""
    else:
        upper = name.upper().replace("-", "_")
        key = _SPECIAL_KEYS.get(upper) or "HTTP_" + upper
    if len(_KEYS) < _MAX_KEYS:
        _KEYS[name] = key
    return key


for _name in (
    "Host", "User-Agent", "Accept", "Accept-Language", "Accept-Encoding", "Connection",
    "Cookie", "Referer", "Upgrade-Insecure-Requests", "Cache-Control", "Content-Type",
    "Content-Length", "Transfer-Encoding", "Expect", "Origin", "Authorization", "Pragma",
    "Sec-Fetch-Dest", "Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-User", "DNT",
    "If-None-Match", "If-Modified-Since", "X-Forwarded-For", "X-Forwarded-Proto",
    "X-Forwarded-Host", "X-Real-IP", "X-Requested-With", "X-CSRFToken", "Range",
):
    _environ_key(_name)
    _environ_key(_name.lower())
del _name


def _show(text: str | bytes | bytearray) -> str:
    """Client bytes for an error message: escaped (ascii() of latin-1 text), at most ~80."""
    if not isinstance(text, str):
        text = bytes(text).decode("latin-1")
    if len(text) > 80:
        return ascii(text[:80]) + "..."
    return ascii(text)


def _bad(message: str) -> ProtocolError:
    return ProtocolError(400, message)


def parse_head(buf: bytes | bytearray, limit: int) -> tuple[Request, int] | None:
    """Parse the request head at the start of ``buf`` (the bytes received so far).

    Returns ``(request, consumed)``, ``consumed`` being the size of the head up to and
    including its final CRLFCRLF (body bytes after it are left alone); ``None`` when the
    head is not complete yet and at most ``limit`` bytes arrived; or raises
    ``ProtocolError``. ``limit`` is the buffer-size option, the largest head accepted
    (414 when even the request line does not fit, else 431).

    Line endings must be CRLF: a bare LF is rejected with 400 (RFC 9112 §2.2 lets a
    recipient accept it, but a server that does while a proxy in front does not is open to
    request smuggling).
    """
    start = 0
    if buf.startswith(b"\r\n"):
        while buf.startswith(b"\r\n", start):
            if start == 2 * _MAX_EMPTY_LINES:
                raise _bad("too many empty lines before the request line")
            start += 2
    end = buf.find(b"\r\n\r\n", start)
    if end < 0:
        return _incomplete(buf, start, limit)
    consumed = end + 4
    if consumed > limit:
        raise _too_big(buf, start, limit)

    head = buf[start : end + 2].decode("latin-1")
    line_end = head.find("\r\n")
    match = _REQUEST_LINE_RE.fullmatch(head, 0, line_end)
    if match is None:
        raise _bad_request_line(head[:line_end])
    method, target, version = match.groups()
    if version != HTTP11 and version != HTTP10:
        # RFC 9110 §15.6.6. (§6.2 would let us serve 1.2 as 1.1; we answer 505 instead.)
        raise ProtocolError(505, f"unsupported HTTP version {version}")

    environ = {
        "REQUEST_METHOD": method,
        "REQUEST_URI": target,
        "SCRIPT_NAME": "",
        "SERVER_PROTOCOL": version,
    }
    if method == "CONNECT":
        # authority-form (RFC 9112 §3.2.3) is only for tunnels, which we do not make.
        raise ProtocolError(501, "CONNECT is not supported")
    authority = None
    if target[0] == "/":
        path, _, query = target.partition("?")
    elif target == "*":
        # RFC 9112 §3.2.4: asterisk-form is only for a server-wide OPTIONS.
        if method != "OPTIONS":
            raise _bad(f"request-target * with method {method}")
        path, query = "*", ""
    else:
        path, query, authority = _absolute_form(target)
    # PEP 3333: PATH_INFO is the decoded path, bytes mapped 1:1 to str via latin-1; the
    # decoding is done on bytes so that %xx and raw obs-text both mean one byte.
    environ["PATH_INFO"] = (
        unquote_to_bytes(path.encode("latin-1")).decode("latin-1") if "%" in path else path
    )
    environ["QUERY_STRING"] = query

    block = head[line_end + 2 :]
    if block:
        parts = _FIELD_SPLIT_RE.split(block)
        if any(parts[::4]):
            raise _bad_field(block)
        if len(parts) > 4 * MAX_FIELDS + 1:
            # RFC 6585 §5: 431 for a header section too large, in size or in number.
            raise ProtocolError(431, f"more than {MAX_FIELDS} header fields")
        keys = _KEYS
        for name, value in zip(parts[1::4], parts[3::4], strict=True):
            key = keys.get(name)
            if key is None:
                key = _environ_key(name)
            if not key:
                continue
            if key in environ:
                # RFC 9110 §5.3: repeated field lines are one comma-separated list; Cookie
                # is the exception, joined the way RFC 9113 §8.2.3 does.
                environ[key] += ("; " if key == "HTTP_COOKIE" else ", ") + value
            else:
                environ[key] = value

    is11 = version == HTTP11
    host = environ.get("HTTP_HOST")
    if host is None:
        # RFC 9112 §3.2: an HTTP/1.1 request without Host is a 400.
        if is11:
            raise _bad("missing Host header")
    elif _HOST_RE.fullmatch(host) is None and (host or is11):
        # Includes several Host lines, which the join above turned into "a, b".
        raise _bad(f"invalid Host header {_show(host)}")
    if authority is not None:
        # RFC 9112 §3.2.2: with absolute-form, the target's authority replaces Host.
        environ["HTTP_HOST"] = authority

    content_length = None
    chunked = False
    te = environ.get("HTTP_TRANSFER_ENCODING")
    cl = environ.get("CONTENT_LENGTH")
    if te is not None:
        chunked = _transfer_encoding(te, is11, cl is not None)
    elif cl is not None:
        content_length = _content_length(cl)
        environ["CONTENT_LENGTH"] = str(content_length)

    conn = environ.get("HTTP_CONNECTION")
    if conn is None:
        keep_alive = is11
    else:
        # RFC 9112 §9.3: 1.1 persists unless "close"; 1.0 only with "keep-alive".
        tokens = {t.strip(" \t").lower() for t in conn.split(",")}
        keep_alive = "close" not in tokens and (is11 or "keep-alive" in tokens)

    expect_continue = False
    expect = environ.get("HTTP_EXPECT")
    if expect is not None:
        for item in expect.split(","):
            item = item.strip(" \t")
            if item.lower() == "100-continue":
                # RFC 9110 §10.1.1: a 100-continue in an HTTP/1.0 request MUST be ignored.
                expect_continue = is11
            elif item:
                # RFC 9110 §10.1.1: 417 for an expectation we cannot meet.
                raise ProtocolError(417, f"unsupported expectation {_show(item)}")

    return (
        Request(
            environ,
            method,
            version,
            content_length,
            chunked,
            keep_alive,
            expect_continue,
            "http",
            consumed,
        ),
        consumed,
    )


def _incomplete(buf: bytes | bytearray, start: int, limit: int) -> None:
    """No CRLFCRLF yet: wait for more, unless the bytes so far already cannot be a head."""
    # Fail fast instead of waiting for the read timeout: a head using bare LFs would never
    # produce the CRLFCRLF we look for, and a TLS ClientHello (0x16) or other binary junk
    # cannot start a method token.
    if buf.count(b"\n") != buf.count(b"\r\n"):
        raise _bad("bare LF line ending (CRLF required)")
    if len(buf) > start:
        first = buf[start]
        if first not in _TCHAR_BYTES and not (first == 13 and len(buf) == start + 1):
            hint = " (looks like TLS: https sent to an http socket?)" if first == 0x16 else ""
            raise _bad(f"invalid request line start {_show(buf[start : start + 16])}{hint}")
    if len(buf) > limit:
        raise _too_big(buf, start, limit)
    return None


def _too_big(buf: bytes | bytearray, start: int, limit: int) -> ProtocolError:
    if buf.find(b"\r\n", start, limit) < 0:
        return ProtocolError(
            414, f"request line longer than buffer-size {limit}", option="buffer-size"
        )
    return ProtocolError(
        431, f"request head larger than buffer-size {limit}", option="buffer-size"
    )


def _bad_request_line(line: str) -> ProtocolError:
    """Name what is wrong with a request line the fast regex rejected."""
    if "\n" in line:
        return _bad("bare LF line ending (CRLF required)")
    parts = line.split(" ")
    if len(parts) != 3:
        return _bad(f"malformed request line {_show(line)}")
    method, target, version = parts
    if _TOKEN_RE.fullmatch(method) is None:
        return _bad(f"invalid method {_show(method)}")
    if _VERSION_RE.fullmatch(version) is None:
        return _bad(f"invalid HTTP version {_show(version)}")
    if version != HTTP11 and version != HTTP10:
        return ProtocolError(505, f"unsupported HTTP version {version}")
    return _bad(f"invalid request-target {_show(target)}")


def _absolute_form(target: str) -> tuple[str, str, str]:
    """RFC 9112 §3.2.2: ``http://authority/path?query`` -> (path, query, authority)."""
    match = _ABSOLUTE_RE.fullmatch(target)
    if match is None:
        # authority-form without CONNECT, a relative path, or junk.
        raise _bad(f"invalid request-target {_show(target)}")
    scheme, authority, path, query = match.groups()
    if scheme.lower() not in ("http", "https"):
        raise _bad(f"unsupported scheme in request-target {_show(target)}")
    if "@" in authority:
        # RFC 9110 §4.2.4: userinfo in an http(s) URI is an error to treat as such.
        raise _bad(f"userinfo in request-target {_show(target)}")
    if _HOST_RE.fullmatch(authority) is None:
        raise _bad(f"invalid authority in request-target {_show(target)}")
    return path or "/", query or "", authority


def _bad_field(block: str) -> ProtocolError:
    """Name the first field line the block regex rejected (RFC 9112 §5)."""
    for line in block.split("\r\n")[:-1]:
        if _FIELD_RE.fullmatch(line + "\r\n") is not None:
            continue
        if "\n" in line:
            return _bad("bare LF line ending (CRLF required)")
        if line[:1] in (" ", "\t"):
            # RFC 9112 §5.2: a server MUST reject obs-fold or replace it; we reject.
            return _bad(f"obsolete line folding in header {_show(line)}")
        name, colon, _ = line.partition(":")
        if not colon:
            return _bad(f"header line without a colon {_show(line)}")
        if name[-1:] in (" ", "\t"):
            # RFC 9112 §5.1: whitespace before the colon MUST be rejected with 400.
            return _bad(f"whitespace before the colon in header {_show(name)}")
        if _TOKEN_RE.fullmatch(name) is None:
            return _bad(f"invalid header name {_show(name)}")
        return _bad(f"invalid character in header {_show(name)}")
    return _bad("malformed header section")


def _content_length(value: str) -> int:
    """RFC 9110 §8.6: 1*DIGIT; a list of identical values (repeated lines) counts as one."""
    if _CONTENT_LENGTH_RE.fullmatch(value) is not None:
        return int(value)
    if "," in value:
        lengths = set()
        for item in value.split(","):
            item = item.strip(" \t")
            if _CONTENT_LENGTH_RE.fullmatch(item) is None:
                break
            lengths.add(int(item))
        else:
            if len(lengths) == 1:
                return lengths.pop()
            raise _bad(f"conflicting Content-Length values {_show(value)}")
    raise _bad(f"invalid Content-Length {_show(value)}")


def _transfer_encoding(value: str, is11: bool, has_content_length: bool) -> bool:
    """Validate Transfer-Encoding; True when the body is chunked (the only outcome)."""
    if not is11:
        # RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means faulty framing.
        raise _bad("Transfer-Encoding in an HTTP/1.0 request")
    if has_content_length:
        # RFC 9112 §6.1/§11.2: both framings at once is the classic smuggling setup.
        raise _bad("both Transfer-Encoding and Content-Length")
    codings = [c.strip(" \t").lower() for c in value.split(",")]
    codings = [c for c in codings if c]  # RFC 9110 §5.6.1: empty list elements are ignored
    if not codings or codings[-1] != "chunked" or codings.count("chunked") > 1:
        # RFC 9112 §6.3 (4): no chunked as the final coding -> length unknowable -> 400.
        raise _bad(f"invalid Transfer-Encoding {_show(value)}")
    if len(codings) > 1:
        # RFC 9112 §6.1: a transfer coding we do not implement SHOULD get a 501.
        raise ProtocolError(501, f"unsupported transfer coding {_show(value)}")
    return True


# -- chunked bodies ----------------------------------------------------------------------

# RFC 9112 §7.1: chunk-size = 1*HEXDIG, then chunk-ext = *( BWS ";" BWS name [BWS "=" BWS
# (token / quoted-string)] ). Validated strictly: lax extension parsing (bare CR/LF or
# quotes inside) is where chunked smuggling bugs live.
_QUOTED = r'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"'
_CHUNK_LINE_RE = re.compile(
    rf"([0-9A-Fa-f]{{1,16}})"
    rf"(?:[ \t]*;[ \t]*[{_TCHAR}]+(?:[ \t]*=[ \t]*(?:[{_TCHAR}]+|{_QUOTED}))?)*\r\n".encode(
        "latin-1"
    )
)
_FIELD_BYTES_RE = re.compile(_FIELD.encode("latin-1"))

_MAX_CHUNK_LINE = 4096
_MAX_TRAILERS = 8192

_SIZE, _DATA, _DATA_END, _TRAILER, _DONE = range(5)


class ChunkedDecoder:
    """De-chunks a request body fed in arbitrary pieces (RFC 9112 §7.1).

    ``feed(data)`` returns the body bytes decoded from ``data`` (maybe ``b""``); partial
    framing lines are kept until their CRLF arrives, chunk data is passed through without
    buffering. ``done`` turns true after the last chunk and the trailer section; then
    ``leftover`` holds the bytes after the body (a pipelined request). Trailer fields are
    validated and discarded. ``limit`` bounds the decoded size: 413 as soon as a chunk
    size would exceed it. Errors are ``ProtocolError``; after one the decoder is unusable.
    """

    __slots__ = ("limit", "done", "leftover", "_state", "_line", "_remaining", "_total",
                 "_trailer_size", "_error")

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self.done = False
        self.leftover = b""
        self._state = _SIZE
        self._line = bytearray()  # an incomplete framing line from the previous feed
        self._remaining = 0  # chunk data bytes still to come
        self._total = 0
        self._trailer_size = 0
        self._error: ProtocolError | None = None

    def feed(self, data: bytes | bytearray | memoryview) -> bytes:
        """Decode ``data``; return the body bytes it completed (possibly ``b""``)."""
        if self._error is not None:
            raise self._error
        if self._state == _DONE:
            self.leftover += bytes(data)
            return b""
        if not isinstance(data, (bytes, bytearray)):
            data = bytes(data)  # find() is needed, and a memoryview has none
        try:
            return self._feed(data)
        except ProtocolError as exc:
            self._error = exc
            raise

    def _feed(self, data: bytes | bytearray) -> bytes:
        out: list[bytes] = []
        pos = 0
        size = len(data)
        # Slicing a memoryview copies each data run once (into bytes); the view is released
        # before returning so the caller may still resize a bytearray it passed in.
        with memoryview(data) as view:
            while pos < size:
                state = self._state
                if state == _DATA:
                    take = min(self._remaining, size - pos)
                    if take == size and type(data) is bytes:
                        out.append(data)  # the common big-body case: no copy at all
                    else:
                        out.append(bytes(view[pos : pos + take]))
                    pos += take
                    self._remaining -= take
                    if not self._remaining:
                        self._state = _DATA_END
                    continue
                line, pos = self._take_line(data, pos, state)
                if line is None:
                    break  # the rest of data is a partial line, kept in self._line
                if state == _SIZE:
                    self._chunk_size(line)
                elif state == _DATA_END:
                    if line != b"\r\n":
                        raise _bad("chunk data not followed by CRLF")
                    self._state = _SIZE
                elif line == b"\r\n":
                    self._state = _DONE
                    self.done = True
                    self.leftover = bytes(view[pos:])
                    break
                elif _FIELD_BYTES_RE.fullmatch(line) is None:
                    # Trailers are discarded, but still parsed as field lines (RFC 9112
                    # §7.1.2) so that junk there cannot hide a request.
                    raise _bad(f"invalid trailer field {_show(line[:-2])}")
        if not out:
            return b""
        return out[0] if len(out) == 1 else b"".join(out)

    def _take_line(
        self, data: bytes | bytearray, pos: int, state: int
    ) -> tuple[bytes | None, int]:
        """The framing line at ``pos`` completed by ``data`` and the position after it."""
        pending = self._line
        if state == _SIZE:
            room = _MAX_CHUNK_LINE - len(pending)
        elif state == _DATA_END:
            room = 2 - len(pending)
        else:
            room = _MAX_TRAILERS - self._trailer_size - len(pending)
        # Search only as far as the line may reach: junk never gets scanned past the bound.
        nl = data.find(b"\n", pos, pos + room)
        if nl < 0:
            if len(data) - pos >= room:
                raise self._overlong(state)
            pending += data[pos:]
            return None, len(data)
        if pending:
            line = bytes(pending) + data[pos : nl + 1]
            pending.clear()
        else:
            line = bytes(data[pos : nl + 1])
        if line[-2:-1] != b"\r":
            raise _bad("bare LF in chunked framing (CRLF required)")
        if state == _TRAILER:
            self._trailer_size += len(line)
        return line, nl + 1

    def _overlong(self, state: int) -> ProtocolError:
        if state == _SIZE:
            return _bad(f"chunk size line longer than {_MAX_CHUNK_LINE} bytes")
        if state == _DATA_END:
            return _bad("chunk data not followed by CRLF")
        return ProtocolError(431, f"chunked trailer section larger than {_MAX_TRAILERS} bytes")

    def _chunk_size(self, line: bytes) -> None:
        match = _CHUNK_LINE_RE.fullmatch(line)
        if match is None:
            raise _bad(f"invalid chunk size line {_show(line[:-2])}")
        n = int(match.group(1), 16)
        if n == 0:
            self._state = _TRAILER  # last-chunk (§7.1): trailer section, then CRLF
            return
        total = self._total + n
        if self.limit is not None and total > self.limit:
            # Refused on the announced size, before its data is even received.
            raise ProtocolError(
                413,
                f"chunked request body over limit-post ({self.limit})",
                option="limit-post",
            )
        self._total = total
        self._remaining = n
        self._state = _DATA


# -- responses ---------------------------------------------------------------------------

STATUS_REASONS: dict[int, bytes] = {s.value: s.phrase.encode("latin-1") for s in HTTPStatus}

_UNSAFE_RE = re.compile(r"[^\x20-\x7e\t\n]")


def error_response(status: int, message: str = "", keep_alive: bool = False) -> bytes:
    """A complete, short HTTP/1.1 response for a status we produce ourselves.

    The body is ``"<status> <reason>\\n"`` plus ``message`` on a line of its own, with
    anything but printable ASCII escaped, so client bytes quoted in a message reach
    neither the header section nor a terminal raw.
    """
    reason = STATUS_REASONS.get(status, b"Unknown")
    body = b"%d %s\n" % (status, reason)
    if message:
        message = _UNSAFE_RE.sub(lambda m: ascii(m.group())[1:-1], message.rstrip("\n"))
        body += message.encode("ascii") + b"\n"
    head = b"HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n" % (
        status,
        reason,
        len(body),
    )
    if not keep_alive:
        head += b"Connection: close\r\n"
    return head + b"\r\n" + body
