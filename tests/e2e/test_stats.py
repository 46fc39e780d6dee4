"""The stats server (uWSGI's JSON schema, uwsgitop), Prometheus metrics and uwsgi_stats,
against the real server under load."""

import concurrent.futures
import fcntl
import json
import os
import select
import signal
import socket
import stat
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest
import requests

from django_uwsgi_server.server.stats_client import StatsUnavailable, fetch_raw, fetch_stats
from tests.server import TEST_PROJECT, run_command, wait_for

LISTEN = "127.0.0.1:0"

TOP_LEVEL = {"version": str, "listen_queue": int, "listen_queue_errors": int,
             "signal_queue": int, "load": int, "pid": int, "uid": int, "gid": int, "cwd": str,
             "locks": list, "sockets": list, "workers": list}
SOCKET = {"name": str, "proto": str, "queue": int, "max_queue": int, "shared": int,
          "can_offload": int}
WORKER = {"id": int, "pid": int, "accepting": int, "requests": int, "delta_requests": int,
          "exceptions": int, "harakiri_count": int, "signals": int, "signal_queue": int,
          "status": str, "rss": int, "vsz": int, "running_time": int, "last_spawn": int,
          "respawn_count": int, "tx": int, "avg_rt": int, "apps": list, "cores": list}
CORE = {"id": int, "requests": int, "static_requests": int, "routed_requests": int,
        "offloaded_requests": int, "write_errors": int, "read_errors": int, "in_request": int,
        "vars": list, "req_info": dict}
APP = {"id": int, "modifier1": int, "mountpoint": str, "startup_time": int, "requests": int,
       "exceptions": int, "chdir": str}


def stats_server(start_server, tmp_path, *args, name="stats.sock"):
    path = str(tmp_path / name)
    server = start_server(["--http-socket", LISTEN, "--stats", path, *args])
    wait_for(lambda: os.path.exists(path), 10, "the stats socket")
    quiet(path)
    return server, path


def quiet(address):
    """Wait until the readiness probe's request is counted and over (its counter lands
    just after its response) and nothing changes for 0.2 s: the baseline of exact counts."""
    last = []

    def still():
        doc = fetch_stats(address)
        now = (total(doc), doc["load"])
        settled_now = bool(last) and last[-1] == now and now[0] >= 1 and now[1] == 0
        last.append(now)
        return settled_now
    wait_for(still, 15, "a quiet server", interval=0.2)


def total(doc):
    return sum(w["requests"] for w in doc["workers"])


def hammer(url, count, clients=6):
    """``count`` requests over keep-alive connections; every one must succeed."""
    def run(n):
        with requests.Session() as session:
            for _ in range(n):
                assert session.get(url, timeout=30).status_code == 200
    share = [count // clients + (i < count % clients) for i in range(clients)]
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(run, share))


def settled(path, expected, timeout=15):
    """The document once its total reaches ``expected`` (the request counter is written
    after the response is sent, so the last ones may land a moment later)."""
    def check():
        doc = fetch_stats(path)
        return doc if total(doc) >= expected else None
    return wait_for(check, timeout, f"{expected} requests counted")


def test_counters_are_exact_with_processes(start_server, tmp_path):
    server, path = stats_server(start_server, tmp_path, "--processes", "3")
    wait_for(lambda: len([w for w in fetch_stats(path)["workers"] if w["accepting"]]) == 3,
             20, "3 accepting workers")
    before = fetch_stats(path)
    hammer(server.url + "/hello", 600)
    doc = settled(path, total(before) + 600)
    time.sleep(0.3)  # nothing more may arrive: the count is exact, not at least
    doc = fetch_stats(path)
    assert total(doc) == total(before) + 600
    assert [w["id"] for w in doc["workers"]] == [1, 2, 3]
    assert sorted(w["pid"] for w in doc["workers"]) == server.worker_pids()
    for worker in doc["workers"]:
        assert worker["delta_requests"] == worker["requests"]  # no respawn happened
        assert sum(c["requests"] for c in worker["cores"]) == worker["requests"]
        assert worker["apps"][0]["requests"] == worker["requests"]
        assert worker["exceptions"] == 0
        assert worker["tx"] > 0 or worker["requests"] == 0
        assert worker["running_time"] > 0 or worker["requests"] == 0
        assert worker["status"] == "idle" and worker["accepting"] == 1
        assert worker["respawn_count"] == 1
    assert doc["pid"] == server.pid
    errors_before = sum(w["exceptions"] for w in doc["workers"])
    for _ in range(3):
        assert requests.get(server.url + "/error", timeout=30).status_code == 500
    doc = settled(path, total(doc) + 3)
    assert sum(w["exceptions"] for w in doc["workers"]) == errors_before + 3


def test_counters_are_exact_with_threads(start_server, tmp_path):
    server, path = stats_server(start_server, tmp_path, "--processes", "2", "--threads", "4")
    before = fetch_stats(path)
    hammer(server.url + "/hello", 500, clients=8)
    settled(path, total(before) + 500)
    time.sleep(0.3)
    doc = fetch_stats(path)
    assert total(doc) == total(before) + 500
    for worker in doc["workers"]:
        assert [c["id"] for c in worker["cores"]] == [0, 1, 2, 3]
        assert sum(c["requests"] for c in worker["cores"]) == worker["requests"]
    used = sum(1 for w in doc["workers"] for c in w["cores"] if c["requests"])
    assert used >= 2, "the load ran on several threads"


def test_busy_then_idle(start_server, tmp_path):
    server, path = stats_server(start_server, tmp_path, "--processes", "2", "--threads", "2")
    slow = threading.Thread(target=requests.get, args=(server.url + "/sleep?s=4",),
                            kwargs={"timeout": 30})
    slow.start()
    try:
        def busy():
            doc = fetch_stats(path)
            return [w for w in doc["workers"] if w["status"] == "busy"] and doc
        doc = wait_for(busy, 10, "a busy worker")
        worker = next(w for w in doc["workers"] if w["status"] == "busy")
        [core] = [c for c in worker["cores"] if c["in_request"]]
        assert abs(core["req_info"]["request_start"] - time.time()) < 10
        assert doc["load"] == 1
        assert [w["status"] for w in doc["workers"]].count("idle") == 1
        assert requests.get(server.url + "/hello", timeout=30).status_code == 200
    finally:
        slow.join(30)
    wait_for(lambda: all(w["status"] == "idle" for w in fetch_stats(path)["workers"]), 10,
             "every worker idle again")
    doc = fetch_stats(path)
    assert all(c["req_info"] == {} and not c["in_request"]
               for w in doc["workers"] for c in w["cores"])
    assert max(w["avg_rt"] for w in doc["workers"]) > 0


def check_schema(doc):
    def keys(obj, spec, where):
        for key, kind in spec.items():
            assert key in obj, f"{where}: {key} missing"
            assert type(obj[key]) is kind, f"{where}.{key}: {obj[key]!r} is not {kind.__name__}"
    keys(doc, TOP_LEVEL, "top")
    assert list(doc)[:2] == ["version", "listen_queue"]
    for sock in doc["sockets"]:
        keys(sock, SOCKET, "socket")
        assert sock["proto"] in ("http", "uwsgi")
    for worker in doc["workers"]:
        keys(worker, WORKER, "worker")
        assert worker["status"] in ("idle", "busy", "cheap", "pause") or \
            worker["status"].startswith("sig")
        for core in worker["cores"]:
            keys(core, CORE, "core")
        for app in worker["apps"]:
            keys(app, APP, "app")


def test_schema_over_tcp_and_uwsgi_socket(start_server, tmp_path):
    server = start_server(["--http-socket", LISTEN, "--socket", LISTEN, "--stats",
                           "127.0.0.1:0", "--processes", "2", "--threads", "3"])
    address = wait_for(lambda: _announced(server, "Stats server"), 10, "the stats line")
    doc = fetch_stats(address)
    check_schema(doc)
    assert [s["proto"] for s in doc["sockets"]] == ["http", "uwsgi"]
    assert doc["sockets"][0]["name"] == f"127.0.0.1:{server.port}"
    assert all(s["max_queue"] == min(1024, _somaxconn()) for s in doc["sockets"])
    assert all(len(w["cores"]) == 3 for w in doc["workers"])
    assert doc["cwd"] == str(TEST_PROJECT)
    raw = fetch_raw(address)
    assert b"\n" in raw  # pretty-printed unless stats-minified


def _somaxconn():
    return int(Path("/proc/sys/net/core/somaxconn").read_text())


def _announced(server, what):
    for line in server.stderr().splitlines():
        if line.startswith(f"*** {what}") and " enabled on " in line:
            return line.split(" enabled on ")[1].split()[0]
    return None


def test_listen_queue_from_the_kernel(start_server, tmp_path):
    """Connections the single busy worker cannot accept wait in the kernel's queue."""
    server, path = stats_server(start_server, tmp_path, "--processes", "1")
    slow = threading.Thread(target=requests.get, args=(server.url + "/sleep?s=3",),
                            kwargs={"timeout": 30})
    slow.start()
    waiting = []
    try:
        wait_for(lambda: fetch_stats(path)["workers"][0]["status"] == "busy", 10, "busy")
        for _ in range(5):
            waiting.append(socket.create_connection(("127.0.0.1", server.port), timeout=5))
        doc = wait_for(lambda: (d := fetch_stats(path))["listen_queue"] >= 5 and d, 5,
                       "5 queued connections")
        assert doc["sockets"][0]["queue"] >= 5
    finally:
        for sock in waiting:
            sock.close()
        slow.join(30)


def test_stats_http_json_and_metrics(start_server, tmp_path):
    from prometheus_client.parser import text_string_to_metric_families

    server = start_server(["--http-socket", LISTEN, "--stats", "127.0.0.1:0", "--stats-http",
                           "--stats-minified", "--processes", "2"])
    address = wait_for(lambda: _announced(server, "Stats server (HTTP)"), 10, "the stats line")
    quiet(f"http://{address}/")
    response = requests.get(f"http://{address}/anything", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    # No CORS header (uWSGI sends "*"): a web page the operator visits must not read it.
    assert "Access-Control-Allow-Origin" not in response.headers
    assert b"\n" not in response.content  # minified
    check_schema(response.json())
    assert fetch_stats(f"http://{address}/")["pid"] == server.pid
    assert fetch_stats(address, http=True)["pid"] == server.pid
    hammer(server.url + "/hello", 40)
    metrics = requests.get(f"http://{address}/metrics", timeout=10)
    assert metrics.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(metrics.text)}
    assert families["uwsgi_workers"].samples[0].value == 2


def test_metrics_endpoint(start_server, tmp_path):
    from prometheus_client.parser import text_string_to_metric_families

    metrics_path = str(tmp_path / "metrics.sock")
    server, path = stats_server(start_server, tmp_path, "--processes", "2", "--threads", "2",
                                "--metrics", metrics_path)
    before = total(fetch_stats(path))
    hammer(server.url + "/hello", 120)
    hammer(server.url + "/sleep?s=0.06", 6, clients=3)
    settled(path, before + 126)
    time.sleep(0.3)
    doc = fetch_stats(path)
    assert stat.S_IMODE(os.stat(metrics_path).st_mode) == 0o600
    text = fetch_raw(metrics_path, http=True, path="/metrics").decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    requests_by_worker = {s.labels["worker"]: s.value
                          for s in families["uwsgi_worker_requests"].samples}
    assert requests_by_worker == {str(w["id"]): w["requests"] for w in doc["workers"]}
    assert sum(requests_by_worker.values()) == before + 126
    hist = {s.name + s.labels.get("le", ""): s.value
            for s in families["uwsgi_request_duration_seconds"].samples}
    assert hist["uwsgi_request_duration_seconds_count"] == before + 126
    assert hist["uwsgi_request_duration_seconds_bucket+Inf"] == before + 126
    assert hist["uwsgi_request_duration_seconds_bucket0.05"] <= before + 120
    assert hist["uwsgi_request_duration_seconds_bucket0.1"] >= 6
    buckets = [s.value for s in families["uwsgi_request_duration_seconds"].samples
               if s.name.endswith("_bucket")]
    assert buckets == sorted(buckets)
    assert hist["uwsgi_request_duration_seconds_sum"] >= 6 * 0.06
    for name in ("uwsgi_worker_exceptions", "uwsgi_worker_harakiri",
                 "uwsgi_worker_respawns", "uwsgi_worker_rss_bytes", "uwsgi_busy_workers",
                 "uwsgi_listen_queue"):
        assert name in families, name
    rss = {s.labels["worker"]: s.value for s in families["uwsgi_worker_rss_bytes"].samples}
    assert all(value > 1 << 20 for value in rss.values())


def test_loopback_rule(start_server, tmp_path):
    result = run_command(["--http-socket", LISTEN, "--stats", "0.0.0.0:0"])
    assert result.returncode != 0
    assert "stats-allow-remote" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    result = run_command(["--http-socket", LISTEN, "--metrics", "192.0.2.1:9"])
    assert result.returncode != 0 and "stats-allow-remote" in result.stderr
    server = start_server(["--http-socket", LISTEN, "--stats", "0.0.0.0:0",
                           "--stats-allow-remote"])
    address = wait_for(lambda: _announced(server, "Stats server"), 10, "the stats line")
    assert address.startswith("0.0.0.0:")
    assert fetch_stats("127.0.0.1:" + address.split(":")[1])["pid"] == server.pid
    # :PORT means loopback for stats (every interface for the serving sockets).
    port = _free_port()
    server = start_server(["--http-socket", LISTEN, "--stats", f":{port}"])
    assert wait_for(lambda: _announced(server, "Stats server"), 10, "line") == f"127.0.0.1:{port}"


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unix_stats_socket_modes(start_server, tmp_path):
    server, path = stats_server(start_server, tmp_path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    server.stop()
    assert not os.path.exists(path), "the stats socket file is removed at exit"
    server, path = stats_server(start_server, tmp_path, "--stats-chmod", "660", name="b.sock")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o660


def test_stats_survive_a_graceful_reload(start_server, tmp_path):
    server, path = stats_server(start_server, tmp_path, "--processes", "2")
    hammer(server.url + "/hello", 50)
    before = settled(path, 50)
    old_pids = {w["pid"] for w in before["workers"]}
    os.kill(server.pid, signal.SIGHUP)
    wait_for(lambda: "re-executed" in server.stderr(), 60, "the master's re-exec")

    def replaced():
        doc = fetch_stats(path)
        pids = {w["pid"] for w in doc["workers"]}
        return doc if not pids & old_pids and all(w["accepting"] for w in doc["workers"]) \
            else None
    doc = wait_for(replaced, 60, "new workers in the stats")
    assert doc["pid"] == server.pid
    assert total(doc) >= total(before), "counters carry over the reload"
    assert all(w["respawn_count"] >= 2 for w in doc["workers"])
    assert all(w["delta_requests"] <= 1 for w in doc["workers"])
    hammer(server.url + "/hello", 30)
    settled(path, total(doc) + 30)


@pytest.mark.parametrize("http", [False, True], ids=["unix", "stats-http"])
def test_uwsgitop_renders_our_stats(start_server, tmp_path, http):
    pyte = pytest.importorskip("pyte")
    uwsgitop = Path(sys.executable).parent / "uwsgitop"
    assert uwsgitop.exists(), "uwsgitop is a test dependency (pip install -e '.[test]')"
    if http:
        server = start_server(["--http-socket", LISTEN, "--stats", "127.0.0.1:0",
                               "--stats-http", "--processes", "2"])
        address = wait_for(lambda: _announced(server, "Stats server"), 10, "the stats line")
        target = f"http://{address}/"
        quiet(target)
    else:
        server, target = stats_server(start_server, tmp_path, "--processes", "2")
    base = total(fetch_stats(target))
    hammer(server.url + "/hello", 30)
    doc = settled(target, base + 30)
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 180, 0, 0))
    proc = subprocess.Popen([str(uwsgitop), target], stdin=slave, stdout=slave, stderr=slave,
                            env={**os.environ, "TERM": "xterm", "LINES": "30",
                                 "COLUMNS": "180"}, start_new_session=True)
    os.close(slave)
    screen = pyte.Screen(180, 30)
    stream = pyte.ByteStream(screen)
    pids = [str(w["pid"]) for w in doc["workers"]]
    try:
        def rendered():
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    stream.feed(os.read(master, 65536))
                except OSError:
                    pass
            text = "\n".join(screen.display)
            assert proc.poll() is None, f"uwsgitop exited {proc.returncode}:\n{text}"
            return all(pid in text for pid in pids) and "WID" in text and text
        text = wait_for(rendered, 20, "uwsgitop's screen with our workers")
        print(text)  # the capture, for the record
        assert f"masterpid: {server.pid}" in text
        assert "req: " in text and "lq: 0" in text
        rows = [line for line in text.splitlines() if any(f" {pid} " in line for pid in pids)]
        assert len(rows) == 2 and all("idle" in row for row in rows)
        assert sum(int(row.split()[3]) for row in rows) == total(doc)
        os.write(master, b"q")
        proc.wait(10)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        os.close(master)


def uwsgi_stats(*args, env=None):
    return subprocess.run([sys.executable, str(TEST_PROJECT / "manage.py"), "uwsgi_stats",
                           *args], cwd=str(TEST_PROJECT), capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})},
                          stdin=subprocess.DEVNULL)


def test_uwsgi_stats_command(start_server, tmp_path):
    server, path = stats_server(start_server, tmp_path, "--processes", "2")
    hammer(server.url + "/hello", 20)
    doc = settled(path, 20)
    result = uwsgi_stats("--stats", path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"master pid {server.pid}: 2 workers (0 busy)" in lines[0]
    assert lines[1].startswith("listen queue: 0 (127.0.0.1:")
    assert lines[2].split()[:4] == ["WID", "PID", "STATUS", "REQUESTS"]
    rows = {int(line.split()[1]): line.split() for line in lines[3:]}
    assert set(rows) == {w["pid"] for w in doc["workers"]}
    assert sum(int(row[3]) for row in rows.values()) >= 20
    # The address from settings.UWSGI, and --json.
    settings = json.dumps({"stats": path})
    result = uwsgi_stats("--json", env={"TEST_UWSGI_SETTINGS": settings})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["pid"] == server.pid
    result = uwsgi_stats("--watch", "0.2", "--count", "3", "--stats", path)
    assert result.returncode == 0 and result.stdout.count("listen queue:") == 3


def test_uwsgi_stats_errors(tmp_path):
    result = uwsgi_stats()
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "CommandError: no stats address: set UWSGI = {'stats': '127.0.0.1:9191', ...} in "
        "settings (and run the server with it), or pass --stats ADDR"]
    missing = str(tmp_path / "nothing.sock")
    result = uwsgi_stats("--stats", missing)
    assert result.returncode == 1
    assert result.stderr.strip() == (f"CommandError: no stats server is listening on "
                                     f"{missing} (No such file or directory)")
    port = _free_port()
    result = uwsgi_stats("--stats", f"127.0.0.1:{port}")
    assert result.returncode == 1 and "Connection refused" in result.stderr
    with pytest.raises(StatsUnavailable, match="no stats server is listening"):
        fetch_stats(f"127.0.0.1:{port}")


def test_uwsgi_stats_watch_stops_cleanly_on_ctrl_c(start_server, tmp_path):
    server, path = stats_server(start_server, tmp_path)
    proc = subprocess.Popen([sys.executable, str(TEST_PROJECT / "manage.py"), "uwsgi_stats",
                             "--stats", path, "--watch", "0.2"], cwd=str(TEST_PROJECT),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        lines = []
        wait_for(lambda: lines.append(proc.stdout.readline()) or
                 sum("listen queue:" in line for line in lines) >= 2, 30, "two refreshes")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0
        assert "Traceback" not in err and "KeyboardInterrupt" not in err
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def test_silent_clients_do_not_hold_the_master(start_server, tmp_path):
    """Clients that connect and say nothing (or half a request) cost the master nothing:
    other stats clients are answered at once, and the silent ones get an answer after the
    request wait anyway."""
    server = start_server(["--http-socket", LISTEN, "--stats", "127.0.0.1:0", "--stats-http"])
    address = wait_for(lambda: _announced(server, "Stats server"), 10, "the stats line")
    host, port = address.rsplit(":", 1)
    silent = [socket.create_connection((host, int(port)), timeout=10) for _ in range(10)]
    try:
        silent[0].sendall(b"GET /metr")
        started = time.monotonic()
        for _ in range(5):
            assert fetch_stats(address, timeout=2, http=True)["pid"] == server.pid
        assert time.monotonic() - started < 2
        assert requests.get(server.url + "/hello", timeout=10).status_code == 200
        for sock in silent:
            head = sock.recv(200)
            assert head.startswith(b"HTTP/1.0 200 OK\r\n")
    finally:
        for sock in silent:
            sock.close()


def test_respawn_and_harakiri_in_the_stats(start_server, tmp_path):
    from prometheus_client.parser import text_string_to_metric_families

    server, path = stats_server(start_server, tmp_path, "--processes", "1", "--harakiri", "1",
                                "--stats-http")
    base = total(fetch_stats(path, http=True))
    hammer(server.url + "/hello", 10, clients=2)
    first = settled_http(path, base + 10)
    old_pid = first["workers"][0]["pid"]
    assert requests.get(server.url + "/sleep?s=5", timeout=30).status_code == 504

    def replaced():
        doc = fetch_stats(path, http=True)
        worker = doc["workers"][0]
        return doc if worker["pid"] not in (0, old_pid) and worker["accepting"] else None
    doc = wait_for(replaced, 30, "the worker replaced after its harakiri")
    worker = doc["workers"][0]
    assert worker["harakiri_count"] == 1
    assert worker["respawn_count"] == 2
    assert worker["requests"] >= base + 11  # cumulative across the respawn
    assert worker["delta_requests"] < worker["requests"]
    text = fetch_raw(path, http=True, path="/metrics").decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["uwsgi_worker_harakiri"].samples[0].value == 1
    assert families["uwsgi_worker_respawns"].samples[0].value == 1


def settled_http(path, expected):
    return wait_for(lambda: (doc := fetch_stats(path, http=True)) and total(doc) >= expected
                    and doc, 15, f"{expected} requests counted")


def test_stats_address_in_use_is_one_clear_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_command(["--http-socket", LISTEN, "--stats", f"127.0.0.1:{port}"])
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("CommandError")]
    assert errors == [f"CommandError: Error: stats 127.0.0.1:{port}: that address is already "
                      f"in use (is another server's stats there?)"], result.stderr


def test_locks_show_their_holder(start_server, tmp_path):
    """uWSGI lists its locks as {name: pid holding it, or 0}; ``uwsgi.lock(n)`` exists under
    runuwsgi too, so the stats list lock 0 and the --locks N ones (an empty list hid them)."""
    server, path = stats_server(start_server, tmp_path, "--processes", "1", "--threads", "2",
                                "--locks", "2")
    assert fetch_stats(path)["locks"] == [{"user 0": 0}, {"user 1": 0}, {"user 2": 0}]
    marks = tmp_path / "lock.log"
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        held = pool.submit(requests.get, server.url + "/uwsgi/lock",
                           params={"n": "1", "file": str(marks), "sleep": "3"}, timeout=30)
        wait_for(lambda: marks.exists() and "start" in marks.read_text(), 15, "the lock taken")
        holder = int(marks.read_text().split()[1])
        assert fetch_stats(path)["locks"] == [{"user 0": 0}, {"user 1": holder}, {"user 2": 0}]
        assert held.result().status_code == 200
    wait_for(lambda: fetch_stats(path)["locks"] == [{"user 0": 0}, {"user 1": 0}, {"user 2": 0}],
             10, "the lock released")
