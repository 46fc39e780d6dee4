"""Static files end to end (issue #7, and issue #5's "never outside the root").

One module-scoped server of the test project serves a directory tree through every static
option at once; requests go over raw sockets or ``requests``, on the HTTP socket and the
uwsgi socket. The signal log (``started PATH``) shows whether the app was called, so a
static answer is known to come from the static layer and a fall-through from the app.
"""

from __future__ import annotations

import gzip
import os
import time
import uuid
from email.utils import formatdate, parsedate_to_datetime

import pytest
import requests

from django_uwsgi_server.conf import build_config
from django_uwsgi_server.server import static
from django_uwsgi_server.server.uwsgi_protocol import build_packet
from tests.e2e.test_uwsgi import uwsgi_request
from tests.rawhttp import RawClient, get
from tests.server import EXAMPLE_PROJECT, Server, run_command, stop_all, wait_for

HOST = "127.0.0.1"
SECRET = f"TOPSECRET-{uuid.uuid4().hex}".encode()
CSS = b"body { color: #123; }\n" * 200
PNG = bytes(range(256)) * 40
JS = b"console.log('hello from a static file');\n" * 100
BIG = 64 << 20


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    base = tmp_path_factory.mktemp("static")
    root, root2, public, media, safe = (base / n for n in ("root", "root2", "public", "m2",
                                                           "safe"))
    for d in (root / "css", root / "img", root / "js", root / "sub", root / "empty",
              root2, public, media / "media", safe):
        d.mkdir(parents=True)
    (root / "css" / "app.css").write_bytes(CSS)
    (root / "img" / "logo.png").write_bytes(PNG)
    (root / "js" / "app.js").write_bytes(JS)
    (root / "js" / "app.js.gz").write_bytes(gzip.compress(JS))
    (root / "sub" / "index.html").write_bytes(b"<p>the index</p>")
    (root / "code.py").write_bytes(b"print('skipped')")
    with open(root / "big.bin", "wb") as f:
        f.truncate(BIG)  # sparse: no disk, and sendfile still copies every byte
    (base / "secret.txt").write_bytes(SECRET)
    (root / "link-out.txt").symlink_to(base / "secret.txt")
    (root / "dir-out").symlink_to(base)
    (safe / "shared.txt").write_bytes(b"shared through static-safe")
    (root / "shared.txt").symlink_to(safe / "shared.txt")
    os.mkfifo(root / "fifo")
    (root2 / "only-in-two.txt").write_bytes(b"from the second map")
    (public / "robots.txt").write_bytes(b"User-agent: *\n")
    (media / "media" / "pic.txt").write_bytes(b"map2 keeps the mountpoint")
    return base


@pytest.fixture(scope="module")
def server(tree, tmp_path_factory):
    started: list[Server] = []
    s = Server(tmp_path_factory.mktemp("static-server"), [
        "--http-socket", f"{HOST}:0", "--socket", f"{HOST}:0", "--processes", "1",
        "--static-map", f"/static={tree}/root", "--static-map", f"/static={tree}/root2",
        "--static-map2", f"/media={tree}/m2", "--check-static", f"{tree}/public",
        "--static-index", "index.html", "--static-skip-ext", ".py",
        "--static-safe", f"{tree}/safe", "--static-gzip-all",
        "--static-expires-type", "text/css=3600",
        "--static-expires-path-info-mtime", r"\.png$=86400",
    ], wait=False)
    started.append(s)
    s.wait_ready()
    yield s
    stop_all(started)


def app_called(server: Server, path: str) -> bool:
    return f"started {path}" in server.signal_lines()


def fetch(server: Server, path: str, **headers: str) -> requests.Response:
    return requests.get(server.url + path, headers=headers, timeout=10)


# -- 200 and its headers ---------------------------------------------------------------------------

def test_file_with_headers(server, tree):
    r = fetch(server, "/static/css/app.css")
    assert r.status_code == 200 and r.content == CSS
    assert r.headers["Content-Type"] == "text/css; charset=utf-8"
    assert r.headers["Content-Length"] == str(len(CSS))
    st = os.stat(tree / "root" / "css" / "app.css")
    assert parsedate_to_datetime(r.headers["Last-Modified"]).timestamp() == int(st.st_mtime)
    assert r.headers["ETag"] == f'"{int(st.st_mtime):x}-{len(CSS):x}"'
    assert r.headers["Accept-Ranges"] == "bytes"
    assert not app_called(server, "/static/css/app.css")
    # uWSGI's request line, marked as sent with sendfile
    wait_for(lambda: "GET /static/css/app.css => generated" in server.stderr(), 5, "the log line")
    line = next(ln for ln in server.stderr().splitlines() if "GET /static/css/app.css =>" in ln)
    assert f"generated {len(CSS)} bytes" in line and "via sendfile()" in line, line


def test_binary_type_has_no_charset(server):
    r = fetch(server, "/static/img/logo.png")
    assert r.content == PNG and r.headers["Content-Type"] == "image/png"


def test_head_has_the_headers_and_no_body(server):
    with RawClient(HOST, server.port) as c:
        c.send(b"HEAD /static/css/app.css HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response(head_request=True)
        assert r.status == 200 and r.headers["content-length"] == str(len(CSS))
        c.send(get("/hello"))  # no stray body bytes: the next response parses
        assert c.read_response().body == b"hello world"


# -- conditional requests --------------------------------------------------------------------------

def test_if_modified_since_is_304(server, tree):
    mtime = int(os.stat(tree / "root" / "css" / "app.css").st_mtime)
    r = fetch(server, "/static/css/app.css", **{"If-Modified-Since": formatdate(mtime, usegmt=True)})
    assert r.status_code == 304 and r.content == b""
    assert "Content-Length" not in r.headers and "ETag" in r.headers
    older = fetch(server, "/static/css/app.css",
                  **{"If-Modified-Since": formatdate(mtime - 10, usegmt=True)})
    assert older.status_code == 200 and older.content == CSS


def test_if_none_match_is_304_and_wins_over_if_modified_since(server):
    etag = fetch(server, "/static/css/app.css").headers["ETag"]
    assert fetch(server, "/static/css/app.css", **{"If-None-Match": etag}).status_code == 304
    r = fetch(server, "/static/css/app.css", **{"If-None-Match": '"other"',
                                                "If-Modified-Since": formatdate(usegmt=True)})
    assert r.status_code == 200  # RFC 9110 §13.2.2: If-None-Match decides


# -- ranges --------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, first, last", [
    ("bytes=0-9", 0, 9), ("bytes=100-", 100, len(CSS) - 1), ("bytes=-25", len(CSS) - 25,
                                                              len(CSS) - 1),
    ("bytes=10-999999", 10, len(CSS) - 1),
])
def test_range_is_206(server, spec, first, last):
    r = fetch(server, "/static/css/app.css", Range=spec)
    assert r.status_code == 206
    assert r.content == CSS[first:last + 1]
    assert r.headers["Content-Range"] == f"bytes {first}-{last}/{len(CSS)}"
    assert r.headers["Content-Length"] == str(last - first + 1)


def test_range_keeps_the_connection_in_sync(server):
    with RawClient(HOST, server.port) as c:
        c.send(get("/static/img/logo.png", extra="Range: bytes=256-511\r\n") + get("/hello"))
        r = c.read_response()
        assert r.status == 206 and r.body == PNG[256:512]
        assert c.read_response().body == b"hello world"


def test_unsatisfiable_range_is_416(server):
    r = fetch(server, "/static/css/app.css", Range=f"bytes={len(CSS)}-")
    assert r.status_code == 416
    assert r.headers["Content-Range"] == f"bytes */{len(CSS)}"
    assert r.content == b""


@pytest.mark.parametrize("headers", [
    {"Range": "bytes=0-1,5-6"},  # several ranges: the whole file (documented)
    {"Range": "bytes=9-1"},  # invalid: ignored
    {"Range": "bytes=0-9", "If-Range": '"stale-etag"'},  # validator changed: whole file
])
def test_range_ignored_gives_the_whole_file(server, headers):
    r = fetch(server, "/static/css/app.css", **headers)
    assert r.status_code == 200 and r.content == CSS


def test_if_range_with_the_current_etag_is_206(server):
    etag = fetch(server, "/static/css/app.css").headers["ETag"]
    r = fetch(server, "/static/css/app.css", Range="bytes=0-3", **{"If-Range": etag})
    assert r.status_code == 206 and r.content == CSS[:4]


# -- gzip siblings, index, expires ---------------------------------------------------------------------

def test_gzip_sibling_when_accepted(server):
    r = requests.get(server.url + "/static/js/app.js", headers={"Accept-Encoding": "gzip"},
                     timeout=10, stream=True)
    raw = r.raw.read(decode_content=False)
    assert r.headers["Content-Encoding"] == "gzip" and gzip.decompress(raw) == JS
    assert r.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert r.headers["Vary"] == "Accept-Encoding"
    assert r.headers["Content-Length"] == str(len(raw))
    plain = fetch(server, "/static/js/app.js", **{"Accept-Encoding": "identity"})
    assert plain.content == JS and "Content-Encoding" not in plain.headers
    assert plain.headers["Vary"] == "Accept-Encoding"
    refused = fetch(server, "/static/js/app.js", **{"Accept-Encoding": "gzip;q=0"})
    assert "Content-Encoding" not in refused.headers


def test_index_of_a_directory(server):
    for path in ("/static/sub/", "/static/sub"):
        r = fetch(server, path)
        assert r.status_code == 200 and r.content == b"<p>the index</p>"
        assert r.headers["Content-Type"] == "text/html; charset=utf-8"


def test_directory_without_index_goes_to_the_app(server):
    assert fetch(server, "/static/empty/").status_code == 404
    assert app_called(server, "/static/empty/")


def test_expires_by_type_and_by_path_info_mtime(server, tree):
    before = time.time()
    css = fetch(server, "/static/css/app.css")
    expires = parsedate_to_datetime(css.headers["Expires"]).timestamp()
    assert before + 3600 - 2 <= expires <= time.time() + 3600 + 1
    assert css.headers["Cache-Control"] == "max-age=3600"
    png = fetch(server, "/static/img/logo.png")
    mtime = int(os.stat(tree / "root" / "img" / "logo.png").st_mtime)
    assert parsedate_to_datetime(png.headers["Expires"]).timestamp() == mtime + 86400
    assert "Expires" not in fetch(server, "/static/js/app.js").headers


# -- the rules and the app -----------------------------------------------------------------------------

def test_second_map_of_the_same_mountpoint(server):
    r = fetch(server, "/static/only-in-two.txt")
    assert r.status_code == 200 and r.content == b"from the second map"


def test_static_map2_appends_the_whole_path(server):
    assert fetch(server, "/media/pic.txt").content == b"map2 keeps the mountpoint"


def test_check_static_serves_files_and_falls_through_to_the_app(server):
    r = fetch(server, "/robots.txt")
    assert r.content == b"User-agent: *\n" and not app_called(server, "/robots.txt")
    assert fetch(server, "/hello").content == b"hello world"
    assert app_called(server, "/hello")


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
def test_other_methods_go_to_the_app(server, method):
    path = f"/static/css/app.css?{method}"
    r = requests.request(method, server.url + path, timeout=10)
    assert r.content != CSS and app_called(server, "/static/css/app.css")


def test_skip_ext_goes_to_the_app(server):
    r = fetch(server, "/static/code.py")
    assert r.status_code == 404 and b"skipped" not in r.content


def uwsgi_get(server: Server, path_info: str, uri: str | None = None) -> bytes:
    """A GET over the uwsgi socket, with the vars nginx would send; the raw response."""
    packet = build_packet({"REQUEST_METHOD": "GET", "REQUEST_URI": uri or path_info,
                           "PATH_INFO": path_info, "QUERY_STRING": "",
                           "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "x",
                           "SERVER_NAME": "x", "SERVER_PORT": "80"})
    return uwsgi_request(server.uwsgi_address, packet)


def test_static_over_the_uwsgi_protocol(server):
    head, _, body = uwsgi_get(server, "/static/img/logo.png").partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and body == PNG


# -- never outside the root -----------------------------------------------------------------------------

TRAVERSALS = [
    "/static/../secret.txt",
    "/static/css/../../secret.txt",
    "/static/%2e%2e/secret.txt",
    "/static/%2E%2E/secret.txt",
    "/static/.%2e/secret.txt",
    "/static/..%2fsecret.txt",
    "/static/%2e%2e%2fsecret.txt",
    "/static/..%5csecret.txt",
    "/static/..\\secret.txt",
    "/static/%5c..%5c..%5csecret.txt",
    "/static/secret.txt%00.css",
    "/static/css/app.css%00",
    "/static/%252e%252e/secret.txt",  # double encoding: a literal "%2e%2e" directory
    "/static/link-out.txt",  # symlink to a file outside
    "/static/dir-out/secret.txt",  # through a symlinked directory
    "/static//secret.txt",
    "/static/fifo",  # a FIFO: must neither block nor be served
    "/../secret.txt",  # check-static applies to every path
    "/media/../secret.txt",
    "/static/./../secret.txt",
]


@pytest.mark.parametrize("target", TRAVERSALS)
def test_traversal_never_sends_a_byte_outside(server, tree, target):
    with RawClient(HOST, server.port) as c:
        c.send(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode("latin-1"))
        r = c.read_response()
        assert SECRET not in r.raw_head + r.body
        assert r.status in (400, 404), r.raw_head
        c.send(get("/static/css/app.css"))  # the worker and the connection still serve
        assert c.read_response().body == CSS
    with RawClient(HOST, server.port) as c:  # absolute path in an absolute-form target
        c.send(f"GET http://x{target} HTTP/1.1\r\nHost: x\r\n\r\n".encode("latin-1"))
        r = c.read_response()
        assert SECRET not in r.raw_head + r.body and r.status in (400, 404)


def test_climbing_paths_never_reach_the_app(server):
    for target in ("/static/../x-climb1", "/static/%2e%2e/x-climb2", "/x%00-nul"):
        with RawClient(HOST, server.port) as c:
            c.send(get(target))
            assert c.read_response().status == 400
    lines = server.signal_lines()
    assert not any("climb" in line or "nul" in line for line in lines), lines
    assert "[static] refused '/static/../x-climb1'" in server.stderr()


def test_symlink_into_static_safe_is_served(server):
    assert fetch(server, "/static/shared.txt").content == b"shared through static-safe"


@pytest.mark.parametrize("path_info", ["/static/../secret.txt", "/static/link-out.txt",
                                       "/static/a\x00/../../secret.txt"])
def test_traversal_over_the_uwsgi_protocol(server, path_info):
    data = uwsgi_get(server, path_info, uri="/x")
    assert SECRET not in data
    assert data.split(b" ", 2)[1] in (b"400", b"404"), data[:200]


# -- sendfile, not Python reads ------------------------------------------------------------------------

def _proc_io(pid: int) -> dict[str, int]:
    with open(f"/proc/{pid}/io") as f:
        return {k: int(v) for k, v in (line.split(": ") for line in f.read().splitlines())}


def _peak_rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


def test_large_file_goes_through_sendfile(server):
    """The kernel counts sendfile()'s bytes in the process's wchar; send()/sendmsg() of
    bytes read into Python do not count there (only in rchar), so wchar growing by the
    file's size shows sendfile carried it. The peak RSS shows nothing was buffered."""
    (pid,) = server.worker_pids()
    before, peak_before = _proc_io(pid), _peak_rss_kb(pid)
    received = 0
    with requests.get(server.url + "/static/big.bin", stream=True, timeout=60) as r:
        assert r.status_code == 200 and r.headers["Content-Length"] == str(BIG)
        assert r.headers["Content-Type"] == "application/octet-stream"
        for chunk in r.iter_content(1 << 20):
            received += len(chunk)
    assert received == BIG
    after = _proc_io(pid)
    assert after["wchar"] - before["wchar"] >= BIG
    assert _peak_rss_kb(pid) - peak_before < 16 << 10, "the worker buffered the file"


# -- DEBUG static (runserver's behaviour) ------------------------------------------------------------------

@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The example project, started with and without DEBUG and with --nostatic."""
    started: list[Server] = []

    def start(debug: bool, *extra: str) -> Server:
        home = tmp_path_factory.mktemp("example")
        # its own stats socket: the example settings' 127.0.0.1:9191 is one per machine
        s = Server(home, ["--http-socket", f"{HOST}:0", "--processes", "1",
                          "--stats", str(home / "stats.sock"), *extra],
                   env={"DJANGO_DEBUG": "1" if debug else "0"}, project=EXAMPLE_PROJECT,
                   wait=False)
        started.append(s)
        s.wait_ready()
        return s

    yield start
    stop_all(started)


ADMIN_CSS = "/static/admin/css/base.css"


def test_debug_serves_static_url_from_the_finders(example):
    import django.contrib.admin

    expected = open(os.path.join(os.path.dirname(django.contrib.admin.__file__), "static",
                                 "admin", "css", "base.css"), "rb").read()
    s = example(True)
    r = requests.get(s.url + ADMIN_CSS, timeout=10)
    assert r.status_code == 200 and r.content == expected
    assert r.headers["Content-Type"].startswith("text/css")
    # Django's own safe_join refuses what climbs out of the finders' directories.
    for target in ("/static/admin/../../mysite/settings.py", "/static/%2e%2e/mysite/settings.py",
                   "/static/..%2f..%2fmysite/settings.py"):
        with RawClient(HOST, s.port) as c:
            c.send(get(target, host="127.0.0.1"))
            r = c.read_response()
            assert r.status in (400, 404) and b"SECRET_KEY" not in r.body, target


@pytest.mark.parametrize("debug, extra", [(False, ()), (True, ("--nostatic",))])
def test_no_debug_static_without_debug_or_with_nostatic(example, debug, extra):
    s = example(debug, *extra)
    assert requests.get(s.url + ADMIN_CSS, timeout=10).status_code == 404


# -- bad options ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--static-map", "/static"], "invalid value '/static' for option 'static-map' (command "
                                  "line): expected MOUNTPOINT=DIR"),
    (["--static-map", "/s=/no/such/dir"], "option 'static-map' (command line): '/no/such/dir' "
                                          "does not exist"),
    (["--static-index", "index.html"], "option 'static-index' (command line) needs a static root"),
    (["--check-static", "/tmp", "--static-expires-type", "text/css=soon"],
     "expected TYPE=SECONDS"),
])
def test_bad_static_option_is_a_one_line_error(args, message):
    result = run_command(["--http-socket", f"{HOST}:0", "--skip-checks", *args])
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to change uid")
def test_served_after_dropping_privileges_and_403_when_unreadable(start_server, readable_env):
    """Workers run as nobody: a world-readable file is served, a 0600 one is a 403 (and
    the worker goes on)."""
    import shutil
    import tempfile

    python, project = readable_env

    base = tempfile.mkdtemp(prefix="dus-static-")
    try:
        os.chmod(base, 0o755)
        with open(os.path.join(base, "public.txt"), "wb") as f:
            f.write(b"for everyone")
        os.chmod(os.path.join(base, "public.txt"), 0o644)
        with open(os.path.join(base, "private.txt"), "wb") as f:
            f.write(SECRET)
        os.chmod(os.path.join(base, "private.txt"), 0o600)
        server = start_server(["--http-socket", f"{HOST}:0", "--processes", "1",
                               "--uid", "nobody", "--gid", "nogroup",
                               "--skip-checks", "--static-map", f"/s={base}"],
                              env={"TEST_SIGNAL_LOG": ""}, project=project, python=python)
        assert fetch(server, "/s/public.txt").content == b"for everyone"
        r = fetch(server, "/s/private.txt")
        assert r.status_code == 403 and SECRET not in r.content
        assert fetch(server, "/s/public.txt").content == b"for everyone"
        assert "cannot open" in server.stderr()
    finally:
        shutil.rmtree(base)


def test_bad_static_option_under_autoreload_is_a_one_line_error(tmp_path):
    """With DEBUG on the command runs as an autoreload parent and a child: the parent checks
    the static options (relative to chdir) rather than letting the child fail in a loop."""
    (tmp_path / "assets").mkdir()
    ok = ["--chdir", str(tmp_path), "--static-map", "/a=assets"]  # relative to chdir: fine
    bad = ["--chdir", str(tmp_path), "--static-map", "/a=missing"]
    result = run_command(["--http-socket", f"{HOST}:0", "--skip-checks", *bad],
                         env={"DJANGO_DEBUG": "1"}, project=EXAMPLE_PROJECT, timeout=60)
    assert result.returncode != 0
    assert "option 'static-map' (command line): 'missing' does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    static.check(build_config({}, {"chdir": str(tmp_path), "static_map": [ok[-1]]}))


def test_static_requests_are_counted_per_core_in_the_stats(start_server, tmp_path, tree):
    """uWSGI's per-core static_requests in the stats document: files answered by the static
    layer count there (and in requests); the app's requests do not."""
    from django_uwsgi_server.server.stats_client import fetch_stats

    stats = str(tmp_path / "stats.sock")
    server = start_server(["--http-socket", f"{HOST}:0", "--processes", "1", "--threads", "2",
                           "--stats", stats, "--static-map", f"/static={tree}/root"])

    def counts():
        (worker,) = fetch_stats(stats)["workers"]
        return worker["requests"], sum(c["static_requests"] for c in worker["cores"])

    wait_for(lambda: counts()[0] >= 1, 10, "the readiness probe counted")
    requests_before, static_before = counts()
    with requests.Session() as session:
        for path in ("/static/css/app.css", "/static/img/logo.png", "/static/js/app.js", "/hello"):
            assert session.get(server.url + path, timeout=10).status_code == 200
    wait_for(lambda: counts()[0] == requests_before + 4, 10, "4 requests counted")
    assert counts() == (requests_before + 4, static_before + 3)
