"""The admin dashboard's test setup: a migrated sqlite database for the test project with
three users, and logging in through the real admin login form.

The test project turns on admin/auth/sessions/messages only with ``TEST_DASHBOARD=1`` and
uses the database file ``TEST_DB``; ``DASHBOARD_ENV`` holds both, for every process (runuwsgi,
runserver, manage.py) of a test.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from django_uwsgi_server.server.stats_client import fetch_stats
from tests.server import TEST_PROJECT

PASSWORD = "dashboard-tests-only"
USERS = {  # name -> (is_staff, has the reload permission)
    "boss": (True, True),
    "viewer": (True, False),
    "visitor": (False, False),
}
# Also a session per user: the admin's login form turns non-staff users away.
_CREATE_USERS = """
import json
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import Permission, User
from django.contrib.sessions.backends.db import SessionStore
perm = Permission.objects.get(content_type__app_label="django_uwsgi_server",
                              codename="reload_server")
sessions = {{}}
for name, (staff, allowed) in {users!r}.items():
    user = User.objects.create_user(name, password={password!r}, is_staff=staff)
    if allowed:
        user.user_permissions.add(perm)
    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.create()
    sessions[name] = store.session_key
print(json.dumps(sessions))
"""
_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def manage(args: list[str], env: dict[str, str]) -> str:
    proc = subprocess.run([sys.executable, str(TEST_PROJECT / "manage.py"), *args],
                          cwd=str(TEST_PROJECT), env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL,
                          start_new_session=True)
    assert proc.returncode == 0, f"manage.py {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@dataclass
class Project:
    env: dict[str, str]  # for every process of the test project
    sessions: dict[str, str]  # user name -> a session key logged in as that user


@pytest.fixture(scope="module")
def dashboard_project(tmp_path_factory) -> Project:
    """The test project with the dashboard's apps and a database holding the users of USERS
    (created once per test module)."""
    db = tmp_path_factory.mktemp("dashboard_db") / "db.sqlite3"
    env = {"TEST_DASHBOARD": "1", "TEST_DB": str(db)}
    manage(["migrate", "-v0"], env)
    out = manage(["shell", "-c", _CREATE_USERS.format(users=USERS, password=PASSWORD)], env)
    return Project(env, json.loads(out.strip().splitlines()[-1]))


def csrf_token(page: str) -> str:
    match = _CSRF.search(page)
    assert match, f"no CSRF token in the page:\n{page[:2000]}"
    return match.group(1)


def with_session(key: str) -> requests.Session:
    session = requests.Session()
    session.cookies.set("sessionid", key)
    return session


def login(base: str, username: str) -> requests.Session:
    """A session logged in through the admin login form (CSRF included); staff only."""
    session = requests.Session()
    page = session.get(f"{base}/admin/login/", timeout=10)
    page.raise_for_status()
    reply = session.post(f"{base}/admin/login/", timeout=30,
                         data={"username": username, "password": PASSWORD,
                               "csrfmiddlewaretoken": csrf_token(page.text), "next": "/admin/"},
                         headers={"Referer": f"{base}/admin/login/"}, allow_redirects=False)
    assert reply.status_code == 302, f"login of {username} failed: {reply.status_code}"
    return session


def page_text(response: requests.Response) -> str:
    """The page's text: tags made spaces, runs of white space one, entities decoded."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.text)).split())


def stats_pids(address: str) -> list[int]:
    return sorted(w["pid"] for w in fetch_stats(address)["workers"])


def stats_path(tmp_path: Path) -> str:
    return str(tmp_path / "stats.sock")
