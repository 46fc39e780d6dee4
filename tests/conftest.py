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
