"""Static files: uWSGI's ``static-map``, ``static-map2``, ``check-static`` and friends.

The rules are built once in the master (:func:`build`); each worker wraps its app in
:class:`StaticFiles`, a WSGI layer that answers GET and HEAD requests for files under the
configured roots and passes everything else to the app. Files leave as a
``wsgi.file_wrapper`` positioned at the first byte to send, so the worker's ``sendfile``
path carries them and no byte of a file is read into Python. Without any static option
nothing is wrapped: the request path does not change.

Path handling is the security boundary (issue #5: never a byte outside the roots). It works
on bytes (``PATH_INFO`` is latin-1, one char per byte, PEP 3333) and in three steps:

1. :func:`split_path` is pure: a NUL, a backslash or a ``..`` segment is refused outright
   (400, the app never sees it); empty and ``.`` segments are dropped, so no absolute path
   can be formed.
2. The joined path is opened with ``O_PATH`` (no side effect, even on a FIFO or a device)
   and the kernel's path of that descriptor (``/proc/self/fd``) must lie inside the rule's
   root, or a ``static-safe`` root, compared by path components (uWSGI compares string
   prefixes, so ``/srv/static2`` passes for a root ``/srv/static``).
3. ``fstat`` on that descriptor: only a regular file is served, and it is opened for
   reading through the same descriptor, so no symlink can be swapped after the check.

Anything not found, outside the roots or not a regular file falls through to the next
rule and then to the app, as in uWSGI.
"""

from __future__ import annotations

import calendar
import functools
import mimetypes
import os
import re
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.utils import formatdate, parsedate_tz
from typing import Any

from .body import FileWrapper
from .logging import STATIC_KEY, write_line

# Compressed files served as themselves get the type of the compression (as Django's
# FileResponse does): a .tar.gz is not an "application/x-tar" with no Content-Encoding.
_ENCODING_TYPES = {"gzip": "application/gzip", "br": "application/x-brotli",
                   "bzip2": "application/x-bzip", "compress": "application/x-compress",
                   "xz": "application/x-xz"}
# Text types get "; charset=utf-8" (WhiteNoise does the same; uWSGI sends no charset).
_UTF8_TYPES = frozenset(("application/javascript", "application/json", "application/xml",
                         "image/svg+xml", "application/manifest+json"))
# Encodings tried for a precompressed sibling, best first (uWSGI: .br, then .gz).
_SIBLINGS = (("br", b".br"), ("gzip", b".gz"))
_PATH_FLAGS = os.O_PATH | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_CLOEXEC
UNSATISFIABLE = "unsatisfiable"
_DIGITS = re.compile(r"[0-9]*")


class StaticConfigError(Exception):
    """A static option that cannot work; ``str()`` is the one-line message."""


class Found:
    """A file found for a request: an O_PATH descriptor, its real path and stat."""

    __slots__ = ("fd", "real", "st", "rule", "name")

    def __init__(self, fd: int, real: bytes, st: os.stat_result, rule: Rule) -> None:
        self.fd, self.real, self.st, self.rule = fd, real, st, rule
        self.name = real  # what Content-Type and expires go by (FILE for FILE.gz)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


@functools.lru_cache(maxsize=1024)
def http_date(seconds: int) -> str:
    """An IMF-fixdate (cached: the same few mtimes are formatted over and over)."""
    return formatdate(seconds, usegmt=True)


class Refused(Exception):
    """A request path that must never reach a file (``..``, NUL, backslash)."""


# -- pure helpers (unit-tested) ---------------------------------------------------------------

def split_path(path: bytes) -> list[bytes]:
    """The path's segments, relative to a root: empty and ``.`` segments dropped.

    Raises :class:`Refused` for NUL bytes, backslashes and ``..`` segments: a path that
    climbs is never normalised into something else, it is refused.
    """
    if b"\0" in path or b"\\" in path:
        raise Refused("NUL or backslash in the path")
    segments = []
    for seg in path.split(b"/"):
        if not seg or seg == b".":
            continue
        if seg == b"..":
            raise Refused("'..' in the path")
        segments.append(seg)
    return segments


def inside(path: bytes, root: bytes) -> bool:
    """True when the resolved ``path`` is ``root`` or below it (component-wise)."""
    if root == b"/":
        return path.startswith(b"/")
    return path == root or path.startswith(root + b"/")


def parse_range(value: str, size: int) -> tuple[int, int] | str | None:
    """A ``Range`` header against a file of ``size`` bytes (RFC 9110 §14).

    Returns ``(first, last)`` (inclusive) for one satisfiable byte range, UNSATISFIABLE
    (416), or None when the header is to be ignored (malformed, another unit, or several
    ranges: we answer those with the whole file, which RFC 9110 allows).
    """
    unit, _, spec = value.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_text, dash, last_text = spec.strip().partition("-")
    first_text, last_text = first_text.strip(), last_text.strip()
    if not dash or not (first_text or last_text) or not _DIGITS.fullmatch(first_text) or \
            not _DIGITS.fullmatch(last_text):
        return None
    if not first_text:  # suffix range: the last N bytes
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            return UNSATISFIABLE
        return max(size - suffix, 0), size - 1
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last_text and last < first:
        return None  # invalid range-spec: ignore the header (§14.1.1)
    if first >= size:
        return UNSATISFIABLE
    return first, min(last, size - 1)


def parse_http_date(value: str) -> int | None:
    """Seconds since the epoch of an HTTP date (IMF-fixdate, RFC 850 or asctime), or None."""
    try:
        parts = parsedate_tz(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parts is None:
        return None
    try:
        return calendar.timegm(parts[:6] + (0, 0, 0)) - (parts[9] or 0)
    except (OverflowError, ValueError):
        return None


def accepts(accept_encoding: str, coding: str) -> bool:
    """Whether an ``Accept-Encoding`` value allows ``coding`` (q=0 means no; ``*`` counts)."""
    star = None
    for item in accept_encoding.split(","):
        name, _, params = item.partition(";")
        name = name.strip().lower()
        if name != coding and name != "*":
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, val = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(val)
                except ValueError:
                    q = 0.0
        if name == coding:
            return q > 0
        star = q > 0
    return bool(star)


def etag_matches(header: str, etag: str) -> bool:
    """``If-None-Match``: ``*`` or any listed tag equal to ours (weak comparison, §13.1.2)."""
    if header.strip() == "*":
        return True
    ours = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == ours for tag in header.split(","))


_TYPES: dict[bytes, str] = {}


def content_type(name: bytes) -> str:
    """The Content-Type for a file name, from its extension (cached per extension)."""
    dot = name.rfind(b".")
    ext = name[dot:].lower() if dot > name.rfind(b"/") else b""
    cached = _TYPES.get(ext)
    if cached is None:
        guessed, encoding = mimetypes.guess_type("x" + ext.decode("latin-1"))
        if encoding:
            cached = _ENCODING_TYPES.get(encoding, "application/octet-stream")
        else:
            cached = guessed or "application/octet-stream"
            if cached.startswith("text/") or cached in _UTF8_TYPES:
                cached += "; charset=utf-8"
        if len(_TYPES) < 4096:  # extensions come from clients: bound the cache
            _TYPES[ext] = cached
    return cached


# -- configuration -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    """One static root: ``prefix`` is matched against PATH_INFO at a segment boundary."""

    option: str
    prefix: str
    root: bytes  # realpath of the directory (or of the file, when is_file)
    is_file: bool
    strip: bool  # static-map: the mountpoint is removed; static-map2, check-static: kept

    def match(self, path_info: str) -> str | None:
        """The part of PATH_INFO to look up under the root, or None if the rule does not apply."""
        prefix = self.prefix
        if not path_info.startswith(prefix):
            return None
        rest = path_info[len(prefix):]
        # "/static" maps "/static" and "/static/..." but not "/staticfoo" (uWSGI: it does).
        if rest and not prefix.endswith("/") and not rest.startswith("/"):
            return None
        if self.is_file:
            return "" if not rest.strip("/") else None
        return rest if self.strip else path_info


@dataclass(frozen=True)
class Expires:
    """An Expires rule: ``subject`` is filename, path-info, uri or type."""

    subject: str
    match: Callable[[str], Any]
    seconds: int
    from_mtime: bool


# (subject, option), in the order the first matching rule is looked for.
_EXPIRES = tuple((subject, name + suffix)
                 for subject, name in (("filename", "static-expires"),
                                       ("path-info", "static-expires-path-info"),
                                       ("uri", "static-expires-uri"),
                                       ("type", "static-expires-type"))
                 for suffix in ("", "-mtime"))
_NEED_A_ROOT = ("static-index", "static-skip-ext", "static-safe", "static-gzip-all",
                "static-gzip", "static-gzip-dir", "static-gzip-ext",
                *(option for _, option in _EXPIRES))


def _seconds_rule(cfg: Any, name: str) -> Iterable[tuple[str, int]]:
    for item in getattr(cfg, name.replace("-", "_")) or ():
        pattern, _, seconds = item.rpartition("=")
        if not pattern or not seconds.strip().isascii() or not seconds.strip().isdigit():
            raise StaticConfigError(
                f"invalid value {item!r} for option {name!r} ({cfg.origin(name)}): expected "
                f"{'TYPE' if 'type' in name else 'REGEX'}=SECONDS with a whole number of seconds")
        yield pattern, int(seconds)


def _regex(cfg: Any, name: str, pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise StaticConfigError(f"invalid regular expression {pattern!r} for option {name!r} "
                                f"({cfg.origin(name)}): {exc}") from None


def _root(cfg: Any, name: str, path: str, strict: bool) -> bytes | None:
    real = os.path.realpath(os.fsencode(path))
    if not os.path.exists(real):
        message = f"option {name!r} ({cfg.origin(name)}): {path!r} does not exist"
        if strict:
            raise StaticConfigError(message)
        write_line(f"warning: {message}; the rule is skipped")
        return None
    return real


def build(cfg: Any, strict: bool = True) -> StaticFiles | None:
    """The static configuration from the merged options, or None when no rule is set.

    Paths are resolved now (after ``chdir``), so a typo is an error at startup rather than
    a silent 404 (uWSGI skips a root it cannot resolve). ``strict=False`` (a reload's
    re-exec) only warns and skips a root that has disappeared.
    """
    if not (cfg.check_static or cfg.static_map or cfg.static_map2):
        for name in _NEED_A_ROOT:
            if getattr(cfg, name.replace("-", "_")):
                raise StaticConfigError(f"option {name!r} ({cfg.origin(name)}) needs a static "
                                        f"root: add static-map, static-map2 or check-static")
        return None
    rules: list[Rule] = []
    # uWSGI's order: check-static, then static-map, then static-map2; first file found wins.
    for path in cfg.check_static or ():
        root = _root(cfg, "check-static", path, strict)
        if root is not None:
            rules.append(Rule("check-static", "", root, False, False))
    for name, strip in (("static-map", True), ("static-map2", False)):
        for item in getattr(cfg, name.replace("-", "_")) or ():
            mountpoint, _, path = item.partition("=")
            if not path.strip():
                raise StaticConfigError(f"invalid value {item!r} for option {name!r} "
                                        f"({cfg.origin(name)}): expected MOUNTPOINT=DIR")
            root = _root(cfg, name, path.strip(), strict)
            if root is not None:
                rules.append(Rule(name, mountpoint.strip(), root, os.path.isfile(root), strip))
    if not rules:  # a reload after every root disappeared
        return None
    expires: list[Expires] = []
    for subject, option in _EXPIRES:
        for pattern, seconds in _seconds_rule(cfg, option):
            if subject == "type":
                matcher: Callable[[str], Any] = pattern.strip().__eq__
            else:
                matcher = _regex(cfg, option, pattern).search
            expires.append(Expires(subject, matcher, seconds, option.endswith("-mtime")))
    gzip_regex = [_regex(cfg, "static-gzip", p) for p in cfg.static_gzip or ()]
    if not os.path.isdir("/proc/self/fd"):
        raise StaticConfigError("static files need /proc mounted (the real path of each "
                                "file is read from /proc/self/fd)")
    mimetypes.init()  # read /etc/mime.types once, in the master, before the fork
    return StaticFiles(
        rules, index=[os.fsencode(i) for i in cfg.static_index or ()],
        skip_ext=tuple(cfg.static_skip_ext or ()),
        safe=[os.path.realpath(os.fsencode(p)) for p in cfg.static_safe or ()],
        expires=expires, gzip_all=bool(cfg.static_gzip_all), gzip_regex=gzip_regex,
        gzip_dirs=[os.path.realpath(os.fsencode(d)) for d in cfg.static_gzip_dir or ()],
        gzip_ext=tuple(os.fsencode(e) for e in cfg.static_gzip_ext or ()))


def check(cfg: Any) -> None:
    """Validate the static options in a process that has not applied ``chdir`` (the
    autoreload parent), resolving relative roots as the server will."""
    cwd = os.getcwd()
    try:
        if cfg.chdir:
            try:
                os.chdir(cfg.chdir)
            except OSError:
                return  # the server reports the chdir itself
        build(cfg)
    finally:
        os.chdir(cwd)


# -- serving -----------------------------------------------------------------------------------

class StaticFiles:
    """The rules, and :meth:`wrap` to put them in front of a WSGI app."""

    def __init__(self, rules: list[Rule], *, index: list[bytes], skip_ext: tuple[str, ...],
                 safe: list[bytes], expires: list[Expires], gzip_all: bool,
                 gzip_regex: list[re.Pattern[str]], gzip_dirs: list[bytes],
                 gzip_ext: tuple[bytes, ...]) -> None:
        self.rules = rules
        self.index = index
        self.skip_ext = skip_ext
        self.skip_ext_bytes = tuple(os.fsencode(e) for e in skip_ext)
        self.safe = safe
        self.expires = expires
        self.gzip_all = gzip_all
        self.gzip_regex = gzip_regex
        self.gzip_dirs = gzip_dirs
        self.gzip_ext = gzip_ext
        self.gzip = bool(gzip_all or gzip_regex or gzip_dirs or gzip_ext)

    def describe(self) -> list[str]:
        """One line per rule, for the banner."""
        return [f"{r.prefix or '/'} -> {os.fsdecode(r.root)} ({r.option})" for r in self.rules]

    def wrap(self, app: Any) -> Callable[[dict[str, Any], Any], Any]:
        def static_then_app(environ: dict[str, Any], start_response: Any) -> Any:
            response = self.respond(environ, start_response)
            return app(environ, start_response) if response is None else response
        return static_then_app

    # -- finding -------------------------------------------------------------------------
    def respond(self, environ: dict[str, Any], start_response: Any) -> Any:
        """The response for a static file, or None to let the app answer."""
        method = environ.get("REQUEST_METHOD")
        if method != "GET" and method != "HEAD":
            return None
        path_info = environ.get("PATH_INFO", "")
        if self.skip_ext and path_info.endswith(self.skip_ext):
            return None
        for rule in self.rules:
            rest = rule.match(path_info)
            if rest is None:
                continue
            try:
                segments = split_path(rest.encode("latin-1", "replace"))
            except Refused as exc:
                return refuse(environ, start_response, str(exc))
            if _encoded_separator(environ):
                return None  # %2F / %5C: not a file name; the app may want it
            found = self._find(rule, segments, rest.endswith("/"))
            if found is not None:
                environ[STATIC_KEY] = True
                headers: list[tuple[str, str]] = []
                if self.gzip and self._gzip_wanted(found.real):
                    headers.append(("Vary", "Accept-Encoding"))
                    found = self._precompressed(environ, found, headers)
                try:
                    return self._answer(environ, start_response, found, headers)
                finally:
                    found.close()
        return None

    def _find(self, rule: Rule, segments: list[bytes], slash: bool) -> Found | None:
        """The file to send, or None. ``slash``: the path ends with "/", so only a
        directory (its index) may answer, as nginx does."""
        candidate = rule.root + b"/" + b"/".join(segments) if segments and not rule.is_file \
            else rule.root
        found = self._resolve(rule, candidate)
        if found is None:
            return None
        if stat.S_ISDIR(found.st.st_mode):
            directory = found.real
            found.close()
            for name in self.index:
                found = self._resolve(rule, directory + b"/" + name)
                if found is not None:
                    if stat.S_ISREG(found.st.st_mode):
                        break
                    found.close()
            else:
                return None  # a directory without an index: the app decides (uWSGI)
        elif slash or not stat.S_ISREG(found.st.st_mode):
            found.close()
            return None
        if self.skip_ext_bytes and found.real.endswith(self.skip_ext_bytes):
            found.close()
            return None
        return found

    def _resolve(self, rule: Rule, path: bytes) -> Found | None:
        """``path`` opened with O_PATH (no side effects, even on a device or a FIFO), if the
        kernel's idea of where it really is stays under the rule's root or a static-safe
        root. The path checked is the path of the very file that will be sent: nothing can
        swap a symlink between the check and the open."""
        try:
            fd = os.open(path, _PATH_FLAGS)
        except (OSError, ValueError):
            return None
        try:
            real = os.readlink(b"/proc/self/fd/%d" % fd)
            if inside(real, rule.root) or any(inside(real, safe) for safe in self.safe):
                return Found(fd, real, os.fstat(fd), rule)
            write_line(f"[static] security: {os.fsdecode(path)!r} resolves to "
                       f"{os.fsdecode(real)!r}, outside {os.fsdecode(rule.root)!r} and the "
                       f"static-safe roots; not served")
        except OSError:
            pass
        os.close(fd)
        return None

    # -- answering -----------------------------------------------------------------------
    def _precompressed(self, environ: dict[str, Any], found: Found,
                       headers: list[tuple[str, str]]) -> Found:
        """FILE.br or FILE.gz instead of FILE when the client accepts it and it exists
        (under the same rules as FILE itself); the Content-Type stays FILE's."""
        accept = environ.get("HTTP_ACCEPT_ENCODING", "")
        for coding, suffix in _SIBLINGS if accept else ():
            if accepts(accept, coding):
                sibling = self._resolve(found.rule, found.real + suffix)
                if sibling is not None:
                    if stat.S_ISREG(sibling.st.st_mode):
                        headers.append(("Content-Encoding", coding))
                        sibling.name = found.real
                        found.close()
                        return sibling
                    sibling.close()
        return found

    def _answer(self, environ: dict[str, Any], start_response: Any, found: Found,
                headers: list[tuple[str, str]]) -> Any:
        real = found.name
        ctype = content_type(real)
        st = found.st
        size = st.st_size
        mtime = int(st.st_mtime)
        etag = f'"{mtime:x}-{size:x}"'
        headers.append(("Last-Modified", http_date(mtime)))
        headers.append(("ETag", etag))
        if self.expires:
            headers.extend(self._expires(environ, real, ctype, mtime))
        if _not_modified(environ, etag, mtime):
            start_response("304 Not Modified", headers)
            return [b""]
        headers.append(("Content-Type", ctype))
        headers.append(("Accept-Ranges", "bytes"))
        status = "200 OK"
        first, length = 0, size
        wanted = environ.get("HTTP_RANGE")
        if wanted and environ.get("REQUEST_METHOD") == "GET" and _if_range(environ, etag, mtime):
            span = parse_range(wanted, size)
            if span == UNSATISFIABLE:
                start_response("416 Range Not Satisfiable",
                               [*headers, ("Content-Range", f"bytes */{size}")])
                return [b""]
            if span is not None:
                first, last = span  # type: ignore[misc]
                length = last - first + 1
                status = "206 Partial Content"
                headers.append(("Content-Range", f"bytes {first}-{last}/{size}"))
        headers.append(("Content-Length", str(length)))
        # Opened for reading through the O_PATH descriptor: the same inode that was checked.
        try:
            body = open(os.open(b"/proc/self/fd/%d" % found.fd, _READ_FLAGS), "rb", buffering=0)
        except OSError as exc:  # e.g. not readable by the worker's uid: nginx's 403
            write_line(f"[static] cannot open {os.fsdecode(found.real)!r}: {exc.strerror}")
            forbidden = b"403 Forbidden\n"
            start_response("403 Forbidden", [("Content-Type", "text/plain; charset=utf-8"),
                                             ("Content-Length", str(len(forbidden)))])
            return [forbidden]
        start_response(status, headers)
        if first:
            body.seek(first)  # the worker's sendfile starts at the file's position
        wrapper = environ.get("wsgi.file_wrapper") or FileWrapper
        return wrapper(body)

    def _gzip_wanted(self, real: bytes) -> bool:
        if self.gzip_all:
            return True
        if any(inside(real, d) for d in self.gzip_dirs):
            return True
        if self.gzip_ext and real.endswith(self.gzip_ext):
            return True
        name = os.fsdecode(real)
        return any(r.search(name) for r in self.gzip_regex)

    def _expires(self, environ: dict[str, Any], real: bytes, ctype: str,
                 mtime: int) -> list[tuple[str, str]]:
        """Expires and Cache-Control max-age from the first rule that matches."""
        subjects = {"filename": os.fsdecode(real), "path-info": environ.get("PATH_INFO", ""),
                    "uri": environ.get("REQUEST_URI", ""), "type": ctype.partition(";")[0]}
        for rule in self.expires:
            if rule.match(subjects[rule.subject]):
                now = int(time.time())
                when = (mtime if rule.from_mtime else now) + rule.seconds
                return [("Expires", formatdate(when, usegmt=True)),
                        ("Cache-Control", f"max-age={max(when - now, 0)}")]
        return []


def refuse(environ: dict[str, Any], start_response: Any, why: str) -> list[bytes]:
    """400 for a path that climbs or hides a NUL: logged, and the app never sees it."""
    write_line(f"[static] refused {environ.get('REQUEST_URI') or environ.get('PATH_INFO')!r}:"
               f" {why}")
    body = b"400 Bad Request: the path may not contain '..', NUL or backslash\n"
    start_response("400 Bad Request", [("Content-Type", "text/plain; charset=utf-8"),
                                       ("Content-Length", str(len(body)))])
    return [body]


def _encoded_separator(environ: dict[str, Any]) -> bool:
    uri = environ.get("REQUEST_URI", "")
    if "%" not in uri:
        return False
    path = uri.partition("?")[0].lower()
    return "%2f" in path or "%5c" in path


def _not_modified(environ: dict[str, Any], etag: str, mtime: int) -> bool:
    """RFC 9110 §13.2.2: If-None-Match decides when present, else If-Modified-Since."""
    none_match = environ.get("HTTP_IF_NONE_MATCH")
    if none_match is not None:
        return etag_matches(none_match, etag)
    since = environ.get("HTTP_IF_MODIFIED_SINCE")
    if since:
        when = parse_http_date(since)
        return when is not None and mtime <= when
    return False


def _if_range(environ: dict[str, Any], etag: str, mtime: int) -> bool:
    """``If-Range``: the range applies only if the validator still matches (§13.1.5)."""
    value = environ.get("HTTP_IF_RANGE")
    if not value:
        return True
    value = value.strip()
    if value.startswith('"') or value.startswith("W/"):
        return value == etag  # strong comparison; our tags are strong
    when = parse_http_date(value)
    return when is not None and when == mtime


def debug_static(app: Any, cfg: Any) -> Any:
    """Like runserver: with DEBUG on and django.contrib.staticfiles installed, STATIC_URL is
    served from the staticfiles finders (never with DEBUG off; ``nostatic`` turns it off)."""
    if cfg.nostatic:
        return app
    try:
        from django.apps import apps
        from django.conf import settings

        if not settings.DEBUG or not apps.is_installed("django.contrib.staticfiles") or \
                not settings.STATIC_URL:
            return app
    except Exception:  # not a configured Django project: a plain WSGI app
        return app
    from django.contrib.staticfiles.handlers import StaticFilesHandler

    handler = StaticFilesHandler(app)
    prefix = handler.base_url[2]

    def debug_static_then_app(environ: dict[str, Any], start_response: Any) -> Any:
        # Django's finders refuse a climbing path with SuspiciousFileOperation, which
        # escapes the handler as a 500 (under runserver too): answer 400 instead.
        path = environ.get("PATH_INFO", "")
        if path.startswith(prefix):
            try:
                split_path(path.encode("latin-1", "replace"))
            except Refused as exc:
                return refuse(environ, start_response, str(exc))
        return handler(environ, start_response)

    return debug_static_then_app
