"""The uwsgi binary protocol (what nginx ``uwsgi_pass`` sends), sans-I/O.

``parse_packet`` turns the 4-byte header plus vars block into a ``Request``; the body that
follows is left in the buffer for the worker, which reads ``content_length`` bytes of it.
``build_packet`` is the client-side encoder (tests, our own tools).

Wire format and the acceptance rules we copy from uWSGI: /work/shared/reference/uwsgi-protocol.md.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable, Mapping
from urllib.parse import unquote_to_bytes

from .request import ProtocolError, Request

__all__ = ["MAX_VARS", "build_packet", "parse_packet"]

# uWSGI's default max-vars is 64, but nginx sends one var per client header (and, up to
# 1.22, one per *repeated* header), so 64 rejects real browsers behind big cookie/CSP
# setups. 1024 still bounds the work a hostile peer can make us do per packet.
MAX_VARS = 1024

# modifier1 0 is plain WSGI; 30 is WSGI with SCRIPT_NAME stripped from PATH_INFO.
_MODIFIERS = (0, 30)
_MODIFIER_MANAGE_PATH_INFO = 30

_HEADER = struct.Struct("<BHB")
_VERSION_RE = re.compile(r"HTTP/[0-9]\.[0-9]")  # nginx's $server_protocol: HTTP/1.0 ... 3.0
_U16 = struct.Struct("<H").unpack_from
_MAX_BLOCK = 0xFFFF

# The first 4 bytes of an HTTP/1 request line (or the HTTP/2 preface). None of them can start
# a valid uwsgi packet (modifier1 would be >= 65), so the check costs nothing on good input
# and replaces a baffling "datasize 21573" with what actually went wrong.
_HTTP_STARTS = frozenset(
    {
        b"GET ",
        b"POST",
        b"HEAD",
        b"PUT ",
        b"DELE",
        b"OPTI",
        b"PATC",
        b"CONN",
        b"TRAC",
        b"PRI ",
    }
)

# Keys whose value is not a request header but the code uWSGI would load or the
# environment it would set up for it; whoever reaches the socket could pick them.
_UWSGI_PREFIX = "UWSGI_"
_UWSGI_MARK = b"UWSGI_"

# nginx refuses a request with two Host headers, so a repeated HTTP_HOST can only come from
# config (``include uwsgi_params; uwsgi_param HTTP_HOST $http_host;`` sends both on nginx
# 1.22): the later, more specific line is what the admin meant; joining them would hand
# Django an invalid "a, a:8080" host.
_LAST_WINS_HTTP = frozenset({"HTTP_HOST"})


def _bad(message: str) -> ProtocolError:
    return ProtocolError(400, message)


def parse_packet(buf: bytes | bytearray, limit: int) -> tuple[Request, int] | None:
    """Parse one uwsgi request head from the start of ``buf``.

    Returns ``(request, consumed)`` with ``consumed = 4 + datasize`` (body bytes after it are
    not consumed), ``None`` when the header or vars block is still incomplete, or raises
    ``ProtocolError``. ``limit`` is the buffer-size option: the largest vars block accepted.
    """
    n = len(buf)
    if n < 4:
        return None
    if bytes(buf[:4]) in _HTTP_STARTS:
        raise _bad("HTTP spoken on a uwsgi socket (use an http socket, or nginx uwsgi_pass)")
    modifier1, datasize, modifier2 = _HEADER.unpack_from(buf)
    if modifier1 not in _MODIFIERS:
        hint = " (looks like TLS)" if modifier1 == 0x16 and datasize & 0xFF == 0x03 else ""
        raise ProtocolError(501, f"unsupported uwsgi modifier1 {modifier1}{hint}")
    if modifier2:
        raise ProtocolError(501, f"unsupported uwsgi modifier2 {modifier2}")
    if datasize == 0:
        raise _bad("empty uwsgi vars block")
    if datasize > limit:
        raise ProtocolError(
            431,
            f"uwsgi vars block of {datasize} bytes exceeds buffer-size {limit}",
            option="buffer-size",
        )
    end = 4 + datasize
    if n < end:
        return None

    block = bytes(buf[4:end])
    # One latin-1 decode of the whole block, then str slicing: cheaper than decoding each
    # key and value, and latin-1 maps byte offsets 1:1 onto str offsets.
    text = block.decode("latin-1")
    environ: dict[str, str] = {}
    repeats = 0
    pos = 0
    try:
        while pos < datasize:
            (klen,) = _U16(block, pos)
            if not klen:
                raise _bad(f"empty key in uwsgi vars block at offset {pos}")
            kend = pos + 2 + klen
            vstart = kend + 2
            # A key running past the end makes this unpack raise struct.error.
            vend = vstart + _U16(block, kend)[0]
            if vend > datasize:
                raise _bad(f"uwsgi value runs past the vars block end (offset {vstart})")
            key = text[pos + 2 : kend]
            value = text[vstart:vend]
            pos = vend
            if key in environ:
                repeats += 1
                if repeats > MAX_VARS:
                    # joining is quadratic: stop a flood of one repeated key early
                    raise _bad(f"more than {MAX_VARS} vars in the uwsgi vars block")
                if key.startswith("HTTP_") and key not in _LAST_WINS_HTTP:
                    # nginx <= 1.22 sends a repeated client header as repeated vars; join
                    # them the way nginx >= 1.23 (and RFC 9110 section 5.3) does.
                    sep = "; " if key == "HTTP_COOKIE" else ", "
                    value = environ[key] + sep + value
            environ[key] = value
    except struct.error:
        raise _bad(
            f"uwsgi vars block truncated at offset {pos} (a key runs past the end, or stray bytes)"
        ) from None
    # Counted after the fact so the common path pays nothing: datasize already bounds the
    # loop, this bounds the pairs (and the dict) a peer can make us build.
    if len(environ) + repeats > MAX_VARS:
        raise _bad(f"more than {MAX_VARS} vars in the uwsgi vars block")

    return _finish(environ, block, modifier1, datasize), end


def _finish(environ: dict[str, str], block: bytes, modifier1: int, datasize: int) -> Request:
    """Shape the raw vars into the CGI environ and the Request framing fields."""
    scheme_var = ""
    if _UWSGI_MARK in block:
        scheme_var = environ.get("UWSGI_SCHEME", "")
        for key in [k for k in environ if k.startswith(_UWSGI_PREFIX)]:
            del environ[key]

    method = environ.get("REQUEST_METHOD")
    if not method:
        raise _bad("uwsgi packet without REQUEST_METHOD")

    # The HTTP_ copies nginx adds for these two headers are duplicates of the CGI vars; the
    # client's own header is only a fallback for configs that do not send the CGI var.
    header_type = environ.pop("HTTP_CONTENT_TYPE", None)
    header_length = environ.pop("HTTP_CONTENT_LENGTH", None)
    if header_type is not None and "CONTENT_TYPE" not in environ:
        environ["CONTENT_TYPE"] = header_type
    raw_length = environ.get("CONTENT_LENGTH")
    if raw_length is None and header_length is not None:
        raw_length = environ["CONTENT_LENGTH"] = header_length
    content_length: int | None = None
    if raw_length is not None:
        if not raw_length:
            # nginx sends the param even without a body; "" means "no body", and Django
            # prefers an absent key to one int() cannot parse.
            del environ["CONTENT_LENGTH"]
        elif raw_length.isascii() and raw_length.isdigit() and len(raw_length) <= 18:
            content_length = int(raw_length)  # (18 digits: int() refuses > 4300, and the
            # http parser draws the same line)
        else:
            # uWSGI would take the leading digits ("12abc" -> 12); a body length we have to
            # guess at is how request smuggling starts.
            raise _bad(f"invalid CONTENT_LENGTH {ascii(raw_length[:40])}")

    if "PATH_INFO" not in environ:
        environ["PATH_INFO"] = _path_from_uri(environ.get("REQUEST_URI", ""))
    if "QUERY_STRING" not in environ:
        uri = environ.get("REQUEST_URI", "")
        environ["QUERY_STRING"] = uri.partition("?")[2].partition("#")[0]
    environ.setdefault("SCRIPT_NAME", "")
    version = environ.setdefault("SERVER_PROTOCOL", "HTTP/1.0")
    if _VERSION_RE.fullmatch(version) is None:
        # The response's status line starts with it: a value with CR/LF would let the peer
        # write headers of its own (response splitting). The app still sees the raw var.
        version = "HTTP/1.0"

    if modifier1 == _MODIFIER_MANAGE_PATH_INFO:
        _strip_script_name(environ)

    https = environ.get("HTTPS", "")
    if (
        https.lower() == "on"
        or https.startswith("1")
        or environ.get("REQUEST_SCHEME", "").lower() == "https"
        or scheme_var.lower() == "https"
    ):
        url_scheme = "https"
    else:
        url_scheme = "http"

    return Request(
        environ,
        method,
        version,
        content_length=content_length,
        chunked=False,
        # nginx's uwsgi upstream opens a connection per request; we close after each response.
        keep_alive=False,
        expect_continue=False,
        url_scheme=url_scheme,
        head_size=datasize,
    )


def _path_from_uri(uri: str) -> str:
    """PATH_INFO as nginx's $document_uri would be: the target's path, percent-decoded."""
    path = uri.partition("?")[0].partition("#")[0]
    if "://" in path[:8]:
        # absolute-form target: drop scheme and authority
        rest = path.partition("://")[2]
        slash = rest.find("/")
        path = rest[slash:] if slash >= 0 else "/"
    return unquote_to_bytes(path.encode("latin-1")).decode("latin-1")


def _strip_script_name(environ: dict[str, str]) -> None:
    """modifier1 30: mount under SCRIPT_NAME by removing it from the front of PATH_INFO.

    Only on a path-segment boundary: uWSGI's plain prefix match turns ``/application`` under
    ``/app`` into ``lication``.
    """
    script_name = environ["SCRIPT_NAME"].rstrip("/")
    if not script_name:
        return
    path_info = environ["PATH_INFO"]
    if path_info == script_name or path_info.startswith(script_name + "/"):
        environ["SCRIPT_NAME"] = script_name
        environ["PATH_INFO"] = path_info[len(script_name) :]


def _latin1(item: bytes | str) -> bytes:
    return item.encode("latin-1") if isinstance(item, str) else bytes(item)


def build_packet(
    vars: Iterable[tuple[bytes | str, bytes | str]] | Mapping[bytes | str, bytes | str],
    body: bytes = b"",
    modifier1: int = 0,
    modifier2: int = 0,
) -> bytes:
    """Encode a uwsgi request packet: header, vars block (in the given order), then ``body``.

    A list of pairs may repeat keys (as nginx <= 1.22 does). str is encoded as latin-1.
    ``CONTENT_LENGTH`` is not added: say it in ``vars`` if the body should be read.
    """
    pairs = vars.items() if isinstance(vars, Mapping) else vars
    parts: list[bytes] = []
    for key, value in pairs:
        k = _latin1(key)
        v = _latin1(value)
        if len(k) > _MAX_BLOCK or len(v) > _MAX_BLOCK:
            raise ValueError(f"uwsgi var too long: {k[:40]!r}")
        parts += (len(k).to_bytes(2, "little"), k, len(v).to_bytes(2, "little"), v)
    block = b"".join(parts)
    if len(block) > _MAX_BLOCK:
        raise ValueError(f"uwsgi vars block of {len(block)} bytes exceeds {_MAX_BLOCK}")
    return _HEADER.pack(modifier1, len(block), modifier2) + block + body
