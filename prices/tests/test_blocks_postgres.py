"""Minute blocks on a real PostgreSQL server: the loading plan and bytes per bar."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from django.db import connection

from prices.blocks import blocks_queryset
from prices.models import Cryptocurrency, PriceBar, PriceBlock
from prices.packing import encode
from prices.selectors import bars_load
from prices.services import file_import
from prices.tests.minute_data import HEADER, minute_lines, plain_read, real_hours
from prices.types import PriceSeries

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_loading_query_reads_the_day_index_not_the_table():
    one = encode(
        PriceSeries(*(np.array([x]) for x in (60, 1.0, 2.0, 0.5, 1.5, 3.0))), 60
    )
    coins = [Cryptocurrency.objects.create(symbol=f"C{i}") for i in range(20)]
    PriceBlock.objects.bulk_create(
        PriceBlock(
            crypto=coin, interval="1m", day=date(2024, 1, 1) + timedelta(days=d),
            bars=1, data=one,
        )
        for coin in coins
        for d in range(365)
    )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE prices_priceblock")
    qs = blocks_queryset(
        [coins[3].id],
        interval="1m",
        start=datetime(2024, 3, 1, tzinfo=UTC),
        end=datetime(2024, 4, 1, tzinfo=UTC),
    )
    sql, params = qs.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Index Scan using priceblock_crypto_interval_day_uniq" in plan, plan
    assert "Seq Scan" not in plan, plan
    assert "rows=31 " in plan, plan  # the month's days, nothing more


def test_a_month_of_real_minutes_takes_under_40_bytes_a_bar(real_data_dir, tmp_path):
    hours = real_hours(real_data_dir / "BTCUSDT.csv.gz", 30 * 24, 20_005)
    lines = minute_lines(hours)
    path = tmp_path / "BTCUSDT-1m.csv"
    path.write_text(HEADER + "".join(lines))
    file_import(path)
    loaded = bars_load(["BTC"], interval="1m")["BTC"]
    assert list(zip(*(c.tolist() for c in loaded), strict=True)) == plain_read(lines)
    assert not PriceBar.objects.exists()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE prices_priceblock")
        cursor.execute("SELECT pg_total_relation_size('prices_priceblock')")
        (size,) = cursor.fetchone()
    per_bar = size / len(lines)
    print(f"{len(lines):,} bars, {size:,} bytes with indexes: {per_bar:.1f} B/bar")
    assert per_bar < 40
