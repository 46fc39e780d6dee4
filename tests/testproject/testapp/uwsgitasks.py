"""uwsgidecorators used the way projects use them, imported by TestAppConfig.ready() when
TEST_UWSGI_DIR is set: in the master with a preloaded app, in each worker with lazy-apps.
Every event is appended to TEST_UWSGI_DIR/events.log as "kind worker_id pid time"."""

import os
import time

import uwsgi
from django.db import connections
from uwsgidecorators import filemon, postfork, rbtimer, signal, timer

DIR = os.environ["TEST_UWSGI_DIR"]


def record(kind: str) -> None:
    line = f"{kind} {uwsgi.worker_id()} {os.getpid()} {time.time():.3f}\n"
    fd = os.open(os.path.join(DIR, "events.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@postfork
def close_db_connections():
    # The real-project pattern: a connection opened in the master must not be shared.
    connections.close_all()
    record("postfork")


@timer(1, target="worker2")
def every_second(num):
    record(f"timer{num}")


@rbtimer(2)
def every_two_seconds(num):
    record(f"rbtimer{num}")


@signal(100, target="workers")
def broadcast(num):
    record("broadcast")


@signal(101)
def one_worker(num):
    record("one")


@filemon(os.path.join(DIR, "watched"))
def watched_changed(num):
    record("filemon")


if os.environ.get("TEST_UWSGI_CRON"):
    from uwsgidecorators import cron

    @cron(-1, -1, -1, -1, -1)
    def every_minute(num):
        record("cron")
