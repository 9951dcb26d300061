"""Behaviour on the real servers: PostgreSQL plans and constraints, Redis cache."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime

import numpy as np
import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.test import override_settings

from prices import cache
from prices.models import Cryptocurrency, PriceBar
from prices.selectors import bars_load, bars_queryset
from prices.services import bars_import
from prices.types import PriceSeries


def series(n: int, price: float = 100.0) -> PriceSeries:
    t = 1_704_067_200 + 3600 * np.arange(n, dtype=np.int64)
    close = price + np.arange(n, dtype=float)
    return PriceSeries(t, close, close + 1, close - 1, close, np.ones(n))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_real_data_import_twice_gives_identical_counts(real_data_dir):
    files = sorted(real_data_dir.glob("*.csv.gz"))
    counts = []
    for attempt in range(2):
        out = io.StringIO()
        began = time.perf_counter()
        call_command(
            "import_prices", *map(str, files), stdout=out, stderr=io.StringIO()
        )
        elapsed = time.perf_counter() - began
        hourly = PriceBar.objects.filter(interval="1h").count()
        daily = PriceBar.objects.filter(interval="1d").count()
        counts.append((hourly, daily))
        print(f"import pass {attempt + 1}: {hourly:,} rows in {elapsed:.1f}s "
              f"({hourly / elapsed:,.0f} rows/s)")  # fmt: skip
    # The data set's README: 48 files, 1,708,253 rows.
    assert counts[0] == counts[1]
    assert counts[0][0] == 1_708_253
    assert Cryptocurrency.objects.count() == 48


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_loading_query_is_an_index_only_scan_on_the_covering_index():
    for i in range(5):
        bars_import(symbol=f"C{i}", series=series(20_000, price=10 + i))
    all_visible_after_vacuum()
    coin = Cryptocurrency.objects.get(symbol="C1")
    qs = bars_queryset(
        [coin.id],
        start=datetime(2024, 2, 1, tzinfo=UTC),
        end=datetime(2024, 3, 1, tzinfo=UTC),
        epoch=False,
    )
    sql, params = qs.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Index Only Scan using pricebar_1h_covering_idx" in plan, plan
    assert "Heap Fetches: 0" in plan, plan


def all_visible_after_vacuum(timeout: float = 60.0) -> None:
    """VACUUM until every page of the bars table is marked all-visible.

    The planner prices an index-only scan by the share of all-visible pages, so
    the plan depends on it. VACUUM cannot mark a page whose rows are newer than
    the oldest snapshot still open in the database: an autovacuum ANALYZE that
    started between two of the imports above does exactly that for a moment.
    Such snapshots end on their own, so VACUUM again until the map is full.
    """
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while True:
            cursor.execute("VACUUM ANALYZE prices_pricebar")
            cursor.execute(
                "SELECT relpages, relallvisible FROM pg_class"
                " WHERE oid = 'prices_pricebar'::regclass"
            )
            pages, visible = cursor.fetchone()
            if visible >= pages:
                return
            if time.monotonic() > deadline:
                cursor.execute(
                    "SELECT pid, backend_type, state, backend_xmin, query"
                    " FROM pg_stat_activity WHERE backend_xmin IS NOT NULL"
                    " AND pid <> pg_backend_pid()"
                )
                holders = cursor.fetchall()
                pytest.fail(
                    f"{visible} of {pages} pages all-visible after {timeout:.0f} s;"
                    f" snapshots held by {holders}"
                )
            time.sleep(0.2)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("values", "constraint"),
    [
        ({"open": 10, "high": 9, "low": 11, "close": 10, "volume": 1}, "high_gte_low"),
        ({"open": -1, "high": 9, "low": 1, "close": 5, "volume": 1}, "prices_positive"),
        ({"open": 5, "high": 9, "low": 1, "close": 5, "volume": -1}, "volume_non_neg"),
    ],
)
def test_check_constraints_reject_bad_bars(values, constraint):
    coin = Cryptocurrency.objects.create(symbol="BAD")
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        PriceBar.objects.create(
            crypto=coin, interval="1h", time=datetime(2024, 1, 1, tzinfo=UTC), **values
        )


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_cache_lives_in_redis():
    from django_redis import get_redis_connection

    bars_import(symbol="AAA", series=series(20))
    bars_load(["AAA"])
    keys = get_redis_connection("default").keys("*prices:v*")
    assert len(keys) == 1
    raw = get_redis_connection("default").get(keys[0])
    assert raw[:4] == b"BTP1"  # raw array bytes, not JSON or pickle


@pytest.mark.django_db(transaction=True)
def test_loader_falls_back_to_the_database_when_redis_stops(private_redis):
    server, caches = private_redis
    bars_import(symbol="AAA", series=series(50))
    with override_settings(CACHES=caches):
        cache.stats.reset()
        first = bars_load(["AAA"])["AAA"]
        second = bars_load(["AAA"])["AAA"]
        assert cache.stats.snapshot() == {"hits": 1, "misses": 1, "errors": 0}
        server.stop()
        third = bars_load(["AAA"])["AAA"]
        assert cache.stats.snapshot()["errors"] >= 1
        for a, b, c in zip(first, second, third, strict=True):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(a, c)


@pytest.mark.django_db(transaction=True)
def test_a_worker_keeps_series_read_from_redis_until_new_data(private_redis):
    server, caches = private_redis
    bars_import(symbol="AAA", series=series(50))
    with override_settings(CACHES=caches):
        bars_load(["AAA"])  # a miss: read from the database, stored in Redis
        cache.keep_local(64)
        try:
            kept = bars_load(["AAA"])["AAA"]  # read from Redis, kept here
            server.stop()
            cache.stats.reset()
            again = bars_load(["AAA"])["AAA"]
            # Served from this process: Redis is down and nothing failed.
            assert cache.stats.snapshot() == {"hits": 1, "misses": 0, "errors": 0}
            assert again.close is kept.close
            # New bars bump the coin's data_version: the kept copy is not used.
            bars_import(symbol="AAA", series=series(60))
            fresh = bars_load(["AAA"])["AAA"]
            assert len(fresh.time) == 60
            assert cache.stats.snapshot()["misses"] == 1
        finally:
            cache.keep_local(0)


def test_the_kept_series_stay_within_their_megabytes():
    cache.keep_local(1)  # 1 MiB: 21,845 bars of 48 bytes
    try:
        big = series(10_000)  # 480,000 bytes each
        for name in "ABC":
            cache._local.put(name, big)
        assert set(cache._local.get_many("ABC")) == {"B", "C"}
        cache._local.get_many(["B"])  # B is now the most recently used
        cache._local.put("D", big)
        assert set(cache._local.get_many("ABCD")) == {"B", "D"}
        cache._local.put("huge", series(30_000))  # larger than the whole limit
        assert cache._local.get_many(["huge"]) == {}
    finally:
        cache.keep_local(0)
    assert cache._local.get_many(["B"]) == {}


def test_a_server_keeps_no_series_over_its_largest():
    cache.keep_local(2, largest_mb=0.25)  # 2 MiB, each series at most 256 kB
    try:
        cache._local.put("small", series(5_000))  # 240,000 bytes
        cache._local.put("large", series(10_000))  # 480,000 bytes
        assert set(cache._local.get_many(["small", "large"])) == {"small"}
    finally:
        cache.keep_local(0)
