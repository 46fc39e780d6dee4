"""Start ``manage.py runuwsgi`` of the test project as a real subprocess, and stop it by PID.

The server binds port 0 and prints its real address in the banner, so no test guesses a free
port. Every wait has a deadline.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST_PROJECT = ROOT / "tests" / "testproject"
EXAMPLE_PROJECT = ROOT / "example_project"
_ADDR = re.compile(r"(http|uwsgi)://(\[[0-9a-f:]+\]|[0-9.]+):(\d+)")


def wait_for(predicate, timeout: float, what: str, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Server:
    """A running runuwsgi process (the master) started with ``args``."""

    def __init__(self, tmp_path: Path, args: list[str], env: dict[str, str] | None = None,
                 project: Path = TEST_PROJECT, wait: bool = True,
                 python: str = sys.executable, prefix: list[str] = (),
                 pass_fds: tuple[int, ...] = ()) -> None:
        self.tmp_path = tmp_path
        self.signal_log = tmp_path / "signals.log"
        self.out_path = tmp_path / "server.out"
        self.err_path = tmp_path / "server.err"
        full_env = dict(os.environ)
        full_env.update({"TEST_SIGNAL_LOG": str(self.signal_log), "PYTHONUNBUFFERED": "1"})
        full_env.update(env or {})
        # prefix: a wrapper that execs the command (its pid stays the master's).
        self.cmd = [*prefix, python, str(project / "manage.py"), "runuwsgi", *args]
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(self.cmd, cwd=str(project), env=full_env,
                                         stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                         start_new_session=True, pass_fds=pass_fds)
        self.addresses: dict[str, list[tuple[str, int]]] = {}
        if wait:
            self.wait_ready()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 30.0) -> None:
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"runuwsgi exited with {self.proc.returncode}:\n"
                                     f"{self.stdout()}\n{self.stderr()}")
            return "Quit the server" in self.stdout()
        wait_for(ready, timeout, "the runuwsgi banner")
        for proto, host, port in _ADDR.findall(self.stdout()):
            self.addresses.setdefault(proto, []).append((host.strip("[]"), int(port)))
        # The banner is printed before the fork: wait until a worker really answers.
        if "http" in self.addresses:
            host, port = self.addresses["http"][0]
            wait_for(lambda: _answers(host, port), timeout, "a worker's first answer")
        else:
            host, port = self.addresses["uwsgi"][0]
            wait_for(lambda: _connects(host, port), timeout, "a listening socket")

    @property
    def port(self) -> int:
        return self.addresses["http"][0][1]

    @property
    def url(self) -> str:
        host, port = self.addresses["http"][0]
        return f"http://{host}:{port}"

    @property
    def uwsgi_address(self) -> tuple[str, int]:
        return self.addresses["uwsgi"][0]

    def signal_lines(self) -> list[str]:
        if not self.signal_log.exists():
            return []
        # Leave out the readiness probe's own request.
        return [line for line in self.signal_log.read_text().splitlines()
                if not line.endswith("/__ready__")]

    def worker_pids(self) -> list[int]:
        import psutil

        try:
            return sorted(p.pid for p in psutil.Process(self.pid).children())
        except psutil.NoSuchProcess:
            return []

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                stacks = subprocess.run(
                    f"for p in $(pgrep -g {self.proc.pid}); do echo == $p; "
                    f"cat /proc/$p/wchan; echo; py-spy dump --pid $p 2>&1 | head -40; done",
                    shell=True, capture_output=True, text=True, timeout=60).stdout
                print(stacks)
                print("STDERR:", self.stderr())
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
                raise AssertionError(f"runuwsgi did not stop within {timeout}s of signal "
                                     f"{sig}:\n{self.stderr()[-3000:]}\n{stacks}") from None
        # Workers are in the server's own process group: none may outlive the master
        # (zombies, which nobody here may reap, do not count).
        if not self._group_alive():
            return self.proc.returncode
        time.sleep(0.5)
        if not self._group_alive():
            return self.proc.returncode
        os.killpg(self.proc.pid, signal.SIGKILL)
        raise AssertionError("processes of the server's group outlived the master")

    def _group_alive(self) -> bool:
        import psutil

        for proc in psutil.process_iter(["status"]):
            try:
                if os.getpgid(proc.pid) == self.proc.pid and \
                        proc.info["status"] != psutil.STATUS_ZOMBIE:
                    return True
            except (ProcessLookupError, psutil.Error):
                continue
        return False


def stop_all(servers: list[Server]) -> None:
    """Stop every server (a fixture's teardown); fail afterwards if any misbehaved."""
    errors = []
    for server in servers:
        try:
            server.stop()
        except AssertionError as exc:
            errors.append(str(exc))
    assert not errors, errors


def _connects(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=5) as sock:
            sock.sendall(b"GET /__ready__ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            return sock.recv(16).startswith(b"HTTP/1.1 ")
    except OSError:
        return False


def run_command(args: list[str], env: dict[str, str] | None = None, timeout: float = 60,
                project: Path = TEST_PROJECT) -> subprocess.CompletedProcess:
    """Run ``manage.py runuwsgi ARGS`` expecting it to exit by itself (an error case)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, str(project / "manage.py"), "runuwsgi", *args],
                          cwd=str(project), env=full_env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, start_new_session=True)
