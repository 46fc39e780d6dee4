"""The uwsgi packet parser: framing, validation, environ shaping (reference: uwsgi-protocol.md)."""

from __future__ import annotations

import random
import time

import pytest

from django_uwsgi_server.server.request import ProtocolError, Request
from django_uwsgi_server.server.uwsgi_protocol import MAX_VARS, build_packet, parse_packet

LIMIT = 4096

# §5 of the reference, byte for byte.
WORKED_EXAMPLE = bytes.fromhex(
    "00 42 00 00"
    "0e 00 52 45 51 55 45 53 54 5f 4d 45 54 48 4f 44"
    "04 00 50 4f 53 54"
    "09 00 50 41 54 48 5f 49 4e 46 4f"
    "02 00 2f 61"
    "0e 00 43 4f 4e 54 45 4e 54 5f 4c 45 4e 47 54 48"
    "01 00 32"
    "06 00 48 54 54 50 5f 58"
    "00 00"
    "68 69"
)

# The vars Debian nginx 1.22 sends for `GET /p?q=1` with its stock uwsgi_params.
NGINX_GET = [
    ("QUERY_STRING", "q=1"),
    ("REQUEST_METHOD", "GET"),
    ("CONTENT_TYPE", ""),
    ("CONTENT_LENGTH", ""),
    ("REQUEST_URI", "/p?q=1"),
    ("PATH_INFO", "/p"),
    ("DOCUMENT_ROOT", "/etc/nginx/html"),
    ("SERVER_PROTOCOL", "HTTP/1.1"),
    ("REQUEST_SCHEME", "http"),
    ("REMOTE_ADDR", "127.0.0.1"),
    ("REMOTE_PORT", "40000"),
    ("SERVER_PORT", "8080"),
    ("SERVER_NAME", "localhost"),
    ("HTTP_HOST", "localhost"),
    ("HTTP_USER_AGENT", "test"),
]


def parse(vars, body: bytes = b"", modifier1: int = 0, limit: int = LIMIT) -> Request:
    result = parse_packet(build_packet(vars, body, modifier1), limit)
    assert result is not None
    return result[0]


def env(*pairs: tuple[str, str], method: str = "GET") -> list[tuple[str, str]]:
    return [("REQUEST_METHOD", method), *pairs]


def raises(packet: bytes, limit: int = LIMIT) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        parse_packet(packet, limit)
    return info.value


# -- framing --------------------------------------------------------------------------------


def test_worked_example_is_byte_exact() -> None:
    built = build_packet(
        [("REQUEST_METHOD", "POST"), ("PATH_INFO", "/a"), ("CONTENT_LENGTH", "2"), ("HTTP_X", "")],
        b"hi",
    )
    assert built == WORKED_EXAMPLE
    assert len(WORKED_EXAMPLE) == 4 + 66 + 2


def test_worked_example_parses() -> None:
    result = parse_packet(WORKED_EXAMPLE, LIMIT)
    assert result is not None
    request, consumed = result
    assert consumed == 70
    assert WORKED_EXAMPLE[consumed:] == b"hi"
    assert request.method == "POST"
    assert request.version == "HTTP/1.0"  # no SERVER_PROTOCOL in the packet
    assert request.content_length == 2
    assert request.head_size == 66
    assert request.keep_alive is False
    assert request.chunked is False
    assert request.expect_continue is False
    assert request.url_scheme == "http"
    assert request.environ == {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/a",
        "CONTENT_LENGTH": "2",
        "HTTP_X": "",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.0",
    }


def test_nginx_get() -> None:
    request = parse(NGINX_GET)
    assert request.method == "GET"
    assert request.version == "HTTP/1.1"
    assert request.content_length is None
    assert "CONTENT_LENGTH" not in request.environ
    assert request.environ["CONTENT_TYPE"] == ""
    assert request.environ["PATH_INFO"] == "/p"
    assert request.environ["QUERY_STRING"] == "q=1"
    assert request.environ["SCRIPT_NAME"] == ""
    assert request.environ["HTTP_HOST"] == "localhost"
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in request.environ.items())


@pytest.mark.parametrize("kind", [bytes, bytearray])
def test_every_split_point(kind: type) -> None:
    packet = build_packet(NGINX_GET + [("CONTENT_LENGTH", "5")], b"hello")
    head = len(packet) - 5
    for i in range(len(packet) + 1):
        result = parse_packet(kind(packet[:i]), LIMIT)
        if i < head:
            assert result is None, i
        else:
            assert result is not None, i
            request, consumed = result
            assert consumed == head
            assert request.content_length == 5


def test_body_and_next_bytes_are_not_consumed() -> None:
    packet = build_packet(env(("CONTENT_LENGTH", "3")), b"abc")
    request, consumed = parse_packet(packet + b"garbage", LIMIT)  # type: ignore[misc]
    assert (packet + b"garbage")[consumed:] == b"abcgarbage"


def test_round_trip_random_vars() -> None:
    rng = random.Random(1234)
    for _ in range(200):
        pairs = [("REQUEST_METHOD", "PUT")]
        for i in range(rng.randrange(0, 30)):
            key = f"K{i}_" + "".join(rng.choice("ABCXYZ_") for _ in range(rng.randrange(0, 10)))
            value = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 50)))
            pairs.append((key, value.decode("latin-1")))
        request = parse(pairs, limit=65535)
        for key, value in pairs:
            assert request.environ[key] == value


def test_latin1_decoding() -> None:
    request = parse([(b"REQUEST_METHOD", b"GET"), (b"HTTP_X_\xe9", b"caf\xc3\xa9 \xff")])
    assert request.environ["HTTP_X_\xe9"] == "caf\xc3\xa9 \xff"


# -- limits ---------------------------------------------------------------------------------


def test_limit_exactly_at_is_accepted() -> None:
    packet = build_packet(env(("HTTP_BIG", "x" * 100)))
    datasize = len(packet) - 4
    assert parse_packet(packet, datasize) is not None


def test_limit_exceeded_is_431() -> None:
    packet = build_packet(env(("HTTP_BIG", "x" * 100)))
    datasize = len(packet) - 4
    error = raises(packet, datasize - 1)
    assert error.status == 431
    assert error.option == "buffer-size"
    assert str(datasize) in error.message and str(datasize - 1) in error.message


def test_limit_is_checked_from_the_header_alone() -> None:
    # no need to wait for 64 KiB that will be refused anyway
    error = raises(b"\x00\xff\xff\x00", 4096)
    assert error.status == 431


def test_largest_block() -> None:
    # 65535 is the most datasize can say
    packet = build_packet(env(("HTTP_BIG", "x" * (65535 - 4 - 14 - 3 - 4 - 8))))
    assert len(packet) == 4 + 65535
    assert parse_packet(packet, 65535) is not None
    with pytest.raises(ValueError):
        build_packet(env(("HTTP_BIG", "x" * 65535)))


def test_max_vars() -> None:
    fits = env(*[(f"V{i}", "") for i in range(MAX_VARS - 1)])
    assert parse(fits, limit=65535)
    error = raises(build_packet([*fits, ("ONE_MORE", "")]), 65535)
    assert error.status == 400


def test_flood_of_one_repeated_header_is_bounded() -> None:
    error = raises(build_packet(env(*[("HTTP_X", "a")] * (MAX_VARS + 1))), 65535)
    assert error.status == 400


# -- invalid packets ------------------------------------------------------------------------


def block(raw: bytes) -> bytes:
    """A header announcing exactly ``raw`` as the vars block."""
    return bytes([0]) + len(raw).to_bytes(2, "little") + b"\x00" + raw


GOOD = build_packet(env())[4:]


@pytest.mark.parametrize(
    ("packet", "status"),
    [
        pytest.param(b"\x00\x00\x00\x00", 400, id="datasize-0"),
        pytest.param(block(GOOD + b"\x00\x00\x01\x00a"), 400, id="empty-key"),
        pytest.param(block(GOOD + b"\x05\x00ab"), 400, id="key-past-end"),
        pytest.param(block(GOOD + b"\x02\x00ab"), 400, id="key-without-value-length"),
        pytest.param(block(GOOD + b"\x02\x00ab\x01"), 400, id="key-with-half-value-length"),
        pytest.param(block(GOOD + b"\x02\x00ab\x05\x00xy"), 400, id="value-past-end"),
        pytest.param(block(GOOD + b"\x01"), 400, id="stray-1"),
        pytest.param(block(GOOD + b"\x01\x00"), 400, id="stray-2"),
        pytest.param(block(GOOD + b"\x01\x00A"), 400, id="stray-3"),
        pytest.param(build_packet(env(), modifier1=5), 501, id="modifier1-psgi"),
        pytest.param(build_packet(env(), modifier1=100), 501, id="modifier1-ping"),
        pytest.param(build_packet(env(), modifier1=255), 501, id="modifier1-255"),
        pytest.param(build_packet(env(), modifier2=1), 501, id="modifier2"),
        pytest.param(build_packet([("PATH_INFO", "/")]), 400, id="no-method"),
        pytest.param(build_packet([("REQUEST_METHOD", "")]), 400, id="empty-method"),
    ],
)
def test_invalid_packet(packet: bytes, status: int) -> None:
    assert raises(packet).status == status


@pytest.mark.parametrize("value", ["12abc", "-1", "+5", " 5", "5 ", "0x10", "1_0", "\xb2", "1.0"])
def test_invalid_content_length(value: str) -> None:
    error = raises(build_packet(env(("CONTENT_LENGTH", value))))
    assert error.status == 400
    assert "CONTENT_LENGTH" in error.message


def test_tls_on_uwsgi_port_is_named() -> None:
    error = raises(bytes.fromhex("16 03 01 02 00 01 00 01 fc 03 03"))
    assert error.status == 501
    assert "TLS" in error.message


@pytest.mark.parametrize(
    "start",
    [b"GET ", b"POST", b"HEAD", b"PUT ", b"DELETE", b"OPTIONS", b"PATCH", b"CONNECT", b"TRACE"],
)
def test_http_on_uwsgi_socket(start: bytes) -> None:
    request_line = start + (b"" if start.endswith(b" ") else b" ") + b"/ HTTP/1.1\r\n"
    error = raises(request_line[:4])  # known from the first 4 bytes
    assert error.status == 400
    assert error.message.startswith("HTTP spoken on a uwsgi socket")
    assert raises(request_line + b"Host: x\r\n\r\n").status == 400
    assert parse_packet(request_line[:3], LIMIT) is None


def test_http2_preface_on_uwsgi_socket() -> None:
    assert "HTTP spoken" in raises(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").message


@pytest.mark.parametrize("size", [0, 1, 2, 3])
def test_short_header_waits(size: int) -> None:
    assert parse_packet(b"\x00\x10\x00\x00"[:size], LIMIT) is None


# -- environ shaping ------------------------------------------------------------------------


def test_repeated_header_nginx_122_style_is_joined() -> None:
    request = parse(env(("HTTP_X_FOO", "a"), ("HTTP_ACCEPT", "*/*"), ("HTTP_X_FOO", "b")))
    assert request.environ["HTTP_X_FOO"] == "a, b"


def test_repeated_header_nginx_123_style_is_kept() -> None:
    assert parse(env(("HTTP_X_FOO", "a, b"))).environ["HTTP_X_FOO"] == "a, b"


def test_three_repeats() -> None:
    request = parse(env(("HTTP_X", "a"), ("HTTP_X", ""), ("HTTP_X", "c")))
    assert request.environ["HTTP_X"] == "a, , c"


def test_cookies_joined_with_semicolon() -> None:
    request = parse(env(("HTTP_COOKIE", "a=1"), ("HTTP_COOKIE", "b=2; c=3")))
    assert request.environ["HTTP_COOKIE"] == "a=1; b=2; c=3"


def test_repeated_non_http_var_last_wins() -> None:
    request = parse(env(("SCRIPT_NAME", "/a"), ("SERVER_NAME", "x"), ("SCRIPT_NAME", "/b")))
    assert request.environ["SCRIPT_NAME"] == "/b"


def test_repeated_http_host_last_wins() -> None:
    # `include uwsgi_params; uwsgi_param HTTP_HOST $http_host;` sends both on nginx 1.22
    request = parse(env(("HTTP_HOST", "example.com"), ("HTTP_HOST", "example.com:8080")))
    assert request.environ["HTTP_HOST"] == "example.com:8080"


def test_empty_content_length_is_absent() -> None:
    request = parse(env(("CONTENT_LENGTH", ""), ("HTTP_CONTENT_LENGTH", "")))
    assert request.content_length is None
    assert "CONTENT_LENGTH" not in request.environ
    assert "HTTP_CONTENT_LENGTH" not in request.environ


def test_no_content_length() -> None:
    request = parse(env())
    assert request.content_length is None
    assert "CONTENT_LENGTH" not in request.environ


@pytest.mark.parametrize(("value", "expected"), [("0", 0), ("7", 7), ("007", 7), ("99999", 99999)])
def test_content_length(value: str, expected: int) -> None:
    assert parse(env(("CONTENT_LENGTH", value), method="POST")).content_length == expected


def test_http_content_duplicates_dropped() -> None:
    request = parse(
        env(
            ("CONTENT_TYPE", "text/plain"),
            ("CONTENT_LENGTH", "3"),
            ("HTTP_CONTENT_TYPE", "text/plain"),
            ("HTTP_CONTENT_LENGTH", "3"),
        )
    )
    assert request.environ["CONTENT_TYPE"] == "text/plain"
    assert request.environ["CONTENT_LENGTH"] == "3"
    assert "HTTP_CONTENT_TYPE" not in request.environ
    assert "HTTP_CONTENT_LENGTH" not in request.environ


def test_http_content_headers_fill_in_missing_cgi_vars() -> None:
    request = parse(env(("HTTP_CONTENT_TYPE", "a/b"), ("HTTP_CONTENT_LENGTH", "4")))
    assert request.environ["CONTENT_TYPE"] == "a/b"
    assert request.environ["CONTENT_LENGTH"] == "4"
    assert request.content_length == 4
    assert raises(build_packet(env(("HTTP_CONTENT_LENGTH", "4x")))).status == 400


def test_empty_content_type_is_kept_and_not_overridden() -> None:
    request = parse(env(("CONTENT_TYPE", ""), ("HTTP_CONTENT_TYPE", "a/b")))
    assert request.environ["CONTENT_TYPE"] == ""


def test_defaults_filled() -> None:
    request = parse([("REQUEST_METHOD", "GET")])
    assert request.environ == {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "",
        "QUERY_STRING": "",
        "SCRIPT_NAME": "",
        "SERVER_PROTOCOL": "HTTP/1.0",
    }
    assert request.version == "HTTP/1.0"


@pytest.mark.parametrize("version", ["HTTP/1.0", "HTTP/1.1", "HTTP/2.0", "HTTP/3.0"])
def test_server_protocol_is_the_response_version(version: str) -> None:
    assert parse(env(("SERVER_PROTOCOL", version))).version == version


@pytest.mark.parametrize(
    "value", ["HTTP/1.1\r\nX-Injected: 1", "HTTP/1.1 200 OK\r\n", "", "HTTP/1.1\n", "junk"]
)
def test_unsafe_server_protocol_never_reaches_the_status_line(value: str) -> None:
    # The worker writes req.version at the start of the response: CR/LF there would let the
    # peer split the response. The app still sees the var as sent.
    request = parse(env(("SERVER_PROTOCOL", value)))
    assert request.version == "HTTP/1.0"
    assert request.environ["SERVER_PROTOCOL"] == value


@pytest.mark.parametrize(
    ("uri", "path", "query"),
    [
        ("/a%20b%2Fc?x=%20&y", "/a b/c", "x=%20&y"),
        ("/caf%C3%A9", "/caf\xc3\xa9", ""),  # latin-1 of the UTF-8 bytes, as PEP 3333 wants
        ("/%e9", "/\xe9", ""),
        ("http://example.com/x/y?z", "/x/y", "z"),
        ("https://example.com", "/", ""),
        ("*", "*", ""),
        ("", "", ""),
    ],
)
def test_path_info_from_request_uri(uri: str, path: str, query: str) -> None:
    request = parse(env(("REQUEST_URI", uri)))
    assert request.environ["PATH_INFO"] == path
    assert request.environ["QUERY_STRING"] == query
    assert request.environ["REQUEST_URI"] == uri


def test_sent_path_info_and_query_win_over_request_uri() -> None:
    request = parse(env(("REQUEST_URI", "/x?y"), ("PATH_INFO", "/p"), ("QUERY_STRING", "")))
    assert request.environ["PATH_INFO"] == "/p"
    assert request.environ["QUERY_STRING"] == ""


@pytest.mark.parametrize(
    ("script_name", "path_info", "expected_script", "expected_path"),
    [
        ("/app", "/app/x", "/app", "/x"),
        ("/app", "/app", "/app", ""),
        ("/app/", "/app/x", "/app", "/x"),
        ("/app", "/application", "/app", "/application"),  # not a segment boundary
        ("/app", "/other", "/app", "/other"),
        ("", "/app/x", "", "/app/x"),
        ("/", "/x", "/", "/x"),
    ],
)
def test_modifier30_strips_script_name(
    script_name: str, path_info: str, expected_script: str, expected_path: str
) -> None:
    request = parse(env(("SCRIPT_NAME", script_name), ("PATH_INFO", path_info)), modifier1=30)
    assert request.environ["SCRIPT_NAME"] == expected_script
    assert request.environ["PATH_INFO"] == expected_path


def test_modifier0_does_not_strip() -> None:
    request = parse(env(("SCRIPT_NAME", "/app"), ("PATH_INFO", "/app/x")))
    assert request.environ["PATH_INFO"] == "/app/x"


def test_modifier30_derived_path_info() -> None:
    request = parse(env(("SCRIPT_NAME", "/app"), ("REQUEST_URI", "/app/x%21?q")), modifier1=30)
    assert request.environ["PATH_INFO"] == "/x!"


@pytest.mark.parametrize(
    ("pairs", "scheme"),
    [
        ([], "http"),
        ([("HTTPS", "on")], "https"),
        ([("HTTPS", "ON")], "https"),
        ([("HTTPS", "1")], "https"),
        ([("HTTPS", "1.0")], "https"),
        ([("HTTPS", "off")], "http"),
        ([("HTTPS", "0")], "http"),
        ([("HTTPS", "")], "http"),
        ([("REQUEST_SCHEME", "https")], "https"),
        ([("REQUEST_SCHEME", "HTTPS")], "https"),
        ([("REQUEST_SCHEME", "http")], "http"),
        ([("REQUEST_SCHEME", "gopher")], "http"),
        ([("UWSGI_SCHEME", "https")], "https"),
        ([("HTTP_X_FORWARDED_PROTO", "https")], "http"),
        ([("HTTP_X_FORWARDED_SSL", "on")], "http"),
        ([("REQUEST_SCHEME", "http"), ("HTTPS", "on")], "https"),
    ],
)
def test_url_scheme(pairs: list[tuple[str, str]], scheme: str) -> None:
    assert parse(env(*pairs)).url_scheme == scheme


@pytest.mark.parametrize(
    "key",
    [
        "UWSGI_SCRIPT",
        "UWSGI_MODULE",
        "UWSGI_CALLABLE",
        "UWSGI_FILE",
        "UWSGI_PYHOME",
        "UWSGI_CHDIR",
        "UWSGI_SETENV",
        "UWSGI_POSTFILE",
        "UWSGI_TOUCH_RELOAD",
        "UWSGI_APPID",
        "UWSGI_SCHEME",
    ],
)
def test_uwsgi_vars_dropped(key: str) -> None:
    request = parse(env((key, "evil"), ("HTTP_X", "UWSGI_ in a value is fine")))
    assert key not in request.environ
    assert not any(k.startswith("UWSGI_") for k in request.environ)
    assert request.environ["HTTP_X"] == "UWSGI_ in a value is fine"


def test_x_forwarded_headers_kept_for_django() -> None:
    request = parse(env(("HTTP_X_FORWARDED_PROTO", "https")))
    assert request.environ["HTTP_X_FORWARDED_PROTO"] == "https"


# -- build_packet ---------------------------------------------------------------------------


def test_build_packet_forms() -> None:
    as_dict = build_packet({"REQUEST_METHOD": "GET", b"PATH_INFO": b"/"})
    as_list = build_packet([(b"REQUEST_METHOD", "GET"), ("PATH_INFO", "/")])
    assert as_dict == as_list
    assert as_dict[:4] == b"\x00" + (len(as_dict) - 4).to_bytes(2, "little") + b"\x00"
    assert build_packet({"A": "b"}, modifier1=30)[0] == 30
    with pytest.raises(UnicodeEncodeError):
        build_packet({"A": "\u20ac"})


# -- fuzz -----------------------------------------------------------------------------------


def _mutate(rng: random.Random, packet: bytes) -> bytes:
    data = bytearray(packet)
    for _ in range(rng.randrange(1, 4)):
        choice = rng.randrange(5)
        if choice == 0 and data:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif choice == 1:
            del data[rng.randrange(len(data) + 1) :]
        elif choice == 2:
            at = rng.randrange(len(data) + 1)
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 5)))
        elif choice == 3 and len(data) > 3:
            # keep the header sane so the vars walk itself gets exercised
            data[0] = rng.choice((0, 30))
            data[3] = 0
        elif choice == 4 and len(data) > 4:
            at = rng.randrange(4, len(data))
            del data[at : at + rng.randrange(1, 4)]
    return bytes(data)


def test_fuzz() -> None:
    rng = random.Random(20240501)
    seeds = [
        WORKED_EXAMPLE,
        build_packet(NGINX_GET),
        build_packet(env(("HTTP_X", "a"), ("HTTP_X", "b"), ("CONTENT_LENGTH", "3")), b"abc"),
        build_packet(env(("SCRIPT_NAME", "/a"), ("REQUEST_URI", "/a/%zz?q")), modifier1=30),
    ]
    started = time.monotonic()
    outcomes = {"none": 0, "request": 0, "error": 0}
    for i in range(3000):
        if i % 10 == 0:
            packet = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 64)))
        else:
            packet = _mutate(rng, rng.choice(seeds))
        limit = rng.choice((16, 64, LIMIT, 65535))
        try:
            result = parse_packet(packet, limit)
        except ProtocolError as error:
            assert error.status in (400, 431, 501)
            outcomes["error"] += 1
            continue
        if result is None:
            outcomes["none"] += 1
            continue
        request, consumed = result
        outcomes["request"] += 1
        assert isinstance(request, Request)
        assert 4 < consumed <= len(packet)
        assert request.method
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in request.environ.items())
        assert request.content_length is None or request.content_length >= 0
    assert time.monotonic() - started < 5
    assert all(outcomes.values()), outcomes
