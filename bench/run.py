#!/usr/bin/env python
"""Compare runuwsgi with uWSGI and gunicorn on the example project, one worker each.

    python bench/run.py [--quick] [--duration 10] [--rounds 3] [--connections 16]
                        [--servers runuwsgi,uwsgi,gunicorn]
                        [--endpoints plain,template,db,upload,download]

See bench/README.rst for the method.  Only the standard library, psutil, ``wrk`` and
``taskset`` are needed; servers that are not installed are skipped.
"""

import argparse
import contextlib
import http.client
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psutil

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
PROJECT = ROOT / "example_project"
RESULTS_DIR = BENCH_DIR / "results"

HOST = "127.0.0.1"
SERVER_CPU = "0"
LOADGEN_CPU = "1"
SETTINGS = "mysite.settings_bench"
UPLOAD_SIZE = 64 * 1024
DOWNLOAD_SIZE = 1 << 20
START_DEADLINE = 30.0
STOP_DEADLINE = 10.0
WARMUP_SECONDS = 1
SUBJECT = "runuwsgi"


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str

    def check(self, status, body):
        """Return None if the answer is what the example app sends, else a reason."""
        if status != 200:
            return f"status {status}"
        expected = {
            "plain": lambda: body == b"hello world",
            "template": lambda: b"50 rows" in body,
            "db": lambda: body.count(b'"id"') == 10,
            "upload": lambda: body == str(UPLOAD_SIZE).encode(),
            "download": lambda: len(body) == DOWNLOAD_SIZE,
        }[self.name]
        return None if expected() else f"unexpected body ({len(body)} bytes)"


ENDPOINTS = {
    e.name: e
    for e in [
        Endpoint("plain", "GET", "/bench/plain"),
        Endpoint("template", "GET", "/bench/template"),
        Endpoint("db", "GET", "/bench/db"),
        Endpoint("upload", "POST", "/bench/upload"),
        Endpoint("download", "GET", "/bench/download"),
    ]
}


# --- servers -------------------------------------------------------------------------


def _uwsgi_binary():
    # The pyuwsgi wheel installs its launcher next to the interpreter; prefer it over a
    # system uwsgi, which would need a matching python plugin.
    local = Path(sys.executable).parent / "uwsgi"
    if local.exists():
        return str(local)
    return shutil.which("uwsgi")


def _uwsgi_argv(socket_option):
    def argv(port, processes=1):
        return [
            *(_uwsgi_binary(), socket_option, f"{HOST}:{port}", "--chdir", str(PROJECT)),
            *("--master", "--processes", str(processes)),
            *"--module mysite.wsgi:application --disable-logging".split(),
            # Without it SIGTERM makes the master reload instead of exit.
            "--die-on-term",
            # Without it uWSGI keeps running and answers 500 if the app fails to import.
            "--need-app",
        ]

    return argv


@dataclass(frozen=True)
class Server:
    name: str
    argv: object  # (port, processes=1) -> list[str]
    available: object  # () -> str | None (reason it is missing)
    note: str = ""


def _have_module(mod, hint):
    return lambda: None if importlib.util.find_spec(mod) else f"{hint} not installed"


SERVERS = {
    s.name: s
    for s in [
        Server(
            SUBJECT,
            lambda port, processes=1: [
                *(sys.executable, "manage.py", "runuwsgi", "--http-socket", f"{HOST}:{port}"),
                *("--processes", str(processes)),
                *"--threads 1 --disable-logging --skip-checks".split(),
            ],
            lambda: None,
        ),
        # Not in the default set: the same with the stats server and Prometheus metrics
        # on (the scoreboard counters are always kept; this adds the master's serving).
        Server(
            f"{SUBJECT}-stats",
            lambda port, processes=1: [
                *(sys.executable, "manage.py", "runuwsgi", "--http-socket", f"{HOST}:{port}"),
                *("--processes", str(processes)),
                *"--threads 1 --disable-logging --skip-checks".split(),
                *("--stats", f"{HOST}:{free_port()}", "--metrics", f"{HOST}:{free_port()}"),
            ],
            lambda: None,
            "--stats and --metrics on",
        ),
        Server(
            "uwsgi",
            _uwsgi_argv("--http11-socket"),
            lambda: None if _uwsgi_binary() else "uwsgi (pyuwsgi) not installed",
            "--http11-socket: serves one keep-alive connection until the client closes it",
        ),
        # Not in the default set: uWSGI's plain http-socket closes after every response.
        Server(
            "uwsgi-http",
            _uwsgi_argv("--http-socket"),
            lambda: None if _uwsgi_binary() else "uwsgi (pyuwsgi) not installed",
            "--http-socket: no keep-alive",
        ),
        Server(
            "gunicorn",
            lambda port, processes=1: [
                *(sys.executable, "-m", "gunicorn", "-b", f"{HOST}:{port}", "-w", str(processes)),
                *"-k sync --keep-alive 5 mysite.wsgi:application".split(),
            ],
            _have_module("gunicorn", "gunicorn"),
            "sync worker: closes the connection after every response",
        ),
    ]
}


class StartError(Exception):
    pass


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def http_request(port, endpoint, timeout):
    """One request on a fresh connection, closed right after.

    Closing matters: uWSGI's http11 worker would otherwise sit on our idle keep-alive
    connection and starve wrk.
    """
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        body = b"x" * UPLOAD_SIZE if endpoint.method == "POST" else None
        headers = {"Content-Type": "application/octet-stream"} if body else {}
        conn.request(endpoint.method, endpoint.path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


class RunningServer:
    """A server started in its own session so that its whole tree can be stopped."""

    def __init__(self, server, pin, logdir, processes=1):
        self.server = server
        self.port = free_port()
        self.log_path = Path(logdir) / f"{server.name}-{self.port}.log"
        argv = server.argv(self.port, processes)
        if pin:
            argv = ["taskset", "-c", SERVER_CPU, *argv]
        env = dict(os.environ, DJANGO_SETTINGS_MODULE=SETTINGS, DJANGO_DEBUG="0")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                argv,
                cwd=PROJECT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.ps = psutil.Process(self.proc.pid)

    def log_tail(self, lines=15):
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.rstrip().splitlines()[-lines:])

    def wait_ready(self, probe):
        deadline = time.monotonic() + START_DEADLINE
        last = "no answer"
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                raise StartError(f"exited with code {code}")
            try:
                status, _ = http_request(self.port, probe, timeout=2)
                if status == 200:
                    return
                last = f"HTTP {status}"
            except OSError as exc:
                last = type(exc).__name__
            time.sleep(0.1)
        raise StartError(f"not ready after {START_DEADLINE:.0f} s ({last})")

    def tree(self):
        try:
            return [self.ps, *self.ps.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def cpu_seconds(self):
        total = 0.0
        for p in self.tree():
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
        return total

    def memory(self):
        """RSS of the worker (largest leaf of the tree) and of the whole tree, in bytes.

        Leaves are the processes that serve requests: a master (gunicorn's arbiter,
        uWSGI's master) always has children, and uWSGI's master is larger than its
        worker because it keeps the app it loaded before forking.
        """
        tree = self.tree()
        rss = {}
        for p in tree:
            with contextlib.suppress(psutil.Error):
                rss[p.pid] = p.memory_info().rss
        parents = set()
        for p in tree:
            with contextlib.suppress(psutil.Error):
                parents.add(p.ppid())
        leaves = [v for pid, v in rss.items() if pid not in parents]
        return (max(leaves) if leaves else 0), sum(rss.values())

    def stop(self):
        # Snapshot the tree first: a master can exit before its workers, which would then
        # be reparented to init, out of reach of proc.wait() and still holding core 0.
        procs = self.tree()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        _, alive = psutil.wait_procs(procs, timeout=STOP_DEADLINE)
        for p in alive:
            with contextlib.suppress(psutil.Error):
                p.kill()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        psutil.wait_procs(alive, timeout=STOP_DEADLINE)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=STOP_DEADLINE)


# --- wrk -----------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else None


def parse_wrk(out):
    res = {"rps": 0.0, "requests": 0, "p99_ms": None, "mean_ms": None}
    if m := re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M):
        res["rps"] = float(m.group(1))
    if m := re.search(r"^\s+(\d+) requests in", out, re.M):
        res["requests"] = int(m.group(1))
    if m := re.search(r"^\s+99%\s+(\S+)", out, re.M):
        res["p99_ms"] = _ms(m.group(1))
    if m := re.search(r"^\s+Latency\s+(\S+)", out, re.M):
        res["mean_ms"] = _ms(m.group(1))
    sock = {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        sock = dict(zip(sock, map(int, m.groups()), strict=True))
    non2xx = 0
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        non2xx = int(m.group(1))
    res["socket_errors"] = sock
    res["non2xx"] = non2xx
    res["errors"] = non2xx + sum(sock.values())
    return res


def run_wrk(port, endpoint, seconds, args, lua, pin):
    cmd = ["wrk", "-t1", f"-c{args.connections}", f"-d{seconds}s", "--latency"]
    cmd += ["--timeout", f"{args.timeout}s"]
    if endpoint.method == "POST":
        cmd += ["-s", lua]
    cmd.append(f"http://{HOST}:{port}{endpoint.path}")
    if pin:
        cmd = ["taskset", "-c", LOADGEN_CPU, *cmd]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=seconds + args.timeout + 30, check=False
    )
    return proc.stdout + proc.stderr


# --- ceiling -------------------------------------------------------------------------


def run_ceiling(endpoint, seconds, pin):
    cmd = [sys.executable, str(BENCH_DIR / "ceiling.py"), endpoint.name, str(seconds)]
    if pin:
        cmd = ["taskset", "-c", SERVER_CPU, *cmd]
    env = dict(os.environ, DJANGO_SETTINGS_MODULE=SETTINGS, DJANGO_DEBUG="0")
    try:
        proc = subprocess.run(
            cmd,
            cwd=PROJECT,
            env=env,
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=False,
        )
        out = json.loads(proc.stdout.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, json.JSONDecodeError, IndexError) as exc:
        return {"error": f"{type(exc).__name__}"}
    return out


# --- orchestration -------------------------------------------------------------------


def bench_one(server, endpoint, args, lua, pin, logdir):
    """Start a server, check, warm up, measure, stop.  Returns a result dict."""
    result = {"server": server.name, "endpoint": endpoint.name}
    running = RunningServer(server, pin, logdir)
    try:
        try:
            running.wait_ready(ENDPOINTS["plain"])
        except StartError as exc:
            tail = running.log_tail()
            raise StartError(f"{exc}\n{tail}" if tail else str(exc)) from None
        try:
            status, body = http_request(running.port, endpoint, timeout=10)
            problem = endpoint.check(status, body)
        except OSError as exc:
            problem = f"{type(exc).__name__}: {exc}"
        result["check"] = problem or "ok"
        run_wrk(running.port, endpoint, WARMUP_SECONDS, args, lua, pin)
        cpu0, t0 = running.cpu_seconds(), time.monotonic()
        out = run_wrk(running.port, endpoint, args.duration, args, lua, pin)
        cpu1, t1 = running.cpu_seconds(), time.monotonic()
        result.update(parse_wrk(out))
        result["cpu_pct"] = 100.0 * (cpu1 - cpu0) / (t1 - t0)
        worker_rss, tree_rss = running.memory()
        result["worker_rss_mb"] = worker_rss / 2**20
        result["tree_rss_mb"] = tree_rss / 2**20
        # Little's law: how many connections were really being served at a time.
        if result["mean_ms"]:
            result["concurrency"] = result["rps"] * result["mean_ms"] / 1000.0
        if result["requests"] == 0:
            result["wrk_output"] = out
    finally:
        running.stop()
    return result


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarize(runs, ceilings, servers, endpoints):
    summary = {}
    for ep in endpoints:
        ceil = median([c.get("rps") for c in ceilings.get(ep, [])])
        rows = {"ceiling_rps": ceil, "servers": {}}
        for name in servers:
            rs = [r for r in runs if r["server"] == name and r["endpoint"] == ep]
            if not rs:
                continue
            rps = median([r["rps"] for r in rs])
            rows["servers"][name] = {
                "rounds": len(rs),
                "rps": rps,
                "p99_ms": median([r["p99_ms"] for r in rs]),
                "errors": sum(r["errors"] for r in rs),
                "worker_rss_mb": median([r["worker_rss_mb"] for r in rs]),
                "concurrency": median([r.get("concurrency") for r in rs]),
                "cpu_pct": median([r["cpu_pct"] for r in rs]),
                "ceiling_fraction": rps / ceil if ceil and rps is not None else None,
                "checks": sorted({r["check"] for r in rs}),
            }
        summary[ep] = rows
    return summary


def _fmt(v, spec, width):
    return f"{'-' if v is None else format(v, spec):>{width}}"


def print_tables(summary, servers, failed, connections):
    for ep, rows in summary.items():
        e = ENDPOINTS[ep]
        ceil = rows["ceiling_rps"]
        ceil_txt = f"{ceil:.0f} req/s" if ceil else "n/a"
        print(f"\n== {ep}: {e.method} {e.path}   (app in-process ceiling: {ceil_txt})")
        print(
            f"  {'server':<12}{'req/s':>9}{'p99 ms':>9}{'errors':>8}{'RSS MB':>8}"
            f"{'conc':>7}{'cpu%':>6}{'ceil%':>7}"
        )
        for name in servers:
            s = rows["servers"].get(name)
            if s is None:
                why = failed.get(name, "not run")
                print(f"  {name:<12}{why.splitlines()[0]}")
                continue
            frac = s["ceiling_fraction"]
            print(
                f"  {name:<12}{_fmt(s['rps'], '.0f', 9)}{_fmt(s['p99_ms'], '.2f', 9)}"
                f"{s['errors']:>8}{_fmt(s['worker_rss_mb'], '.1f', 8)}"
                f"{_fmt(s['concurrency'], '.1f', 7)}{_fmt(s['cpu_pct'], '.0f', 6)}"
                + (f"{frac * 100:>6.0f}%" if frac else f"{'-':>7}")
            )
            bad = [c for c in s["checks"] if c != "ok"]
            if bad:
                print(f"  {'':<12}! response check failed: {'; '.join(bad)}")
            if s["concurrency"] is not None and s["concurrency"] < 0.5 * connections:
                print(
                    f"  {'':<12}! only ~{s['concurrency']:.1f} of {connections} "
                    "connections served at a time"
                )
        subject = rows["servers"].get(SUBJECT)
        ratios = []
        for other in servers:
            o = rows["servers"].get(other)
            if other == SUBJECT or not subject or not o or not o["rps"]:
                continue
            r = f"  {SUBJECT}/{other}: req/s x{subject['rps'] / o['rps']:.2f}"
            if subject["p99_ms"] and o["p99_ms"]:
                r += f", p99 x{subject['p99_ms'] / o['p99_ms']:.2f}"
            ratios.append(r)
        print("\n".join(ratios) if ratios else f"  ({SUBJECT} ratios: n/a)")


def versions():
    v = {"python": platform.python_version()}
    for dist in ("Django", "gunicorn", "pyuwsgi", "psutil"):
        try:
            v[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            v[dist] = None
    init = (ROOT / "django_uwsgi_server" / "__init__.py").read_text()
    if m := re.search(r'__version__\s*=\s*"([^"]+)"', init):
        v["django_uwsgi_server"] = m.group(1)
    try:
        # wrk prints its version on -v and exits 1.
        out = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10)
        v["wrk"] = (out.stdout + out.stderr).split("\n", 1)[0].strip()
    except (OSError, subprocess.TimeoutExpired):
        v["wrk"] = None
    return v


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=int, default=10, help="seconds per wrk run (10)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (3)")
    p.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    p.add_argument("--timeout", type=int, default=2, help="wrk request timeout, s (2)")
    p.add_argument(
        "--servers", default="runuwsgi,uwsgi,gunicorn", help=f"comma list from: {','.join(SERVERS)}"
    )
    p.add_argument(
        "--endpoints", default=",".join(ENDPOINTS), help=f"comma list from: {','.join(ENDPOINTS)}"
    )
    p.add_argument("--quick", action="store_true", help="smoke test: 3 s, 1 round")
    p.add_argument("--no-ceiling", action="store_true", help="skip the in-process ceiling")
    args = p.parse_args(argv)
    if args.quick:
        args.duration, args.rounds = 3, 1
    args.servers = [s for s in args.servers.split(",") if s]
    args.endpoints = [e for e in args.endpoints.split(",") if e]
    for s in args.servers:
        if s not in SERVERS:
            p.error(f"unknown server {s!r}")
    for e in args.endpoints:
        if e not in ENDPOINTS:
            p.error(f"unknown endpoint {e!r}")
    if not (1 <= args.duration <= 600 and 1 <= args.rounds <= 20):
        p.error("--duration must be 1..600 and --rounds 1..20")
    if not (1 <= args.connections <= 1000 and 1 <= args.timeout <= 60):
        p.error("--connections must be 1..1000 and --timeout 1..60")
    return args


def main(argv=None):
    args = parse_args(argv)
    if not shutil.which("wrk"):
        print("error: wrk not found (apt-get install wrk)", file=sys.stderr)
        return 2
    pin = bool(shutil.which("taskset")) and (os.cpu_count() or 1) >= 2
    if not pin:
        print("warning: not pinning (needs taskset and 2 cores); numbers will be noisier")

    skipped, failed = {}, {}
    servers = []
    for name in args.servers:
        reason = SERVERS[name].available()
        if reason:
            skipped[name] = reason
            print(f"skipped: {reason}")
        else:
            servers.append(name)

    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=PROJECT,
        env=dict(os.environ, DJANGO_SETTINGS_MODULE=SETTINGS),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if migrate.returncode:
        print(f"error: migrate failed:\n{migrate.stderr}", file=sys.stderr)
        return 2

    busy = psutil.cpu_percent(interval=0.5, percpu=True)
    if pin and max(busy[:2]) > 20:
        print(f"warning: cores already busy before the run ({busy[:2]} %): expect noise")
    info = {
        "started": datetime.now().isoformat(timespec="seconds"),
        "config": {k: v for k, v in vars(args).items()},
        "pinned": pin,
        "cpu_busy_before_pct": busy,
        "versions": versions(),
        "notes": {n: SERVERS[n].note for n in servers if SERVERS[n].note},
    }
    v = info["versions"]
    where = f"server on cpu {SERVER_CPU}, wrk on cpu {LOADGEN_CPU}" if pin else "unpinned"
    print(
        f"{args.rounds} round(s) x {len(args.endpoints)} endpoint(s) x {len(servers)} "
        f"server(s), {args.duration} s each, {args.connections} connections, {where}"
    )
    print("versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val))

    runs, ceilings = [], {}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        lua = Path(tmp) / "upload.lua"
        lua.write_text(
            'wrk.method = "POST"\n'
            f'wrk.body = string.rep("x", {UPLOAD_SIZE})\n'
            'wrk.headers["Content-Type"] = "application/octet-stream"\n'
        )
        try:
            for rnd in range(args.rounds):
                # Rotate the order so no server always runs first (cold page cache) or
                # right after a heavy one.
                k = rnd % len(servers) if servers else 0
                order = servers[k:] + servers[:k]
                for ep_name in args.endpoints:
                    ep = ENDPOINTS[ep_name]
                    if not args.no_ceiling:
                        c = run_ceiling(ep, min(args.duration, 5), pin)
                        ceilings.setdefault(ep_name, []).append(c)
                        rps = f"{c['rps']:.0f} req/s" if "rps" in c else c.get("error")
                        print(f"[round {rnd + 1}] {ep_name:<9} {'ceiling':<11} {rps}")
                    for name in order:
                        if name in failed:
                            continue
                        try:
                            r = bench_one(SERVERS[name], ep, args, str(lua), pin, tmp)
                        except StartError as exc:
                            # A server that cannot start will not start for the next
                            # endpoint either; don't spend 30 s per attempt finding out.
                            failed[name] = f"FAILED to start: {exc}"
                            print(f"[round {rnd + 1}] {ep_name:<9} {name:<11} {failed[name]}")
                            continue
                        r["round"] = rnd + 1
                        runs.append(r)
                        print(
                            f"[round {rnd + 1}] {ep_name:<9} {name:<11} {r['rps']:.0f} req/s"
                            f", p99 {r['p99_ms']} ms, errors {r['errors']}"
                            + ("" if r["check"] == "ok" else f", CHECK: {r['check']}")
                        )
        except KeyboardInterrupt:
            print("\ninterrupted: summarizing what was measured")

    summary = summarize(runs, ceilings, servers, args.endpoints)
    print_tables(summary, servers, failed, args.connections)
    for reason in skipped.values():
        print(f"skipped: {reason}")

    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"{datetime.now():%Y%m%d-%H%M%S}.json"
    info.update(skipped=skipped, failed=failed, ceilings=ceilings, runs=runs, summary=summary)
    out.write_text(json.dumps(info, indent=2) + "\n")
    print(f"\nresults: {out.relative_to(ROOT)}")
    return 1 if SUBJECT in failed else 0


if __name__ == "__main__":
    sys.exit(main())
