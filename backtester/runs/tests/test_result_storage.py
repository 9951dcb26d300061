"""How results are stored on PostgreSQL: the packed columns out of line and
uncompressed (they never compress, and trying cost most of a cached rerun)."""

from __future__ import annotations

import numpy as np
import pytest
from django.db import connection

from backtester.runs.cache import _copy_results
from backtester.runs.fields import unpack_columns
from backtester.runs.models import BacktestResult, BacktestRun


@pytest.mark.postgres
@pytest.mark.django_db
def test_packed_columns_are_stored_without_compression():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attname, attstorage FROM pg_attribute "
            "WHERE attrelid = 'backtester_backtestresult'::regclass "
            "AND attname IN ('trades', 'equity')"
        )
        storage = dict(cursor.fetchall())
    # 'e' is EXTERNAL: out of line, never compressed; 'x' (the default) tries pglz.
    assert storage == {"trades": "e", "equity": "e"}


@pytest.mark.django_db
def test_a_copied_result_keeps_its_columns_bit_for_bit():
    rng = np.random.default_rng(7)
    # Random floats: nothing a compressor could shrink, large enough to go out
    # of line (well past PostgreSQL's 2 kB threshold).
    equity = {"time": np.arange(600, dtype=np.int64), "strategy": rng.random(600)}
    trades = {"return_pct": rng.normal(size=400), "bars_held": np.arange(400)}
    source = BacktestRun.objects.create(strategies=[], status="complete")
    BacktestResult.objects.create(
        run=source, symbol="AAA", strategy="sma_crossover", params={"fast": 5},
        seq=1, trades=trades, equity=equity,
    )  # fmt: skip
    copy = BacktestRun.objects.create(strategies=[], status="complete")
    assert _copy_results(source.pk, copy.pk) == 1
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT trades, equity FROM backtester_backtestresult WHERE run_id = %s",
            [copy.pk],
        )
        ((stored_trades, stored_equity),) = cursor.fetchall()
    for stored, expected in ((stored_trades, trades), (stored_equity, equity)):
        columns = unpack_columns(bytes(stored))
        assert columns.keys() == expected.keys()
        for name, values in expected.items():
            assert columns[name].tobytes() == np.asarray(values).tobytes()
