"""The shared-memory caches of ``--cache2`` (uWSGI's caching framework, local caches only).

Each cache is a fixed table of ``items`` slots in a memfd mapped before the fork, so every
worker (and the master) sees the same items and the memory is bounded: ``items`` ×
(``keysize`` + ``blocksize``), allocated by the kernel only as slots are written. Keys are
found by open addressing (crc32, linear probing, tombstones); one cross-process lock per
cache serialises readers and writers. Expired items read as missing and their slots are
reused; nothing sweeps them in the background. A reload that re-executes the master hands
the memory over to the new image, so the items survive it (uWSGI's do not, without store).
"""

from __future__ import annotations

import mmap
import os
import struct
import time
import zlib
from typing import Any

from ..conf.registry import ConfigError
from .locks import LockSet

# state (0 empty, 1 used, 2 deleted), key length, value length, expiry (0: never), crc32
_HEAD = struct.Struct("<BxHIdI4x")
_EMPTY, _USED, _DELETED = 0, 1, 2
_KEYS = {"name": "name", "items": "items", "maxitems": "items", "max_items": "items",
         "blocksize": "blocksize", "keysize": "keysize", "key_size": "keysize",
         "blocks": "blocks"}
DEFAULT_BLOCKSIZE = 65536
DEFAULT_KEYSIZE = 2048
_MAX_BYTES = 1 << 36  # a typo in items must not ask for terabytes


def parse_cache2(text: str) -> dict[str, Any]:
    """``name=NAME,items=N[,blocksize=B][,keysize=K]`` (uWSGI's keyval syntax)."""
    spec: dict[str, Any] = {"blocksize": DEFAULT_BLOCKSIZE, "keysize": DEFAULT_KEYSIZE}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in _KEYS:
            raise ConfigError(f"invalid value {text!r} for option 'cache2': "
                              f"{'unknown key ' + repr(key) if sep else repr(part) + ' is not key=value'}"
                              f" (runuwsgi supports name, items, blocksize, keysize)")
        key = _KEYS[key]
        if key == "name":
            spec["name"] = value.strip()
            continue
        try:
            spec[key] = int(value)
            if spec[key] < 1:
                raise ValueError
        except ValueError:
            raise ConfigError(f"invalid value {text!r} for option 'cache2': {key} must be a "
                              f"positive integer") from None
    if not spec.get("name"):
        raise ConfigError(f"invalid value {text!r} for option 'cache2': expected name=NAME")
    if "items" not in spec:
        raise ConfigError(f"invalid value {text!r} for option 'cache2': expected items=N "
                          f"(the most items the cache holds)")
    if spec.pop("blocks", spec["items"]) != spec["items"]:
        raise ConfigError(f"invalid value {text!r} for option 'cache2': runuwsgi stores one "
                          f"item per block: leave out blocks or make it equal to items")
    if spec["keysize"] > 65535:
        raise ConfigError(f"invalid value {text!r} for option 'cache2': keysize is at most 65535")
    size = spec["items"] * (_HEAD.size + spec["keysize"] + spec["blocksize"])
    if size > _MAX_BYTES:
        raise ConfigError(f"invalid value {text!r} for option 'cache2': items × (keysize + "
                          f"blocksize) is {size >> 30} GiB of memory")
    return spec


class SharedCache:
    def __init__(self, name: str, items: int, blocksize: int = DEFAULT_BLOCKSIZE,
                 keysize: int = DEFAULT_KEYSIZE, fd: int | None = None) -> None:
        """``fd``: the memory of the same cache in the previous master image (a reload
        keeps the items)."""
        self.name, self.items = name, items
        self.blocksize, self.keysize = blocksize, keysize
        self._slot = (_HEAD.size + keysize + blocksize + 7) & ~7
        if fd is None:
            fd = os.memfd_create(f"django-uwsgi-server-cache-{name}")
            os.ftruncate(fd, self._slot * items)
        self.fd = fd
        self._mm = mmap.mmap(fd, self._slot * items)
        # A record lock on the cache's own file: nothing else to hand over on a reload.
        self._lock = LockSet(1, fd=fd)

    def spec(self) -> list[int]:
        return [self.items, self.blocksize, self.keysize]

    # -- the table -----------------------------------------------------------------------
    def _find(self, key: bytes, now: float) -> tuple[int, int]:
        """(slot of key or -1, first reusable slot or -1). Expired items are freed."""
        crc = zlib.crc32(key)
        mm, size, items = self._mm, self._slot, self.items
        free = -1
        start = crc % items
        for i in range(items):
            slot = (start + i) % items
            off = slot * size
            state, klen, _vlen, expires, h = _HEAD.unpack_from(mm, off)
            if state == _EMPTY:
                return -1, free if free >= 0 else slot
            if state == _USED and expires and expires <= now:
                _HEAD.pack_into(mm, off, _DELETED, 0, 0, 0.0, 0)
                state = _DELETED
            if state == _DELETED:
                if free < 0:
                    free = slot
                continue
            if h == crc and klen == len(key) and mm[off + _HEAD.size: off + _HEAD.size + klen] == key:
                return slot, free
        return -1, free

    def _value(self, slot: int) -> bytes:
        off = slot * self._slot
        _state, _klen, vlen, _exp, _h = _HEAD.unpack_from(self._mm, off)
        start = off + _HEAD.size + self.keysize
        return self._mm[start: start + vlen]

    def _write(self, slot: int, key: bytes, value: bytes, expires: int) -> None:
        off = slot * self._slot
        mm = self._mm
        mm[off + _HEAD.size: off + _HEAD.size + len(key)] = key
        start = off + _HEAD.size + self.keysize
        mm[start: start + len(value)] = value
        deadline = time.time() + expires if expires else 0.0
        _HEAD.pack_into(mm, off, _USED, len(key), len(value), deadline, zlib.crc32(key))

    # -- uWSGI's operations (None for a failure, as uWSGI returns) --------------------------
    def get(self, key: bytes) -> bytes | None:
        with self:
            slot, _ = self._find(key, time.time())
            return self._value(slot) if slot >= 0 else None

    def exists(self, key: bytes) -> bool:
        with self:
            return self._find(key, time.time())[0] >= 0

    def set(self, key: bytes, value: bytes, expires: int, update: bool) -> bool | None:
        """``update=False``: only when the key is missing (uwsgi.cache_set)."""
        if len(key) > self.keysize or len(value) > self.blocksize or not key:
            return None
        with self:
            slot, free = self._find(key, time.time())
            if slot >= 0 and not update:
                return None
            if slot < 0:
                if free < 0:
                    return None  # full
                slot = free
            self._write(slot, key, value, expires)
            return True

    def delete(self, key: bytes) -> bool | None:
        with self:
            slot, _ = self._find(key, time.time())
            if slot < 0:
                return None
            _HEAD.pack_into(self._mm, slot * self._slot, _DELETED, 0, 0, 0.0, 0)
            return True

    def clear(self) -> bool:
        with self:
            try:  # gives the memory back too: the pages read as zeros (empty slots)
                self._mm.madvise(mmap.MADV_REMOVE)
            except (AttributeError, OSError):
                for slot in range(self.items):
                    _HEAD.pack_into(self._mm, slot * self._slot, _EMPTY, 0, 0, 0.0, 0)
            return True

    def keys(self) -> list[bytes]:
        now = time.time()
        found = []
        with self:
            for slot in range(self.items):
                off = slot * self._slot
                state, klen, _vlen, expires, _h = _HEAD.unpack_from(self._mm, off)
                if state == _USED and not (expires and expires <= now):
                    found.append(self._mm[off + _HEAD.size: off + _HEAD.size + klen])
        return found

    def __enter__(self) -> SharedCache:
        self._lock.acquire(0)
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release(0)
