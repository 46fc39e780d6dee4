"""Views calling the uwsgi module, for tests/e2e/test_uwsgi_api.py."""

import json
import os
import time

from django.http import HttpResponse, JsonResponse

try:  # these views run under runuwsgi; the URLconf must still import elsewhere (gunicorn)
    import uwsgi
except ImportError:
    uwsgi = None


def _text(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, (list, tuple)):
        return [_text(v) for v in value]
    if isinstance(value, dict):
        return {k: _text(v) for k, v in value.items()}
    return value


def info(request):
    return JsonResponse({
        "pid": os.getpid(), "worker_id": uwsgi.worker_id(), "masterpid": uwsgi.masterpid(),
        "mule_id": uwsgi.mule_id(), "numproc": uwsgi.numproc, "started_on": uwsgi.started_on,
        "version": _text(uwsgi.version), "hostname": _text(uwsgi.hostname),
        "opt": {k: _text(v) for k, v in uwsgi.opt.items()},
        "total_requests": uwsgi.total_requests(), "request_id": uwsgi.request_id(),
        "workers": _text(uwsgi.workers()),
        "worker_types": {k: type(v).__name__ for k, v in uwsgi.workers()[0].items()},
        "registered": [n for n in range(256) if uwsgi.signal_registered(n)],
    })


def lock(request):
    n = int(request.GET.get("n", "0"))
    path = request.GET["file"]
    uwsgi.lock(n)
    try:
        with open(path, "a") as f:
            f.write(f"start {os.getpid()}\n")
        time.sleep(float(request.GET.get("sleep", "0.2")))
        locked = uwsgi.is_locked(n)
        with open(path, "a") as f:
            f.write(f"end {os.getpid()}\n")
    finally:
        uwsgi.unlock(n)
    return JsonResponse({"pid": os.getpid(), "locked_inside": locked,
                         "locked_after": uwsgi.is_locked(n)})


def is_locked(request):
    return JsonResponse({"pid": os.getpid(),
                         "locked": uwsgi.is_locked(int(request.GET.get("n", "0")))})


def cache(request):
    op = request.GET["op"]
    key = request.GET.get("key", "")
    # uWSGI takes no None for the cache name: leave it out for the default cache.
    named = [request.GET["cache"]] if "cache" in request.GET else []
    time.sleep(float(request.GET.get("sleep", "0")))  # keeps this worker busy: the next
    # concurrent requests go to the others
    if op in ("set", "update"):
        fn = uwsgi.cache_set if op == "set" else uwsgi.cache_update
        result = fn(key, request.GET["value"].encode(), int(request.GET.get("expires", "0")),
                    *named)
    elif op == "keys":
        result = sorted(k.decode() for k in uwsgi.cache_keys(*named))
    elif op == "clear":
        result = uwsgi.cache_clear(*named)
    else:
        result = getattr(uwsgi, f"cache_{op}")(key, *named)
    return JsonResponse({"pid": os.getpid(), "result": _text(result)})


def raise_signal(request):
    uwsgi.signal(int(request.GET["num"]))
    return JsonResponse({"pid": os.getpid()})


def register_here(request):
    """A registration made in a worker (not in the master): its handler runs only here."""
    num = int(request.GET["num"])
    path = request.GET["file"]

    def handler(signum):
        with open(path, "a") as f:
            f.write(f"{signum} {uwsgi.worker_id()} {os.getpid()}\n")

    uwsgi.register_signal(num, request.GET.get("target", "worker"), handler)
    if request.GET.get("timer"):
        uwsgi.add_timer(num, float(request.GET["timer"]))
    return JsonResponse({"pid": os.getpid(), "worker_id": uwsgi.worker_id()})


def harakiri(request):
    uwsgi.set_user_harakiri(int(request.GET["secs"]))
    if request.GET.get("block"):  # one long call: nothing interrupts it in a pool thread
        time.sleep(float(request.GET["block"]))
    deadline = time.monotonic() + float(request.GET.get("sleep", "0"))
    while time.monotonic() < deadline:  # busy, as a stuck computation
        time.sleep(0.05)
    return JsonResponse({"pid": os.getpid(), "survived": True})


def unsupported(request):
    try:
        uwsgi.mule_msg(b"hello")
    except uwsgi.UnsupportedError as exc:
        return JsonResponse({"error": str(exc), "hasattr": hasattr(uwsgi, "mule_msg")})
    return JsonResponse({"error": None})


def procname(request):
    uwsgi.setprocname(request.GET["name"])
    uwsgi.log(f"procname set to {request.GET['name']}")
    return JsonResponse({"pid": os.getpid()})


def control(request):
    what = request.GET["what"]
    (uwsgi.reload if what == "reload" else uwsgi.stop)()
    return HttpResponse(json.dumps({"pid": os.getpid()}), content_type="application/json")
