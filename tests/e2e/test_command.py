"""runuwsgi as a command: option sources and precedence, errors, app loading, logging."""

import json
import socket
import subprocess
import sys

import pytest
import requests

from tests.server import TEST_PROJECT, run_command, wait_for


def settings_env(options: dict) -> dict:
    return {"TEST_UWSGI_SETTINGS": json.dumps(options)}


# -- errors: one line, non-zero exit, nothing served -----------------------------------------

def test_unknown_option_on_command_line_suggests_the_closest():
    r = run_command(["--proceses", "3"])
    assert r.returncode != 0
    assert "unknown option '--proceses'" in r.stderr
    assert "did you mean '--processes'?" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr
    assert "Quit the server" not in r.stdout


def test_unknown_option_in_settings():
    r = run_command([], env=settings_env({"proceses": 3}))
    assert r.returncode == 1
    assert "unknown option 'proceses'" in r.stderr
    assert "settings.UWSGI" in r.stderr
    assert "did you mean 'processes'?" in r.stderr


def test_bad_value_names_option_value_and_expectation():
    r = run_command(["--processes", "abc"])
    assert r.returncode == 1
    line = [ln for ln in r.stderr.splitlines() if "processes" in ln]
    assert line and "'abc'" in line[0] and "expected" in line[0]


def test_planned_option_is_an_error_not_a_silent_noop():
    # No option is left planned: req-logger is marked planned in the subprocess.
    from tests.planned import PLANNED_BOOT

    # (=5 names no shared socket: were the check missing, the start would fail, not serve.)
    r = subprocess.run([sys.executable, "-c", PLANNED_BOOT, "req-logger", "--req-logger",
                        "stdio", "--http-socket", "=5"], cwd=str(TEST_PROJECT),
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 1
    assert r.stderr.strip() == ("CommandError: option 'req-logger' (command line) is not "
                                "implemented yet by runuwsgi (planned)")


def test_unsupported_option_is_an_error():
    r = run_command(["--cheaper", "2"])
    assert r.returncode != 0
    assert "cheaper" in r.stderr and "not supported" in r.stderr


def test_address_in_use():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = run_command(["--http-socket", f"127.0.0.1:{port}", "--skip-checks"])
    assert r.returncode == 1
    assert "already in use" in r.stderr
    assert f"127.0.0.1:{port}" in r.stderr


def test_app_import_error_exits_with_one_traceback():
    r = run_command(["--http-socket", "127.0.0.1:0", "--module", "extra.broken:application",
                     "--pythonpath", str(TEST_PROJECT)])
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == ("CommandError: could not import the WSGI "
                                                 "application: ImportError: this module is "
                                                 "broken on purpose")
    assert r.stderr.count("Traceback (most recent call last)") == 1
    assert "Quit the server" not in r.stdout


def test_lazy_app_import_error_stops_the_server():
    r = run_command(["--http-socket", "127.0.0.1:0", "--module", "extra.broken:application",
                     "--lazy-apps", "--processes", "2"], timeout=30)
    assert r.returncode != 0
    assert "could not load the application" in r.stderr


def test_missing_module():
    r = run_command(["--http-socket", "127.0.0.1:0", "--module", "no.such.module"])
    assert r.returncode == 1
    assert "No module named 'no'" in r.stderr


def test_home_must_exist():
    r = run_command(["--http-socket", "127.0.0.1:0", "--home", "/nonexistent/venv"])
    assert r.returncode == 1
    assert "home '/nonexistent/venv'" in r.stderr


def test_help_is_grouped_and_lists_uwsgi_options():
    r = run_command(["--help"])
    assert r.returncode == 0
    for text in ("Sockets", "Processes", "--http-socket", "--processes", "--buffer-size",
                 "--ini", "addrport"):
        assert text in r.stdout


def test_system_checks_run_before_serving(start_server):
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "1"])
    assert "System check identified no issues" in server.stdout()
    quiet = start_server(["--http-socket", "127.0.0.1:0", "--processes", "1", "--skip-checks"])
    assert "System check" not in quiet.stdout()


# -- sources and precedence ----------------------------------------------------------------

def workers_in_banner(server) -> int:
    line = [ln for ln in server.stdout().splitlines() if ln.startswith("Master pid")][0]
    return int(line.split(": ")[1].split(" worker")[0])


def test_precedence_defaults_settings_ini_command_line(start_server, tmp_path):
    ini = tmp_path / "site.ini"
    ini.write_text("[uwsgi]\nprocesses = 2\n")
    env = settings_env({"processes": 3, "http_socket": "127.0.0.1:0"})
    assert workers_in_banner(start_server([], env=env)) == 3
    assert workers_in_banner(start_server(["--ini", str(ini)], env=env)) == 2
    assert workers_in_banner(start_server(["--ini", str(ini), "-p", "1"], env=env)) == 1


def test_ini_file_drives_the_server(start_server, tmp_path):
    ini = tmp_path / "deploy.ini"
    ini.write_text(
        "[uwsgi]\n"
        "; a comment\n"
        "# another\n"
        "chdir = %d\n"
        "env = GREETING=from-%n\n"
        "env = OTHER=2\n"
        "http-socket = 127.0.0.1:0\n"
        "processes = 1\n"
        "master\n"
        "add-header = X-Served-By: %(processes)-worker\n"
        "\n[other]\nprocesses = 9\n")
    server = start_server(["--ini", str(ini)])
    r = requests.get(server.url + "/osenv?k=GREETING")
    assert r.json() == {"value": "from-deploy", "cwd": str(tmp_path)}
    assert r.headers["X-Served-By"] == "1-worker"
    assert requests.get(server.url + "/osenv?k=OTHER").json()["value"] == "2"
    other = start_server([f"{ini}:other", "--http-socket", "127.0.0.1:0", "--skip-checks"])
    assert workers_in_banner(other) == 9


def test_addrport_positional(start_server):
    server = start_server(["127.0.0.1:0", "--processes", "1"])
    assert requests.get(server.url + "/hello").text == "hello world"


def test_ipv6_addrport(start_server):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("no ::1 on this machine")
    server = start_server(["[::1]:0", "--processes", "1"])
    host, port = server.addresses["http"][0]
    assert host == "::1"
    assert requests.get(f"http://[::1]:{port}/hello").text == "hello world"


@pytest.mark.parametrize("args,body", [
    (["--wsgi-file", "extra/otherapp.py"], "other application"),
    (["--wsgi-file", "extra/otherapp.py", "--callable", "custom"], "custom callable"),
    (["--module", "extra.otherapp:make_app()"], "custom callable"),
    (["--module", "otherapp", "--pythonpath", "extra"], "other application"),
    (["--module", "otherapp:custom", "--chdir", "extra", "--lazy-apps"], "custom callable"),
])
def test_app_loading_options(start_server, args, body):
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "1", *args])
    assert requests.get(server.url + "/").text == body


# -- logging ---------------------------------------------------------------------------------

UWSGI_LINE = (r"\[pid: \d+\|app: 0\|req: \d+/\d+\] 127\.0\.0\.1 \(\) \{\d+ vars in \d+ bytes\} "
              r"\[\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\] GET /hello\?x=1 => generated 11 bytes "
              r"in \d+ msecs \(HTTP/1\.1 200\) \d+ headers in \d+ bytes "
              r"\(\d+ switches on core 0\)")


def test_default_request_log_is_uwsgis_line(start_server):
    import re

    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "1"])
    requests.get(server.url + "/hello?x=1")
    wait_for(lambda: re.search(UWSGI_LINE, server.stderr()), 5, "a uWSGI-style request line")


def test_disable_logging_and_log_format_and_logto(start_server, tmp_path):
    quiet = start_server(["--http-socket", "127.0.0.1:0", "--processes", "1",
                          "--disable-logging"])
    requests.get(quiet.url + "/hello")
    requests.get(quiet.url + "/hello?second")
    assert "GET /hello" not in quiet.stderr()
    log = tmp_path / "requests.log"
    custom = start_server(["--http-socket", "127.0.0.1:0", "--processes", "1", "--logto",
                           str(log), "--log-format",
                           "%(addr) %(method) %(uri) %(status) %(size) %(var.HTTP_X_ID) "
                           "%(uagent) %(nope)"])
    requests.get(custom.url + "/hello", headers={"X-Id": "42", "User-Agent": "ua"})
    wait_for(lambda: log.exists() and "GET /hello" in log.read_text(), 5, "the logto file")
    assert "127.0.0.1 GET /hello 200 11 42 ua -" in log.read_text()


def test_sigterm_is_graceful(start_server):
    import concurrent.futures
    import signal

    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "1"])
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(requests.get, server.url + "/sleep?s=1.5")
        wait_for(lambda: any(ln == "started /sleep" for ln in server.signal_lines()), 5,
                 "the slow request to start")
        server.proc.send_signal(signal.SIGTERM)
        r = pending.result(timeout=10)
    assert (r.status_code, r.text) == (200, "slept")
    assert r.headers["Connection"] == "close"
    assert server.proc.wait(10) == 0


def test_sigint_twice_stops_at_once(start_server):
    import signal

    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "1"])
    import threading

    def slow_request():
        try:
            requests.get(server.url + "/sleep?s=20", timeout=30)
        except requests.ConnectionError:
            pass  # expected: the second SIGINT stops the worker mid-request

    threading.Thread(target=slow_request, daemon=True).start()
    wait_for(lambda: any(ln == "started /sleep" for ln in server.signal_lines()), 5, "start")
    server.proc.send_signal(signal.SIGINT)
    wait_for(lambda: "SIGINT received" in server.stderr(), 5, "the first SIGINT")
    server.proc.send_signal(signal.SIGINT)
    assert server.proc.wait(5) == 0


def test_dead_worker_is_respawned(start_server):
    import os
    import signal
    import time

    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "2"])
    before = server.worker_pids()
    assert len(before) == 2
    os.kill(before[0], signal.SIGKILL)
    start = time.monotonic()
    wait_for(lambda: len(server.worker_pids()) == 2 and server.worker_pids() != before, 5,
             "a respawned worker")
    assert time.monotonic() - start < 1.0
    wait_for(lambda: "DAMN ! worker" in server.stderr(), 5, "the respawn log line")
    assert "killed by signal 9" in server.stderr()
    for _ in range(4):
        assert requests.get(server.url + "/hello").status_code == 200


def test_unix_http_socket(start_server, tmp_path):
    path = tmp_path / "http.sock"
    server = start_server(["--http-socket", str(path), "--http-socket", "127.0.0.1:0",
                           "--processes", "1"])
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(str(path))
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b"hello world")
    assert server.pid


def test_module_runs_with_python_m(tmp_path):
    # Sanity: the package imports without Django settings (used by docs tooling).
    import subprocess

    r = subprocess.run([sys.executable, "-m", "django_uwsgi_server.conf.docs"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "http-socket" in r.stdout


def test_unix_socket_in_missing_directory():
    r = run_command(["--socket", "/nonexistent-dir/app.sock", "--skip-checks"])
    assert r.returncode == 1
    assert "/nonexistent-dir/app.sock" in r.stderr and "does not exist" in r.stderr


def test_home_adds_the_virtualenvs_site_packages(start_server, tmp_path):
    import subprocess
    import sysconfig

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    purelib = sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)})
    (tmp_path / "venv" / purelib.split(str(venv) + "/", 1)[1] / "venvonly.py").write_text(
        "def application(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'from the virtualenv']\n")
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "1",
                           "--home", str(venv), "--module", "venvonly"])
    assert requests.get(server.url + "/").text == "from the virtualenv"
