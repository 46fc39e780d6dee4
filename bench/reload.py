#!/usr/bin/env python
"""What a graceful reload (SIGHUP to the master) costs clients: runuwsgi vs uWSGI vs gunicorn.

    python bench/reload.py [--reloads 10] [--clients 8] [--workers 2] [--interval 2]
                           [--servers runuwsgi,uwsgi,gunicorn] [--endpoints plain,template]

See bench/README.rst ("Reload benchmark") for the method.  Needs requests and psutil;
servers that are not installed are skipped.  Server command lines and process handling
come from bench/run.py.
"""

import argparse
import collections
import contextlib
import dataclasses
import json
import os
import re
import signal
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import psutil
import requests
from run import (
    ENDPOINTS,
    HOST,
    RESULTS_DIR,
    ROOT,
    SERVERS,
    SUBJECT,
    RunningServer,
    StartError,
    _uwsgi_binary,
    http_request,
    versions,
)

SETTLE_SECONDS = 3.0  # clients keep going this long after the last SIGHUP
MAX_REQUESTS_PER_CLIENT = 1_000_000
SAMPLE_SECONDS = 0.1  # how often the worker pids are sampled
BUCKET_SECONDS = 0.25  # timeline resolution in the JSON
ERROR_KINDS_SHOWN = 3

RELOAD_NOTES = {
    SUBJECT: "SIGHUP: graceful reload; the master re-execs (no lazy-apps), new workers start "
    "while the old ones serve, an old worker stops once its replacement accepts",
    "uwsgi": "SIGHUP: uWSGI's default graceful reload (no --lazy-apps): workers finish their "
    "request and exit, the master re-execs and forks new ones; --http11-socket",
    "uwsgi-http": "as uwsgi, with --http-socket (no keep-alive)",
    "gunicorn": "SIGHUP: new workers are started, then the old ones stopped gracefully; "
    "sync worker closes the connection after every response",
}


def reloadable(server):
    """The server as run.py starts it, plus what its reload needs to survive.

    The pyuwsgi wheel's ``uwsgi`` is a Python script; uWSGI detects its binary path as the
    interpreter with symlinks resolved, i.e. outside the venv, so the re-exec on SIGHUP
    fails with "No module named 'pyuwsgi'" (unbit/uwsgi#2478, pyuwsgi-wheels#19/#23).  The
    documented workaround is ``--binary-path <venv>/bin/python``.
    """
    if not server.name.startswith("uwsgi"):
        return server
    if _uwsgi_binary() != str(Path(sys.executable).parent / "uwsgi"):
        return server  # a real uwsgi binary re-execs itself fine

    def argv(port, processes=1):
        return [*server.argv(port, processes), "--binary-path", sys.executable]

    return dataclasses.replace(server, argv=argv)


# --- clients -------------------------------------------------------------------------


def error_kind(exc):
    """A short, run-independent description: the outer type and the innermost cause."""
    root = exc
    for _ in range(10):
        inner = getattr(root, "reason", None)
        if not isinstance(inner, BaseException):
            inner = next((a for a in reversed(root.args) if isinstance(a, BaseException)), None)
        if inner is None or inner is root:
            break
        root = inner
    text = re.sub(r"0x[0-9a-f]+", "0x..", str(root))
    text = re.sub(r"port=\d+", "port=..", text)[:120]
    name = type(exc).__name__
    return f"{name}: {text}" if root is exc else f"{name}/{type(root).__name__}: {text}"


class Client(threading.Thread):
    """Sends requests back to back on one requests.Session (keep-alive if allowed)."""

    def __init__(self, url, endpoint, t0, stop, deadline, timeout):
        super().__init__(daemon=True)
        self.url, self.endpoint, self.t0 = url, endpoint, t0
        self.stop, self.deadline, self.timeout = stop, deadline, timeout
        self.records = []  # (start s since t0, end s since t0, error or None)

    def run(self):
        with requests.Session() as session:
            for _ in range(MAX_REQUESTS_PER_CLIENT):
                if self.stop.is_set() or time.monotonic() > self.deadline:
                    break
                start = time.monotonic()
                try:
                    resp = session.get(self.url, timeout=self.timeout)
                    err = self.endpoint.check(resp.status_code, resp.content)
                except requests.RequestException as exc:
                    err = error_kind(exc)
                end = time.monotonic()
                self.records.append((start - self.t0, end - self.t0, err))


class PidSampler(threading.Thread):
    """Samples the master's children: distinct worker pids, fewest workers alive at once."""

    def __init__(self, running, stop):
        super().__init__(daemon=True)
        self.running, self.stop = running, stop
        self.pids, self.min_alive = set(), None

    def run(self):
        master = self.running.ps
        # Bounded by the stop event; the count is a backstop (1 h at SAMPLE_SECONDS).
        for _ in range(int(3600 / SAMPLE_SECONDS)):
            with contextlib.suppress(psutil.Error):
                kids = {p.pid for p in master.children(recursive=True)}
                self.pids |= kids
                if self.min_alive is None or len(kids) < self.min_alive:
                    self.min_alive = len(kids)
            if self.stop.wait(SAMPLE_SECONDS):
                break


# --- one run -------------------------------------------------------------------------


def percentile(sorted_values, q):
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, int(round(q / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def summarize(records, reload_times, workers, reloads):
    """Numbers for one server and endpoint; times in ms."""
    lat = sorted((end - start) * 1000 for start, end, _ in records)
    errors = collections.Counter(err for _, _, err in records if err)
    ok_ends = sorted(end for _, end, err in records if not err)
    elapsed = max((end for _, end, _ in records), default=0.0)
    first = reload_times[0] if reload_times else elapsed
    base = sorted((end - start) * 1000 for start, end, _ in records if end < first)
    # Longest time during which no client got a good answer (from t0 to the last answer).
    points = [0.0, *ok_ends]
    gap = max((b - a for a, b in zip(points, points[1:], strict=False)), default=None)
    timeline = collections.Counter(int(end / BUCKET_SECONDS) for end in ok_ends)
    nbuckets = int(elapsed / BUCKET_SECONDS) + 1
    return {
        "requests": len(records),
        "failed": sum(errors.values()),
        "error_kinds": dict(errors.most_common()),
        "rps": len(ok_ends) / elapsed if elapsed else 0.0,
        "max_ms": lat[-1] if lat else None,
        "p99_ms": percentile(lat, 99),
        "p999_ms": percentile(lat, 99.9),
        "median_ms": percentile(lat, 50),
        "base_p99_ms": percentile(base, 99),
        "base_requests": len(base),
        "max_gap_ms": gap * 1000 if gap is not None else None,
        "elapsed_s": elapsed,
        "expected_pids": workers * (reloads + 1),
        "ok_per_bucket": [timeline.get(i, 0) for i in range(nbuckets)],
    }


def run_one(server, endpoint, args, logdir):
    result = {
        "server": server.name,
        "endpoint": endpoint.name,
        "note": RELOAD_NOTES.get(server.name, ""),
    }
    running = RunningServer(server, False, logdir, processes=args.workers)
    stop = threading.Event()
    clients, sampler = [], None
    try:
        try:
            running.wait_ready(ENDPOINTS["plain"])
        except StartError as exc:
            tail = running.log_tail()
            raise StartError(f"{exc}\n{tail}" if tail else str(exc)) from None
        status, body = http_request(running.port, endpoint, timeout=10)
        result["check"] = endpoint.check(status, body) or "ok"

        url = f"http://{HOST}:{running.port}{endpoint.path}"
        t0 = time.monotonic()
        run_seconds = args.interval * args.reloads + SETTLE_SECONDS
        deadline = t0 + run_seconds + 60
        clients = [
            Client(url, endpoint, t0, stop, deadline, args.timeout) for _ in range(args.clients)
        ]
        sampler = PidSampler(running, stop)
        for c in [sampler, *clients]:
            c.start()

        reload_times = []
        for i in range(args.reloads):
            time.sleep(max(0.0, t0 + args.interval * (i + 1) - time.monotonic()))
            if running.proc.poll() is not None:
                result["exited"] = f"master exited with {running.proc.returncode}"
                break
            os.kill(running.proc.pid, signal.SIGHUP)
            reload_times.append(time.monotonic() - t0)
        time.sleep(max(0.0, t0 + run_seconds - time.monotonic()))
        stop.set()
        for c in clients:
            c.join(timeout=max(0.0, deadline - time.monotonic()) + args.timeout)
        result["stuck_clients"] = sum(c.is_alive() for c in clients)

        if running.proc.poll() is None:
            try:
                status, body = http_request(running.port, endpoint, timeout=10)
                result["after"] = endpoint.check(status, body) or "ok"
            except OSError as exc:
                result["after"] = f"{type(exc).__name__}: {exc}"
        else:
            result["after"] = f"master exited with {running.proc.returncode}"
    finally:
        stop.set()
        running.stop()
        for c in clients:
            c.join(timeout=args.timeout + 5)
        if sampler is not None:
            sampler.join(timeout=5)
        result["log_tail"] = running.log_tail(20).splitlines()

    records = [r for c in clients for r in c.records]
    result["reload_times_s"] = [round(t, 3) for t in reload_times]
    result.update(summarize(records, reload_times, args.workers, len(reload_times)))
    result["pids_seen"] = len(sampler.pids)
    result["min_workers_alive"] = sampler.min_alive
    return result


# --- output --------------------------------------------------------------------------


def _fmt(v, spec, width):
    return f"{'-' if v is None else format(v, spec):>{width}}"


def print_table(results, failed):
    print(
        f"\n{'server':<11}{'endpoint':<10}{'requests':>9}{'failed':>7}{'req/s':>7}"
        f"{'max ms':>8}{'p99 ms':>8}{'p99.9':>8}{'gap ms':>8}{'base p99':>9}"
        f"{'pids':>7}{'min':>4}"
    )
    for r in results:
        print(
            f"{r['server']:<11}{r['endpoint']:<10}{r['requests']:>9}{r['failed']:>7}"
            f"{_fmt(r['rps'], '.0f', 7)}{_fmt(r['max_ms'], '.0f', 8)}"
            f"{_fmt(r['p99_ms'], '.1f', 8)}{_fmt(r['p999_ms'], '.0f', 8)}"
            f"{_fmt(r['max_gap_ms'], '.0f', 8)}{_fmt(r['base_p99_ms'], '.1f', 9)}"
            f"{r['pids_seen']:>4}/{r['expected_pids']:<2}{_fmt(r['min_workers_alive'], 'd', 4)}"
        )
    for r in results:
        problems = []
        if r["check"] != "ok":
            problems.append(f"first check: {r['check']}")
        if r.get("after", "ok") != "ok":
            problems.append(f"after the run: {r['after']}")
        if r.get("exited"):
            problems.append(r["exited"])
        if r["stuck_clients"]:
            problems.append(f"{r['stuck_clients']} client(s) still blocked at the end")
        kinds = list(r["error_kinds"].items())[:ERROR_KINDS_SHOWN]
        problems += [f"{n} x {kind}" for kind, n in kinds]
        if len(r["error_kinds"]) > ERROR_KINDS_SHOWN:
            problems.append(f"... {len(r['error_kinds']) - ERROR_KINDS_SHOWN} more kinds")
        for p in problems:
            print(f"  {r['server']}/{r['endpoint']}: {p}")
    for name, why in failed.items():
        print(f"{name:<11}{why.splitlines()[0]}")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reloads", type=int, default=10, help="SIGHUPs per run (10)")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between SIGHUPs (2)")
    p.add_argument("--clients", type=int, default=8, help="client threads (8)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (2)")
    p.add_argument("--timeout", type=float, default=10.0, help="request timeout, s (10)")
    p.add_argument(
        "--servers", default="runuwsgi,uwsgi,gunicorn", help=f"comma list from: {','.join(SERVERS)}"
    )
    p.add_argument("--endpoints", default="plain,template", help="comma list (plain,template)")
    args = p.parse_args(argv)
    args.servers = [s for s in args.servers.split(",") if s]
    args.endpoints = [e for e in args.endpoints.split(",") if e]
    for s in args.servers:
        if s not in SERVERS:
            p.error(f"unknown server {s!r}")
    for e in args.endpoints:
        if e not in ENDPOINTS or ENDPOINTS[e].method != "GET":
            p.error(f"unknown or non-GET endpoint {e!r}")
    if not (1 <= args.reloads <= 100 and 0.5 <= args.interval <= 60):
        p.error("--reloads must be 1..100 and --interval 0.5..60")
    if not (1 <= args.clients <= 64 and 1 <= args.workers <= 16 and 1 <= args.timeout <= 120):
        p.error("--clients must be 1..64, --workers 1..16 and --timeout 1..120")
    return args


def main(argv=None):
    args = parse_args(argv)
    skipped, failed, servers = {}, {}, []
    for name in args.servers:
        reason = SERVERS[name].available()
        if reason:
            skipped[name] = reason
            print(f"skipped: {reason}")
        else:
            servers.append(name)
    info = {
        "started": datetime.now().isoformat(timespec="seconds"),
        "config": vars(args),
        "cpu_busy_before_pct": psutil.cpu_percent(interval=0.5, percpu=True),
        "versions": versions(),
    }
    print(
        f"{len(servers)} server(s) x {len(args.endpoints)} endpoint(s): {args.workers} workers, "
        f"{args.clients} clients, {args.reloads} SIGHUPs every {args.interval:g} s "
        f"+ {SETTLE_SECONDS:g} s"
    )
    print("versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items() if v))

    results = []
    with tempfile.TemporaryDirectory(prefix="bench-reload-") as tmp:
        try:
            for ep_name in args.endpoints:
                for name in servers:
                    if name in failed:
                        continue
                    try:
                        r = run_one(reloadable(SERVERS[name]), ENDPOINTS[ep_name], args, tmp)
                    except (StartError, OSError) as exc:
                        failed[name] = f"FAILED: {exc}"
                        print(f"{ep_name:<9} {name:<11} {failed[name]}")
                        continue
                    results.append(r)
                    print(
                        f"{ep_name:<9} {name:<11} {r['requests']} requests, {r['failed']} failed, "
                        f"max {r['max_ms']:.0f} ms, {r['pids_seen']} worker pids"
                    )
        except KeyboardInterrupt:
            print("\ninterrupted: summarizing what was measured")

    print_table(results, failed)
    for reason in skipped.values():
        print(f"skipped: {reason}")
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"reload-{datetime.now():%Y%m%d-%H%M%S}.json"
    info.update(skipped=skipped, failed=failed, runs=results)
    out.write_text(json.dumps(info, indent=2) + "\n")
    print(f"\nresults: {out.relative_to(ROOT)}")
    return 1 if SUBJECT in failed else 0


if __name__ == "__main__":
    sys.exit(main())
