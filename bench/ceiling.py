"""Requests/s of the example WSGI app called in-process: the ceiling for one worker.

Run by ``run.py`` (pinned to the server core) as::

    python bench/ceiling.py ENDPOINT DURATION

with the example project directory as the working directory.  Prints one JSON object.

No server can beat this loop on GET endpoints: it has no sockets, no parsing and no
syscalls for the response.  For ``download`` the ``wsgi.file_wrapper`` below reads the
remaining file once into a buffer, which stands for the one unavoidable copy a
``sendfile`` server makes in the kernel; without it Django would iterate in 4 KiB Python
chunks, a cost a good server never pays.
"""

import io
import json
import os
import sys
import time

UPLOAD_SIZE = 64 * 1024

PATHS = {
    "plain": ("GET", "/bench/plain"),
    "template": ("GET", "/bench/template"),
    "db": ("GET", "/bench/db"),
    "upload": ("POST", "/bench/upload"),
    "download": ("GET", "/bench/download"),
}

_buf = bytearray(1 << 20)


class CopyOnceFileWrapper:
    def __init__(self, filelike, blksize=8192):
        self.filelike = filelike

    def __iter__(self):
        view = memoryview(_buf)
        while self.filelike.readinto(view):
            pass
        return iter(())

    def close(self):
        self.filelike.close()


def base_environ(method, path):
    # What a typical HTTP/1.1 server builds for a curl/wrk-like request.
    return {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "40000",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_USER_AGENT": "ceiling/1",
        "HTTP_ACCEPT": "*/*",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.file_wrapper": CopyOnceFileWrapper,
    }


def main():
    endpoint, duration = sys.argv[1], float(sys.argv[2])
    method, path = PATHS[endpoint]
    sys.path.insert(0, os.getcwd())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings_bench")
    from mysite.wsgi import application

    base = base_environ(method, path)
    body = b"x" * UPLOAD_SIZE if method == "POST" else b""
    if body:
        base["CONTENT_LENGTH"] = str(len(body))
        base["CONTENT_TYPE"] = "application/octet-stream"
    statuses = []

    def start_response(status, headers, exc_info=None):
        # Only the first status is checked; keeping them all would grow memory per request.
        if not statuses:
            statuses.append(status)

    def one():
        environ = base.copy()
        environ["wsgi.input"] = io.BytesIO(body)
        result = application(environ, start_response)
        try:
            for _chunk in result:
                pass
        finally:
            if hasattr(result, "close"):
                result.close()

    one()
    if not statuses or not statuses[0].startswith("200"):
        print(json.dumps({"error": f"{method} {path} answered {statuses[:1]}"}))
        return 1

    # Warm caches (templates, DB, allocator) before timing, as the servers get a warm-up too.
    warm_end = time.perf_counter() + min(1.0, duration / 4)
    while time.perf_counter() < warm_end:
        one()

    n = 0
    start = time.perf_counter()
    end = start + duration
    now = start
    while now < end:
        one()
        n += 1
        now = time.perf_counter()
    elapsed = now - start
    print(json.dumps({"requests": n, "seconds": elapsed, "rps": n / elapsed}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
