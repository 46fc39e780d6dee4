"""The accept queue of a listening unix socket, from the kernel (netlink sock_diag).

/proc/net/unix has no queue column; ``ss -x`` asks netlink (``UNIX_DIAG_RQLEN``: for a
listening socket, the connections waiting to be accepted and the backlog). Any failure
(no netlink in a sandbox, an old kernel) gives (0, 0): the stats say "unknown" as 0.
"""

from __future__ import annotations

import os
import socket
import struct

_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST, _NLM_F_DUMP = 0x1, 0x300
_NLMSG_DONE, _NLMSG_ERROR = 3, 2
_TCP_LISTEN = 10
_UDIAG_SHOW_RQLEN = 0x10
_UNIX_DIAG_RQLEN = 4
_HDR = struct.Struct("=IHHII")  # nlmsghdr
_REQ = struct.Struct("=BBHIIIII")  # unix_diag_req
_MSG = struct.Struct("=BBBBIII")  # unix_diag_msg
_ATTR = struct.Struct("=HH")  # rtattr


def unix_queue(inode: int) -> tuple[int, int]:
    """(pending connections, backlog) of the listening unix socket with this inode."""
    try:
        return _query(inode)
    except (OSError, struct.error):
        return 0, 0


def _query(inode: int) -> tuple[int, int]:
    request = _REQ.pack(socket.AF_UNIX, 0, 0, 1 << _TCP_LISTEN, 0, _UDIAG_SHOW_RQLEN,
                        0xFFFFFFFF, 0xFFFFFFFF)
    header = _HDR.pack(_HDR.size + len(request), _SOCK_DIAG_BY_FAMILY,
                       _NLM_F_REQUEST | _NLM_F_DUMP, 1, 0)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as nl:
        nl.settimeout(1.0)
        nl.sendto(header + request, (0, 0))
        for _ in range(10_000):  # one datagram per batch of sockets; bounded
            data = nl.recv(65536)
            offset = 0
            while offset + _HDR.size <= len(data):
                length, kind = _HDR.unpack_from(data, offset)[:2]
                if kind in (_NLMSG_DONE, _NLMSG_ERROR) or length < _HDR.size:
                    return 0, 0
                found = _parse(data[offset + _HDR.size: offset + length], inode)
                if found is not None:
                    return found
                offset += (length + 3) & ~3
    return 0, 0


def _parse(msg: bytes, inode: int) -> tuple[int, int] | None:
    if _MSG.unpack_from(msg)[4] != inode:
        return None
    offset = _MSG.size
    while offset + _ATTR.size <= len(msg):
        length, kind = _ATTR.unpack_from(msg, offset)
        if length < _ATTR.size:
            break
        if kind == _UNIX_DIAG_RQLEN:
            return struct.unpack_from("=II", msg, offset + _ATTR.size)
        offset += (length + 3) & ~3
    return 0, 0


if __name__ == "__main__":  # python -m ...unix_diag PATH: check it on a live socket
    import sys

    print(unix_queue(os.stat(sys.argv[1]).st_ino))
