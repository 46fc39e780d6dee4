"""The example of Django's "How to use Django with uWSGI" page runs unchanged under runuwsgi.

Its command line and its ini file, with the same option set (only paths and the port adapted
to a temporary directory; ``--uid/--gid`` root so the workers can still import from /root;
``--home`` this virtualenv), start a daemonized runuwsgi that serves through nginx, reloads
with ``manage.py uwsgi_reload`` and ``runuwsgi --reload PIDFILE``, and stops with
``runuwsgi --stop PIDFILE``, as the page and uWSGI's management docs say.
"""

import re
import sys

import psutil
import pytest
import requests

from tests.e2e.test_pidfile_daemon import daemons, gone, manage  # noqa: F401  (a fixture)
from tests.server import TEST_PROJECT, run_command, wait_for


def seed_command_line(tmp_path):
    return [
        f"--chdir={TEST_PROJECT}",
        "--module=testsite.wsgi:application",
        "--env", "DJANGO_SETTINGS_MODULE=testsite.settings",
        "--master", f"--pidfile={tmp_path / 'project-master.pid'}",
        "--socket=127.0.0.1:0",
        "--processes=5",
        "--uid=root", "--gid=root",
        "--harakiri=20",
        "--max-requests=5000",
        "--vacuum",
        f"--home={sys.prefix}",
        f"--daemonize={tmp_path / 'yourproject.log'}",
    ]


def seed_ini(tmp_path):
    ini = tmp_path / "uwsgi.ini"
    ini.write_text(f"""[uwsgi]
chdir={TEST_PROJECT}
module=testsite.wsgi:application
master=True
pidfile={tmp_path / 'project-master.pid'}
vacuum=True
max-requests=5000
daemonize={tmp_path / 'yourproject.log'}
""")
    # The page's ini has no socket (its command line does): give the same one here.
    return ["--ini", str(ini), "--socket=127.0.0.1:0"]


def _workers(pid):
    return [c.pid for c in psutil.Process(pid).children()]


@pytest.mark.parametrize("how", ["command line", "ini"])
def test_seed_example_serves_through_nginx_reloads_and_stops(tmp_path, daemons,  # noqa: F811
                                                             nginx_factory, how):
    pidfile, log = tmp_path / "project-master.pid", tmp_path / "yourproject.log"
    daemons.pidfile(pidfile)
    args = seed_command_line(tmp_path) if how == "command line" else seed_ini(tmp_path)
    r = run_command(args, timeout=90)
    assert r.returncode == 0, r.stderr
    assert re.fullmatch(rf"started, pid (\d+), log {re.escape(str(log))}",
                        r.stdout.strip().splitlines()[-1])
    pid = int(pidfile.read_text())
    port = int(re.search(r"uwsgi://127\.0\.0\.1:(\d+)", log.read_text()).group(1))
    expected = 5 if how == "command line" else 2 * len(psutil.Process().cpu_affinity())
    wait_for(lambda: len(_workers(pid)) == expected, 30, f"{expected} workers")

    nginx = nginx_factory(f"127.0.0.1:{port}")
    response = requests.get(nginx.url + "/hello", timeout=10)
    assert (response.status_code, response.text) == (200, "hello world")

    old = set(_workers(pid))
    r = manage("uwsgi_reload", ["--pidfile", str(pidfile)], timeout=90)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"reloaded {expected} workers in ")
    assert not old & set(_workers(pid))
    assert requests.get(nginx.url + "/hello", timeout=10).text == "hello world"

    old = set(_workers(pid))
    r = run_command(["--reload", str(pidfile)])
    assert r.returncode == 0, r.stderr
    wait_for(lambda: len(_workers(pid)) == expected and not old & set(_workers(pid)), 60,
             "the workers replaced by runuwsgi --reload")
    assert requests.get(nginx.url + "/hello", timeout=10).text == "hello world"

    r = run_command(["--stop", str(pidfile)])
    assert r.returncode == 0, r.stderr
    wait_for(lambda: gone(pid), 30, "the master to stop")
    assert not pidfile.exists()  # vacuum (and runuwsgi always) removes it
    assert requests.get(nginx.url + "/hello", timeout=10).status_code == 502
