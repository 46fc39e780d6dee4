"""Read the stats server's JSON document (``--stats``), as uwsgitop does.

The address is what ``--stats`` was given: ``host:port`` (``:port`` means localhost), a unix
socket path, ``@name`` for a Linux abstract socket, or ``http://host:port/...`` for a
``--stats-http`` server. The server writes one document and closes; with ``--stats-http``
the reply is an HTTP/1.0 response whose body is the document, so both are accepted here
whatever the address looks like.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any
from urllib.parse import urlsplit

__all__ = ["StatsUnavailable", "fetch_stats", "fetch_raw", "parse_address"]

_MAX = 64 * 1024 * 1024  # a document this large is not ours


class StatsUnavailable(Exception):
    """Nothing serves stats at the address, or what answered is not a stats document."""


def parse_address(address: str) -> tuple[int, Any, bool]:
    """(socket family, connect address, speak HTTP first) for a ``--stats`` address."""
    address = address.strip()
    http = False
    if address.startswith(("http://", "https://")):
        if address.startswith("https://"):
            raise StatsUnavailable(f"{address}: the stats server does not speak TLS; use http://")
        parts = urlsplit(address)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        return _inet(host), (host, port), True
    if address.isdigit():  # as --stats takes it: a port on loopback
        return socket.AF_INET, ("127.0.0.1", int(address)), http
    if address.startswith("@"):
        return socket.AF_UNIX, "\0" + address[1:], http
    if "/" in address or ":" not in address:
        return socket.AF_UNIX, address, http
    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if host == "0.0.0.0":
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    try:
        number = int(port)
    except ValueError:
        raise StatsUnavailable(f"{address}: expected host:port, a unix socket path or "
                               f"http://host:port/") from None
    return _inet(host), (host, number), http


def _inet(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def fetch_raw(address: str, timeout: float = 2.0, path: str = "/", http: bool = False) -> bytes:
    """The bytes the stats server sends (the HTTP head removed), read until EOF.

    ``http``: send an HTTP request first (``stats-http`` on a host:port or unix address;
    an ``http://`` address always does)."""
    family, where, is_url = parse_address(address)
    if is_url:
        path = urlsplit(address).path or path
    deadline = time.monotonic() + timeout
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        try:
            sock.connect(where)
        except OSError as exc:
            raise StatsUnavailable(f"no stats server is listening on {address} "
                                   f"({exc.strerror or exc})") from None
        if http or is_url:
            sock.sendall(f"GET {path} HTTP/1.0\r\nHost: stats\r\n\r\n".encode("latin-1"))
        chunks: list[bytes] = []
        size = 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise StatsUnavailable(f"the stats server at {address} did not finish its "
                                       f"reply within {timeout:g} s")
            sock.settimeout(left)
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError as exc:
                raise StatsUnavailable(f"reading stats from {address} failed: {exc}") from None
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > _MAX:
                raise StatsUnavailable(f"{address} sent more than {_MAX} bytes: not a stats "
                                       f"server")
    finally:
        sock.close()
    data = b"".join(chunks)
    if data.startswith(b"HTTP/"):
        head, sep, body = data.partition(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0].decode("latin-1", "replace")
        if not sep or status.split()[1:2] != ["200"]:
            raise StatsUnavailable(f"{address} answered {status!r}")
        data = body
    return data


def fetch_stats(address: str, timeout: float = 2.0, http: bool = False) -> dict:
    """The stats document served at ``address`` (see the module docstring), parsed.

    ``http``: the server runs with ``stats-http`` (an ``http://`` address implies it).
    Raises :class:`StatsUnavailable` with a one-line reason when nothing listens there,
    it does not answer within ``timeout`` seconds, or what it sends is not JSON.
    """
    data = fetch_raw(address, timeout, http=http)
    if not data:
        raise StatsUnavailable(f"{address} closed the connection without sending stats")
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise StatsUnavailable(f"{address} did not send a JSON stats document ({exc})") from None
    if not isinstance(doc, dict):
        raise StatsUnavailable(f"{address} sent JSON that is not a stats document")
    return doc
