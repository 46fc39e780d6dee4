"""Listening sockets: parse uWSGI address forms, bind them in the master, describe them."""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import stat
from dataclasses import dataclass

HTTP = "http"
UWSGI = "uwsgi"


class AddressError(ValueError):
    """An address that is not one of the forms uWSGI accepts."""


@dataclass(frozen=True)
class Address:
    """A parsed listening address: TCP (host, port), a unix socket path, or ``fd://N`` (an
    inherited listening socket, see systemd.py)."""

    family: int
    host: str = ""
    port: int = 0
    path: str = ""
    fd: int = -1

    def __str__(self) -> str:
        if self.fd >= 0:
            return f"fd://{self.fd}"
        if self.family == socket.AF_UNIX:
            return self.path
        if self.family == socket.AF_INET6:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"


def parse_address(text: str) -> Address:
    """Parse ``HOST:PORT``, ``:PORT``, ``[v6]:PORT``, ``PORT`` or a unix socket path.

    Like uWSGI, anything without a ``:`` is a unix socket path; ``:PORT`` means every IPv4
    interface. ``@name`` (Linux abstract namespace) is accepted as a unix address.
    """
    text = text.strip()
    if not text:
        raise AddressError("an empty address")
    if text.startswith("fd://"):
        if not text[5:].isdigit():
            raise AddressError(f"{text!r}: fd:// takes a file descriptor number")
        return Address(socket.AF_UNSPEC, fd=int(text[5:]))
    if ":" not in text or text.startswith(("/", ".", "@")):
        if text.isdigit():
            return _tcp("127.0.0.1", text, text)
        return Address(socket.AF_UNIX, path=text)
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or text[end + 1 : end + 2] != ":":
            raise AddressError(f"{text!r} is not [IPv6]:PORT")
        host = text[1:end]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise AddressError(f"{host!r} is not a valid IPv6 address") from None
        return _tcp(host, text[end + 2 :], text, socket.AF_INET6)
    host, _, port = text.rpartition(":")
    if ":" in host:
        raise AddressError(f"{text!r}: write IPv6 addresses as [ADDR]:PORT")
    return _tcp(host or "0.0.0.0", port, text)


def _tcp(host: str, port: str, text: str, family: int = socket.AF_INET) -> Address:
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise AddressError(f"{text!r}: the port must be a number from 0 to 65535")
    if host == "0":  # runserver's shorthand
        host = "0.0.0.0"
    return Address(family, host=host, port=int(port))


class BindError(OSError):
    """A socket could not be bound; the message is the one-line explanation for the user."""


@dataclass
class Listener:
    """A bound, listening socket and the protocol its connections speak."""

    sock: socket.socket
    address: Address
    protocol: str
    option: str  # the option that asked for it, for the banner and errors

    @property
    def name(self) -> str:
        """The address as bound (with the real port when 0 was asked for)."""
        if self.address.family == socket.AF_UNIX:
            return self.address.path
        host, port = self.sock.getsockname()[:2]
        return f"[{host}]:{port}" if self.address.family == socket.AF_INET6 else f"{host}:{port}"


def somaxconn() -> int:
    try:
        with open("/proc/sys/net/core/somaxconn") as f:
            return int(f.read())
    except (OSError, ValueError):
        return socket.SOMAXCONN


def bind(address: Address, protocol: str, option: str, backlog: int,
         chmod: int | None = None, chown: tuple[int, int] | None = None,
         reuse_port: bool = False) -> Listener:
    """Bind and listen, turning the usual failures into one clear line.

    ``chmod``/``chown`` (uid, gid; -1 keeps one) apply to unix socket files only;
    ``reuse_port`` (SO_REUSEPORT) lets other processes bind the same TCP address.
    """
    if address.family == socket.AF_UNIX:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        path = address.path
        if path.startswith("@"):
            path = "\0" + path[1:]
        elif os.path.exists(path):
            if not stat.S_ISSOCK(os.stat(path).st_mode):
                sock.close()
                raise BindError(errno.EEXIST, f"{option} {address}: the path exists and is not a socket")
            os.unlink(path)  # uWSGI does the same: a stale socket file is replaced
    else:
        sock = socket.socket(address.family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if address.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        path = (address.host, address.port)
    try:
        sock.bind(path)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise BindError(exc.errno, f"{option} {address}: {_explain(exc)}") from None
    if address.family == socket.AF_UNIX and not address.path.startswith("@"):
        step = "chmod-socket"
        try:
            # 0660 unless chmod-socket says otherwise: the group (nginx's, with
            # chown-socket) may connect, other users may not (uWSGI follows the umask).
            os.chmod(address.path, 0o660 if chmod is None else chmod)
            step = "chown-socket"
            if chown is not None:
                os.chown(address.path, *chown)
        except OSError as exc:
            sock.close()
            raise BindError(exc.errno, f"{option} {address}: {step}: {exc.strerror}") from None
    sock.setblocking(False)
    return Listener(sock, address, protocol, option)


def _explain(exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return "that address is already in use"
    if exc.errno == errno.EACCES:
        return "permission denied (ports below 1024 need root; unix paths need a writable directory)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return "that IP address can't be assigned to (it is not an address of this machine)"
    if exc.errno == errno.ENOENT:
        return "the directory of that socket path does not exist"
    return exc.strerror or str(exc)
