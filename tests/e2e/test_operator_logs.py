"""What an operator sees: process titles in ps, the log lines of the process lifecycle, the
SIGUSR1 stats block, and the log options (log-master, log-date, log-reopen, log-maxsize)."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest
import requests

from tests.server import run_command, wait_for

CTIME = r"\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}"


def _title(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        raw = f.read()
    # setproctitle leaves one string (padded with NULs); an untouched process has argv.
    return " ".join(part.decode() for part in raw.split(b"\0") if part)


def _get(server, path="/hello", n=1):
    for _ in range(n):
        assert requests.get(server.url + path, timeout=10).status_code == 200


# -- process titles ----------------------------------------------------------------------
def test_process_titles(start_server):
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "2"])
    assert _title(server.pid) == "uWSGI master (runuwsgi testsite)"
    wait_for(lambda: len(server.worker_pids()) == 2, 10, "two workers")
    titles = ["uWSGI worker 1 (runuwsgi testsite)", "uWSGI worker 2 (runuwsgi testsite)"]
    # (a worker forked a moment ago still has the master's title)
    wait_for(lambda: sorted(_title(pid) for pid in server.worker_pids()) == titles, 10,
             "the worker titles")
    # The master re-executes itself on reload: the new image names itself again.
    before = set(server.worker_pids())
    os.kill(server.pid, signal.SIGHUP)
    wait_for(lambda: "reload complete" in server.stderr(), 60, "the reload")
    assert _title(server.pid) == "uWSGI master (runuwsgi testsite)"
    wait_for(lambda: not before & set(server.worker_pids()), 30, "the old workers to go")
    wait_for(lambda: sorted(_title(pid) for pid in server.worker_pids()) == titles, 10,
             "the new workers' titles")


def test_procname_options(start_server):
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "1",
                           "--procname-prefix-spaced", "shop:", "--procname-append", " [eu]"])
    # No "runuwsgi" left in the title: it is added, so uwsgi_reload still knows the master.
    assert _title(server.pid) == "shop: uWSGI master [eu] [runuwsgi]"
    assert _title(server.worker_pids()[0]) == "shop: uWSGI worker 1 [eu] [runuwsgi]"
    other = start_server(["--http-socket", "127.0.0.1:0", "--processes", "1",
                          "--procname-master", "runuwsgi boss", "--procname", "runuwsgi hand"])
    assert _title(other.pid) == "runuwsgi boss"  # given names are used as they are
    assert _title(other.worker_pids()[0]) == "runuwsgi hand"


def test_without_setproctitle_nothing_breaks(start_server, tmp_path):
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "setproctitle.py").write_text("raise ImportError('hidden by the test')\n")
    env = {"PYTHONPATH": f"{hide}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "1"], env=env)
    assert "runuwsgi --http-socket" in _title(server.pid)  # the command line, untouched
    _get(server)
    assert "setproctitle" not in server.stderr()
    named = start_server(["--http-socket", "127.0.0.1:0", "--processes", "1",
                          "--procname-master", "boss"], env=env)
    _get(named)
    assert "warning: procname-master needs the setproctitle package" in named.stderr()


# -- lifecycle lines and SIGUSR1 ---------------------------------------------------------
def test_lifecycle_lines_and_stats_block(start_server):
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "2"])
    err = server.stderr()
    assert f"spawned uWSGI master process (pid: {server.pid})" in err
    for pid in server.worker_pids():
        assert re.search(rf"spawned uWSGI worker [12] \(pid: {pid}, cores: 1\)", err)
    _get(server, n=3)

    def block():  # the latest block once both workers accept and are done counting
        os.kill(server.pid, signal.SIGUSR1)
        wait_for(lambda: server.stderr().count("*** end of stats ***") > asked[0], 10, "stats")
        asked[0] += 1
        text = server.stderr().split("*** stats of master pid")[-1].split("*** end of stats")[0]
        settled = "4 requests served" in text and "starting" not in text and "busy" not in text
        return text if settled else None

    asked = [0]
    block = wait_for(block, 20, "a stats block with both workers idle", interval=0.2)
    assert block.startswith(f" {server.pid}: 2 workers, 4 requests served ***")  # + readiness
    assert "\n".join(block.splitlines()[1:]).count("\n") == 1, block  # one line per worker
    rows = re.findall(r"worker ([12]) \(pid: (\d+)\) (\w+) \[serving\] requests: (\d+)/\d+ "
                      r"exceptions: 0 harakiri: 0 respawns: 0 rss: ([\d.]+) MB "
                      r"avg: [\d.]+ ms running: \d+s", block)
    assert sorted(row[0] for row in rows) == ["1", "2"], block
    assert sum(int(row[3]) for row in rows) == 4
    for _, pid, status, _, rss in rows:
        assert int(pid) in server.worker_pids() and status == "idle" and float(rss) > 5

    victim = server.worker_pids()[0]
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: "Respawned uWSGI worker" in server.stderr(), 10, "the respawn line")
    assert re.search(rf"DAMN ! worker \d \(pid: {victim}\) died, killed by signal 9",
                     server.stderr())
    os.kill(server.pid, signal.SIGHUP)
    wait_for(lambda: "reload complete" in server.stderr(), 60, "the reload")
    wait_for(lambda: "buried after" in server.stderr(), 30, "an old worker buried")
    server.stop()
    assert re.search(r"worker \d \(pid: \d+\) buried after \d+ seconds", server.stderr())
    assert f"goodbye to django-uwsgi-server (master pid: {server.pid})." in server.stderr()


# -- log options -------------------------------------------------------------------------
def test_log_date_prefixes_server_lines_not_requests(start_server):
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "1", "--log-date"])
    _get(server)
    # (the request line is written just after the response)
    wait_for(lambda: "GET /hello" in server.stderr(), 10, "the request line")
    lines = server.stderr().splitlines()
    assert any(re.fullmatch(rf"{CTIME} - spawned uWSGI master process \(pid: \d+\)", ln)
               for ln in lines), lines
    assert any(ln.startswith("[pid: ") and "GET /hello" in ln for ln in lines), lines
    custom = start_server(["--http-socket", "127.0.0.1:0", "--processes", "1",
                           "--logdate", "%Y-%m-%dT%H:%M:%S"])
    assert re.search(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d - spawned uWSGI worker 1",
                     custom.stderr(), re.M)


def test_log_master_writes_workers_output(start_server, tmp_path):
    log = tmp_path / "server.log"
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "2", "--log-master",
                           "--logto", str(log)])
    _get(server, "/hello?via=pipe")
    # The workers write to the pipe, not to the file (a worker just forked may not yet).
    wait_for(lambda: all(os.readlink(f"/proc/{pid}/fd/2").startswith("pipe:")
                         for pid in server.worker_pids()), 10, "workers writing to the pipe")
    assert os.readlink(f"/proc/{server.pid}/fd/2") == str(log)
    wait_for(lambda: "GET /hello?via=pipe" in log.read_text(), 10, "the request line")
    # The pipe (and what is in it) survives the master's re-exec on reload.
    os.kill(server.pid, signal.SIGHUP)
    wait_for(lambda: "reload complete" in log.read_text(), 60, "the reload")
    _get(server, "/hello?after=reload")
    wait_for(lambda: "GET /hello?after=reload" in log.read_text(), 10, "the new request line")
    for pid in server.worker_pids():
        assert os.readlink(f"/proc/{pid}/fd/2").startswith("pipe:")


def _rotated(log: Path) -> list[Path]:
    return sorted(p for p in log.parent.iterdir() if re.fullmatch(rf"{log.name}\.\d+(\.\d+)?", p.name))


def test_log_maxsize_rotates(start_server, tmp_path):
    log = tmp_path / "server.log"
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "2",
                           "--logto", str(log), "--log-maxsize", "4k"])
    for i in range(60):
        _get(server, f"/hello?n={i}")
        if _rotated(log):
            break
    wait_for(lambda: _rotated(log), 10, "a rotated log file")
    old = _rotated(log)[0]
    text = old.read_text()
    assert re.search(rf"logsize: \d+, triggering rotation to {re.escape(str(old))}\.\.\.", text)
    assert len(text) > 4096
    _get(server, "/hello?fresh=1")
    wait_for(lambda: "GET /hello?fresh=1" in log.read_text(), 10, "the new file to be written")
    assert os.path.getsize(log) < 4096 + 2048


def test_log_maxsize_keeps_every_line(start_server, tmp_path):
    """Several rotations in one second: each gets its own file (FILE.<time>, then
    FILE.<time>.1...); renaming onto the previous backup used to drop its lines."""
    log = tmp_path / "server.log"
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "2",
                           "--logto", str(log), "--log-maxsize", "2k"])
    count = 150
    with requests.Session() as session:
        for i in range(count):
            assert session.get(f"{server.url}/hello?line={i}", timeout=10).status_code == 200

    def logged():
        text = "".join(p.read_text() for p in [log, *_rotated(log)])
        return re.findall(r"GET /hello\?line=(\d+) ", text)
    wait_for(lambda: len(logged()) >= count, 15, f"{count} request lines in the log files")
    assert sorted(map(int, logged())) == list(range(count))
    assert len(_rotated(log)) >= 10  # 150 lines of ~200 bytes in files of 2 KiB


def test_log_backupname(start_server, tmp_path):
    log = tmp_path / "server.log"
    backup = tmp_path / "server.log.old"
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "1",
                           "--logto", str(log), "--log-maxsize", "3000",
                           "--log-backupname", str(backup)])
    for i in range(60):
        _get(server, f"/hello?n={i}")
        if backup.exists():
            break
    wait_for(backup.exists, 10, "the backup file")
    assert "GET /hello?n=" in backup.read_text()


@pytest.mark.parametrize("extra", [["--log-master"], [], ["--lazy-apps"]],
                         ids=["through-the-pipe", "no-log-master", "no-log-master-lazy-apps"])
def test_log_reopen_after_the_file_is_moved(start_server, tmp_path, extra):
    log = tmp_path / "server.log"
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "2",
                           "--logto", str(log), "--log-reopen", *extra])
    _get(server, "/hello?before=1")
    wait_for(lambda: "GET /hello?before=1" in log.read_text(), 10, "the request line")
    moved = log.with_suffix(".log.1")
    log.rename(moved)  # what logrotate does, then: postrotate kill -HUP
    os.kill(server.pid, signal.SIGHUP)
    wait_for(log.exists, 30, "the reopened log file")
    wait_for(lambda: "reload complete" in log.read_text(), 60, "the reload")
    _get(server, "/hello?after=1")
    wait_for(lambda: "GET /hello?after=1" in log.read_text(), 10, "a request line")
    assert "GET /hello?before=1" in moved.read_text()
    assert f"reopening the log file {log}" in moved.read_text()
    assert "GET /hello?before=1" not in log.read_text()


def test_rotation_needs_a_log_file():
    result = run_command(["--http-socket", "127.0.0.1:0", "--log-maxsize", "1m"])
    assert result.returncode != 0
    assert "log-maxsize needs a log file: set logto (or daemonize)" in result.stderr


def test_master_fifo_reopens_and_rotates_the_log(start_server, tmp_path):
    log = tmp_path / "server.log"
    fifo = tmp_path / "fifo"
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "2", "--log-master",
                           "--logto", str(log), "--master-fifo", str(fifo)])
    workers = set(server.worker_pids())
    _get(server, "/hello?before=1")
    wait_for(lambda: "GET /hello?before=1" in log.read_text(), 10, "the request line")
    moved = tmp_path / "moved.log"
    log.rename(moved)
    with open(fifo, "w") as f:  # "l": reopen the log file, no reload
        f.write("l")
    wait_for(log.exists, 10, "the reopened log file")
    _get(server, "/hello?after=1")
    wait_for(lambda: "GET /hello?after=1" in log.read_text(), 10, "the line in the new file")
    assert "GET /hello?after=1" not in moved.read_text()
    with open(fifo, "w") as f:  # "L": rotate now
        f.write("L")
    wait_for(lambda: _rotated(log), 10, "the rotated file")
    assert "GET /hello?after=1" in _rotated(log)[0].read_text()
    _get(server, "/hello?third=1")
    wait_for(lambda: "GET /hello?third=1" in log.read_text(), 10, "the line after rotation")
    assert set(server.worker_pids()) == workers  # neither needed a reload
