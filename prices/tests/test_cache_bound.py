"""The server's own price cache (no Redis) stays under its byte budget."""

from __future__ import annotations

import numpy as np
import pytest
from django.conf import settings
from django.core.cache import caches

from prices import cache
from prices.cache import BoundedLocMemCache
from prices.types import PriceSeries


def series(n: int, value: float) -> PriceSeries:
    return PriceSeries(np.arange(n, dtype=np.int64), *(np.full(n, value),) * 5)


def test_least_recently_used_series_go_past_the_byte_budget():
    # Each entry: 1,000 bars x 48 bytes plus its header and pickling (~48 KB).
    store = BoundedLocMemCache("bound-test", {"OPTIONS": {"MAX_BYTES": 150_000}})
    for name in "abc":
        store.set(name, cache.encode(series(1000, 1.0)))
    assert store.get("a") is not None  # "a" is now the most recently used
    store.set("d", cache.encode(series(1000, 2.0)))
    # 4 x ~48 KB > 150 KB: the least recently used ("b") went, nothing else.
    assert [store.get(k) is not None for k in "abcd"] == [True, False, True, True]
    kept = cache.decode(store.get("d"))
    np.testing.assert_array_equal(kept.close, np.full(1000, 2.0))
    store.set("e", cache.encode(series(4000, 3.0)))  # ~192 KB alone: kept alone
    assert [store.get(k) is not None for k in "acde"] == [False, False, False, True]


def test_a_server_without_redis_bounds_its_price_cache():
    if settings.REDIS_URL:
        pytest.skip("Redis holds the prices here, outside the server")
    backend = caches["default"]
    assert isinstance(backend, BoundedLocMemCache)
    assert backend._max_bytes == 256 * 2**20  # PRICE_CACHE_LOCAL_MB's default
