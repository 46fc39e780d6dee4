"""``import uwsgi`` / ``uwsgidecorators`` under the real server with several workers: locks,
caches, signals, timers, cron, file monitors, postfork, set_user_harakiri, and the module
staying unimportable outside runuwsgi.

The test project registers its uwsgidecorators tasks (testapp/uwsgitasks.py) when
TEST_UWSGI_DIR is set; they append "kind worker_id pid time" lines to events.log there."""

import concurrent.futures
import contextlib
import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from tests.server import ROOT, TEST_PROJECT, Server, stop_all, wait_for

API_ARGS = ["--http-socket", "127.0.0.1:0", "--processes", "3",
            "--cache2", "name=c1,items=20,blocksize=64", "--cache2", "name=c2,items=4",
            "--locks", "2", "--master"]


class Api:
    """One server shared by the tests that only read or add state."""

    def __init__(self, server, events_dir):
        self.server = server
        self.dir = events_dir

    def get(self, path, **params):
        return requests.get(self.server.url + path, params=params, timeout=15)

    def json(self, path, **params):
        response = self.get(path, **params)
        assert response.status_code == 200, response.text[:2000]
        return response.json()

    def events(self, kind=None):
        path = self.dir / "events.log"
        if not path.exists():
            return []
        rows = [line.split() for line in path.read_text().splitlines()]
        return [(k, int(w), int(p), float(t)) for k, w, p, t in rows if kind in (None, k)]

    def concurrently(self, path, count, **params):
        with concurrent.futures.ThreadPoolExecutor(count) as pool:
            return list(pool.map(lambda _: self.json(path, **params), range(count)))


def _start(tmp_path, args, extra_env=None):
    events = tmp_path / "uwsgi-events"
    events.mkdir()
    env = {"TEST_UWSGI_DIR": str(events), **(extra_env or {})}
    home = tmp_path / "server"
    home.mkdir()
    return Server(home, args, env), events


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    server, events = _start(tmp_path_factory.mktemp("uwsgi-api"), API_ARGS)
    try:
        yield Api(server, events)
    finally:
        stop_all([server])


@pytest.fixture
def own_api(tmp_path):
    """A server of its own, for tests that kill workers or stop the server."""
    started = []

    def start(args=API_ARGS, env=None):
        home = tmp_path / f"s{len(started)}"
        home.mkdir()
        server, events = _start(home, args, env)
        started.append(server)
        return Api(server, events)

    yield start
    stop_all(started)


def test_process_information(api):
    info = api.json("/uwsgi/info")
    assert info["worker_id"] in (1, 2, 3)
    assert info["masterpid"] == api.server.pid
    assert info["mule_id"] == 0
    assert info["numproc"] == 3
    assert abs(info["started_on"] - time.time()) < 120
    assert info["version"].startswith("django-uwsgi-server")
    assert info["hostname"]
    # uwsgi.opt: what was set, as uWSGI gives it (bytes, a list for a repeated option).
    assert info["opt"]["processes"] == "3"
    assert info["opt"]["locks"] == "2"
    assert info["opt"]["master"] is True  # a bare flag
    assert info["opt"]["cache2"] == ["name=c1,items=20,blocksize=64", "name=c2,items=4"]
    assert "harakiri" not in info["opt"]  # defaults are not options given
    workers = info["workers"]
    assert [w["id"] for w in workers] == [1, 2, 3]
    assert sorted(w["pid"] for w in workers) == api.server.worker_pids()
    assert {"requests", "exceptions", "status", "rss", "last_spawn", "tx"} <= set(workers[0])
    assert sum(w["requests"] for w in workers) == info["total_requests"]
    me = next(w for w in workers if w["pid"] == info["pid"])
    assert me["status"] == "busy"  # serving this very request
    # Counters grow as requests end.
    before = info["total_requests"]
    for _ in range(3):
        api.json("/uwsgi/info")
    after = api.json("/uwsgi/info")
    assert after["total_requests"] >= before + 3
    assert after["request_id"] >= 1


def test_locks_are_exclusive_across_workers(api, tmp_path):
    log = tmp_path / "lock.log"
    results = api.concurrently("/uwsgi/lock", 6, file=str(log), sleep="0.15", n="2")
    assert len({r["pid"] for r in results}) >= 2, "the requests did not reach several workers"
    assert all(r["locked_inside"] for r in results)
    lines = log.read_text().splitlines()
    assert len(lines) == 12
    for start, end in zip(lines[::2], lines[1::2], strict=True):
        # Nobody else wrote between a holder's start and end.
        assert start.split()[0] == "start" and end.split()[0] == "end"
        assert start.split()[1] == end.split()[1], lines
    assert api.json("/uwsgi/is_locked", n="2")["locked"] is False
    bad = api.get("/uwsgi/is_locked", n="3")  # --locks 2: locks 0, 1 and 2
    assert bad.status_code == 500
    wait_for(lambda: "invalid lock number 3" in api.server.stderr(), 5, "the lock error")


def test_cache_is_shared_by_the_workers(api):
    assert api.json("/uwsgi/cache", op="set", key="k", value="v1")["result"] is True
    # cache_set does not overwrite (uWSGI), cache_update does.
    assert api.json("/uwsgi/cache", op="set", key="k", value="v2")["result"] is None
    results = api.concurrently("/uwsgi/cache", 6, op="get", key="k", sleep="0.2")
    assert len({r["pid"] for r in results}) >= 2
    assert {r["result"] for r in results} == {"v1"}
    assert api.json("/uwsgi/cache", op="update", key="k", value="v3")["result"] is True
    results = api.concurrently("/uwsgi/cache", 6, op="get", key="k", sleep="0.2")
    assert {r["result"] for r in results} == {"v3"}
    assert api.json("/uwsgi/cache", op="exists", key="k")["result"] is True
    assert "k" in api.json("/uwsgi/cache", op="keys")["result"]
    assert api.json("/uwsgi/cache", op="del", key="k")["result"] is True
    assert api.json("/uwsgi/cache", op="exists", key="k")["result"] is None
    assert api.json("/uwsgi/cache", op="get", key="k")["result"] is None
    # A value over blocksize (64) is refused, as in uWSGI.
    assert api.json("/uwsgi/cache", op="set", key="big", value="x" * 65)["result"] is None
    # Expiry.
    assert api.json("/uwsgi/cache", op="set", key="e", value="soon", expires="1")["result"]
    assert api.json("/uwsgi/cache", op="get", key="e")["result"] == "soon"
    wait_for(lambda: api.json("/uwsgi/cache", op="get", key="e")["result"] is None, 5,
             "the item to expire")
    # A named cache is separate, and bounded (items=4).
    for i in range(4):
        assert api.json("/uwsgi/cache", op="set", key=f"n{i}", value="x", cache="c2")["result"]
    assert api.json("/uwsgi/cache", op="set", key="n5", value="x", cache="c2")["result"] is None
    assert api.json("/uwsgi/cache", op="get", key="n0")["result"] is None  # not in c1
    assert api.json("/uwsgi/cache", op="clear", cache="c2")["result"] is True
    assert api.json("/uwsgi/cache", op="keys", cache="c2")["result"] == []
    assert api.get("/uwsgi/cache", op="get", key="x", cache="nope").status_code == 500
    wait_for(lambda: "no cache named 'nope'" in api.server.stderr(), 5, "the cache error")


def test_postfork_runs_in_each_worker_and_on_respawn(own_api):
    api = own_api()
    pids = api.server.worker_pids()
    wait_for(lambda: len(api.events("postfork")) >= 3, 10, "postfork in every worker")
    assert sorted(p for _, _, p, _ in api.events("postfork")) == pids
    assert sorted(w for _, w, _, _ in api.events("postfork")) == [1, 2, 3]
    os.kill(pids[0], signal.SIGKILL)
    wait_for(lambda: len(api.events("postfork")) >= 4, 10, "postfork in the respawned worker")
    new_pid = api.events("postfork")[-1][2]
    assert new_pid not in pids
    wait_for(lambda: new_pid in api.server.worker_pids(), 5, "the respawned worker listed")


def test_timer_fires_on_time_in_its_worker(api):
    # @timer(1, target="worker2"); the worker is idle: the ticks arrive on time.
    before = len(api.events("timer0"))
    wait_for(lambda: len(api.events("timer0")) >= before + 4, 15, "four timer ticks")
    ticks = api.events("timer0")[before:]
    assert {w for _, w, _, _ in api.events("timer0")} == {2}
    gaps = [b[3] - a[3] for a, b in zip(ticks, ticks[1:], strict=False)]
    assert all(0.6 <= gap <= 1.8 for gap in gaps), gaps
    # @rbtimer(2): any one worker, every two seconds.
    wait_for(lambda: len(api.events("rbtimer1")) >= 2, 15, "two rb_timer ticks")


def test_signals_reach_their_targets(api):
    before = len(api.events("broadcast"))
    api.json("/uwsgi/signal", num="100")  # @signal(100, target="workers")
    wait_for(lambda: len(api.events("broadcast")) >= before + 3, 10, "the broadcast")
    time.sleep(0.3)
    new = api.events("broadcast")[before:]
    assert sorted(w for _, w, _, _ in new) == [1, 2, 3]
    before = len(api.events("one"))
    api.json("/uwsgi/signal", num="101")  # @signal(101): one worker
    wait_for(lambda: len(api.events("one")) > before, 10, "signal 101")
    time.sleep(0.5)
    assert len(api.events("one")) == before + 1


def test_registration_made_in_a_worker(api, tmp_path):
    out = tmp_path / "handler.log"
    who = api.json("/uwsgi/register", num="60", target="workers", file=str(out), timer="0.5")
    # Only the worker that registered has the handler: the master routes it there only.
    wait_for(lambda: out.exists() and len(out.read_text().splitlines()) >= 3, 10,
             "the worker's own timer")
    rows = [line.split() for line in out.read_text().splitlines()]
    assert {(int(n), int(w), int(p)) for n, w, p in rows} == \
        {(60, who["worker_id"], who["pid"])}


def test_file_monitor(api):
    watched = api.dir / "watched"
    before = len(api.events("filemon"))
    watched.write_text("changed")
    wait_for(lambda: len(api.events("filemon")) > before, 10, "the file monitor signal")


def test_user_harakiri_kills_a_stuck_request(own_api):
    api = own_api()
    # A request within its own limit is untouched, and the limit ends with it.
    assert api.json("/uwsgi/harakiri", secs="2", sleep="0.2")["survived"]
    started = time.monotonic()
    response = api.get("/uwsgi/harakiri", secs="1", sleep="20")
    elapsed = time.monotonic() - started
    assert response.status_code == 504
    assert 0.9 <= elapsed < 4, elapsed
    wait_for(lambda: "set_user_harakiri() deadline passed" in api.server.stderr(), 5,
             "the harakiri log line")
    assert "ran past harakiri (1 s)" in api.server.stderr()  # the traceback's headline
    time.sleep(2.5)  # the first request's limit (2 s) would have fired by now
    assert api.server.stderr().count("HARAKIRI ON WORKER") == 1


def test_threads_locks_and_user_harakiri(own_api, tmp_path):
    # Threads of one worker exclude each other too; a pool thread's request is interrupted.
    api = own_api(["--http-socket", "127.0.0.1:0", "--processes", "2", "--threads", "3"])
    log = tmp_path / "lock.log"
    results = api.concurrently("/uwsgi/lock", 6, file=str(log), sleep="0.1")
    pids = [r["pid"] for r in results]
    assert any(pids.count(p) > 1 for p in pids), "no two requests shared a worker"
    lines = log.read_text().splitlines()
    for start, end in zip(lines[::2], lines[1::2], strict=True):
        assert start.split()[0] == "start" and end.split()[0] == "end", lines
    started = time.monotonic()
    response = api.get("/uwsgi/harakiri", secs="1", sleep="20")
    assert response.status_code == 504
    assert time.monotonic() - started < 5


def test_user_harakiri_kills_what_it_cannot_interrupt(own_api):
    # In a pool thread a single long sleep cannot be interrupted: the master kills the
    # worker after harakiri-graceful-timeout, and its successor (same slot) is left alone.
    api = own_api(["--http-socket", "127.0.0.1:0", "--processes", "1", "--threads", "2",
                   "--harakiri-graceful-timeout", "1"])
    before = api.server.worker_pids()
    with pytest.raises(requests.RequestException):
        api.get("/uwsgi/harakiri", secs="1", block="30")
    wait_for(lambda: "SIGKILL" in api.server.stderr(), 10, "the SIGKILL")

    def one_worker_other_than(old):
        # (a killed worker is listed until the master reaps it)
        pids = api.server.worker_pids()
        return pids if len(pids) == 1 and pids != old else None

    successor = wait_for(lambda: one_worker_other_than(before), 10, "the respawn")
    # The replacement was forked while the stuck worker still lived (another slot); crash
    # it so that the next one gets the stuck worker's old slot, which must have no deadline.
    os.kill(successor[0], signal.SIGKILL)
    third = wait_for(lambda: one_worker_other_than(successor), 10, "the second respawn")
    time.sleep(3)
    assert wait_for(api.server.worker_pids, 5, "the worker list") == third
    assert api.server.stderr().count("HARAKIRI ON WORKER") == 1
    assert api.json("/uwsgi/info")["pid"] == third[0]


def test_unsupported_function_names_itself(api):
    data = api.json("/uwsgi/unsupported")
    assert "uwsgi.mule_msg is not supported by runuwsgi" in data["error"]
    assert data["hasattr"] is False  # feature checks with hasattr() still work


def test_setprocname_and_log(api):
    pid = api.json("/uwsgi/procname", name="dus-renamed")["pid"]
    with open(f"/proc/{pid}/comm") as f:
        assert f.read().strip() == "dus-renamed"
    wait_for(lambda: "procname set to dus-renamed" in api.server.stderr(), 5, "uwsgi.log")


def test_reload_and_stop_from_the_app(own_api):
    api = own_api()
    old = api.server.worker_pids()
    assert api.json("/uwsgi/cache", op="set", key="kept", value="across")["result"] is True
    api.json("/uwsgi/control", what="reload")
    wait_for(lambda: "reload complete" in api.server.stderr(), 30, "the reload")
    wait_for(lambda: not set(old) & set(api.server.worker_pids()), 30, "new workers")
    # The re-executed master took the cache over (and the locks: old and new workers
    # shared them while both served).
    results = api.concurrently("/uwsgi/cache", 4, op="get", key="kept", sleep="0.1")
    assert {r["result"] for r in results} == {"across"}
    assert {r["pid"] for r in results} <= set(api.server.worker_pids())
    api.json("/uwsgi/control", what="stop")
    wait_for(lambda: api.server.proc.poll() is not None, 30, "the server to stop")
    assert api.server.proc.returncode == 0


LAZY_APP = """
import os
import time

import uwsgi
from uwsgidecorators import postfork, timer

LOG = os.environ["LAZY_LOG"]


def record(kind):
    with open(LOG, "a") as f:
        f.write(f"{kind} {uwsgi.worker_id()} {os.getpid()} {time.time():.3f}\\n")


@postfork
def hello():
    record("postfork")


@timer(1, target="worker2")
def tick(num):
    record("timer")


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"lazy"]
"""


def test_lazy_apps_every_worker_registers_one_timer(start_server, tmp_path):
    # Each worker imports the app and registers the same timer: the master keeps one, and
    # routes it to worker 2 (whose own registration gave it the handler).
    (tmp_path / "lazyapp.py").write_text(LAZY_APP)
    log = tmp_path / "lazy.log"
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "3", "--lazy-apps",
                           "--wsgi-file", str(tmp_path / "lazyapp.py")],
                          env={"LAZY_LOG": str(log)})

    def rows(kind):
        if not log.exists():
            return []
        return [line.split() for line in log.read_text().splitlines() if line.startswith(kind)]

    wait_for(lambda: len(rows("postfork")) >= 3, 15, "postfork in every worker")
    assert sorted(int(r[2]) for r in rows("postfork")) == server.worker_pids()
    wait_for(lambda: rows("timer"), 15, "a first tick")
    first = float(rows("timer")[0][3])
    wait_for(lambda: float(rows("timer")[-1][3]) - first >= 3, 15, "three more ticks")
    ticks = rows("timer")
    span = float(ticks[-1][3]) - first
    assert len(ticks) <= span + 2, f"{len(ticks)} ticks in {span:.1f} s: the timer is not one"
    assert {r[1] for r in ticks} == {"2"}


def test_cron_fires_at_the_minute(own_api):
    # @cron(-1, -1, -1, -1, -1): every minute, at the minute boundary.
    api = own_api(env={"TEST_UWSGI_CRON": "1"})
    wait_for(lambda: api.events("cron"), 75, "the cron job", interval=0.5)
    fired = api.events("cron")[0][3]
    assert fired % 60 < 3, time.ctime(fired)


@pytest.mark.parametrize("args, message", [
    (["--cache2", "name=x"], "expected items=N"),
    (["--cache2", "name=x,items=2,color=red"], "unknown key 'color'"),
    (["--locks", "-1"], "'locks'"),
])
def test_bad_options_are_one_line_errors(args, message):
    result = subprocess.run([sys.executable, str(TEST_PROJECT / "manage.py"), "runuwsgi",
                             "--http-socket", "127.0.0.1:0", *args], cwd=str(TEST_PROJECT),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_import_uwsgi_fails_outside_the_server():
    code = ("import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'testsite.settings'; "
            "django.setup(); import django_uwsgi_server.compat\n"
            "for name in ('uwsgi', 'uwsgidecorators'):\n"
            "    try:\n        __import__(name)\n    except ImportError:\n        print(name, 'no')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(TEST_PROJECT)])}
    result = subprocess.run([sys.executable, "-c", code], cwd=str(TEST_PROJECT), env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.stdout.split("\n")[:2] == ["uwsgi no", "uwsgidecorators no"], result.stderr
    shell = subprocess.run([sys.executable, "manage.py", "shell", "-c", "import uwsgi"],
                           cwd=str(TEST_PROJECT), capture_output=True, text=True, timeout=60)
    assert shell.returncode != 0 and "No module named 'uwsgi'" in shell.stderr


def _cache_conversation(api):
    """What the cache views answer, in order: compared between runuwsgi and real uWSGI."""
    steps = [("clear", None, None), ("set", "k", "v1"), ("set", "k", "v2"), ("get", "k", None),
             ("exists", "k", None),
             ("update", "k", "v3"), ("get", "k", None), ("update", "new", "n"),
             ("del", "k", None), ("del", "k", None), ("get", "k", None),
             ("exists", "k", None), ("set", "big", "x" * 65), ("keys", None, None),
             ("clear", None, None), ("keys", None, None)]
    answers = []
    for op, key, value in steps:
        params = {"op": op, "key": key or "", **({"value": value} if value else {})}
        answers.append((op, api.json("/uwsgi/cache", **params)["result"]))
    answers.append(("lock", api.json("/uwsgi/lock", file=str(api.dir / "l"), sleep="0",
                                     n="2")["locked_inside"]))
    return answers


@contextlib.contextmanager
def real_uwsgi(tmp_path, env=None):
    """The test project under real uWSGI (pyuwsgi via --engine uwsgi) with API_ARGS; an Api
    on it. Stopped by its process group."""
    pytest.importorskip("pyuwsgi")
    from tests.nginx import free_port

    port = free_port()
    args = [a if a != "127.0.0.1:0" else f"127.0.0.1:{port}" for a in API_ARGS]
    events = tmp_path / "real-events"
    events.mkdir()
    log_path = tmp_path / "uwsgi.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "manage.py", "runuwsgi", "--engine", "uwsgi",
                                 "--skip-checks", *args], cwd=str(TEST_PROJECT), stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, **(env or {})}, start_new_session=True)
    try:
        real = Api(type("S", (), {"url": f"http://127.0.0.1:{port}"})(), events)

        def up():
            assert proc.poll() is None, log_path.read_text()
            try:
                return real.get("/hello").status_code == 200
            except requests.RequestException:
                return False

        wait_for(up, 60, "real uWSGI serving", interval=0.2)
        yield real
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # uWSGI: SIGINT stops at once
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def test_cache_and_locks_answer_as_real_uwsgi(api, tmp_path):
    # The same views under real uWSGI with the same options give the same answers: the
    # semantics are uWSGI's, not our reading of its docs.
    ours = _cache_conversation(api)
    with real_uwsgi(tmp_path) as real:
        theirs = _cache_conversation(real)
    assert ours == theirs


def _signal_story(api):
    """Which workers ran what: postfork, the worker2 timer, a broadcast, a one-worker signal."""
    (api.dir / "watched").touch()
    wait_for(lambda: len(api.events("postfork")) >= 3, 30, "postfork in every worker")
    wait_for(lambda: len(api.events("timer0")) >= 2, 30, "two timer ticks")
    api.json("/uwsgi/signal", num="100")
    api.json("/uwsgi/signal", num="101")
    wait_for(lambda: len(api.events("broadcast")) >= 3 and api.events("one"), 30, "signals")
    time.sleep(0.5)
    return {"postfork": sorted(e[1] for e in api.events("postfork")),
            "timer": sorted({e[1] for e in api.events("timer0")}),
            "broadcast": sorted(e[1] for e in api.events("broadcast")),
            "one": len(api.events("one")),
            "registered": api.json("/uwsgi/info")["registered"],
            "worker_types": api.json("/uwsgi/info")["worker_types"]}


def test_signals_and_postfork_behave_as_real_uwsgi(own_api, tmp_path):
    ours = _signal_story(own_api())
    with real_uwsgi(tmp_path, env={"TEST_UWSGI_DIR": str(tmp_path / "real-events")}) as real:
        theirs = _signal_story(real)
    assert ours == theirs
    assert ours["timer"] == [2] and ours["broadcast"] == [1, 2, 3] and ours["one"] == 1
