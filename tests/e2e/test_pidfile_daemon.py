"""Pidfiles, vacuum, daemonize, uid/gid, chown-socket, ``manage.py uwsgi_reload`` and
``runuwsgi --reload/--stop``: real servers, real clients, bounded waits.

Daemons are not our children: each is stopped at teardown by the pid in its pidfile (or the
one its launcher printed), after checking that pid is a runuwsgi started by this test.
"""

import grp
import json
import os
import pwd
import re
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest
import requests

from django_uwsgi_server.server import control
from tests.server import TEST_PROJECT, run_command, wait_for

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (to change uid/gid)")


def settings_env(options: dict) -> dict:
    return {"TEST_UWSGI_SETTINGS": json.dumps(options)}


def manage(command: str, args: list[str], env: dict | None = None,
           timeout: float = 60) -> subprocess.CompletedProcess:
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, str(TEST_PROJECT / "manage.py"), command, *args],
                          cwd=str(TEST_PROJECT), env=full_env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, start_new_session=True)


def one_error_line(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("CommandError: ")
    return lines[0][len("CommandError: "):]


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def worker_ids(pid: int) -> dict[int, str]:
    """uid/gid lines of /proc/<pid>/status."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("Uid", "Gid", "Groups"):
                fields[key] = value.split()
    return fields


@pytest.fixture
def daemons(tmp_path):
    """Register a pidfile or pid of a daemon to stop at teardown (before asserting on it)."""
    pidfiles: list = []
    pids: list = []
    started = time.time()

    class Registry:
        @staticmethod
        def pidfile(path):
            pidfiles.append(path)

        @staticmethod
        def pid(value):
            pids.append(value)

    yield Registry
    for path in pidfiles:
        try:
            pids.append(int(open(path).read()))
        except (OSError, ValueError):
            pass
    errors = []
    for pid in set(pids):
        try:
            proc = psutil.Process(pid)
            cmdline = " ".join(proc.cmdline())
            # A process title (proctitle.py) hides the paths: then a runuwsgi process born
            # during this test is ours, not a recycled pid.
            ours = str(tmp_path) in cmdline or (
                "runuwsgi" in cmdline and proc.create_time() >= started - 1)
        except psutil.Error:
            continue
        if not ours or gone(pid):
            continue
        pgid = os.getpgid(pid)
        os.kill(pid, signal.SIGTERM)
        try:
            wait_for(lambda pid=pid: gone(pid), 15, f"daemon {pid} to stop")
        except AssertionError as exc:
            errors.append(str(exc))
            os.kill(pid, signal.SIGKILL)
        # The workers follow their master out; none may outlive it for long.
        try:
            wait_for(lambda pgid=pgid: not any(
                p.pid for p in psutil.process_iter() if _pgid(p.pid) == pgid
                and not gone(p.pid)), 5, "the daemon's workers to exit")
        except AssertionError as exc:
            errors.append(str(exc))
            os.killpg(pgid, signal.SIGKILL)
    assert not errors, errors


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


# -- pidfile ---------------------------------------------------------------------------------

def test_pidfiles_hold_the_master_pid_and_are_removed_at_stop(start_server, tmp_path):
    pid1, pid2 = tmp_path / "run" / "a.pid", tmp_path / "b.pid"
    pid1.parent.mkdir()
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "2", "--skip-checks",
                           "--pidfile", str(pid1), "--pidfile2", str(pid2)])
    assert pid1.read_text() == f"{server.pid}\n"
    assert pid2.read_text() == f"{server.pid}\n"
    assert server.stop() == 0
    assert not pid1.exists() and not pid2.exists()
    assert os.listdir(pid1.parent) == []


def test_relative_pidfile_is_taken_from_the_start_directory(start_server, tmp_path):
    (tmp_path / "app").mkdir()
    server = start_server(["--http-socket", "127.0.0.1:0", "--skip-checks", "--processes", "1",
                           "--pidfile", os.path.relpath(tmp_path / "rel.pid", TEST_PROJECT),
                           "--chdir", str(tmp_path / "app"), "--module", "rawapp:app",
                           "--pythonpath", str(TEST_PROJECT)])
    assert (tmp_path / "rel.pid").read_text() == f"{server.pid}\n"
    server.stop()
    assert not (tmp_path / "rel.pid").exists()


@pytest.mark.parametrize("content", ["garbage\n", "0\n", "DEAD", "SLEEP"])
def test_stale_pidfile_is_replaced_with_a_warning(start_server, tmp_path, content):
    sleeper = None
    if content == "DEAD":
        proc = subprocess.Popen(["true"])
        proc.wait(10)
        content = f"{proc.pid}\n"
    elif content == "SLEEP":  # a live process, but not a runuwsgi master
        sleeper = subprocess.Popen(["sleep", "60"])
        content = f"{sleeper.pid}\n"
    path = tmp_path / "server.pid"
    path.write_text(content)
    try:
        server = start_server(["--http-socket", "127.0.0.1:0", "--skip-checks", "--processes",
                               "1", "--pidfile", str(path)])
        assert path.read_text() == f"{server.pid}\n"
        warnings = [ln for ln in server.stderr().splitlines() if "stale pidfile" in ln]
        assert len(warnings) == 1 and str(path) in warnings[0]
        assert warnings[0].startswith("warning: replacing stale pidfile")
        if sleeper is not None:
            assert sleeper.poll() is None
    finally:
        if sleeper is not None:
            sleeper.kill()
            sleeper.wait(10)


def test_pidfile_of_a_running_server_is_an_error(start_server, tmp_path):
    path = tmp_path / "server.pid"
    first = start_server(["--http-socket", "127.0.0.1:0", "--skip-checks", "--processes", "1",
                          "--pidfile", str(path)])
    r = run_command(["--http-socket", "127.0.0.1:0", "--skip-checks", "--pidfile", str(path)])
    assert one_error_line(r) == f"pidfile {path} belongs to a running server (pid {first.pid})"
    assert "Quit the server" not in r.stdout
    assert path.read_text() == f"{first.pid}\n"


def test_pidfile_that_cannot_be_written(tmp_path):
    r = run_command(["--http-socket", "127.0.0.1:0", "--skip-checks",
                     "--pidfile", str(tmp_path / "missing" / "x.pid")])
    assert "cannot write pidfile" in one_error_line(r)


# -- vacuum / chown-socket -------------------------------------------------------------------

@pytest.mark.parametrize("vacuum", [True, False])
def test_vacuum_removes_the_unix_socket(start_server, tmp_path, vacuum):
    sock = tmp_path / "app.sock"
    server = start_server(["--http-socket", "127.0.0.1:0", "--socket", str(sock),
                           "--skip-checks", "--processes", "1"]
                          + (["--vacuum"] if vacuum else []))
    assert sock.is_socket()
    server.stop()
    assert sock.exists() is not vacuum  # without vacuum the file stays, as in uWSGI


def test_vacuum_leaves_a_socket_file_that_is_not_ours_any_more(start_server, tmp_path):
    sock = tmp_path / "app.sock"
    server = start_server(["--http-socket", "127.0.0.1:0", "--socket", str(sock),
                           "--skip-checks", "--processes", "1", "--vacuum"])
    sock.unlink()
    other = socket.socket(socket.AF_UNIX)
    other.bind(str(sock))
    try:
        server.stop()
        assert sock.is_socket()
    finally:
        other.close()


@ROOT_ONLY
def test_chown_socket(start_server, tmp_path):
    sock = tmp_path / "app.sock"
    nobody = pwd.getpwnam("nobody")
    start_server(["--http-socket", "127.0.0.1:0", "--socket", str(sock), "--skip-checks",
                  "--processes", "1", "--chown-socket", f"nobody:{nobody.pw_gid}",
                  "--chmod-socket", "660"])
    st = os.stat(sock)
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (nobody.pw_uid, nobody.pw_gid, 0o660)


def test_chown_socket_unknown_user(tmp_path):
    r = run_command(["--http-socket", "127.0.0.1:0", "--socket", str(tmp_path / "s"),
                     "--skip-checks", "--chown-socket", "no-such-user-x"])
    assert one_error_line(r) == "chown-socket 'no-such-user-x': no such user"
    assert not (tmp_path / "s").exists()


# -- uid / gid -------------------------------------------------------------------------------

@ROOT_ONLY
def test_workers_drop_to_uid_and_gid_before_the_app_is_imported(start_server, tmp_path,
                                                                readable_env):
    python, project = readable_env
    nobody = pwd.getpwnam("nobody")
    group = "nogroup" if _group_exists("nogroup") else grp.getgrgid(nobody.pw_gid).gr_name
    gid = grp.getgrnam(group).gr_gid
    imports = project.parent.parent / f"imports-{tmp_path.name}.log"  # nobody writes it
    imports.touch(mode=0o666)
    os.chmod(imports, 0o666)
    server = start_server(["--http-socket", "127.0.0.1:0", "--skip-checks", "--processes", "2",
                           "--uid", "nobody", "--gid", group,
                           "--pidfile", str(tmp_path / "p"), "--pidfile2", str(tmp_path / "p2")],
                          env={"TEST_SIGNAL_LOG": "", "TEST_IMPORT_LOG": str(imports)},
                          project=project, python=python)
    workers = wait_for(lambda: len(server.worker_pids()) == 2 and server.worker_pids(), 10,
                       "two workers")
    # A worker drops right after the fork: wait until both are in their event loop.
    wait_for(lambda: all(control.serving(pid) for pid in workers), 10, "both workers serving")
    for pid in workers:
        ids = worker_ids(pid)
        assert ids["Uid"] == [str(nobody.pw_uid)] * 4
        assert ids["Gid"] == [str(gid)] * 4
        assert "0" not in ids["Groups"]
    assert worker_ids(server.pid)["Uid"][0] == "0"  # the master stays root
    assert requests.get(server.url + "/hello", timeout=10).status_code == 200
    # The WSGI module (and the middleware, URLconf and views it loads) was imported by the
    # workers as nobody, never by the root master.
    assert _importers(imports) == {(pid, nobody.pw_uid) for pid in workers}
    assert os.stat(tmp_path / "p").st_uid == 0
    st2 = os.stat(tmp_path / "p2")
    assert (st2.st_uid, st2.st_gid) == (nobody.pw_uid, gid)
    # a reload keeps dropping (its check of the new code imports it as nobody too, new
    # workers, same identity), and the master still cleans up
    r = manage("uwsgi_reload", ["--pidfile", str(tmp_path / "p")])
    assert r.returncode == 0, r.stderr
    new_workers = server.worker_pids()  # uwsgi_reload waited until they serve
    assert set(new_workers).isdisjoint(workers)
    for pid in new_workers:
        assert worker_ids(pid)["Uid"][0] == str(nobody.pw_uid)
    assert requests.get(server.url + "/hello", timeout=10).status_code == 200
    importers = _importers(imports)
    assert {uid for _, uid in importers} == {nobody.pw_uid}, importers
    assert {pid for pid, _ in importers} >= set(new_workers)
    assert len(importers) == 5  # 2 + the reload's check + 2
    server.stop()
    assert not (tmp_path / "p").exists() and not (tmp_path / "p2").exists()


@ROOT_ONLY
def test_an_app_that_fails_to_import_as_uid_stops_the_server_with_its_error(
        start_server, readable_env, tmp_path):
    python, project = readable_env
    server = start_server(["--http-socket", "127.0.0.1:0", "--skip-checks", "--uid", "nobody",
                           "--module", "no_such_module_x:app"],
                          env={"TEST_SIGNAL_LOG": ""}, project=project, python=python,
                          wait=False)
    code = server.proc.wait(30)
    assert code != 0
    assert "No module named 'no_such_module_x'" in server.stderr() + server.stdout()


def _importers(path) -> set[tuple[int, int]]:
    return {tuple(map(int, line.split())) for line in path.read_text().splitlines()}


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


@pytest.mark.parametrize("args, message", [
    (["--uid", "no-such-user-x"], "uid 'no-such-user-x': no such user"),
    (["--uid", "nobody", "--gid", "no-such-group-x"], "gid 'no-such-group-x': no such group"),
])
def test_unknown_uid_or_gid_fails_before_binding(tmp_path, args, message):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = run_command(["--http-socket", f"127.0.0.1:{port}", "--skip-checks",
                     "--pidfile", str(tmp_path / "p"), *args])
    assert one_error_line(r) == message
    assert not (tmp_path / "p").exists()


# -- daemonize -------------------------------------------------------------------------------

def _port_from_log(log) -> int:
    text = wait_for(lambda: log.exists() and "Quit the server" in log.read_text() and
                    log.read_text(), 10, "the banner in the log")
    return int(re.search(r"http://127\.0\.0\.1:(\d+)/", text).group(1))


@pytest.mark.parametrize("option", ["--daemonize", "--daemonize2"])
def test_daemonize_returns_once_the_master_serves(tmp_path, daemons, option):
    log, pid_path = tmp_path / "server.log", tmp_path / "server.pid"
    daemons.pidfile(pid_path)
    start = time.monotonic()
    r = run_command(["--http-socket", "127.0.0.1:0", "--processes", "2",
                     "--pidfile", str(pid_path), option, str(log)], timeout=60)
    elapsed = time.monotonic() - start
    match = re.fullmatch(r"started, pid (\d+), log (.+)", r.stdout.strip().splitlines()[-1])
    if match:
        daemons.pid(int(match.group(1)))
    assert r.returncode == 0, r.stderr
    assert match and match.group(2) == str(log)
    pid = int(match.group(1))
    assert elapsed < 30
    assert pid_path.read_text() == f"{pid}\n"
    proc = psutil.Process(pid)
    assert proc.ppid() != os.getpid() and os.getsid(pid) != os.getsid(0)  # detached
    assert len(proc.children()) == 2  # the workers were forked before the launcher returned
    port = _port_from_log(log)
    assert requests.get(f"http://127.0.0.1:{port}/hello", timeout=10).status_code == 200
    wait_for(lambda: "GET /hello => generated" in log.read_text(), 10, "the request line")
    text = log.read_text()
    if option == "--daemonize":  # detached before the checks: their output is in the log
        assert "System check identified no issues" in text
    else:  # detached after the app was loaded: the checks ran on the terminal
        assert "System check identified no issues" in r.stdout
    # a stop through the pidfile, waiting, removes the pidfile
    r = manage("uwsgi_reload", ["--pidfile", str(pid_path), "--stop"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"stopped the server (pid {pid}) in ")
    assert gone(pid) and not pid_path.exists()


def test_daemonize_with_logto_logs_to_logto(tmp_path, daemons):
    log, logto, pid_path = tmp_path / "d.log", tmp_path / "to.log", tmp_path / "p"
    daemons.pidfile(pid_path)
    r = run_command(["--http-socket", "127.0.0.1:0", "--processes", "1", "--skip-checks",
                     "--pidfile", str(pid_path), "--daemonize", str(log), "--logto", str(logto)])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith(f"log {logto}")
    port = _port_from_log(logto)
    requests.get(f"http://127.0.0.1:{port}/logged", timeout=10)
    wait_for(lambda: "GET /logged" in logto.read_text(), 10, "the request line in logto")
    assert not log.exists() or "GET /logged" not in log.read_text()


def test_daemonize_bind_failure_reaches_the_terminal(tmp_path, daemons):
    log, pid_path = tmp_path / "server.log", tmp_path / "server.pid"
    daemons.pidfile(pid_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = run_command(["--http-socket", f"127.0.0.1:{port}", "--skip-checks",
                         "--pidfile", str(pid_path), "--daemonize", str(log)])
    assert one_error_line(r) == (f"Error: http-socket 127.0.0.1:{port}: that address is "
                                 f"already in use")
    assert not pid_path.exists()
    assert "already in use" in log.read_text()  # the daemon logged it too


def test_daemonize_import_failure_reaches_the_terminal(tmp_path, daemons):
    log, pid_path = tmp_path / "server.log", tmp_path / "server.pid"
    daemons.pidfile(pid_path)
    r = run_command(["--http-socket", "127.0.0.1:0", "--module", "extra.broken:application",
                     "--pidfile", str(pid_path), "--daemonize", str(log)])
    assert one_error_line(r) == ("could not import the WSGI application: ImportError: this "
                                 "module is broken on purpose")
    assert "Traceback (most recent call last)" in log.read_text()  # the details are logged
    assert not pid_path.exists()


def test_daemonize_unwritable_log(tmp_path):
    r = run_command(["--http-socket", "127.0.0.1:0", "--skip-checks",
                     "--daemonize", str(tmp_path / "no" / "server.log")])
    assert one_error_line(r).startswith(f"cannot open the log file {tmp_path}/no/server.log")


# -- uwsgi_reload: errors --------------------------------------------------------------------

def test_uwsgi_reload_without_a_pidfile_configured():
    assert one_error_line(manage("uwsgi_reload", [])) == (
        "no pidfile or master-fifo configured (set 'pidfile' or 'master-fifo' in "
        "settings.UWSGI, or pass --pidfile PATH or --fifo PATH)")


@pytest.mark.parametrize("content, message", [
    (None, "pidfile {path} does not exist (is the server running?)"),
    ("", "pidfile {path} is empty"),
    ("hello world\n", "pidfile {path} holds 'hello world', not a pid"),
    ("0\n", "pidfile {path} holds 0, which is not a process id (not signalling it)"),
    ("-1\n", "pidfile {path} holds -1, which is not a process id (not signalling it)"),
    ("-99999\n", "pidfile {path} holds -99999, which is not a process id (not signalling it)"),
    ("DEAD", "pidfile {path} is stale: no process {pid} is running (the server is not running)"),
    ("SLEEP", "pidfile {path}: pid {pid} is not a runuwsgi master (it is 'sleep 60'); "
              "not signalling it"),
])
@pytest.mark.parametrize("how", ["option", "settings", "runuwsgi --reload", "runuwsgi --stop"])
def test_uwsgi_reload_errors(tmp_path, content, message, how):
    path = tmp_path / "server.pid"
    pid = None
    sleeper = None
    if content == "DEAD":
        proc = subprocess.Popen(["true"])
        proc.wait(10)
        pid, content = proc.pid, f"{proc.pid}\n"
    elif content == "SLEEP":
        sleeper = subprocess.Popen(["sleep", "60"], start_new_session=True)
        wait_for(lambda: psutil.Process(sleeper.pid).cmdline() == ["sleep", "60"], 10, "sleep")
        pid, content = sleeper.pid, f"{sleeper.pid}\n"
    if content is not None:
        path.write_text(content)
    try:
        if how == "option":
            r = manage("uwsgi_reload", ["--pidfile", str(path)])
        elif how == "settings":
            r = manage("uwsgi_reload", [], env=settings_env({"pidfile": str(path)}))
        else:
            r = run_command([how.split()[1], str(path)])
        # Nothing was signalled: a SIGHUP to our own group (uWSGI's bug with "0") would kill
        # the command itself (returncode -1), and the sleep is still alive.
        assert one_error_line(r) == message.format(path=path, pid=pid)
        if sleeper is not None:
            assert sleeper.poll() is None
    finally:
        if sleeper is not None:
            sleeper.kill()
            sleeper.wait(10)


def test_uwsgi_reload_chain_needs_a_fifo(tmp_path):
    assert one_error_line(manage("uwsgi_reload", ["--pidfile", str(tmp_path / "p"),
                                                  "--chain"])) == (
        "chain reload needs master-fifo (set 'master-fifo' in settings.UWSGI or pass "
        "--fifo PATH)")


def test_uwsgi_reload_fifo_without_reader(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert one_error_line(manage("uwsgi_reload", ["--fifo", str(fifo)])) == \
        f"no server is reading FIFO {fifo}"


def test_runuwsgi_reload_and_stop_together(tmp_path):
    assert one_error_line(run_command(["--reload", "x", "--stop", "y"])) == \
        "--reload and --stop do not go together"


# -- uwsgi_reload: against a server ----------------------------------------------------------

def _server_with_pidfile(start_server, tmp_path, extra=(), env=None, settings=False):
    path = tmp_path / "server.pid"
    args = ["--http-socket", "127.0.0.1:0", "--skip-checks", "--processes", "2", *extra]
    if settings:
        env = {**(env or {}), **settings_env({"pidfile": str(path)})}
    else:
        args += ["--pidfile", str(path)]
    server = start_server(args, env=env)
    wait_for(lambda: len(server.worker_pids()) == 2, 10, "two workers")
    return server, path


def test_uwsgi_reload_waits_for_new_workers(start_server, tmp_path):
    server, path = _server_with_pidfile(start_server, tmp_path, settings=True)
    old = server.worker_pids()
    r = manage("uwsgi_reload", [], env=settings_env({"pidfile": str(path)}))
    assert r.returncode == 0, r.stderr
    m = re.fullmatch(r"reloaded 2 workers in ([\d.]+) s \(master pid (\d+); new worker pids: "
                     r"(\d+), (\d+)\)", r.stdout.strip())
    assert m, r.stdout
    assert int(m.group(2)) == server.pid
    new = sorted(int(m.group(i)) for i in (3, 4))
    assert not set(new) & set(old)
    assert server.worker_pids() == new  # nothing old left, the new ones are the workers
    assert requests.get(server.url + "/hello", timeout=10).status_code == 200


def test_uwsgi_reload_no_wait(start_server, tmp_path):
    server, path = _server_with_pidfile(start_server, tmp_path)
    old = server.worker_pids()
    r = manage("uwsgi_reload", ["--pidfile", str(path), "--no-wait"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == (f"sent SIGHUP (graceful reload) to the runuwsgi master "
                                f"(pid {server.pid})")
    wait_for(lambda: len(server.worker_pids()) == 2 and not set(server.worker_pids()) & set(old),
             30, "the workers to be replaced")


@pytest.mark.parametrize("brutal", [False, True])
def test_uwsgi_reload_stop(start_server, tmp_path, brutal):
    server, path = _server_with_pidfile(start_server, tmp_path)
    r = manage("uwsgi_reload", ["--pidfile", str(path), "--stop"]
               + (["--brutal"] if brutal else []))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"stopped the server (pid {server.pid}) in ")
    assert server.proc.wait(10) == 0
    assert ("SIGQUIT received" if brutal else "SIGINT received") in server.stderr()
    assert not path.exists()


def test_uwsgi_reload_chain_through_the_fifo(start_server, tmp_path):
    fifo = tmp_path / "master.fifo"
    server, path = _server_with_pidfile(start_server, tmp_path,
                                        extra=["--master-fifo", str(fifo)])
    old = server.worker_pids()
    r = manage("uwsgi_reload", ["--pidfile", str(path), "--fifo", str(fifo), "--chain"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("reloaded 2 workers in ")
    assert not set(server.worker_pids()) & set(old)
    # the FIFO alone also finds the master (by who has the FIFO open) and waits
    old = server.worker_pids()
    r = manage("uwsgi_reload", ["--fifo", str(fifo)])
    assert r.returncode == 0, r.stderr
    assert f"(master pid {server.pid};" in r.stdout
    assert not set(server.worker_pids()) & set(old)


def test_runuwsgi_reload_and_stop_like_uwsgi(start_server, tmp_path):
    server, path = _server_with_pidfile(start_server, tmp_path)
    old = server.worker_pids()
    r = run_command(["--reload", str(path)])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == (f"sent SIGHUP (graceful reload) to the runuwsgi master "
                                f"(pid {server.pid})")
    wait_for(lambda: len(server.worker_pids()) == 2 and not set(server.worker_pids()) & set(old),
             30, "the workers to be replaced")
    r = run_command(["--stop", str(path)])
    assert r.returncode == 0, r.stderr
    assert "sent SIGINT (graceful stop)" in r.stdout
    assert server.proc.wait(15) == 0
    assert not path.exists()


def test_uwsgi_reload_refuses_a_worker_pid(start_server, tmp_path):
    server, path = _server_with_pidfile(start_server, tmp_path)
    worker = server.worker_pids()[0]
    path.write_text(f"{worker}\n")
    assert one_error_line(manage("uwsgi_reload", ["--pidfile", str(path)])) == (
        f"pidfile {path}: pid {worker} is a runuwsgi worker (its master is pid {server.pid}); "
        f"not signalling it")
    assert worker in server.worker_pids()
    path.write_text(f"{server.pid}\n")  # let the server remove its own pidfile
