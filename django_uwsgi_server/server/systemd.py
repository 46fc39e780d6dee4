"""systemd: readiness notifications (``Type=notify``) and socket activation.

**sd_notify.** With ``NOTIFY_SOCKET`` set (a path, or ``@name`` in the abstract namespace)
the master sends, as plain datagrams: ``READY=1`` once every worker accepts, ``STATUS=``
with the worker counts whenever they change, ``RELOADING=1`` with ``MONOTONIC_USEC=`` (what
systemd 253+ wants) when a reload starts and ``READY=1`` when it is over (also when it failed
and the old workers serve on), ``STOPPING=1`` when a stop starts, ``MAINPID=`` first when
the server daemonized itself, and ``WATCHDOG=1`` every ``WATCHDOG_USEC``/2 from the master
loop (``WatchdogSec=``: systemd restarts a master that hangs). ``NOTIFY_SOCKET`` is taken out of the environment (the
app's subprocesses must not speak for us) and handed to the image a reload re-executes.

**Socket activation.** With ``LISTEN_PID`` equal to our pid, fds 3 .. 3 + ``LISTEN_FDS`` - 1
are listening sockets opened by systemd (``LISTEN_FDNAMES``: their names). A configured
socket whose address equals an inherited socket's address uses that socket instead of binding
(so the same settings work with and without the socket unit). ``fd://N`` in a socket option
uses inherited fd N with that option's protocol. Every other inherited socket is served too:
with HTTP when its name (``FileDescriptorName=``) starts with ``http``, else with the uwsgi
protocol (uWSGI's rule). The default ``127.0.0.1:8000`` is not bound when systemd passed
sockets. ``LISTEN_*`` are removed from the environment.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import time
from typing import Any

from . import reload as reexec
from .hooks import Hook
from .logging import write_line
from .sockets import HTTP, UWSGI, Address, BindError, Listener

SD_LISTEN_FDS_START = 3
# In a listener's option text: the socket is not ours to chmod, chown or vacuum (systemd
# owns the file). The option text survives the reload re-exec, so the mark does too.
INHERITED = " on inherited fd "
_CARRY = "systemd"


# -- sd_notify ---------------------------------------------------------------------------------
class Notifier(Hook):
    def __init__(self, address: str, daemonized: bool, phase: str = "starting",
                 watchdog: float = 0.0) -> None:
        self.address = address
        self.watchdog = watchdog  # seconds between WATCHDOG=1 pings (0: systemd wants none)
        self._pinged = 0.0
        self._target = "\0" + address[1:] if address.startswith("@") else address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.daemonized = daemonized
        self.phase = phase  # starting -> ready <-> reloading -> stopping
        self.status = ""
        self._carry()

    def send(self, *lines: str) -> None:
        try:
            self.sock.sendto("\n".join(lines).encode(), self._target)
        except OSError as exc:  # systemd gone or a wrong path: say so once, carry on
            if self.sock.fileno() >= 0:
                write_line(f"sd_notify to {self.address} failed ({exc.strerror}); "
                           f"not notifying systemd any more")
                self.sock.close()

    def _carry(self) -> None:
        reexec.carry(_CARRY, {"address": self.address, "phase": self.phase,
                              "watchdog": self.watchdog})

    def _to(self, phase: str, *lines: str) -> None:
        self.phase = phase
        self._carry()
        self.send(*lines)

    def started(self, master: Any) -> None:
        if self.daemonized and self.phase == "starting":
            self.send(f"MAINPID={os.getpid()}")

    def reload_starts(self, master: Any) -> None:
        """Said at once, before the re-exec or the first new worker (systemd 253+ wants
        MONOTONIC_USEC with it to tell this reload from an earlier one)."""
        if self.phase == "ready" and self.sock.fileno() >= 0:
            usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
            self._to("reloading", "RELOADING=1", f"MONOTONIC_USEC={usec}", "STATUS=reloading")
            self.status = "reloading"

    def tick(self, master: Any) -> None:
        if self.sock.fileno() < 0 or self.phase == "stopping":
            return
        if self.watchdog and time.monotonic() - self._pinged >= self.watchdog:
            self._pinged = time.monotonic()
            self.send("WATCHDOG=1")  # the master loop turns: systemd need not kill us
        if master.stopping_since is not None:
            self._to("stopping", "STOPPING=1", "STATUS=stopping")
            return
        serving = [p for p in master.procs.values() if p.state == "serving" and p.ready]
        status = _status(master, serving)
        changing = master.reloader.busy
        complete = not changing and len({p.wid for p in serving}) >= master.target
        if self.phase == "ready" and changing:
            self.reload_starts(master)
        elif self.phase in ("starting", "reloading") and complete:
            self.status = status
            self._to("ready", "READY=1", f"STATUS={status}")
        elif self.phase == "ready" and status != self.status:
            self.status = status
            self.send(f"STATUS={status}")

    def close(self, master: Any) -> None:
        self.sock.close()


def _status(master: Any, serving: list[Any]) -> str:
    busy = sum(1 for p in serving if master.scoreboard.read(p.slot)["busy_since"])
    return f"{len(serving)} workers serving, {busy} busy"


def notifier_from_environment(daemonized: bool) -> Notifier | None:
    """The notifier when systemd asked for notifications (or a reloaded image inherited one)."""
    address = os.environ.pop("NOTIFY_SOCKET", None)
    carried = reexec.carried(_CARRY)
    watchdog_usec = os.environ.pop("WATCHDOG_USEC", "")
    watchdog_pid = os.environ.pop("WATCHDOG_PID", "")
    if carried is not None:
        return Notifier(carried["address"], daemonized, carried["phase"], carried["watchdog"])
    if not address:
        return None
    if not address.startswith(("/", "@")):
        write_line(f"NOTIFY_SOCKET={address!r} is not a unix socket path (/path or @name); "
                   f"not notifying systemd")
        return None
    watchdog = 0.0
    if watchdog_usec.isdigit() and watchdog_pid in ("", str(os.getpid())):
        # Twice per period, as sd_watchdog_enabled() advises; the loop turns every second
        # at least, so WatchdogSec= must be 2 s or more.
        watchdog = int(watchdog_usec) / 2e6
    return Notifier(address, daemonized and not reexec.is_reexec(), watchdog=watchdog)


# -- socket activation ---------------------------------------------------------------------------
class Activation:
    """The listening sockets this process inherited from systemd (or its launcher)."""

    def __init__(self, fds: dict[int, str]) -> None:
        self.fds = fds  # fd -> name (LISTEN_FDNAMES), in order
        self.taken: set[int] = set()
        self._sockets: dict[int, socket.socket] = {}

    @classmethod
    def from_environment(cls) -> Activation:
        pid = os.environ.pop("LISTEN_PID", "")
        count = os.environ.pop("LISTEN_FDS", "")
        names = os.environ.pop("LISTEN_FDNAMES", "")
        if not (pid.isdigit() and int(pid) == os.getpid() and count.isdigit()):
            return cls({})
        labels = names.split(":") if names else []
        fds = {}
        for i in range(int(count)):
            fd = SD_LISTEN_FDS_START + i
            try:
                os.set_inheritable(fd, False)  # not for the app's subprocesses
            except OSError as exc:  # a launcher that counted wrong, not systemd
                raise BindError(exc.errno, f"systemd socket activation: LISTEN_FDS={count}: "
                                           f"fd {fd} is not open") from None
            fds[fd] = labels[i] if i < len(labels) else ""
        if fds:
            write_line(f"systemd socket activation: {len(fds)} listening socket"
                       f"{'s' if len(fds) != 1 else ''} inherited (fd "
                       f"{', '.join(map(str, fds))})")
        return cls(fds)

    def __bool__(self) -> bool:
        return bool(self.fds)

    def _socket(self, fd: int, option: str) -> socket.socket:
        if fd not in self._sockets:
            try:
                sock = socket.socket(fileno=fd)
            except OSError as exc:
                raise BindError(exc.errno, f"{option} fd://{fd}: not an open socket "
                                           f"({exc.strerror})") from None
            if sock.type != socket.SOCK_STREAM or \
                    not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                sock.detach()
                raise BindError(0, f"{option} fd://{fd}: not a listening stream socket "
                                   f"(listen() it before passing it)")
            self._sockets[fd] = sock
        return self._sockets[fd]

    def take(self, address: Address, protocol: str, option: str) -> Listener | None:
        """The inherited socket for this configured address, if there is one."""
        if address.fd >= 0:
            return self._adopt(address.fd, protocol, option)
        for fd in self.fds:
            if fd not in self.taken and _same(self._socket(fd, "systemd"), address):
                return self._adopt(fd, protocol, option)
        return None

    def rest(self) -> list[Listener]:
        """The inherited sockets no option claimed: HTTP if systemd names them http*."""
        rest = []
        for fd, name in self.fds.items():
            if fd not in self.taken:
                http = name.lower().startswith("http")
                listener = self._adopt(fd, HTTP if http else UWSGI,
                                       "http-socket" if http else "socket")
                if name:
                    listener.option += f" ({name})"
                rest.append(listener)
        return rest

    def _adopt(self, fd: int, protocol: str, option: str) -> Listener:
        if fd in self.taken:
            raise BindError(0, f"{option} fd://{fd}: that socket is already used by another "
                               f"socket option")
        sock = self._socket(fd, option)
        self.taken.add(fd)
        os.set_inheritable(fd, False)
        sock.setblocking(False)
        return Listener(sock, address_of(sock), protocol, f"{option}{INHERITED}{fd}")


def address_of(sock: socket.socket) -> Address:
    name = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        if isinstance(name, bytes):
            name = name.decode("utf-8", "surrogateescape")
        return Address(socket.AF_UNIX, path="@" + name[1:] if name.startswith("\0") else name)
    return Address(sock.family, host=name[0], port=name[1])


def _same(sock: socket.socket, address: Address) -> bool:
    if sock.family != address.family:
        return False
    mine = address_of(sock)
    if address.family == socket.AF_UNIX:
        return mine.path == address.path or (
            not mine.path.startswith("@") and os.path.abspath(mine.path) == os.path.abspath(address.path))
    if address.port == 0 or mine.port != address.port:
        return False
    try:
        return ipaddress.ip_address(mine.host) == ipaddress.ip_address(address.host)
    except ValueError:  # a host name in the option: compare what it resolves to
        try:
            return mine.host in {ai[4][0] for ai in socket.getaddrinfo(address.host, None,
                                                                      address.family)}
        except OSError:
            return False
