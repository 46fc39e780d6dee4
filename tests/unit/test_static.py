"""server/static.py without a server: path splitting, containment, Range, dates, encodings,
content types, rule matching, option validation, and file resolution on a real directory
tree (symlinks, FIFOs, directories)."""

from __future__ import annotations

import os
import posixpath
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from django_uwsgi_server.conf import build_config
from django_uwsgi_server.server import static
from django_uwsgi_server.server.static import (
    UNSATISFIABLE,
    Refused,
    Rule,
    accepts,
    content_type,
    etag_matches,
    inside,
    parse_http_date,
    parse_range,
    split_path,
)

# -- split_path --------------------------------------------------------------------------------


@pytest.mark.parametrize("path, segments", [
    (b"", []),
    (b"/", []),
    (b"/css/app.css", [b"css", b"app.css"]),
    (b"//etc/passwd", [b"etc", b"passwd"]),  # never absolute
    (b"/./a/./b/", [b"a", b"b"]),
    (b"/a..b/c...", [b"a..b", b"c..."]),  # dots inside a name are a name
    (b"/%2e%2e/x", [b"%2e%2e", b"x"]),  # still encoded = a literal name (double encoding)
])
def test_split_path(path, segments):
    assert split_path(path) == segments


@pytest.mark.parametrize("path", [
    b"/..", b"/../etc/passwd", b"/a/../../b", b"/a/..", b"..", b"/./../x",
    b"/a\x00.css", b"/a\\..\\b", b"/a\\b",
])
def test_split_path_refuses(path):
    with pytest.raises(Refused):
        split_path(path)


@given(st.binary(max_size=64))
def test_split_path_never_climbs(path):
    """Whatever the bytes: refused, or segments that keep a join inside the root."""
    try:
        segments = split_path(path)
    except Refused:
        assert b".." in path.split(b"/") or b"\0" in path or b"\\" in path
        return
    root = b"/srv/root"
    joined = posixpath.normpath(root + b"/" + b"/".join(segments))
    assert inside(joined, root)
    assert all(seg and seg not in (b".", b"..") and b"/" not in seg and b"\0" not in seg
               for seg in segments)


def test_inside_compares_components():
    assert inside(b"/srv/static", b"/srv/static")
    assert inside(b"/srv/static/a/b", b"/srv/static")
    assert not inside(b"/srv/static2/a", b"/srv/static")  # uWSGI's prefix test says yes
    assert not inside(b"/srv", b"/srv/static")
    assert inside(b"/anything", b"/")


# -- Range ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("header, size, expected", [
    ("bytes=0-9", 100, (0, 9)),
    ("bytes=10-", 100, (10, 99)),
    ("bytes=-10", 100, (90, 99)),
    ("bytes=-1000", 100, (0, 99)),  # a suffix longer than the file: all of it
    ("bytes=90-1000", 100, (90, 99)),  # clamped
    ("bytes=99-99", 100, (99, 99)),
    ("BYTES = 1-2", 100, (1, 2)),
    ("bytes=100-", 100, UNSATISFIABLE),
    ("bytes=100-200", 100, UNSATISFIABLE),
    ("bytes=-0", 100, UNSATISFIABLE),
    ("bytes=0-", 0, UNSATISFIABLE),
    ("bytes=-5", 0, UNSATISFIABLE),
    ("bytes=5-1", 100, None),  # invalid: ignored, whole file
    ("bytes=0-1,5-6", 100, None),  # several ranges: whole file (documented)
    ("bytes=-", 100, None),
    ("bytes=a-b", 100, None),
    ("bytes=1-²", 100, None),  # a unicode digit is not a digit here
    ("items=0-1", 100, None),
    ("bytes", 100, None),
    ("", 100, None),
])
def test_parse_range(header, size, expected):
    assert parse_range(header, size) == expected


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**6))
def test_parse_range_stays_in_the_file(first, last, size):
    result = parse_range(f"bytes={first}-{last}", size)
    if result is None:
        assert last < first
    elif result == UNSATISFIABLE:
        assert first >= size
    else:
        lo, hi = result
        assert lo == first and 0 <= lo <= hi < size and hi == min(last, size - 1)


# -- dates, encodings, validators, types ----------------------------------------------------------


@pytest.mark.parametrize("text", [
    "Sun, 06 Nov 1994 08:49:37 GMT",  # IMF-fixdate
    "Sunday, 06-Nov-94 08:49:37 GMT",  # RFC 850
    "Sun Nov  6 08:49:37 1994",  # asctime
])
def test_parse_http_date(text):
    assert parse_http_date(text) == 784111777


@pytest.mark.parametrize("text", ["", "yesterday", "Sun, 99 Zzz 1994 08:49:37 GMT", "\x00"])
def test_parse_http_date_garbage(text):
    assert parse_http_date(text) is None


@pytest.mark.parametrize("header, ok", [
    ("gzip", True), ("deflate, gzip;q=0.5", True), ("GZIP", True), ("gzip;q=0", False),
    ("deflate", False), ("*", True), ("*;q=0", False), ("gzip;q=0, *", False),
    ("br, *;q=0.1", True), ("gzip;q=abc", False), ("", False),
])
def test_accepts_gzip(header, ok):
    assert accepts(header, "gzip") is ok


def test_etag_matches():
    assert etag_matches('"a-1"', '"a-1"')
    assert etag_matches('"x", W/"a-1"', '"a-1"')
    assert etag_matches("*", '"a-1"')
    assert not etag_matches('"a-2"', '"a-1"')


@pytest.mark.parametrize("name, ctype", [
    (b"/a/app.css", "text/css; charset=utf-8"),
    (b"/a/app.JS", "text/javascript; charset=utf-8"),
    (b"/a/data.json", "application/json; charset=utf-8"),
    (b"/a/logo.png", "image/png"),
    (b"/a/logo.svg", "image/svg+xml; charset=utf-8"),
    (b"/a/dump.tar.gz", "application/gzip"),
    (b"/a/README", "application/octet-stream"),
    (b"/a.d/README", "application/octet-stream"),
    (b"/a/x.unknownext", "application/octet-stream"),
])
def test_content_type(name, ctype):
    assert content_type(name) == ctype


# -- rules ---------------------------------------------------------------------------------------


def test_static_map_matches_at_a_segment_boundary():
    rule = Rule("static-map", "/static", b"/srv", False, True)
    assert rule.match("/static/css/a.css") == "/css/a.css"
    assert rule.match("/static") == ""
    assert rule.match("/staticfoo") is None  # uWSGI serves /srv/foo here
    assert rule.match("/other") is None
    slash = Rule("static-map", "/static/", b"/srv", False, True)
    assert slash.match("/static/a") == "a"


def test_static_map2_keeps_the_whole_path():
    rule = Rule("static-map2", "/media", b"/srv", False, False)
    assert rule.match("/media/a.png") == "/media/a.png"


def test_a_file_mapping_serves_only_its_own_path():
    rule = Rule("static-map", "/robots.txt", b"/srv/robots.txt", True, True)
    assert rule.match("/robots.txt") == ""
    assert rule.match("/robots.txt/x") is None


# -- option validation -----------------------------------------------------------------------------


def _build(tmp_path, **options):
    os.makedirs(tmp_path / "root", exist_ok=True)
    return static.build(build_config({}, options))


@pytest.mark.parametrize("options, message", [
    ({"static_map": ["/static"]}, "expected MOUNTPOINT=DIR"),
    ({"static_map": ["/static=/no/such/dir"]}, "'/no/such/dir' does not exist"),
    ({"check_static": ["/no/such/dir"]}, "option 'check-static' (command line)"),
    ({"static_index": ["index.html"]}, "needs a static root"),
    ({"static_gzip_all": True}, "needs a static root"),
    ({"static_expires_uri_mtime": ["x=1"]}, "option 'static-expires-uri-mtime' (command line) "
                                            "needs a static root"),
])
def test_build_errors(tmp_path, options, message):
    with pytest.raises(static.StaticConfigError, match=message.replace("(", r"\(")
                       .replace(")", r"\)")):
        _build(tmp_path, **options)


def test_build_errors_on_expires(tmp_path):
    root = str(tmp_path / "root")
    with pytest.raises(static.StaticConfigError, match="TYPE=SECONDS"):
        _build(tmp_path, check_static=[root], static_expires_type=["text/css=soon"])
    with pytest.raises(static.StaticConfigError, match="invalid regular expression"):
        _build(tmp_path, check_static=[root], static_expires=["(unclosed=60"])
    with pytest.raises(static.StaticConfigError, match="invalid regular expression"):
        _build(tmp_path, check_static=[root], static_gzip=["[x"])


def test_no_static_option_builds_nothing(tmp_path):
    assert _build(tmp_path) is None


def test_a_missing_root_on_reload_is_skipped(tmp_path, capfd):
    cfg = build_config({}, {"static_map": [f"/s={tmp_path}/gone"]})
    assert static.build(cfg, strict=False) is None
    assert "does not exist" in capfd.readouterr().err


# -- resolution on a real tree -------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "root"
    (root / "css").mkdir(parents=True)
    (root / "css" / "a.css").write_text("body{}")
    (root / "empty").mkdir()
    (root / "withindex").mkdir()
    (root / "withindex" / "index.html").write_text("<p>index</p>")
    (tmp_path / "secret.txt").write_text("SECRET")
    (tmp_path / "safe").mkdir()
    (tmp_path / "safe" / "shared.txt").write_text("shared")
    (root / "out.txt").symlink_to(tmp_path / "secret.txt")
    (root / "outdir").symlink_to(tmp_path)
    (root / "shared.txt").symlink_to(tmp_path / "safe" / "shared.txt")
    (root / "inner.css").symlink_to(root / "css" / "a.css")
    os.mkfifo(root / "fifo")
    (tmp_path / "root2").mkdir()  # a sibling whose name starts like the root
    (tmp_path / "root2" / "x.txt").write_text("sibling")
    (root / "sibling.txt").symlink_to(tmp_path / "root2" / "x.txt")
    return tmp_path


def _respond(files, path, method="GET", **headers):
    seen = {}

    def start_response(status, hdrs):
        seen["status"], seen["headers"] = status, dict(hdrs)

    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "REQUEST_URI": path, **headers}
    result = files.respond(environ, start_response)
    if result is None:
        return None, None, None
    try:
        body = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    return seen["status"], seen["headers"], body


@pytest.fixture
def files(tree):
    cfg = build_config({}, {"static_map": [f"/static={tree}/root"],
                            "static_index": ["index.html"],
                            "static_safe": [str(tree / "safe")]})
    return static.build(cfg)


@pytest.mark.parametrize("path, body", [
    ("/static/css/a.css", b"body{}"),
    ("/static/withindex/", b"<p>index</p>"),
    ("/static/withindex", b"<p>index</p>"),
    ("/static/inner.css", b"body{}"),  # a symlink inside the root
    ("/static/shared.txt", b"shared"),  # into a static-safe root
])
def test_served(files, path, body):
    status, headers, got = _respond(files, path)
    assert status == "200 OK" and got == body
    assert headers["Content-Length"] == str(len(body))


@pytest.mark.parametrize("path", [
    "/static/out.txt",  # symlink to a file outside
    "/static/outdir/secret.txt",  # through a symlinked directory
    "/static/sibling.txt",  # into a directory whose name merely starts like the root
    "/static/fifo",  # not a regular file: must not block either
    "/static/empty/",  # a directory without index
    "/static/nothere.css",
    "/static/css/a.css/",  # a file is not a directory
])
def test_falls_through(files, path):
    assert _respond(files, path) == (None, None, None)


@pytest.mark.parametrize("path", ["/static/../secret.txt", "/static/css/../../secret.txt",
                                  "/static/a\x00.css", "/static/..\\secret.txt"])
def test_refused(files, path):
    status, _, body = _respond(files, path)
    assert status == "400 Bad Request" and b"SECRET" not in body


def test_only_get_and_head(files):
    assert _respond(files, "/static/css/a.css", method="POST")[0] is None
    status, headers, body = _respond(files, "/static/css/a.css", method="HEAD")
    assert status == "200 OK" and headers["Content-Length"] == "6"


def test_encoded_slash_is_not_a_file_name(files):
    environ_path = "/static/css/a.css"
    status = _respond(files, environ_path, REQUEST_URI="/static/css%2Fa.css")[0]
    assert status is None


def test_a_precompressed_sibling_is_held_to_the_same_rules(tree):
    root = tree / "root"
    (root / "evil.js").write_text("plain")
    (root / "evil.js.gz").symlink_to(tree / "secret.txt")
    files = static.build(build_config({}, {"static_map": [f"/static={root}"],
                                           "static_gzip_all": True}))
    status, headers, body = _respond(files, "/static/evil.js", HTTP_ACCEPT_ENCODING="gzip")
    assert (status, body) == ("200 OK", b"plain") and "Content-Encoding" not in headers
    assert headers["Vary"] == "Accept-Encoding"


def test_no_descriptor_leaks(files):
    def open_fds():
        return len(os.listdir("/proc/self/fd"))

    before = open_fds()
    for path in ("/static/css/a.css", "/static/withindex/", "/static/out.txt", "/static/fifo",
                 "/static/empty/", "/static/nothere", "/static/css/a.css/"):
        for extra in ({}, {"HTTP_RANGE": "bytes=999-"}, {"HTTP_IF_NONE_MATCH": "*"}):
            _respond(files, path, **extra)
            _respond(files, path, method="HEAD", **extra)
    assert open_fds() == before


_PIECES = ["..", ".", "", "css", "a.css", "out.txt", "outdir", "secret.txt", "\\", "\x00",
           "root", "safe", "shared.txt", "sibling.txt", "fifo", "withindex", "index.html",
           "inner.css", "root2", "x.txt", "empty"]


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=6), st.booleans())
def test_any_path_serves_only_files_under_the_roots(files, tree, pieces, head):
    """Whatever the path is made of: the static layer sends a file of the root (or of
    static-safe), answers 400, or leaves the request to the app — never the secret."""
    allowed = {b"body{}", b"<p>index</p>", b"shared"}
    status, headers, body = _respond(files, "/static/" + "/".join(pieces),
                                     method="HEAD" if head else "GET")
    assert status in (None, "200 OK", "400 Bad Request")
    assert not body or body in allowed or status == "400 Bad Request"
    assert b"SECRET" not in (body or b"") and b"sibling" not in (body or b"")


@pytest.mark.parametrize("option, value, from_mtime", [
    ("static_expires", r"\.css$=100", False),
    ("static_expires_mtime", r"/css/=100", True),
    ("static_expires_uri", r"^/static/css=100", False),
    ("static_expires_uri_mtime", r"a\.css=100", True),
    ("static_expires_path_info", r"\.css$=100", False),
    ("static_expires_path_info_mtime", r"\.css$=100", True),
    ("static_expires_type", "text/css=100", False),
    ("static_expires_type_mtime", "text/css=100", True),
])
def test_every_expires_rule(tree, option, value, from_mtime):
    from email.utils import parsedate_to_datetime

    files = static.build(build_config({}, {"static_map": [f"/static={tree}/root"],
                                           option: [value]}))
    mtime = int(os.stat(tree / "root" / "css" / "a.css").st_mtime)
    base = mtime if from_mtime else int(time.time())
    _, headers, _ = _respond(files, "/static/css/a.css")
    assert abs(parsedate_to_datetime(headers["Expires"]).timestamp() - (base + 100)) <= 1
    assert "Expires" not in _respond(files, "/static/withindex/index.html")[1]


def test_first_expires_rule_wins_file_name_before_type(tree):
    files = static.build(build_config({}, {"static_map": [f"/static={tree}/root"],
                                           "static_expires_type": ["text/css=999"],
                                           "static_expires": [r"\.css$=100"]}))
    assert _respond(files, "/static/css/a.css")[1]["Cache-Control"] == "max-age=100"
