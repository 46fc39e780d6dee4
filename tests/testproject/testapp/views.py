import hashlib
import os
import tempfile
import time

from django.http import FileResponse, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt


def hello(request):
    return HttpResponse(b"hello world", content_type="text/plain")


@csrf_exempt
def echo(request):
    return HttpResponse(request.body, content_type="application/octet-stream")


@csrf_exempt
def environ(request):
    data = {k: v for k, v in request.META.items() if isinstance(v, (str, bool, int))}
    data["wsgi.input.read"] = request.body.decode("latin-1")
    data["wsgi.version"] = list(request.META["wsgi.version"])
    return JsonResponse(data)


def stream(request):
    count = int(request.GET.get("n", "5"))
    delay = float(request.GET.get("delay", "0"))

    def chunks():
        for i in range(count):
            if delay:
                time.sleep(delay)
            yield f"chunk {i}\n".encode()

    return StreamingHttpResponse(chunks(), content_type="text/plain")


def _data_file(size: int) -> str:
    path = os.path.join(tempfile.gettempdir(), f"dus-test-{size}.bin")
    if not os.path.exists(path) or os.path.getsize(path) != size:
        block = bytes(range(256)) * 4096
        with open(path + ".tmp", "wb") as f:
            left = size
            while left > 0:
                f.write(block[: min(left, len(block))])
                left -= len(block)
        os.replace(path + ".tmp", path)
    return path


def file(request):
    size = int(request.GET.get("size", str(1 << 20)))
    f = open(_data_file(size), "rb")
    seek = int(request.GET.get("seek", "0"))
    if seek:
        f.seek(seek)
    return FileResponse(f, content_type="application/octet-stream")


def error(request):
    raise RuntimeError("boom from a view")


def pid(request):
    return HttpResponse(str(os.getpid()), content_type="text/plain")


def sleep(request):
    time.sleep(float(request.GET.get("s", "1")))
    return HttpResponse(b"slept", content_type="text/plain")


@csrf_exempt
def upload(request):
    digest = hashlib.sha256()
    total = 0
    while True:
        chunk = request.read(65536)
        if not chunk:
            break
        total += len(chunk)
        digest.update(chunk)
    return JsonResponse({"size": total, "sha256": digest.hexdigest()})


def big(request):
    size = int(request.GET.get("size", str(1 << 20)))
    return HttpResponse(b"x" * size, content_type="application/octet-stream")


def osenv(request):
    return JsonResponse({"value": os.environ.get(request.GET["k"]), "cwd": os.getcwd()})


_HOARD = []


def alloc(request):
    """Keep ``mb`` megabytes alive in this worker (reload-on-rss tests)."""
    _HOARD.append(bytearray(int(request.GET.get("mb", "50")) << 20))
    return HttpResponse(str(os.getpid()), content_type="text/plain")
