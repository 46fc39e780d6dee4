"""Development autoreload: a small DEBUG project copied to tmp_path, served by the real
runuwsgi; editing its files restarts the server (waits have deadlines), code that does not
import is shown as a 500 page until it is fixed, and stopping the parent stops everything.
"""

import os
import signal
import socket
import textwrap

import psutil
import pytest
import requests

from django_uwsgi_server.server.stats_client import fetch_stats
from tests.server import ROOT, run_command, wait_for

VIEWS = """\
from django.http import HttpResponse
from django.template.loader import render_to_string


def index(request):
    return HttpResponse("{text}")


def page(request):
    return HttpResponse(render_to_string("page.html"))
"""


def write(path, text):
    """Write and move the mtime clearly forward (a stat reloader compares mtimes)."""
    before = path.stat().st_mtime if path.exists() else 0
    path.write_text(text)
    os.utime(path, (before + 2, before + 2) if before else None)


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "proj"
    (root / "devsite" / "templates").mkdir(parents=True)
    (root / "manage.py").write_text(textwrap.dedent(f"""\
        import os, sys
        if __name__ == "__main__":
            sys.path.insert(0, {str(ROOT)!r})
            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "devsite.settings")
            from django.core.management import execute_from_command_line
            execute_from_command_line(sys.argv)
        """))
    (root / "devsite" / "__init__.py").write_text("")
    (root / "devsite" / "settings.py").write_text(textwrap.dedent("""\
        import os
        SECRET_KEY = "tests-only"
        DEBUG = os.environ.get("DEV_DEBUG", "1") == "1"
        ALLOWED_HOSTS = ["*"]
        INSTALLED_APPS = ["django_uwsgi_server", "devsite"]
        ROOT_URLCONF = "devsite.urls"
        WSGI_APPLICATION = "devsite.wsgi.application"
        DATABASES = {}
        TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates",
                      "APP_DIRS": True}]
        """))
    (root / "devsite" / "urls.py").write_text(textwrap.dedent("""\
        from django.urls import path
        from . import views
        urlpatterns = [path("", views.index), path("page", views.page)]
        """))
    (root / "devsite" / "views.py").write_text(VIEWS.format(text="version 1"))
    (root / "devsite" / "templates" / "page.html").write_text("template 1")
    (root / "devsite" / "wsgi.py").write_text(textwrap.dedent("""\
        from django.core.wsgi import get_wsgi_application
        application = get_wsgi_application()
        """))
    return root


def tree(pid):
    """The pids of a process and all its descendants."""
    try:
        proc = psutil.Process(pid)
        return {pid, *(c.pid for c in proc.children(recursive=True))}
    except psutil.NoSuchProcess:
        return set()


def alive(pid):
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class Client:
    """GETs that record whether a connection was ever refused."""

    def __init__(self, url):
        self.url = url
        self.refused = []

    def get(self, path):
        try:
            return requests.get(self.url + path, timeout=30)
        except requests.ConnectionError as exc:
            if "refused" in str(exc).lower():
                self.refused.append(str(exc))
            return None

    def wait_text(self, path, predicate, what, timeout=60):
        # (a Response is falsy for a 4xx/5xx: wait on a list holding it)
        return wait_for(lambda: (r := self.get(path)) is not None and predicate(r) and [r],
                        timeout, what, interval=0.2)[0]


def watching(server, count):
    """Wait until the count-th child's reloader has taken its first look at the files."""
    wait_for(lambda: server.stderr().count("autoreload: watching for file changes") >= count,
             60, f"child {count} watching")


def child_of(server):
    children = wait_for(lambda: server.worker_pids(), 30, "the autoreload child")
    assert len(children) == 1
    return children[0]


def test_edit_restarts_syntax_error_is_shown_until_fixed(start_server, project):
    server = start_server(["127.0.0.1:0", "--processes", "2"], project=project)
    client = Client(server.url)
    assert client.get("/").text == "version 1"
    first_child = child_of(server)
    watching(server, 1)
    assert len(psutil.Process(first_child).children()) == 2  # the child is the master

    views = project / "devsite" / "views.py"
    write(views, VIEWS.format(text="version 2"))
    client.wait_text("/", lambda r: r.text == "version 2", "the edited view")
    assert child_of(server) != first_child and alive(server.pid)
    watching(server, 2)
    write(views, VIEWS.format(text="version 3").replace("def index", "def index(:"))
    broken = client.wait_text("/", lambda r: r.status_code == 500, "the 500 page")
    assert "SyntaxError" in broken.text and "views.py" in broken.text
    assert client.get("/").status_code == 500 and alive(server.pid)  # it stays up
    watching(server, 3)
    write(views, VIEWS.format(text="version 4"))
    client.wait_text("/", lambda r: r.text == "version 4", "the fixed view")

    # a template edit restarts too (the workers' cached templates are not the master's)
    assert client.get("/page").text == "template 1"
    watching(server, 4)
    write(project / "devsite" / "templates" / "page.html", "template 2")
    client.wait_text("/page", lambda r: r.text == "template 2", "the edited template")
    assert client.refused == []  # the sockets stayed bound across every restart

    pids = wait_for(lambda: len(tree(server.pid)) == 4 and tree(server.pid), 30,
                    "parent, child master and 2 workers")
    assert server.stop(signal.SIGTERM) == 0
    wait_for(lambda: not any(alive(pid) for pid in pids), 10, "every process to stop")


def test_ctrl_c_stops_parent_child_and_workers(start_server, project):
    server = start_server(["127.0.0.1:0", "--processes", "2"], project=project)
    pids = wait_for(lambda: len(tree(server.pid)) == 4 and tree(server.pid), 30,
                    "parent, child master and 2 workers")
    os.killpg(server.pid, signal.SIGINT)  # what the terminal does on CONTROL-C
    assert server.proc.wait(30) == 0
    wait_for(lambda: not any(alive(pid) for pid in pids), 10, "every process to stop")
    assert "SIGINT received: stopping gracefully" in server.stderr()


def test_broken_settings_kill_the_child_the_parent_restarts_it(start_server, project):
    server = start_server(["127.0.0.1:0", "--processes", "1"], project=project)
    client = Client(server.url)
    settings = project / "devsite" / "settings.py"
    good = settings.read_text()
    watching(server, 1)
    write(settings, good + "DEBUG = (\n")
    wait_for(lambda: "it restarts when a file changes" in server.stderr(), 60,
             "the parent to wait for a fix")
    assert alive(server.pid) and server.worker_pids() == []
    meanwhile = client.get("/")  # the parent answers, it does not leave clients waiting
    assert meanwhile.status_code == 500 and "exited with code 1" in meanwhile.text
    write(settings, good)
    client.wait_text("/", lambda r: r.text == "version 1", "the server back")
    assert client.refused == []


def test_no_autoreload_when_debug_is_off_unless_py_autoreload(start_server, project):
    off = start_server(["127.0.0.1:0", "--processes", "1"], project=project,
                       env={"DEV_DEBUG": "0"})
    assert "autoreload" not in off.stderr()
    assert psutil.Process(off.worker_pids()[0]).children() == []  # a worker, no child master
    noreload = start_server(["127.0.0.1:0", "--processes", "1", "--noreload"], project=project)
    assert "autoreload" not in noreload.stderr()
    on = start_server(["127.0.0.1:0", "--processes", "1", "--py-autoreload", "1"],
                      project=project, env={"DEV_DEBUG": "0"})
    watching(on, 1)
    write(project / "devsite" / "views.py", VIEWS.format(text="edited"))
    Client(on.url).wait_text("/", lambda r: r.text == "edited", "the edited view")
    # without DEBUG the error page does not show the code
    watching(on, 2)
    write(project / "devsite" / "views.py", "def index(:\n")
    broken = Client(on.url).wait_text("/", lambda r: r.status_code == 500, "the 500 page")
    assert "SyntaxError" not in broken.text and "Server Error (500)" in broken.text


def test_autoreload_with_daemonize_is_an_error(tmp_path):
    r = run_command(["--autoreload", "--daemonize", str(tmp_path / "log")])
    assert r.returncode == 1
    assert r.stderr.strip() == ("CommandError: option 'autoreload' (command line) does not go "
                                "with daemonize: autoreload is for development in a terminal")


@pytest.mark.parametrize("die_on_term", ["--die-on-term", "--no-die-on-term"])
def test_killed_parent_leaves_no_server_behind(start_server, project, die_on_term):
    # The child's parent-death signal is SIGTERM, which with die-on-term = false is uWSGI
    # 2.0's brutal reload: the child must still go, not re-execute as an orphan.
    server = start_server(["127.0.0.1:0", "--processes", "1", die_on_term],
                          project=project)
    pids = wait_for(lambda: len(tree(server.pid)) == 3 and tree(server.pid), 30,
                    "parent, child master and a worker")
    os.kill(server.pid, signal.SIGKILL)
    wait_for(lambda: not any(alive(pid) for pid in pids), 30, "every process to stop")


def test_restart_loses_no_request(start_server, project):
    import threading

    server = start_server(["127.0.0.1:0", "--processes", "2"], project=project)
    watching(server, 1)
    errors, texts, done = [], [], threading.Event()

    def hammer(keepalive):
        session = requests.Session() if keepalive else requests
        for _ in range(20000):
            if done.is_set():
                return
            try:
                r = session.get(server.url + "/", timeout=30)
                texts.append(r.text)
                if r.status_code != 200:
                    errors.append(r.status_code)
            except requests.RequestException as exc:
                errors.append(repr(exc))

    threads = [threading.Thread(target=hammer, args=(k,)) for k in (False, True)]
    for t in threads:
        t.start()
    try:
        write(project / "devsite" / "views.py", VIEWS.format(text="version 2"))
        wait_for(lambda: "version 2" in texts[-50:], 60, "the edited view")
    finally:
        done.set()
        for t in threads:
            t.join(60)
    assert errors == []


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("kind", ["tcp", "unix"])
def test_stats_server_under_autoreload(start_server, project, tmp_path, kind):
    """The parent binds the sockets first (a busy stats address is its error), but each
    child runs the stats server: the parent used to keep a TCP one bound, so every child
    failed with 'address already in use' and the development server with --stats exited."""
    stats = f"127.0.0.1:{free_port()}" if kind == "tcp" else str(tmp_path / "stats.sock")
    exists = (lambda: True) if kind == "tcp" else (lambda: os.path.exists(stats))
    server = start_server(["127.0.0.1:0", "--processes", "1", "--stats", stats],
                          project=project)
    first_child = child_of(server)
    wait_for(lambda: exists() and fetch_stats(stats)["pid"] == first_child, 30,
             "the first child's stats")
    watching(server, 1)
    write(project / "devsite" / "views.py", VIEWS.format(text="version 2"))
    Client(server.url).wait_text("/", lambda r: r.text == "version 2", "the edited view")
    second_child = child_of(server)
    assert second_child != first_child
    wait_for(lambda: exists() and fetch_stats(stats)["pid"] == second_child, 30,
             "the second child's stats")
    os.kill(server.pid, signal.SIGINT)
    wait_for(lambda: not alive(server.pid), 30, "the parent to stop")
    if kind == "unix":
        assert not os.path.exists(stats)
