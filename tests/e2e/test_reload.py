"""Process management: reloads that drop nothing, chain reloads, harakiri, recycling,
respawn, signals, touch-reload and the master FIFO."""

import concurrent.futures
import os
import signal
import threading
import time

import psutil
import pytest
import requests

from django_uwsgi_server.server.control import serving
from tests.server import wait_for

VERSIONED_APP = '''
import os
import time

import dus_version

time.sleep(float(os.environ.get("DUS_SLOW_IMPORT", "0")))


def application(environ, start_response):
    body = f"{dus_version.VERSION} {__import__('os').getpid()}".encode()
    if environ["PATH_INFO"] == "/slow":
        __import__("time").sleep(0.3)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
'''


def versioned(tmp_path, version):
    (tmp_path / "dus_version.py").write_text(f"VERSION = {version}\n")
    # A new mtime and no stale bytecode: the re-imported module must be the new one.
    for pyc in (tmp_path / "__pycache__").glob("dus_version*") if (tmp_path / "__pycache__").exists() else ():
        pyc.unlink()


@pytest.fixture
def app_dir(tmp_path):
    (tmp_path / "app.py").write_text(VERSIONED_APP)
    versioned(tmp_path, 1)
    return tmp_path


def count_in_log(server, text):
    return server.stderr().count(text)


class Load:
    """A few keep-alive clients hammering the server until stopped; counts failures."""

    def __init__(self, url, clients=4):
        self.url = url
        self.failures = []
        self.bodies = []
        self.longest = 0.0
        self.count = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def _run(self):
        session = requests.Session()
        while not self._stop.is_set():
            start = time.monotonic()
            try:
                r = session.get(self.url, timeout=10)
                if r.status_code != 200:
                    self.failures.append(f"status {r.status_code}")
                else:
                    self.bodies.append(r.text)
            except requests.RequestException as exc:
                self.failures.append(repr(exc))
            self.longest = max(self.longest, time.monotonic() - start)
            self.count += 1

    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for t in self._threads:
            t.join(15)


def test_graceful_reload_under_load_serves_new_code_and_drops_nothing(start_server, app_dir):
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "2",
                           "--wsgi-file", str(app_dir / "app.py"), "--pythonpath", str(app_dir),
                           "--skip-checks"])
    with Load(server.url + "/") as load:
        for version in range(2, 12):
            versioned(app_dir, version)
            os.kill(server.pid, signal.SIGHUP)
            wait_for(lambda v=version: count_in_log(server, "reload complete") == v - 1, 30,
                     f"reload {version - 1} to complete")
            wait_for(lambda v=version: requests.get(server.url + "/").text.startswith(f"{v} "),
                     10, f"version {version} served")
        time.sleep(0.3)
    assert load.failures == [], load.failures[:5]
    assert load.count > 100
    assert load.longest < 1.0, f"a request stalled {load.longest:.2f} s during reloads"
    assert server.proc.poll() is None
    assert len(server.worker_pids()) == 2


def test_lazy_apps_reload_loads_new_code_without_reexec(start_server, app_dir):
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "2", "--lazy-apps",
                           "--wsgi-file", str(app_dir / "app.py"), "--pythonpath", str(app_dir),
                           "--skip-checks"])
    assert requests.get(server.url + "/").text.startswith("1 ")
    versioned(app_dir, 2)
    os.kill(server.pid, signal.SIGHUP)
    wait_for(lambda: "reload complete" in server.stderr(), 20, "the reload")
    assert "re-executing" not in server.stderr()
    assert requests.get(server.url + "/").text.startswith("2 ")


def test_reload_with_broken_code_keeps_serving_the_old(start_server, app_dir):
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "2",
                           "--wsgi-file", str(app_dir / "app.py"), "--pythonpath", str(app_dir),
                           "--skip-checks"])
    (app_dir / "dus_version.py").write_text("raise ImportError('broken on purpose')\n")
    os.kill(server.pid, signal.SIGHUP)
    wait_for(lambda: "reload failed" in server.stderr(), 20, "the failed reload")
    assert requests.get(server.url + "/").text.startswith("1 ")
    versioned(app_dir, 3)
    os.kill(server.pid, signal.SIGHUP)
    wait_for(lambda: requests.get(server.url + "/").text.startswith("3 "), 20, "the fixed code")


def test_chain_reload_replaces_one_worker_at_a_time(start_server, app_dir):
    fifo = app_dir / "master.fifo"
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "3", "--lazy-apps",
                           "--wsgi-file", str(app_dir / "app.py"), "--pythonpath", str(app_dir),
                           "--master-fifo", str(fifo), "--skip-checks"])
    before = set(server.worker_pids())
    counts = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            counts.append(len(server.worker_pids()))
            time.sleep(0.01)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    with Load(server.url + "/slow") as load:
        with open(fifo, "w") as f:
            f.write("c")
        wait_for(lambda: "chain reloading complete" in server.stderr(), 30, "the chain reload")
        # The last old worker may still be answering its keep-alive clients.
        wait_for(lambda: not before & set(server.worker_pids()), 5, "the old workers gone")
    stop.set()
    watcher.join(5)
    after = set(server.worker_pids())
    assert len(after) == 3
    assert min(counts) >= 3, "capacity never drops during a chain reload"
    assert server.stderr().count("chain next victim") == 2
    assert load.failures == []


def test_sighup_during_chain_is_queued(start_server, app_dir):
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "2", "--lazy-apps",
                           "--chain-reload", "--wsgi-file", str(app_dir / "app.py"),
                           "--pythonpath", str(app_dir), "--skip-checks",
                           "--env", "DUS_SLOW_IMPORT=0.5"])
    os.kill(server.pid, signal.SIGHUP)
    wait_for(lambda: "chain reload starting" in server.stderr(), 10, "the first chain")
    os.kill(server.pid, signal.SIGHUP)  # (two signals sent at once would merge into one)
    wait_for(lambda: server.stderr().count("chain reloading complete") == 2, 30, "two chains")
    assert "queued" in server.stderr()


def test_harakiri_logs_traceback_answers_504_and_replaces_the_worker(start_server):
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "2",
                           "--harakiri", "1", "--harakiri-verbose"])
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(requests.get, server.url + "/sleep?s=30", timeout=20)
        # The other worker keeps serving meanwhile.
        wait_for(lambda: any(ln == "started /sleep" for ln in server.signal_lines()), 5, "start")
        for _ in range(5):
            assert requests.get(server.url + "/hello", timeout=5).status_code == 200
        r = pending.result()
    elapsed = time.monotonic() - start
    assert r.status_code == 504
    assert 1.0 <= elapsed < 2.6, f"harakiri took {elapsed:.2f} s for a 1 s limit"
    err = server.stderr()
    assert "HARAKIRI ON WORKER" in err
    assert "GET /sleep?s=30" in err and "time.sleep" in err, "the stuck request's traceback"
    wait_for(lambda: any(ln == "finished /sleep" for ln in server.signal_lines()), 5,
             "request_finished of the stuck request")
    wait_for(lambda: "recycled: harakiri" in server.stderr(), 5, "the worker leaving")
    wait_for(lambda: len(server.worker_pids()) == 2, 5, "the replacement")
    assert "HARAKIRI: -- wchan>" in err


def test_harakiri_kills_what_it_cannot_interrupt(start_server):
    # In a pool thread the interruption waits for the next bytecode: time.sleep blocks it,
    # so the master's SIGKILL after harakiri-graceful-timeout ends it.
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "1", "--threads", "2",
                           "--harakiri", "1", "--harakiri-graceful-timeout", "1"])
    before = server.worker_pids()
    with pytest.raises(requests.RequestException):
        requests.get(server.url + "/sleep?s=30", timeout=10)
    wait_for(lambda: "SIGKILL" in server.stderr(), 5, "the SIGKILL")
    wait_for(lambda: server.worker_pids() and server.worker_pids() != before, 5, "respawn")
    assert requests.get(server.url + "/hello").status_code == 200


def test_max_requests_exact_counts_with_no_floor(start_server):
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "1",
                           "--max-requests", "5"])
    session = requests.Session()
    pids = [session.get(server.url + "/pid").text for _ in range(12)]
    # The readiness probe was the first worker's first request.
    counts = [pids.count(p) for p in dict.fromkeys(pids)]
    assert counts == [4, 5, 3], counts
    assert "recycled: max-requests reached (5 requests)" in server.stderr()


def test_reload_on_rss(start_server):
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "1",
                           "--reload-on-rss", "150"])
    first = requests.get(server.url + "/alloc?mb=200").text
    # Checked when the next request starts: it is still answered, then the worker leaves.
    assert requests.get(server.url + "/pid").text == first
    wait_for(lambda: "reload-on-rss" in server.stderr(), 5, "the recycling log line")
    wait_for(lambda: requests.get(server.url + "/pid").text != first, 5, "a new worker")


def test_max_worker_lifetime(start_server):
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "1",
                           "--max-worker-lifetime", "2"])
    first = server.worker_pids()
    with Load(server.url + "/hello", clients=2) as load:
        wait_for(lambda: "lifetime reached" in server.stderr(), 6, "the lifetime")
        wait_for(lambda: server.worker_pids() and server.worker_pids() != first, 5, "respawn")
    assert load.failures == []


def test_respawn_is_fast(start_server):
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "2"])
    victim = server.worker_pids()[0]
    os.kill(victim, signal.SIGKILL)
    start = time.monotonic()
    wait_for(lambda: len(server.worker_pids()) == 2 and victim not in server.worker_pids(), 5,
             "the respawn", interval=0.002)
    assert time.monotonic() - start < 0.5


def test_workers_exit_when_the_master_is_killed(start_server):
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "2"])
    workers = server.worker_pids()
    os.kill(server.pid, signal.SIGKILL)
    server.proc.wait(5)
    start = time.monotonic()
    wait_for(lambda: not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"
                             for p in workers), 3, "the orphaned workers to exit")
    assert time.monotonic() - start < 1.0


def test_ttin_ttou_and_usr1(start_server):
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "2"])
    os.kill(server.pid, signal.SIGTTIN)
    wait_for(lambda: len(server.worker_pids()) == 3, 5, "a third worker")
    os.kill(server.pid, signal.SIGTTOU)
    wait_for(lambda: len(server.worker_pids()) == 2, 5, "two workers left")
    os.kill(server.pid, signal.SIGTTOU)
    wait_for(lambda: len(server.worker_pids()) == 1, 5, "one worker left")
    os.kill(server.pid, signal.SIGUSR1)
    wait_for(lambda: "requests served" in server.stderr(), 5, "the summary")
    assert requests.get(server.url + "/hello").status_code == 200


def test_die_on_term_false_restores_uwsgis_brutal_reload(start_server):
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "1",
                           "--no-die-on-term", "--lazy-apps"])
    # (die-on-term = false in an ini file or settings.UWSGI)
    before = server.worker_pids()
    os.kill(server.pid, signal.SIGTERM)
    wait_for(lambda: server.worker_pids() and server.worker_pids() != before, 10, "reload")
    assert server.proc.poll() is None
    assert requests.get(server.url + "/hello").status_code == 200
    server.stop(signal.SIGINT)


def test_touch_reload_and_master_fifo(start_server, tmp_path):
    touch = tmp_path / "reload.touch"
    touch.write_text("")
    fifo = tmp_path / "fifo"
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "1", "--lazy-apps",
                           "--touch-reload", str(touch), "--master-fifo", str(fifo)])
    before = server.worker_pids()
    later = time.time() + 5
    os.utime(touch, (later, later))
    wait_for(lambda: "has been touched" in server.stderr(), 5, "the touch")
    wait_for(lambda: server.worker_pids() and server.worker_pids() != before, 10, "reload")
    assert oct(fifo.stat().st_mode & 0o777) == "0o600"
    with open(fifo, "w") as f:
        f.write("x")
    wait_for(lambda: "'x'" in server.stderr(), 5, "the unknown command logged")
    with open(fifo, "w") as f:
        f.write("q\n")
    assert server.proc.wait(15) == 0
    assert not fifo.exists()


def test_rolling_reload_of_two_instances_behind_nginx(start_server, nginx_factory, app_dir):
    """Scale-out: two instances behind one nginx upstream, reloaded one after the other
    under load, new code everywhere, and not one failed request."""
    args = ["--socket", "127.0.0.1:0", "--processes", "2", "--wsgi-file",
            str(app_dir / "app.py"), "--pythonpath", str(app_dir), "--skip-checks"]
    a = start_server(args)
    b = start_server(args)
    servers = "".join(f"server {host}:{port};" for host, port in
                      (a.uwsgi_address, b.uwsgi_address))
    nginx = nginx_factory("django", extra_http=f"upstream django {{ {servers} }}")
    assert requests.get(nginx.url + "/").text.startswith("1 ")
    with Load(nginx.url + "/") as load:
        for version in (2, 3):
            versioned(app_dir, version)
            for server in (a, b):
                done = count_in_log(server, "reload complete")
                os.kill(server.pid, signal.SIGHUP)
                wait_for(lambda s=server, n=done: count_in_log(s, "reload complete") == n + 1,
                         30, "one instance's reload")
        time.sleep(0.5)
    assert load.failures == [], load.failures[:5]
    assert load.count > 100
    served = {requests.get(nginx.url + "/").text.split()[0] for _ in range(10)}
    assert served == {"3"}


def test_reload_after_chdir(start_server, app_dir):
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "1",
                           "--chdir", str(app_dir), "--wsgi-file", "app.py",
                           "--pythonpath", str(app_dir), "--skip-checks"])
    versioned(app_dir, 2)
    os.kill(server.pid, signal.SIGHUP)
    wait_for(lambda: "reload complete" in server.stderr(), 20, "the reload")
    assert requests.get(server.url + "/").text.startswith("2 ")


def test_reload_with_broken_settings_keeps_serving(start_server, tmp_path):
    extra = tmp_path / "dus_extra.py"
    extra.write_text("OK = True\n")
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "2"],
                          env={"TEST_SETTINGS_EXTRA": "dus_extra", "PYTHONPATH": str(tmp_path)})
    before = server.worker_pids()
    extra.write_text("raise RuntimeError('settings broken on purpose')\n")
    os.kill(server.pid, signal.SIGHUP)
    wait_for(lambda: "reload failed" in server.stderr(), 30, "the failed reload")
    assert "settings broken on purpose" in server.stderr()
    assert server.worker_pids() == before
    assert requests.get(server.url + "/hello").text == "hello world"
    extra.write_text("OK = True\n")
    os.kill(server.pid, signal.SIGHUP)
    wait_for(lambda: "reload complete" in server.stderr(), 30, "the fixed reload")
    wait_for(lambda: not set(before) & set(server.worker_pids()), 10, "new workers")


def test_lazy_reload_with_broken_code_keeps_serving(start_server, app_dir):
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "2", "--lazy-apps",
                           "--wsgi-file", str(app_dir / "app.py"), "--pythonpath", str(app_dir),
                           "--skip-checks"])
    before = set(server.worker_pids())
    # Each worker imports the app itself: let both finish before breaking the code.
    wait_for(lambda: all(serving(p) for p in before), 10, "both workers serving")
    (app_dir / "dus_version.py").write_text("raise ImportError('broken on purpose')\n")
    os.kill(server.pid, signal.SIGHUP)
    wait_for(lambda: "reload failed" in server.stderr(), 20, "the failed reload")
    # Both new workers fail; the second failure must not be taken for a failed start.
    wait_for(lambda: set(server.worker_pids()) == before, 10, "the new workers gone")
    assert server.proc.poll() is None
    assert requests.get(server.url + "/").text.startswith("1 ")
