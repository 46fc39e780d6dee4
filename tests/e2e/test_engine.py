"""``runuwsgi --print-ini`` and ``--engine uwsgi``: the real uWSGI (the pyuwsgi wheel) runs our
merged configuration and serves the test project. Every uWSGI process is started in its own
session and stopped by its process group at teardown.
"""

import json
import os
import re
import signal
import subprocess
import sys

import psutil
import pytest
import requests

from django_uwsgi_server.conf.registry import OPTIONS, PLANNED, UNSUPPORTED
from django_uwsgi_server.conf.uwsgi_ini import RUNUWSGI_ONLY
from tests.nginx import free_port
from tests.server import TEST_PROJECT, run_command, wait_for

pyuwsgi = pytest.importorskip("pyuwsgi")
UWSGI_BOOT = "import sys, pyuwsgi; sys.argv[0] = 'uwsgi'; sys.exit(pyuwsgi.run())"


@pytest.fixture
def processes(tmp_path):
    """start(argv, env) -> Popen in a new session; every group is stopped at teardown."""
    started = []

    def start(argv, env=None, name="uwsgi"):
        full_env = dict(os.environ)
        full_env.update(env or {})
        out = open(tmp_path / f"{name}{len(started)}.log", "wb")
        proc = subprocess.Popen(argv, cwd=str(TEST_PROJECT), env=full_env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        proc.log = tmp_path / f"{name}{len(started)}.log"
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGINT)  # uWSGI: SIGINT stops at once
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        group = [p for p in psutil.process_iter() if _pgid(p.pid) == proc.pid]
        for p in group:
            p.kill()
        assert not group, f"processes of uWSGI's group outlived it: {group}"


def _pgid(pid):
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _get(url):
    try:
        return requests.get(url, timeout=5)
    except requests.RequestException:
        return None


def _serving(proc, url, timeout=60.0):
    def up():
        if proc.poll() is not None:
            raise AssertionError(f"exited with {proc.returncode}:\n{proc.log.read_text()}")
        return _get(url) is not None  # a Response is falsy for a 4xx/5xx
    wait_for(up, timeout, f"{url} to answer", interval=0.1)
    return _get(url)


def print_ini(args, env=None):
    r = run_command(["--print-ini", *args], env=env)
    assert r.returncode == 0, r.stderr
    return r.stdout


def ini_lines(text):
    return [line for line in text.splitlines() if line and not line.startswith((";", "["))]


def test_print_ini_writes_our_defaults_where_uwsgi_differs():
    lines = ini_lines(print_ini(["--http-socket", "127.0.0.1:9000", "--processes", "3",
                                 "--env", "A=1", "--env", "B=2"]))
    assert "http11-socket = 127.0.0.1:9000" in lines  # keep-alive is on: uWSGI's http11
    for line in ("processes = 3", "master = true", "need-app = true", "die-on-term = true",
                 "buffer-size = 65535", "socket-timeout = 30", "min-worker-lifetime = 0",
                 "wsgi-env-behaviour = holy", "module = testsite.wsgi:application",
                 "env = DJANGO_SETTINGS_MODULE=testsite.settings", "env = A=1", "env = B=2",
                 f"chdir = {TEST_PROJECT}"):
        assert line in lines
    assert lines.index("env = A=1") < lines.index("env = B=2")
    no_keepalive = ini_lines(print_ini(["--http-socket", ":9000", "--http-keepalive", "0"]))
    assert "http-socket = :9000" in no_keepalive
    assert not any(line.startswith("http-keepalive") for line in no_keepalive)


def test_print_ini_precedence_and_runuwsgi_only_options(tmp_path):
    ini = tmp_path / "a.ini"
    ini.write_text("[uwsgi]\nprocesses = 5\nharakiri = 20\nchain-reload = true\n"
                   "log-format = %%(addr) 100%%\n")
    env = {"TEST_UWSGI_SETTINGS": json.dumps({"processes": 2, "max-requests": 50,
                                              "reload-mercy": 7})}
    text = print_ini(["--ini", str(ini), "--harakiri", "30"], env=env)
    lines = ini_lines(text)
    assert "processes = 5" in lines and "harakiri = 30" in lines and "max-requests = 50" in lines
    assert "worker-reload-mercy = 7" in lines  # ours is uWSGI's worker-reload-mercy
    assert "log-format = %(addr) 100%%" in lines  # uWSGI would eat a bare %
    assert not any(line.startswith("chain-reload") for line in lines)
    assert re.search(r"^; chain-reload = true  -- left out: uWSGI has no such option", text, re.M)


def test_every_option_we_write_is_a_uwsgi_option():
    """Options added to the registry must be real uWSGI options or listed in RUNUWSGI_ONLY."""
    help_text = subprocess.run([sys.executable, "-c", UWSGI_BOOT, "--help"], capture_output=True,
                               text=True, timeout=60).stdout
    known = set(re.findall(r"^\s+(?:-\w\|)?--([\w-]+)", help_text, re.M))
    assert len(known) > 500
    ours = [o.name for o in OPTIONS
            if o.status not in (PLANNED, UNSUPPORTED) and o.name not in RUNUWSGI_ONLY]
    assert [name for name in ours if name not in known] == []


def _run_uwsgi_ini(processes, tmp_path, args, env=None):
    port = free_port()
    ini = tmp_path / "printed.ini"
    ini.write_text(print_ini(["--http-socket", f"127.0.0.1:{port}", *args], env=env))
    proc = processes([sys.executable, "-c", UWSGI_BOOT, "--ini", str(ini),
                      f"--binary-path={sys.executable}"], env=env)
    return proc, f"http://127.0.0.1:{port}"


def test_printed_ini_runs_under_real_uwsgi(processes, tmp_path):
    pidfile = tmp_path / "u.pid"
    proc, url = _run_uwsgi_ini(processes, tmp_path, ["--processes", "2", "--pidfile",
                                                     str(pidfile), "--max-requests", "100"])
    response = _serving(proc, url + "/hello")
    assert response.status_code == 200 and response.text == "hello world"
    log = proc.log.read_text()
    assert "uWSGI" in log and "spawned uWSGI worker 2" in log
    assert pidfile.read_text().strip() == str(proc.pid)
    # keep-alive works (http11-socket): two requests on one connection
    with requests.Session() as session:
        first = session.get(url + "/pid", timeout=5)
        second = session.get(url + "/pid", timeout=5)
    assert first.text == second.text and psutil.Process(int(first.text)).ppid() == proc.pid
    # SIGTERM stops it (die-on-term was written out): uWSGI 2.0 would reload instead
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(30) == 0 or "goodbye to uWSGI" in proc.log.read_text()


def test_engine_uwsgi_execs_uwsgi_with_settings(processes, tmp_path):
    port = free_port()
    env = {"TEST_UWSGI_SETTINGS": json.dumps({
        "engine": "uwsgi", "processes": 3, "http-socket": f"127.0.0.1:{port}",
        "chain-reload": True, "env": ["ENGINE_TEST=from-settings"]})}
    proc = processes([sys.executable, "manage.py", "runuwsgi", "--skip-checks"], env=env)
    url = f"http://127.0.0.1:{port}"
    assert _serving(proc, url + "/hello").text == "hello world"
    master = psutil.Process(proc.pid)  # exec kept the pid
    assert "pyuwsgi" in " ".join(master.cmdline())
    wait_for(lambda: len(master.children()) == 3, 30, "three uWSGI workers")
    assert _get(url + "/osenv?k=ENGINE_TEST").json()["value"] == "from-settings"
    log = proc.log.read_text()
    assert "warning: option 'chain-reload' (settings.UWSGI) is not passed to uWSGI" in log
    assert "option 'engine'" not in log
    # uWSGI's own graceful reload survives under pyuwsgi (the binary-path we pass)
    before = set(c.pid for c in master.children())
    os.kill(proc.pid, signal.SIGHUP)
    wait_for(lambda: len(master.children()) == 3 and not before & {c.pid for c in
                                                                   master.children()},
             60, "new uWSGI workers after SIGHUP")
    assert _serving(proc, url + "/hello").text == "hello world"


def test_engine_uwsgi_from_the_command_line_and_example_project(processes):
    port = free_port()
    project = TEST_PROJECT.parent.parent / "example_project"
    proc = processes([sys.executable, str(project / "manage.py"), "runuwsgi", "--engine",
                      "uwsgi", "--http-socket", f"127.0.0.1:{port}", "--processes", "1",
                      "--skip-checks"], env={"DJANGO_SETTINGS_MODULE": "mysite.settings"})
    response = _serving(proc, f"http://127.0.0.1:{port}/bench/plain")
    assert response.status_code == 200, response.text[:500]
    assert "pyuwsgi" in " ".join(psutil.Process(proc.pid).cmdline())


def test_engine_uwsgi_without_pyuwsgi_is_one_line():
    code = ("import runpy, sys; sys.modules['pyuwsgi'] = None; "
            "sys.argv = ['manage.py', 'runuwsgi', '--engine', 'uwsgi', '--skip-checks']; "
            "runpy.run_path('manage.py', run_name='__main__')")
    r = subprocess.run([sys.executable, "-c", code], cwd=str(TEST_PROJECT), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1
    assert r.stderr.strip() == ("CommandError: engine uwsgi: uWSGI is not installed in this "
                                "environment (pip install 'django-uwsgi-server[uwsgi]' installs "
                                "the pyuwsgi wheel)")


def test_bad_engine_is_one_line():
    r = run_command(["--engine", "gunicorn"])
    assert r.returncode == 1
    assert r.stderr.strip() == ("CommandError: invalid value 'gunicorn' for option 'engine' "
                                "(command line): expected runuwsgi or uwsgi")


def test_static_options_run_under_real_uwsgi_without_delayed_ack_stalls(processes, tmp_path):
    """The static options are uWSGI's own: the printed ini serves the same files, and
    tcp-nodelay (written always, as runuwsgi always sets it) keeps keep-alive static
    responses from waiting 40 ms each for the client's delayed ACK."""
    import gzip
    import time

    root = tmp_path / "static"
    root.mkdir()
    (root / "app.css").write_bytes(b"body{}" * 1000)
    (root / "app.css.gz").write_bytes(gzip.compress(b"body{}" * 1000))
    proc, url = _run_uwsgi_ini(processes, tmp_path, ["--static-map", f"/s={root}",
                                                     "--static-gzip-all"])
    assert "tcp-nodelay = true" in (tmp_path / "printed.ini").read_text().splitlines()
    assert _serving(proc, url + "/s/app.css").content == b"body{}" * 1000
    with requests.Session() as session:
        zipped = session.get(url + "/s/app.css", headers={"Accept-Encoding": "gzip"}, timeout=5)
        assert zipped.headers["Content-Encoding"] == "gzip"
        began = time.monotonic()
        for _ in range(50):
            assert session.get(url + "/s/app.css", timeout=5).status_code == 200
        elapsed = time.monotonic() - began
    assert elapsed < 1.5, f"50 keep-alive static responses took {elapsed:.2f} s (40 ms stalls?)"


def test_shared_socket_and_loggers_run_under_real_uwsgi(processes, tmp_path):
    """shared-socket, =N and the loggers are written through as uWSGI understands them."""
    port = free_port()
    ini = tmp_path / "shared.ini"
    main, reqs = tmp_path / "main.log", tmp_path / "req.log"
    text = print_ini(["--shared-socket", f"127.0.0.1:{port}", "--http-socket", "=0",
                      "--processes", "1", "--logger", f"file:{main}",
                      "--req-logger", f"file:{reqs}"])
    lines = ini_lines(text)
    assert f"shared-socket = 127.0.0.1:{port}" in lines and "http11-socket = =0" in lines
    assert "chmod-socket = 660" not in lines  # =0 is not a unix socket path
    assert f"logger = file:{main}" in lines and f"req-logger = file:{reqs}" in lines
    ini.write_text(text)
    proc = processes([sys.executable, "-c", UWSGI_BOOT, "--ini", str(ini),
                      f"--binary-path={sys.executable}"])
    assert _serving(proc, f"http://127.0.0.1:{port}/hello").text == "hello world"
    # the same split as runuwsgi's: request lines in req.log, uWSGI's own lines in main.log
    wait_for(lambda: reqs.exists() and "GET /hello" in reqs.read_text(), 30, "uWSGI's req.log")
    assert "GET /hello" not in main.read_text() and "spawned uWSGI worker 1" in main.read_text()
