import os
import threading

from django.apps import AppConfig
from django.core.signals import request_finished, request_started

_current = threading.local()


def _record(line: str) -> None:
    path = os.environ.get("TEST_SIGNAL_LOG")
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)


def on_started(sender, environ, **kwargs):
    _current.path = environ.get("PATH_INFO", "")
    _record(f"started {_current.path}")


def on_finished(sender, **kwargs):
    _record(f"finished {getattr(_current, 'path', '?')}")


class TestAppConfig(AppConfig):
    name = "testapp"

    def ready(self):
        request_started.connect(on_started)
        request_finished.connect(on_finished)
        if os.environ.get("TEST_UWSGI_DIR"):
            from . import uwsgitasks  # noqa: F401  (registers the uwsgidecorators tasks)
