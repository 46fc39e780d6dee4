"""The scoreboard's counters (exact across threads and processes), the stats client, the
stats address rules and the kernel's listen queues."""

import os
import socket
import threading

import pytest

from django_uwsgi_server.server.stats import BUCKETS, Scoreboard
from django_uwsgi_server.server.stats_client import StatsUnavailable, fetch_stats, parse_address
from django_uwsgi_server.server.stats_doc import listen_queue, procs_from_scoreboard
from django_uwsgi_server.server.stats_server import StatsConfigError, stats_address


def test_counters_are_exact_across_threads():
    board = Scoreboard(4)
    board.spawned(1, 1, os.getpid())
    durations = [0.001, 0.02, 0.3, 20.0]

    def run(core):
        for i in range(5000):
            board.finished(1, 10, i % 100 == 0, durations[i % 4], core)
    threads = [threading.Thread(target=run, args=(core,)) for core in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    info = board.read(1)
    assert info["requests"] == info["delta_requests"] == 40000
    assert info["exceptions"] == 400 and info["tx"] == 400000
    assert [n for n, _ in board.cores(1, 8)] == [5000] * 8
    hist = board.histogram(1)
    assert sum(hist) == 40000 and hist[-1] == 10000  # 20 s is above the last bound
    assert hist[BUCKETS.index(0.025)] == 10000
    running, avg = board.timing(1)
    assert running == 10000 * (1000 + 20000 + 300000 + 20000000)
    assert 0 < avg < 20_000_000


def test_counters_are_exact_across_processes():
    board = Scoreboard(8)
    pids = []
    for slot in (1, 2, 3):
        board.spawned(slot, slot, 0)
        pid = os.fork()
        if pid == 0:
            try:
                for _ in range(20000):
                    board.finished(slot, 1, False, 0.001)
            finally:
                os._exit(0)
        pids.append(pid)
    for pid in pids:
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert board.total_requests() == 60000
    assert [board.read(slot)["tx"] for slot in (1, 2, 3)] == [20000] * 3


def test_respawn_keeps_cumulative_counters_and_clears_cores():
    board = Scoreboard(4)
    board.spawned(1, 1, 100)
    board.core_busy(1, 0, 123.0)
    board.finished(1, 5, False, 0.01)
    board.spawned(1, 1, 101)
    info = board.read(1)
    assert info["requests"] == 1 and info["delta_requests"] == 0
    assert info["respawn_count"] == 2
    assert board.cores(1, 1) == [(1, 0.0)]


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:9191", (socket.AF_INET, ("127.0.0.1", 9191), False)),
    (":9191", (socket.AF_INET, ("127.0.0.1", 9191), False)),
    ("9191", (socket.AF_INET, ("127.0.0.1", 9191), False)),
    ("[::1]:9191", (socket.AF_INET6, ("::1", 9191), False)),
    ("/run/stats.sock", (socket.AF_UNIX, "/run/stats.sock", False)),
    ("@stats", (socket.AF_UNIX, "\0stats", False)),
    ("http://127.0.0.1:9191/", (socket.AF_INET, ("127.0.0.1", 9191), True)),
])
def test_client_addresses(text, expected):
    assert parse_address(text) == expected


def serve_once(payload: bytes, read_first: bool = False):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def run():
        conn, _ = listener.accept()
        with conn:
            if read_first:
                conn.recv(65536)
            conn.sendall(payload)
        listener.close()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return f"127.0.0.1:{listener.getsockname()[1]}", thread


def test_client_reads_raw_and_http():
    address, thread = serve_once(b'{"pid": 1}')
    assert fetch_stats(address) == {"pid": 1}
    thread.join(5)
    address, thread = serve_once(b'HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n'
                                 b'{"pid": 2}', read_first=True)
    assert fetch_stats(address, http=True) == {"pid": 2}
    thread.join(5)


@pytest.mark.parametrize(("payload", "message"), [
    (b"", "closed the connection without sending stats"),
    (b"<html>", "did not send a JSON stats document"),
    (b"[1, 2]", "not a stats document"),
    (b"HTTP/1.0 404 Not Found\r\n\r\n", "answered 'HTTP/1.0 404 Not Found'"),
])
def test_client_errors(payload, message):
    address, thread = serve_once(payload)
    with pytest.raises(StatsUnavailable, match=message):
        fetch_stats(address)
    thread.join(5)


@pytest.mark.parametrize("text", ["127.0.0.1:1", "localhost:1", "[::1]:1", ":1", "1",
                                  "/tmp/s.sock", "@abstract"])
def test_loopback_and_unix_addresses_are_allowed(text):
    stats_address(text, "stats", allow_remote=False)


@pytest.mark.parametrize("text", ["0.0.0.0:1", "10.1.2.3:9191", "[::]:1", "example.com:1"])
def test_remote_addresses_need_the_option(text):
    with pytest.raises(StatsConfigError, match="set stats-allow-remote = true"):
        stats_address(text, "stats", allow_remote=False)
    stats_address(text, "stats", allow_remote=True)


def test_listen_queue_tcp_and_unix(tmp_path):
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(50)
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(str(tmp_path / "q.sock"))
    unix.listen(40)
    clients = []
    try:
        assert listen_queue(tcp) == (0, 0) and listen_queue(unix) == (0, 40)
        for _ in range(3):
            clients.append(socket.create_connection(tcp.getsockname()))
            client = socket.socket(socket.AF_UNIX)
            client.connect(str(tmp_path / "q.sock"))
            clients.append(client)
        assert listen_queue(tcp) == (3, 0)
        assert listen_queue(unix) == (3, 40)
    finally:
        for sock in [*clients, tcp, unix]:
            sock.close()


def test_procs_from_scoreboard_picks_the_newest_accepting_slot():
    board = Scoreboard(8)
    for slot, wid, pid in ((1, 1, 101), (2, 2, 102), (3, 1, 103), (4, 3, 104)):
        board.spawned(slot, wid, pid)
        board.set_field(slot, "accepting", 1)
    board.set_field(4, "accepting", 0)  # worker 3 is gone
    found = sorted((p.wid, p.pid, p.slot) for p in procs_from_scoreboard(board))
    assert found == [(1, 103, 3), (2, 102, 2)]


@pytest.mark.parametrize("allow_remote", [False, True])
def test_fd_address_is_refused_with_its_reason(allow_remote):
    # fd:// is for serving sockets only: it used to be called "not a loopback address"
    # (with an empty host), and with stats-allow-remote it reached socket() and crashed.
    with pytest.raises(StatsConfigError, match=r"^stats fd://3: .*host:port or a unix socket"):
        stats_address("fd://3", "stats", allow_remote=allow_remote)
