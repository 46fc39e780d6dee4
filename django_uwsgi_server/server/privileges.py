"""``uid`` / ``gid`` / ``chown-socket``: who the workers run as, who owns the unix sockets.

gunicorn's model, not uWSGI's: the master keeps the identity it was started with (root, so
it can bind port 80, write and remove the pidfile, re-exec itself on a reload and clean up);
each worker drops to ``gid``/``uid`` right after the fork, before it loads or serves anything.
With an identity to drop to, the master never imports the WSGI app (runuwsgi leaves it to
the workers), so no app code beyond Django's own settings/models setup runs as root.
uWSGI instead drops the whole instance after binding the shared sockets.

Names and numbers are resolved once, in the master, at startup, so a typo is a one-line
error before anything is bound; the forked worker only makes the three system calls.
"""

from __future__ import annotations

import grp
import os
import pwd
from dataclasses import dataclass


class PrivilegeError(Exception):
    """A uid/gid that does not exist, or a drop that the system refused; one line."""


@dataclass(frozen=True)
class Identity:
    """Where a worker drops to. ``uid``/``gid`` None: keep that part of the identity."""

    uid: int | None
    gid: int | None
    groups: tuple[int, ...] | None  # supplementary groups; None: keep them
    user: str | None = None  # the user's name, for messages

    def describe(self) -> str:
        parts = []
        if self.uid is not None:
            parts.append(f"uid {self.uid}" + (f" ({self.user})" if self.user else ""))
        if self.gid is not None:
            parts.append(f"gid {self.gid}")
        return ", ".join(parts)


def lookup_user(text: str, option: str = "uid") -> tuple[int, pwd.struct_passwd | None]:
    """A user name or number -> (uid, its passwd entry or None for an unlisted number)."""
    text = str(text).strip()
    if text.isdigit():
        uid = int(text)
        try:
            return uid, pwd.getpwuid(uid)
        except KeyError:
            return uid, None
    try:
        entry = pwd.getpwnam(text)
    except KeyError:
        raise PrivilegeError(f"{option} {text!r}: no such user") from None
    return entry.pw_uid, entry


def lookup_group(text: str, option: str = "gid") -> int:
    """A group name or number -> gid."""
    text = str(text).strip()
    if text.isdigit():
        return int(text)
    try:
        return grp.getgrnam(text).gr_gid
    except KeyError:
        raise PrivilegeError(f"{option} {text!r}: no such group") from None


def resolve(uid: str | None, gid: str | None) -> Identity | None:
    """The workers' identity from the ``uid`` and ``gid`` options (None: nothing to change).

    ``uid`` without ``gid`` also takes the user's primary group (gunicorn does the same;
    uWSGI would leave the workers in root's group). The supplementary groups are the user's
    (``initgroups``), or just ``gid`` when the user is not in the passwd database.
    """
    if not uid and not gid:
        return None
    new_uid = new_gid = None
    entry = None
    if uid:
        new_uid, entry = lookup_user(uid)
    if gid:
        new_gid = lookup_group(gid)
    elif entry is not None:
        new_gid = entry.pw_gid
    else:
        # A numeric uid that no passwd entry names: without gid the workers would keep
        # root's group and supplementary groups.
        raise PrivilegeError(f"uid {uid} is not in the user database: also set gid")
    groups: tuple[int, ...] | None = None
    if new_gid is not None:
        if entry is not None:
            groups = tuple(os.getgrouplist(entry.pw_name, new_gid))
        else:
            groups = (new_gid,)
    return Identity(new_uid, new_gid, groups, entry.pw_name if entry is not None else None)


def needs_change(identity: Identity | None) -> bool:
    """Whether dropping to ``identity`` changes anything for a process like this one."""
    if identity is None:
        return False
    return ((identity.uid is not None and identity.uid != os.geteuid())
            or (identity.gid is not None and identity.gid != os.getegid()))


def drop(identity: Identity) -> None:
    """setgroups, setgid, then setuid (last: after it the others are not allowed)."""
    try:
        if identity.groups is not None:
            os.setgroups(list(identity.groups))
        if identity.gid is not None:
            os.setgid(identity.gid)
        if identity.uid is not None:
            os.setuid(identity.uid)
    except OSError as exc:
        raise PrivilegeError(f"could not switch to {identity.describe()}: {exc.strerror}") from None
    if identity.uid not in (None, 0) and os.geteuid() == 0:  # paranoia: never stay root
        raise PrivilegeError(f"could not switch to {identity.describe()}: still root")


def parse_owner(text: str | None) -> tuple[int, int] | None:
    """``chown-socket`` ``USER[:GROUP]`` (names or numbers) -> (uid, gid); -1 keeps one."""
    if not text:
        return None
    user, colon, group = str(text).partition(":")
    new_uid = lookup_user(user, "chown-socket")[0] if user.strip() else -1
    new_gid = lookup_group(group, "chown-socket") if colon and group.strip() else -1
    return new_uid, new_gid
