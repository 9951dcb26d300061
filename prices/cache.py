"""The one module that owns cached price arrays: keys, the bytes codec, hit counts.

Values are raw little-endian float64 bytes (time stored bit-for-bit as int64), so
a hit is one MGET plus ``np.frombuffer`` - no JSON, no per-row objects. Keys carry
the coin's ``data_version``; an import bumps it, so stale entries are never read
again and simply expire. Any cache failure (Redis down, timeout) is logged and
treated as a miss: the caller then reads the database and still gets correct data.
"""

from __future__ import annotations

import logging
import pickle
import struct
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping

import numpy as np
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.locmem import LocMemCache

from prices.types import PriceSeries

logger = logging.getLogger(__name__)

KEY_PREFIX = "prices"
# Bump when the codec or key layout changes so old entries are ignored.
SCHEMA_VERSION = 1
_MAGIC = b"BTP1"
_HEADER = struct.Struct("<4sQ")
_BAR_BYTES = 6 * 8  # time and five prices, eight bytes each


class _Stats:
    """Process-wide hit/miss/error counters (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.hits = self.misses = self.errors = 0

    def add(self, *, hits: int = 0, misses: int = 0, errors: int = 0) -> None:
        with self._lock:
            self.hits += hits
            self.misses += misses
            self.errors += errors

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {"hits": self.hits, "misses": self.misses, "errors": self.errors}

    def reset(self) -> None:
        with self._lock:
            self.hits = self.misses = self.errors = 0


stats = _Stats()


class PassthroughSerializer:
    """django-redis serializer: price payloads as-is, anything else pickled.

    Pickling an 80 MB set of arrays and unpickling it again costs more than the
    Redis round trip itself; our payloads are already bytes with a magic prefix
    (pickle output starts with 0x80, so the two never collide).
    """

    def __init__(self, options: dict | None = None) -> None:
        self.protocol = pickle.HIGHEST_PROTOCOL

    def dumps(self, value: object) -> bytes:
        if isinstance(value, bytes) and value[:4] == _MAGIC:
            return value
        return pickle.dumps(value, self.protocol)

    def loads(self, value: bytes) -> object:
        if value[:4] == _MAGIC:
            return value
        return pickle.loads(value)


class _Local:
    """A process-local, least-recently-used copy of series read from the
    shared cache (read-only views of its bytes), in front of it; off (0 bytes)
    unless ``keep_local`` is called.

    For processes that load the same coins task after task (Celery workers):
    a hit skips the transfer from Redis. Keys are the shared cache's, which
    carry the coin's ``data_version``, so an import misses here too.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[str, tuple[PriceSeries, int]] = OrderedDict()
        self._bytes = 0
        self.limit = 0
        self.largest = 0  # bytes of the largest series kept (0: the limit)

    def get_many(self, keys: Iterable[str]) -> dict[str, PriceSeries]:
        if not self.limit:
            return {}
        found = {}
        with self._lock:
            for key in keys:
                if key in self._items:
                    self._items.move_to_end(key)
                    found[key] = self._items[key][0]
        return found

    def put(self, key: str, series: PriceSeries) -> None:
        size = _BAR_BYTES * len(series.time)
        if not self.limit or size > (self.largest or self.limit):
            return
        with self._lock:
            if key in self._items:
                self._bytes -= self._items.pop(key)[1]
            self._items[key] = (series, size)
            self._bytes += size
            while self._bytes > self.limit:
                self._bytes -= self._items.popitem(last=False)[1][1]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


_local = _Local()


def keep_local(megabytes: int, largest_mb: float = 0) -> None:
    """Keep up to ``megabytes`` of series read from the shared cache in this
    process (0: none, the default), in front of it; with ``largest_mb``, no
    series larger than that."""
    _local.limit = max(0, int(megabytes)) * 1024 * 1024
    _local.largest = int(max(0.0, largest_mb) * 1024 * 1024)
    if not _local.limit:
        _local.clear()


class BoundedLocMemCache(LocMemCache):
    """Django's local-memory cache, also kept under ``OPTIONS["MAX_BYTES"]`` of
    stored values (least recently used go first).

    The cache of a server without Redis: it lives in the server's own memory,
    and a count of entries does not bound it (one coin's five years of hourly
    bars is 2.1 MB, a year of minute bars 25 MB; 200 coins' hourly history
    alone is 420 MB).
    """

    def __init__(self, name: str, params: dict) -> None:
        super().__init__(name, params)
        self._max_bytes = int(params.get("OPTIONS", {}).get("MAX_BYTES", 0))

    def _set(self, key: str, value: bytes, timeout: object = DEFAULT_TIMEOUT) -> None:
        super()._set(key, value, timeout)
        if not self._max_bytes:
            return
        # A few hundred entries at most: summing them is cheaper than keeping
        # a running total in step with every expiry and delete.
        total = sum(len(stored) for stored in self._cache.values())
        while total > self._max_bytes and len(self._cache) > 1:
            # The parent keeps the most recently used first.
            old, stored = self._cache.popitem()
            del self._expire_info[old]
            total -= len(stored)


def _cache():
    return caches[getattr(settings, "PRICE_CACHE_ALIAS", "default")]


def _bound(value: int | None) -> str:
    return "-" if value is None else str(int(value))


def series_key(
    coin_id: int, data_version: int, interval: str, start: int | None, end: int | None
) -> str:
    """Return the cache key of one coin's bars for an interval and [start, end)."""
    return (
        f"{KEY_PREFIX}:v{SCHEMA_VERSION}:{coin_id}:{data_version}:{interval}:"
        f"{_bound(start)}:{_bound(end)}"
    )


def encode(series: PriceSeries) -> bytes:
    """Pack a series into one header plus a (6, n) float64 block."""
    n = len(series.time)
    block = np.empty((6, n), dtype="<f8")
    block[0] = np.asarray(series.time, dtype="<i8").view("<f8")
    for row, column in enumerate(series[1:], start=1):
        block[row] = column
    # Joined straight from the array's memory: one copy of a coin-year of
    # minutes (25 MB), not two (tobytes, then the concatenation).
    return b"".join(
        (_HEADER.pack(_MAGIC, n), memoryview(block.reshape(-1).view(np.uint8)))
    )


def decode(payload: bytes) -> PriceSeries:
    """Unpack bytes made by :func:`encode` (read-only views, no copy)."""
    magic, n = _HEADER.unpack_from(payload)
    if magic != _MAGIC or len(payload) != _HEADER.size + _BAR_BYTES * n:
        raise ValueError("price cache entry has an unknown layout")
    block = np.frombuffer(payload, dtype="<f8", offset=_HEADER.size).reshape(6, n)
    return PriceSeries(block[0].view("<i8"), *block[1:])


def get_many(keys: Iterable[str]) -> dict[str, PriceSeries]:
    """Return the cached series found for ``keys``; a failure finds nothing.

    Only errors are counted here: the loader counts hits and misses per coin
    (a coin may be looked up under two keys).
    """
    keys = list(keys)
    result = _local.get_many(keys)
    keys = [key for key in keys if key not in result]
    if not keys:
        return result
    try:
        found = _cache().get_many(keys)
    except Exception as exc:  # noqa: BLE001 - any backend failure means "miss"
        stats.add(errors=1)
        logger.warning("price cache unavailable (%s); reading the database", exc)
        return result
    for key, payload in found.items():
        try:
            result[key] = decode(payload)
        except (ValueError, TypeError, struct.error):
            logger.warning("ignoring malformed price cache entry %s", key)
        else:
            _local.put(key, result[key])
    return result


def set_many(items: Mapping[str, PriceSeries]) -> None:
    """Store series under their keys for PRICE_CACHE_TTL seconds; never raise."""
    if not items:
        return
    try:
        _cache().set_many(
            {key: encode(series) for key, series in items.items()},
            timeout=settings.PRICE_CACHE_TTL,
        )
    except Exception as exc:  # noqa: BLE001
        stats.add(errors=1)
        logger.warning("price cache write failed (%s); continuing without it", exc)


def missing(keys: Iterable[str]) -> list[str] | None:
    """Return which ``keys`` are not cached, asking only whether each exists (no
    arrays move); None when the cache cannot be reached."""
    keys = list(keys)
    try:
        backend = _cache()
        client = getattr(backend, "client", None)
        if hasattr(client, "get_client") and hasattr(client, "make_key"):
            # django-redis: every EXISTS in one pipelined round trip.
            pipe = client.get_client(write=False).pipeline(transaction=False)
            for key in keys:
                pipe.exists(client.make_key(key))
            found = pipe.execute()
        else:
            found = [backend.has_key(key) for key in keys]
        return [key for key, there in zip(keys, found, strict=True) if not there]
    except Exception as exc:  # noqa: BLE001
        stats.add(errors=1)
        logger.warning("price cache unavailable (%s); not warming it", exc)
        return None
