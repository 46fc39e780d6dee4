"""``shared-socket``: addresses bound first, that socket options name as ``=0``, ``=1``...

uWSGI binds shared sockets before anything else (and before dropping privileges) so that
other options (``socket``, ``http-socket``, its routers) can refer to them by index:
``shared-socket = :80`` then ``http-socket = =0``. runuwsgi binds every socket in the master
before dropping privileges anyway, so what matters here is the ``=N`` reference, which ini
files written for uWSGI use. A reference takes the shared socket's address and serves it with
the referring option's protocol (the listener is labelled ``http-socket =0``), so systemd
socket activation and the reload re-exec see an ordinary listener.

As in uWSGI, a reference to a shared socket that does not exist is an error ("unable to use
shared socket N"), and a shared socket nobody refers to is bound (its address is reserved,
bind errors are reported at start) but not served: workers do not accept on it. Such a socket
is carried across reload re-execs so that it stays bound; unlike referenced unix sockets, its
file is not removed by ``vacuum``. Two options referring to the same shared socket are refused
(uWSGI would accept connections on one fd with two protocols).
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from . import reload as reexec
from .sockets import Address, Listener, parse_address

_CARRY = "shared-socket"
_held: list[socket.socket] = []  # unreferenced shared sockets: open, not served


class SharedSocketError(ValueError):
    """A bad ``=N`` reference; the message is the one-line explanation."""


def is_reference(text: str) -> bool:
    return text.strip().startswith("=")


class SharedSockets:
    def __init__(self, addresses: list[str]) -> None:
        self.addresses = list(addresses)
        self.used: dict[int, str] = {}  # index -> the option that refers to it

    def resolve(self, text: str, option: str) -> tuple[Address, str]:
        """The address ``=N`` stands for, and the label of the listener serving it."""
        number = text.strip()[1:].strip()
        if not number.isdigit():
            raise SharedSocketError(f"{option} {text.strip()}: a shared socket reference is "
                                    f"=N, N the index of a shared-socket (=0 is the first)")
        index = int(number)
        if index >= len(self.addresses):
            have = (f"only {len(self.addresses)} shared-socket option"
                    f"{'s are' if len(self.addresses) != 1 else ' is'} given (=0"
                    f"{f' to ={len(self.addresses) - 1}' if len(self.addresses) > 1 else ''})"
                    if self.addresses else "no shared-socket option is given")
            raise SharedSocketError(f"{option} ={index}: unable to use shared socket {index}: "
                                    f"{have}")
        if index in self.used:
            raise SharedSocketError(f"{option} ={index}: shared socket {index} is already "
                                    f"served by {self.used[index]}")
        self.used[index] = option
        return parse_address(self.addresses[index]), f"{option} ={index}"

    def bind_unreferenced(self, bind: Callable[[Address, str], Listener]) -> list[str]:
        """Bind the shared sockets no option refers to and hold them open (not served);
        what the banner says about them."""
        lines = []
        for index, text in enumerate(self.addresses):
            if index in self.used:
                continue
            listener = bind(parse_address(text), f"shared-socket ={index}")
            _held.append(listener.sock)
            lines.append(f"  shared-socket ={index} {listener.name}: bound, not served "
                         f"(no socket option refers to ={index})")
        if _held:
            fds = tuple(sock.fileno() for sock in _held)
            reexec.carry(_CARRY, list(fds), fds)
        return lines


def keep_carried() -> None:
    """In a master image started by a reload: hold the unreferenced shared sockets the
    previous image held, and pass them on to the next reload."""
    fds = reexec.carried(_CARRY)
    if not fds:
        return
    for fd in fds:
        sock = socket.socket(fileno=fd)
        sock.set_inheritable(False)
        _held.append(sock)
    reexec.carry(_CARRY, list(fds), tuple(fds))


def close_on_error() -> None:
    for sock in _held:
        sock.close()
    _held.clear()

