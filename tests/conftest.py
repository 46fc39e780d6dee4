import os

import pytest

from tests.server import Server, stop_all


@pytest.fixture
def start_server(tmp_path):
    """Factory: start_server(args, env=None) -> a running Server, stopped at teardown."""
    started = []

    def start(args, env=None, wait=True, **kwargs):
        home = tmp_path / f"server{len(started)}"
        home.mkdir()
        server = Server(home, list(args), env, wait=False, **kwargs)
        started.append(server)  # registered before waiting: a failed start is still stopped
        if wait:
            server.wait_ready()
        return server

    yield start
    stop_all(started)


from tests.dashboard import dashboard_project  # noqa: E402,F401  (the fixture)
from tests.nginx import nginx_factory  # noqa: E402,F401  (the fixture, for every test)


@pytest.fixture(scope="session")
def readable_env():
    """(python, project dir) that a worker running as nobody can import from; see
    tests/readable.py. Skips where it cannot be made (not root, no /usr/bin/python3)."""
    import shutil

    from tests import readable

    try:
        python = readable.venv_python()
    except readable.Unavailable as exc:
        if os.environ.get("CI") and os.geteuid() == 0:  # .ci/run must be able to make it
            pytest.fail(f"the readable virtualenv: {exc}")
        pytest.skip(str(exc))
    project = readable.project_copy()
    yield python, project
    shutil.rmtree(project.parent.parent, ignore_errors=True)
