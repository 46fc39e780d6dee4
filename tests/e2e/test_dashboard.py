"""The admin dashboard over HTTP against the real server: who may see it and reload, CSRF,
methods, the reloads themselves (new worker pids, a log line naming the user), the page when
the stats server is off and when it is not served by runuwsgi (runserver).

The browser test is in test_dashboard_browser.py."""

import os
import re
import signal
import socket
import subprocess
import sys

import requests

from django_uwsgi_server.server.stats_client import fetch_stats
from tests.dashboard import (
    csrf_token,
    login,
    page_text,
    stats_path,
    stats_pids,
    with_session,
)
from tests.server import TEST_PROJECT, wait_for

DASH = "/uwsgi/"
RELOAD = "/uwsgi/reload/"
STATS_JSON = "/uwsgi/stats.json"


def start_dashboard_server(start_server, tmp_path, env, extra=()):
    stats = stats_path(tmp_path)
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "2", "--stats", stats,
                           "--master-fifo", str(tmp_path / "master.fifo"), *extra], env=env)
    wait_for(lambda: len(stats_pids(stats)) == 2, 30, "two workers in the stats")
    return server, stats


def test_who_may_see_and_reload(start_server, tmp_path, dashboard_project):
    server, stats = start_dashboard_server(start_server, tmp_path, dashboard_project.env)
    base = server.url
    before = stats_pids(stats)

    anonymous = requests.get(base + DASH, allow_redirects=False, timeout=10)
    assert anonymous.status_code == 302
    assert anonymous.headers["Location"] == "/admin/login/?next=/uwsgi/"
    assert requests.get(base + STATS_JSON, timeout=10).status_code == 403

    visitor = with_session(dashboard_project.sessions["visitor"])  # logged in, not staff
    assert visitor.get(base + DASH, allow_redirects=False, timeout=10).status_code == 403
    assert visitor.get(base + STATS_JSON, timeout=10).status_code == 403

    viewer = login(base, "viewer")  # staff without the permission: sees, cannot reload
    page = viewer.get(base + DASH, timeout=10)
    assert page.status_code == 200
    assert "Reloading needs the permission django_uwsgi_server.reload_server" in page_text(page)
    assert re.search(r'id="reload-graceful"[^>]* disabled>', page.text)
    refused = viewer.post(base + RELOAD, data={"mode": "graceful",
                                               "csrfmiddlewaretoken": csrf_token(page.text)},
                          headers={"Referer": base + DASH}, timeout=10)
    assert refused.status_code == 403

    boss = login(base, "boss")
    page = boss.get(base + DASH, timeout=10)
    assert re.search(r'id="reload-graceful"[^>]*>Graceful reload', page.text)
    assert not re.search(r'id="reload-graceful"[^>]* disabled', page.text)
    assert boss.get(base + RELOAD, timeout=10).status_code == 405
    no_token = boss.post(base + RELOAD, data={"mode": "graceful"},
                         headers={"Referer": base + DASH}, timeout=10)
    assert no_token.status_code == 403 and "CSRF" in no_token.text
    bad_mode = boss.post(base + RELOAD, data={"mode": "brutal",
                                              "csrfmiddlewaretoken": csrf_token(page.text)},
                         headers={"Referer": base + DASH}, timeout=10)
    assert bad_mode.status_code == 400

    # Nothing above reloaded anything (the view logs before it answers), and the page
    # showed the workers the stats report.
    assert "asked by" not in server.stderr()
    assert stats_pids(stats) == before == server.worker_pids()
    rows = sorted(int(p) for p in re.findall(r'<tr data-pid="(\d+)"', page.text))
    assert rows == before
    data = boss.get(base + STATS_JSON, timeout=10).json()
    assert sorted(w["pid"] for w in data["workers"]) == before
    assert data["notices"] == []

    # The admin index links to the dashboard.
    index = boss.get(base + "/admin/", timeout=10)
    assert 'href="/admin/django_uwsgi_server/server/"' in index.text
    entry = boss.get(base + "/admin/django_uwsgi_server/server/", allow_redirects=False,
                     timeout=10)
    assert entry.status_code == 302 and entry.headers["Location"] == DASH


def reload_and_wait(session, base, stats, mode):
    """Press a reload button as a form would; the new worker pids once all are replaced."""
    before = set(stats_pids(stats))
    page = session.get(base + DASH, timeout=10)
    reply = session.post(base + RELOAD, data={"mode": mode,
                                              "csrfmiddlewaretoken": csrf_token(page.text)},
                         headers={"Referer": base + DASH}, timeout=30)
    assert reply.status_code == 200 and reply.url == base + DASH  # redirected to the page
    new = wait_for(lambda: (lambda now: now if len(now) == 2 and not now & before else None)(
        set(stats_pids(stats))), 60, f"new workers after a {mode} reload")
    return page_text(reply), new


def test_reload_buttons_send_signals(start_server, tmp_path, dashboard_project):
    server, stats = start_dashboard_server(start_server, tmp_path, dashboard_project.env)
    boss = login(server.url, "boss")

    text, new = reload_and_wait(boss, server.url, stats, "graceful")
    assert f"Sent SIGHUP (graceful reload) to the runuwsgi master (pid {server.pid})" in text
    wait_for(lambda: sorted(new) == server.worker_pids(), 30, "only the new workers left")
    assert (f"graceful reload asked by boss from the dashboard: sent SIGHUP (graceful reload) "
            f"to the runuwsgi master (pid {server.pid})") in server.stderr()

    text, new = reload_and_wait(boss, server.url, stats, "chain")
    assert "Sent 'c' (chain reload) through FIFO" in text
    assert "chain reload asked by boss from the dashboard: sent 'c'" in server.stderr()
    wait_for(lambda: sorted(new) == server.worker_pids(), 30, "only the new workers left")


def test_stats_off_says_how_to_enable(start_server, tmp_path, dashboard_project):
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "2"],
                          env=dashboard_project.env)
    boss = login(server.url, "boss")
    page = boss.get(server.url + DASH, timeout=10)
    assert page.status_code == 200
    text = page_text(page)
    assert "The stats server is off" in text
    assert 'UWSGI = {"stats": "127.0.0.1:9191"}' in text
    assert "not served by runuwsgi" not in text
    assert "<tbody></tbody>" in page.text.replace("\n", "")  # no worker rows
    data = boss.get(server.url + STATS_JSON, timeout=10).json()
    assert data["ok"] is False and data["workers"] == []
    assert [n["level"] for n in data["notices"]] == ["error"]
    # Reloading needs no stats: the graceful button works; the chain one needs the FIFO.
    assert not re.search(r'id="reload-graceful"[^>]* disabled', page.text)
    assert re.search(r'id="reload-chain"[^>]* disabled', page.text)
    assert "chain reload needs the master FIFO" in text


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_not_served_by_runuwsgi(start_server, tmp_path, dashboard_project):
    """Under runserver the page says so, and finds the runuwsgi server through the stats
    address and pidfile of settings.UWSGI, as manage.py uwsgi_reload does."""
    pidfile = tmp_path / "server.pid"
    server, stats = start_dashboard_server(start_server, tmp_path, dashboard_project.env,
                                           ["--pidfile", str(pidfile)])
    before = set(stats_pids(stats))
    port = free_port()
    env = {**os.environ, **dashboard_project.env, "PYTHONUNBUFFERED": "1",
           "TEST_UWSGI_SETTINGS": f'{{"stats": "{stats}", "pidfile": "{pidfile}"}}'}
    log = tmp_path / "runserver.log"
    with open(log, "wb") as out:
        runserver = subprocess.Popen(
            [sys.executable, str(TEST_PROJECT / "manage.py"), "runserver", "--noreload",
             f"127.0.0.1:{port}"], cwd=str(TEST_PROJECT), env=env, stdout=out,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(base, runserver, log), 60, "runserver")
        boss = login(base, "boss")
        page = boss.get(base + DASH, timeout=10)
        text = page_text(page)
        assert f"This page is not served by runuwsgi: this process (pid {runserver.pid})" in text
        assert f"not runuwsgi (pid {runserver.pid})" in text
        rows = {int(p) for p in re.findall(r'<tr data-pid="(\d+)"', page.text)}
        assert rows == before  # the figures of the runuwsgi server named in settings

        reply = boss.post(base + RELOAD, data={"mode": "graceful",
                                               "csrfmiddlewaretoken": csrf_token(page.text)},
                          headers={"Referer": base + DASH}, timeout=30)
        assert (f"Sent SIGHUP (graceful reload) to the runuwsgi master (pid {server.pid})"
                in page_text(reply))
        wait_for(lambda: (lambda now: len(now) == 2 and not now & before)(
            set(stats_pids(stats))), 60, "new workers after the reload from runserver")
    finally:
        if runserver.poll() is None:
            os.killpg(runserver.pid, signal.SIGTERM)
        try:
            runserver.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(runserver.pid, signal.SIGKILL)
            runserver.wait(5)


def _answers(base, proc, log):
    if proc.poll() is not None:
        raise AssertionError(f"runserver exited with {proc.returncode}:\n{log.read_text()}")
    try:
        return requests.get(base + "/hello", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_stats_http_is_read_without_waiting(start_server, tmp_path, dashboard_project):
    """With stats-http the stats server reads a request before it answers (the path picks
    JSON or /metrics); the page must send one instead of waiting for the server's default
    answer after 1 s of silence (every poll took over a second, close to the 1.5 s limit)."""
    stats = stats_path(tmp_path)
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "1", "--stats", stats,
                           "--stats-http"], env=dashboard_project.env)
    wait_for(lambda: len(fetch_stats(stats, http=True)["workers"]) == 1, 30, "the worker")
    boss = login(server.url, "boss")
    for _ in range(3):
        reply = boss.get(server.url + STATS_JSON, timeout=10)
        assert reply.status_code == 200 and reply.json()["ok"] is True
        assert reply.elapsed.total_seconds() < 0.9, reply.elapsed
