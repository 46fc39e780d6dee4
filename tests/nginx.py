"""A throwaway nginx in front of a uwsgi upstream, for tests.

Usage from a test (the fixture is re-exported by tests/conftest.py)::

    def test_x(nginx_factory):
        nginx = nginx_factory("127.0.0.1:9000")          # or "unix:/path/to.sock"
        requests.get(nginx.url + "/path")

or directly, as a context manager::

    with Nginx("127.0.0.1:9000", tmp_path) as nginx: ...

Everything nginx writes (config, pid, error log, temp files) stays under the given directory;
it listens on a free 127.0.0.1 port and runs in the foreground as our child, so stopping it
is a signal to one PID we own.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

import pytest

NGINX_BIN = os.environ.get("NGINX_BIN") or shutil.which("nginx") or "/usr/sbin/nginx"
STOCK_UWSGI_PARAMS = Path("/etc/nginx/uwsgi_params")

# conf/uwsgi_params from upstream nginx, used when the system has no /etc/nginx copy.
UPSTREAM_UWSGI_PARAMS = """\
uwsgi_param  QUERY_STRING       $query_string;
uwsgi_param  REQUEST_METHOD     $request_method;
uwsgi_param  CONTENT_TYPE       $content_type;
uwsgi_param  CONTENT_LENGTH     $content_length;

uwsgi_param  REQUEST_URI        $request_uri;
uwsgi_param  PATH_INFO          $document_uri;
uwsgi_param  DOCUMENT_ROOT      $document_root;
uwsgi_param  SERVER_PROTOCOL    $server_protocol;
uwsgi_param  REQUEST_SCHEME     $scheme;
uwsgi_param  HTTPS              $https if_not_empty;

uwsgi_param  REMOTE_ADDR        $remote_addr;
uwsgi_param  REMOTE_PORT        $remote_port;
uwsgi_param  SERVER_PORT        $server_port;
uwsgi_param  SERVER_NAME        $server_name;
"""

START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


class NginxError(RuntimeError):
    """nginx did not start (the message carries its error log)."""


def nginx_available() -> bool:
    return os.path.isfile(NGINX_BIN) and os.access(NGINX_BIN, os.X_OK)


def nginx_version() -> tuple[int, ...]:
    out = subprocess.run(
        [NGINX_BIN, "-v"], capture_output=True, text=True, timeout=10, check=False
    ).stderr
    match = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(part) for part in match.groups()) if match else (0, 0, 0)


def free_port() -> int:
    # Racy by nature (the port is free now, not necessarily when nginx binds it); start()
    # retries with a fresh port when nginx reports the address in use.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Nginx:
    """One nginx process proxying ``location /`` to ``upstream`` with uwsgi_pass.

    ``upstream``: ``127.0.0.1:PORT`` or ``unix:/path``. ``extra_location`` is pasted into
    ``location /`` after the params (``uwsgi_param SCRIPT_NAME /app; uwsgi_modifier1 30;``,
    ``uwsgi_read_timeout 5s;``...); a later ``uwsgi_param`` is sent after the stock ones.
    ``uwsgi_params`` is the *text* of a params file to use instead of the stock
    /etc/nginx/uwsgi_params (e.g. an old one without HTTPS/REQUEST_SCHEME).
    ``extra_server``/``extra_http`` go into the server/http blocks.
    """

    def __init__(
        self,
        upstream: str,
        tmp_path: Path,
        extra_location: str = "",
        uwsgi_params: str | None = None,
        *,
        extra_server: str = "",
        extra_http: str = "",
        master_process: bool = False,
    ) -> None:
        self.upstream = upstream
        self.dir = Path(tmp_path)
        self.extra_location = extra_location
        self.uwsgi_params = uwsgi_params
        self.extra_server = extra_server
        self.extra_http = extra_http
        self.master_process = master_process
        self.port = 0
        self.conf_path = self.dir / "nginx.conf"
        self.error_log = self.dir / "error.log"
        self.pid_path = self.dir / "nginx.pid"
        self.stderr_path = self.dir / "stderr.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _params_file(self) -> Path:
        if self.uwsgi_params is None and STOCK_UWSGI_PARAMS.is_file():
            return STOCK_UWSGI_PARAMS
        path = self.dir / "uwsgi_params"
        text = UPSTREAM_UWSGI_PARAMS if self.uwsgi_params is None else self.uwsgi_params
        path.write_text(text)
        return path

    def config(self) -> str:
        d = self.dir
        if not self.master_process:
            # One process: its PID is the one we signal, nothing is orphaned by a SIGKILL,
            # and no `user` switch happens (only a master's workers change user).
            master = "master_process off;"
        elif os.geteuid() == 0:
            # as root the workers would switch to `nobody`, which cannot reach a unix
            # socket or temp dir created by root
            master = "master_process on;\nuser root;"
        else:
            # `user` is only valid for a root master; unprivileged workers keep our uid
            master = "master_process on;"
        temp_paths = "\n".join(
            f'    {name}_temp_path "{d / (name + "_temp")}";'
            for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        return f"""\
# written by tests/nginx.py
daemon off;
{master}
worker_processes 1;
pid "{self.pid_path}";
error_log "{self.error_log}" info;

events {{
    worker_connections 512;
}}

http {{
    access_log off;
{temp_paths}
    client_max_body_size 100m;
{self.extra_http}
    server {{
        listen 127.0.0.1:{self.port};
        server_name localhost;
{self.extra_server}
        location / {{
            include "{self._params_file()}";
            uwsgi_pass {self.upstream};
{self.extra_location}
        }}
    }}
}}
"""

    def start(self) -> Nginx:
        if not nginx_available():
            raise NginxError(f"nginx not found at {NGINX_BIN}")
        self.dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(3):
            self.port = free_port()
            self.conf_path.write_text(self.config())
            try:
                self._spawn()
                return self
            except NginxError as error:
                if "Address already in use" not in str(error) or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _spawn(self) -> None:
        cmd = [NGINX_BIN, "-p", f"{self.dir}/", "-c", str(self.conf_path)]
        if nginx_version() >= (1, 19, 5):
            # without -e nginx first opens its compiled-in error log (/var/log/nginx/...)
            cmd += ["-e", str(self.error_log)]
        with open(self.stderr_path, "wb") as stderr:
            self.process = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                self.process = None
                stderr = self.stderr_path.read_text(errors="replace")
                raise NginxError(f"nginx exited at startup: {stderr}{self.read_error_log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                log = self.read_error_log()
                self.stop()
                raise NginxError(f"nginx did not accept on port {self.port} in time: {log}")
            time.sleep(0.02)

    def read_error_log(self) -> str:
        try:
            return self.error_log.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            # SIGQUIT: graceful shutdown, lets in-flight requests finish
            process.send_signal(signal.SIGQUIT)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                # the whole session is ours (start_new_session): master and its workers
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(STOP_TIMEOUT)

    def __enter__(self) -> Nginx:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@pytest.fixture(name="nginx_factory")
def nginx_factory(tmp_path: Path) -> Iterator[Callable[..., Nginx]]:
    """``nginx_factory(upstream, extra_location="", uwsgi_params=None, **kw) -> Nginx``, started.

    Skips the test when nginx is not installed. Every nginx started is stopped at teardown.
    """
    if not nginx_available():
        if os.environ.get("CI"):  # .ci/run installs nginx: a skip there would hide a broken CI
            pytest.fail(f"nginx is not installed ({NGINX_BIN}) but CI is set")
        pytest.skip(f"nginx is not installed ({NGINX_BIN}); .ci/run installs it")
    started: list[Nginx] = []

    def make(
        upstream: str, extra_location: str = "", uwsgi_params: str | None = None, **kwargs: str
    ) -> Nginx:
        nginx = Nginx(
            upstream, tmp_path / f"nginx{len(started)}", extra_location, uwsgi_params, **kwargs
        )
        started.append(nginx)
        return nginx.start()

    yield make
    for nginx in reversed(started):
        nginx.stop()
