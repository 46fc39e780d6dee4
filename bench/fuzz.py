#!/usr/bin/env python
"""Bounded-time mutation fuzzer for the sans-I/O protocol parsers.

    python bench/fuzz.py [--seconds 60] [--target http|chunked|uwsgi|all] [--seed N]
                         [--max-inputs N] [--replay FILE] [--atheris]

Starts from corpora of valid requests (HTTP heads, chunked bodies, uwsgi packets) and feeds
mutated copies (bit flips, inserted CR/LF/NUL/SP/digits/":", truncations, duplications,
splices, line edits, and for uwsgi edits inside a var that are re-framed) to
``parse_head``, ``ChunkedDecoder`` and ``parse_packet``. Every answer is checked: ``None``,
a ``Request`` or a ``ProtocolError`` with a documented status, never more than ``limit``
bytes held or returned, and the same answer whether the bytes came at once or in pieces.
Inputs that produce a new kind of answer (error message, request shape) join the corpus.

A crash (any other exception, or a broken invariant) is minimized, saved to
``bench/results/fuzz-crash-<target>-<hash>.bin`` and printed; the exit code is then 1.
``--replay FILE`` runs one saved input again and shows its traceback. ``--atheris`` runs
the same checks under atheris (coverage-guided libFuzzer) if it is installed.
Pure Python, standard library only.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import re
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from django_uwsgi_server.server.http import ChunkedDecoder, parse_head  # noqa: E402
from django_uwsgi_server.server.request import ProtocolError, Request  # noqa: E402
from django_uwsgi_server.server.uwsgi_protocol import build_packet, parse_packet  # noqa: E402

HTTP_STATUSES = frozenset({400, 405, 408, 413, 414, 417, 431, 501, 505})
CHUNKED_STATUSES = frozenset({400, 413, 431})
UWSGI_STATUSES = frozenset({400, 431, 501})


class InvariantError(AssertionError):
    """A parser answered, but not within its contract."""


def require(condition: object, what: str) -> None:
    if not condition:
        raise InvariantError(what)


def _error(exc: ProtocolError, statuses: frozenset[int], ascii_only: bool = True) -> tuple:
    require(exc.status in statuses, f"undocumented status {exc.status}: {exc.message}")
    require(exc.message.isprintable(), "unprintable error message")
    require(exc.message.isascii() or not ascii_only, "non-ASCII error message")
    # which check refused it: the line that raised (coverage feedback on the cheap)
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return ("error", exc.status, tb.tb_lineno if tb is not None else 0)


# -- the checks ----------------------------------------------------------------------------


def _head(buf: bytes, limit: int) -> tuple:
    try:
        result = parse_head(buf, limit)
    except ProtocolError as exc:
        return _error(exc, HTTP_STATUSES)
    if result is None:
        require(len(buf) <= limit, f"None while holding {len(buf)} > limit {limit} bytes")
        return ("none",)
    req, consumed = result
    require(isinstance(req, Request), "not a Request")
    require(0 < consumed <= min(len(buf), limit), f"consumed {consumed}, limit {limit}")
    require(consumed == req.head_size, "head_size != consumed")
    require(buf[consumed - 4 : consumed] == b"\r\n\r\n", "head does not end in CRLFCRLF")
    require(all(type(k) is str and type(v) is str for k, v in req.environ.items()),
            "environ not str -> str")
    require(req.version in ("HTTP/1.0", "HTTP/1.1"), f"version {req.version!r}")
    require(not (req.chunked and req.content_length is not None), "chunked and a length")
    return ("request", consumed, tuple(sorted(req.environ.items())), req.content_length,
            req.chunked, req.keep_alive, req.expect_continue)


def _same_decision(prefix: tuple, whole: tuple) -> None:
    """A prefix may say "need more"; if it decided, the whole stream decides the same."""
    if prefix[0] == "none":
        return
    require(prefix[0] == whole[0], f"split-dependent: prefix {prefix[:2]}, whole {whole[:2]}")
    if prefix[0] == "request":
        require(prefix == whole, "split-dependent request")


def check_http(buf: bytes, limit: int, rng: random.Random) -> tuple:
    whole = _head(buf, limit)
    if buf:
        _same_decision(_head(buf[: rng.randrange(len(buf) + 1)], limit), whole)
    if whole[0] == "request":
        return ("request", whole[3] is None) + whole[4:] + (len(whole[2]) > 8,)
    return whole


def _chunked(pieces: list[bytes], limit: int | None) -> tuple:
    decoder = ChunkedDecoder(limit)
    out = bytearray()
    try:
        for piece in pieces:
            got = decoder.feed(piece)
            require(type(got) is bytes, "feed() did not return bytes")
            out += got
            require(limit is None or len(out) <= limit, f"{len(out)} bytes > limit {limit}")
            require(len(decoder._line) <= 8192, "unbounded framing buffer")
    except ProtocolError as exc:
        require(exc.status != 413 or limit is not None, "413 without a limit")
        return _error(exc, CHUNKED_STATUSES)
    return ("ok", bytes(out), decoder.done, decoder.leftover if decoder.done else b"")


def check_chunked(buf: bytes, limit: int, rng: random.Random) -> tuple:
    lim = None if limit >= 65535 else limit
    whole = _chunked([buf], lim)
    cuts = sorted(rng.sample(range(len(buf) + 1), min(len(buf) + 1, rng.randint(1, 6))))
    pieces = [buf[a:b] for a, b in zip([0] + cuts, cuts + [len(buf)], strict=True)]
    split = _chunked(pieces, lim)
    same = split[:2] == whole[:2] if whole[0] == "error" else split == whole
    require(same, f"split-dependent: whole {whole[:2]!r:.80}, pieces {split[:2]!r:.80}")
    if whole[0] == "ok":
        return ("ok", whole[2], bool(whole[3]), len(whole[1]) > 0)
    return whole


def _packet(buf: bytes, limit: int) -> tuple:
    try:
        result = parse_packet(buf, limit)
    except ProtocolError as exc:
        # uwsgi_protocol quotes client bytes with !r (printable latin-1 stays), http.py
        # with ascii(): only http.py's messages are held to ASCII.
        return _error(exc, UWSGI_STATUSES, ascii_only=False)
    datasize = int.from_bytes(buf[1:3], "little") if len(buf) >= 4 else None
    if result is None:
        require(datasize is None or len(buf) < 4 + datasize <= 4 + limit,
                "None for a complete or oversized packet")
        return ("none",)
    req, consumed = result
    require(isinstance(req, Request), "not a Request")
    require(datasize is not None and consumed == 4 + datasize <= len(buf),
            f"consumed {consumed} != 4 + datasize")
    require(datasize <= limit, f"datasize {datasize} > limit {limit}")
    require(bool(req.method), "empty method")
    require(all(type(k) is str and type(v) is str for k, v in req.environ.items()),
            "environ not str -> str")
    require(req.content_length is None or req.content_length >= 0, "negative length")
    return ("request", consumed, tuple(sorted(req.environ.items())), req.content_length,
            req.url_scheme, req.version)


def check_uwsgi(buf: bytes, limit: int, rng: random.Random) -> tuple:
    whole = _packet(buf, limit)
    if buf:
        _same_decision(_packet(buf[: rng.randrange(len(buf) + 1)], limit), whole)
    if whole[0] == "request":
        return ("request", whole[3] is None, whole[4], whole[5][:8])
    return whole


# -- corpora -------------------------------------------------------------------------------


def http_seeds() -> list[bytes]:
    host = b"Host: example.com\r\n"
    return [
        b"GET /path/to/page?x=1&y=2 HTTP/1.1\r\n" + host
        + b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101\r\n"
        b"Accept: text/html,application/xhtml+xml;q=0.9,*/*;q=0.8\r\n"
        b"Accept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\n"
        b"Connection: keep-alive\r\nCookie: csrftoken=abc; sessionid=xyz\r\n\r\n",
        b"POST /submit?a=b HTTP/1.1\r\n" + host + b"Content-Length: 3\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nExpect: 100-continue\r\n\r\nabc",
        b"PUT /up HTTP/1.1\r\n" + host + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        b"GET http://h:1/x%2Fy?q HTTP/1.1\r\nHost: h:1\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        b"\r\nPOST /%E9 HTTP/1.1\r\n" + host + b"X_Dropped: 1\r\nContent-Length: 1, 1\r\n\r\nz",
        b"DELETE /a/b;c HTTP/1.1\r\nhost: a\r\nX-Empty:\r\nX-Tabs:\t a \t b \t\r\n"
        b"X-Obs: caf\xe9\r\nConnection: close\r\n\r\n",
        b"GET /next HTTP/1.1\r\n" + host + b"\r\nGET /pipelined HTTP/1.1\r\n" + host + b"\r\n",
    ]


def chunked_seeds() -> list[bytes]:
    return [
        b"5;name=value\r\nhello\r\n1 ; a ; b=\"q\\\"uoted; \\\\ \xe9\"\t;c\r\n \r\n"
        b"00000000000000a\r\n0123456789\r\n1A;ext\r\n" + b"z" * 26 + b"\r\n"
        b"0;last=1\r\nTrailer-One: 1\r\nTrailer-Two:  x y  \r\n\r\nGET /next HTTP/1.1\r\n",
        b"0\r\n\r\n",
        b"3\r\nabc\r\n0\r\n\r\n",
        b"ffff\r\n" + b"x" * 0xFFFF + b"\r\n0\r\n\r\n",
        b"1\r\n\r\r\n2\r\n\r\n\r\n0\r\nX: y\r\n\r\n",
    ]


NGINX_VARS = [
    ("QUERY_STRING", "q=1"), ("REQUEST_METHOD", "GET"), ("CONTENT_TYPE", ""),
    ("CONTENT_LENGTH", ""), ("REQUEST_URI", "/p?q=1"), ("PATH_INFO", "/p"),
    ("DOCUMENT_ROOT", "/etc/nginx/html"), ("SERVER_PROTOCOL", "HTTP/1.1"),
    ("REQUEST_SCHEME", "http"), ("HTTPS", ""), ("REMOTE_ADDR", "127.0.0.1"),
    ("REMOTE_PORT", "40000"), ("SERVER_PORT", "8080"), ("SERVER_NAME", "localhost"),
    ("HTTP_HOST", "localhost"), ("HTTP_USER_AGENT", "test"),
]


def uwsgi_seeds() -> list[bytes]:
    return [
        build_packet(NGINX_VARS),
        build_packet([("REQUEST_METHOD", "POST"), ("PATH_INFO", "/a"), ("CONTENT_LENGTH", "2"),
                      ("HTTP_X", "1"), ("HTTP_X", "2"), ("HTTP_COOKIE", "a=1"),
                      ("HTTP_COOKIE", "b=2")], b"hi"),
        build_packet([("REQUEST_METHOD", "GET"), ("SCRIPT_NAME", "/app"),
                      ("REQUEST_URI", "http://h/app/x%20y?q#f"), ("UWSGI_SCHEME", "https"),
                      ("HTTP_CONTENT_TYPE", "text/plain"), ("HTTP_CONTENT_LENGTH", "0")],
                     modifier1=30),
        build_packet([("REQUEST_METHOD", "PUT"), ("HTTP_HOST", "a"), ("HTTP_HOST", "b:8080"),
                      ("CONTENT_LENGTH", "000"), ("HTTPS", "on")]),
    ]


# -- mutations -----------------------------------------------------------------------------

INTERESTING = [b"\r", b"\n", b"\r\n", b"\r\n\r\n", b"\x00", b" ", b"\t", b":", b";", b",",
               b"=", b'"', b"\\", b"%", b"_", b"#", b"?", b"/", b"*", b"@", b"[", b"]",
               b"\x7f", b"\x80", b"\xe9", b"\xff", b"\x16\x03"] + [bytes([c]) for c in b"0123456789"]
NUMBERS = [b"0", b"1", b"00", b"-1", b"+1", b"0x10", b"9" * 18, b"9" * 19, b"9" * 20,
           b"18446744073709551616", b"ffffffffffffffff", b"1" * 4400, b"1e3", b"\xb9"]
TOKENS = [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"Host: x\r\n", b"Content-Length: 7\r\n",
          b"Transfer-Encoding: chunked\r\n", b"Expect: 100-continue\r\n", b"chunked",
          b"CONNECT", b"OPTIONS", b"http://", b" HTTP/1.1\r\n"]


class Mutator:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def bytes_(self, data: bytes, corpus: list[bytes]) -> bytes:
        rng = self.rng
        buf = bytearray(data)
        for _ in range(rng.choice((1, 1, 2, 3, 5))):
            op = rng.randrange(12)
            pos = rng.randrange(len(buf) + 1)
            if op == 0 and buf:  # bit flip
                i = min(pos, len(buf) - 1)
                buf[i] ^= 1 << rng.randrange(8)
            elif op == 1 and buf:  # random byte
                buf[min(pos, len(buf) - 1)] = rng.randrange(256)
            elif op in (2, 3):  # insert an interesting byte / token
                buf[pos:pos] = rng.choice(INTERESTING if op == 2 else TOKENS)
            elif op == 4:  # truncate
                del buf[pos:]
            elif op == 5:  # delete a run
                del buf[pos : pos + rng.choice((1, 1, 2, 4, 16))]
            elif op == 6:  # duplicate a run, sometimes many times (length limits)
                run = bytes(buf[pos : pos + rng.choice((1, 1, 2, 8, 32))])
                times = rng.choice((1, 1, 2, 3)) if rng.random() < 0.9 else rng.choice((300, 5000))
                buf[pos:pos] = run * times
            elif op == 7 and corpus:  # splice with another corpus entry
                other = rng.choice(corpus)
                buf = buf[:pos] + other[rng.randrange(len(other) + 1) :]
            elif op == 8:  # replace a digit run with an interesting number
                runs = [m.span() for m in re.finditer(rb"[0-9a-fA-F]+", buf)]
                if runs:
                    a, b = rng.choice(runs)
                    buf[a:b] = rng.choice(NUMBERS)
            elif op in (9, 10):  # duplicate, drop or swap CRLF-delimited lines
                lines = bytes(buf).split(b"\r\n")
                i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
                if op == 9:
                    lines.insert(j, lines[i])
                else:
                    lines[i], lines[j] = lines[j], lines[i]
                buf = bytearray(b"\r\n".join(lines))
            else:  # a stretch of random bytes
                buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 6)))
        return bytes(buf)

    def uwsgi(self, data: bytes, corpus: list[bytes]) -> bytes:
        """Mutate one var of a packet and re-frame it, or mutate the raw bytes."""
        rng = self.rng
        pairs = _uwsgi_pairs(data)
        if not pairs or rng.random() < 0.3:
            out = bytearray(self.bytes_(data, corpus))
            if len(out) >= 4 and rng.random() < 0.5:  # keep a sane header: exercise the walk
                out[0] = rng.choice((0, 0, 30))
                out[3] = 0
                out[1:3] = min(len(out) - 4, 0xFFFF).to_bytes(2, "little")
            return bytes(out)
        for _ in range(rng.choice((1, 1, 2))):
            i = rng.randrange(len(pairs))
            key, value = pairs[i]
            op = rng.randrange(6)
            if op == 0:
                pairs[i] = (self.bytes_(key, []) or b"K", value)
            elif op in (1, 2):
                pairs[i] = (key, self.bytes_(value, []))
            elif op == 3:
                pairs.insert(rng.randrange(len(pairs) + 1), pairs[i])
            elif op == 4 and len(pairs) > 1:
                del pairs[i]
            else:
                pairs.insert(rng.randrange(len(pairs) + 1), (rng.choice(
                    [b"CONTENT_LENGTH", b"HTTP_HOST", b"HTTPS", b"UWSGI_SCHEME", b"PATH_INFO",
                     b"REQUEST_URI", b"SCRIPT_NAME", b"HTTP_CONTENT_LENGTH", b"REQUEST_METHOD",
                     b"HTTP_COOKIE", b"REQUEST_SCHEME"]), rng.choice(NUMBERS + TOKENS)))
        block = b"".join(len(k).to_bytes(2, "little") + k + (len(v) & 0xFFFF).to_bytes(2, "little")
                         + v for k, v in pairs if len(k) <= 0xFFFF)
        header = bytes([data[0] if rng.random() < 0.9 else rng.choice((0, 30, 1, 0x16))])
        return (header + (len(block) & 0xFFFF).to_bytes(2, "little") + b"\x00" + block
                + data[4 + int.from_bytes(data[1:3], "little") :])


def _uwsgi_pairs(data: bytes) -> list[tuple[bytes, bytes]] | None:
    if len(data) < 4:
        return None
    end = 4 + int.from_bytes(data[1:3], "little")
    if len(data) < end:
        return None
    pairs, pos = [], 4
    while pos + 2 <= end:
        klen = int.from_bytes(data[pos : pos + 2], "little")
        kend = pos + 2 + klen
        if kend + 2 > end:
            return None
        vend = kend + 2 + int.from_bytes(data[kend : kend + 2], "little")
        if vend > end:
            return None
        pairs.append((data[pos + 2 : kend], data[kend + 2 : vend]))
        pos = vend
    return pairs if pos == end and pairs else None


def _uwsgi_rebuild(pairs: list[tuple[bytes, bytes]], header: bytes, tail: bytes) -> bytes:
    block = b"".join(len(k).to_bytes(2, "little") + k + len(v).to_bytes(2, "little") + v
                     for k, v in pairs)
    return header[:1] + len(block).to_bytes(2, "little") + header[3:4] + block + tail


# -- the loop ------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    seeds: Callable[[], list[bytes]]
    check: Callable[[bytes, int, random.Random], tuple]
    limits: tuple[int, ...]
    structured: bool = False  # uwsgi: mutate inside vars and re-frame


TARGETS = {
    "http": Target("http", http_seeds, check_http, (65535, 65535, 8192, 512, 64, 16)),
    "chunked": Target("chunked", chunked_seeds, check_chunked, (65535, 65535, 100, 30, 0)),
    "uwsgi": Target("uwsgi", uwsgi_seeds, check_uwsgi, (65535, 65535, 4096, 64, 8), True),
}


@dataclass
class Crash:
    target: str
    key: str  # exception type and the innermost frame: one entry per distinct bug
    error: str
    data: bytes
    path: Path | None = None
    count: int = 1


@dataclass
class Stats:
    inputs: Counter = field(default_factory=Counter)
    outcomes: dict[str, Counter] = field(default_factory=dict)
    corpus: Counter = field(default_factory=Counter)
    crashes: list[Crash] = field(default_factory=list)
    seconds: float = 0.0


def crash_key(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "django_uwsgi_server" in f.filename] or frames
    where = f"{Path(ours[-1].filename).name}:{ours[-1].lineno}" if ours else "?"
    detail = str(exc).split(":")[0][:60] if isinstance(exc, InvariantError) else ""
    return f"{type(exc).__name__} at {where} {detail}".strip()


def _run_one(target: Target, data: bytes, limit: int, seed: int) -> str | None:
    """The crash key of ``data``, or None when it passes the check."""
    try:
        target.check(data, limit, random.Random(seed))
    except Exception as exc:  # noqa: BLE001 - everything but a pass is a finding
        return crash_key(exc)
    return None


def minimize(target: Target, data: bytes, limit: int, seed: int, key: str,
             budget: float = 5.0) -> bytes:
    """Shrink ``data`` while it still crashes the same way (delta debugging, time-boxed)."""
    deadline = time.monotonic() + budget

    def same(candidate: bytes) -> bool:
        return _run_one(target, candidate, limit, seed) == key

    if target.structured and (pairs := _uwsgi_pairs(data)):
        header, tail = data[:4], data[4 + int.from_bytes(data[1:3], "little") :]
        if same(_uwsgi_rebuild(pairs, header, b"")):
            tail = b""
        i = 0
        while i < len(pairs) and time.monotonic() < deadline:  # drop whole vars
            trial = pairs[:i] + pairs[i + 1 :]
            if trial and same(_uwsgi_rebuild(trial, header, tail)):
                pairs = trial
            else:
                i += 1
        for i in range(len(pairs)):  # shorten keys and values from the end
            for part in (0, 1):
                progress = True
                while progress and time.monotonic() < deadline:
                    progress = False
                    item = pairs[i][part]
                    for cut in {len(item) // 2, 1} - {0}:
                        trial = list(pairs)
                        pair = list(trial[i])
                        pair[part] = item[:-cut]
                        trial[i] = (pair[0], pair[1])
                        if trial[i][0] and same(_uwsgi_rebuild(trial, header, tail)):
                            pairs, progress = trial, True
                            break
        return _uwsgi_rebuild(pairs, header, tail)

    chunk = max(1, len(data) // 2)
    while chunk >= 1 and time.monotonic() < deadline:
        i, changed = 0, False
        while i < len(data) and time.monotonic() < deadline:
            trial = data[:i] + data[i + chunk :]
            if same(trial):
                data, changed = trial, True
            else:
                i += chunk
        if not changed:
            chunk //= 2
    return data


def run(targets: list[str] | dict[str, Target], seconds: float, max_inputs: int | None = None,
        seed: int | None = None, crash_dir: Path | None = RESULTS_DIR,
        minimize_budget: float = 5.0, log: Callable[[str], None] = print) -> Stats:
    """Fuzz ``targets`` round-robin until ``seconds`` pass or each tried ``max_inputs``."""
    table = targets if isinstance(targets, dict) else {name: TARGETS[name] for name in targets}
    seed = random.randrange(2**32) if seed is None else seed
    rng = random.Random(seed)
    mutator = Mutator(rng)
    stats = Stats()
    corpora = {name: list(t.seeds()) for name, t in table.items()}
    seen: dict[str, set] = {name: set() for name in table}
    crashes: dict[str, Crash] = {}
    started = time.monotonic()
    deadline = started + seconds
    active = list(table)
    while active and time.monotonic() < deadline:
        for name in list(active):
            target = table[name]
            corpus = corpora[name]
            outcomes = stats.outcomes.setdefault(name, Counter())
            for _ in range(64):
                base = rng.choice(corpus)
                r = rng.random()
                if r < 0.03:
                    data = bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
                elif target.structured:
                    data = mutator.uwsgi(base, corpus)
                else:
                    data = mutator.bytes_(base, corpus)
                limit = rng.choice(target.limits)
                check_seed = rng.randrange(2**32)
                stats.inputs[name] += 1
                try:
                    outcome = target.check(data, limit, random.Random(check_seed))
                except Exception as exc:  # noqa: BLE001
                    key = crash_key(exc)
                    outcomes["crash"] += 1
                    if key in crashes:
                        crashes[key].count += 1
                        continue
                    error = f"{type(exc).__name__}: {str(exc)[:200]}"
                    small = minimize(target, data, limit, check_seed, key, minimize_budget)
                    crash = Crash(name, key, error, small)
                    crashes[key] = crash
                    if crash_dir is not None:
                        crash_dir.mkdir(parents=True, exist_ok=True)
                        digest = hashlib.sha1(small).hexdigest()[:12]
                        crash.path = crash_dir / f"fuzz-crash-{name}-{digest}.bin"
                        crash.path.write_bytes(small)
                    log(f"CRASH [{name}] {key}: {error[:120]} ({len(data)} -> {len(small)} "
                        f"bytes, limit {limit}){' saved ' + str(crash.path) if crash.path else ''}")
                    continue
                outcomes[outcome[0]] += 1
                if outcome not in seen[name]:
                    seen[name].add(outcome)
                    if len(corpus) < 2000:
                        corpus.append(data)
                        stats.corpus[name] += 1
            if max_inputs is not None and stats.inputs[name] >= max_inputs:
                active.remove(name)
    stats.seconds = time.monotonic() - started
    stats.crashes = list(crashes.values())
    return stats


def report(stats: Stats, log: Callable[[str], None] = print) -> None:
    log(f"{'target':8} {'inputs':>9} {'inputs/s':>9} {'none/ok':>8} {'request':>8} "
        f"{'error':>8} {'crash':>6} {'corpus+':>8}")
    share = stats.seconds / max(1, len(stats.inputs))
    for name, n in stats.inputs.items():
        out = stats.outcomes.get(name, Counter())
        log(f"{name:8} {n:9d} {n / max(share, 1e-9):9.0f} {out['none'] + out['ok']:8d} "
            f"{out['request']:8d} {out['error']:8d} {out['crash']:6d} {stats.corpus[name]:8d}")
    total = sum(stats.inputs.values())
    log(f"total: {total} inputs in {stats.seconds:.1f} s ({total / max(stats.seconds, 1e-9):.0f}"
        f"/s), {len(stats.crashes)} distinct crash(es)")
    for crash in stats.crashes:
        shown = crash.data if len(crash.data) <= 200 else crash.data[:200] + b"..."
        log(f"  [{crash.target}] {crash.key} x{crash.count}: {crash.error[:160]}")
        log(f"      input ({len(crash.data)} bytes): {shown!r}")
        if crash.path:
            log(f"      saved: {crash.path}")


def replay(path: Path, target_name: str | None) -> int:
    data = path.read_bytes()
    name = target_name if target_name and target_name != "all" else path.name.split("-")[2]
    target = TARGETS[name]
    print(f"replaying {path} ({len(data)} bytes) on {name}")
    failed = 0
    for limit in sorted(set(target.limits)):
        try:
            print(f"  limit {limit}: {target.check(data, limit, random.Random(0))[:3]}")
        except Exception:  # noqa: BLE001
            failed = 1
            print(f"  limit {limit}: CRASH")
            traceback.print_exc()
    return failed


def run_atheris(names: list[str], seconds: int) -> int:
    try:
        import atheris
    except ImportError:
        print("--atheris needs `pip install atheris`", file=sys.stderr)
        return 2
    targets = [TARGETS[n] for n in names]
    seeds = tempfile.mkdtemp(prefix="fuzz-seeds-")
    for i, target in enumerate(targets):
        for j, seed in enumerate(target.seeds()):
            Path(seeds, f"{target.name}-{j}").write_bytes(bytes([i, 0]) + seed)

    def one_input(data: bytes) -> None:
        if len(data) < 2:
            return
        target = targets[data[0] % len(targets)]
        target.check(data[2:], target.limits[data[1] % len(target.limits)], random.Random(0))

    atheris.instrument_all()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    atheris.Setup([sys.argv[0], f"-max_total_time={seconds}",
                   f"-artifact_prefix={RESULTS_DIR}/fuzz-crash-atheris-", seeds], one_input)
    atheris.Fuzz()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--target", choices=["http", "chunked", "uwsgi", "all"], default="all")
    parser.add_argument("--seed", type=int, default=None, help="default: random (printed)")
    parser.add_argument("--max-inputs", type=int, default=None, help="per target")
    parser.add_argument("--replay", type=Path, help="run one saved input and show the traceback")
    parser.add_argument("--atheris", action="store_true", help="coverage-guided, via atheris")
    args = parser.parse_args(argv)
    names = list(TARGETS) if args.target == "all" else [args.target]
    if args.replay:
        return replay(args.replay, args.target)
    if args.atheris:
        return run_atheris(names, int(args.seconds))
    seed = random.randrange(2**32) if args.seed is None else args.seed
    print(f"fuzzing {','.join(names)} for {args.seconds:g} s, seed {seed}")
    stats = run(names, args.seconds, args.max_inputs, seed)
    report(stats)
    return 1 if stats.crashes else 0


if __name__ == "__main__":
    sys.exit(main())
