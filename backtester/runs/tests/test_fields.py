"""The packed-columns codec and field, and the migration from JSON columns."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from backtester.runs.fields import MAGIC, pack_columns, unpack_columns
from backtester.runs.models import BacktestResult, BacktestRun


def test_round_trip_keeps_names_order_types_and_values() -> None:
    columns = {
        "time": np.array([1_700_000_000, 1_700_003_600], dtype=np.int64),
        "price": np.array([0.1 + 0.2, 1e-9]),
        "flag": np.array([True, False]),
        "empty": np.empty(0, dtype=np.float64),
    }
    out = unpack_columns(pack_columns(columns))
    assert list(out) == list(columns)
    for name, array in columns.items():
        assert out[name].dtype == array.dtype
        assert out[name].tobytes() == array.tobytes()  # bit for bit


def test_layout_is_magic_header_then_raw_little_endian_bytes() -> None:
    data = pack_columns({"x": [1.5, -2.0]})
    (size,) = struct.unpack_from("<I", data, 4)
    assert data[:4] == MAGIC
    assert data[8 : 8 + size] == b'[["x","<f8",2]]'
    assert data[8 + size :] == struct.pack("<2d", 1.5, -2.0)


def test_lists_are_accepted_and_big_endian_arrays_normalised() -> None:
    big = np.array([1, 2, 3], dtype=">i8")
    out = unpack_columns(pack_columns({"a": big, "b": [0.5, 0.25]}))
    assert out["a"].tolist() == [1, 2, 3] and out["a"].dtype == np.dtype("<i8")
    assert out["b"].tolist() == [0.5, 0.25]


@pytest.mark.parametrize(
    "bad",
    [{"m": [[1, 2], [3, 4]]}, {"s": ["a", "b"]}, {"o": np.array([None], dtype=object)}],
)
def test_only_flat_numeric_columns_are_packed(bad) -> None:
    with pytest.raises(ValueError, match=f"{next(iter(bad))}: expected a 1-D"):
        pack_columns(bad)


def test_corrupt_values_are_refused() -> None:
    data = pack_columns({"x": [1.0, 2.0]})
    with pytest.raises(ValueError, match="magic"):
        unpack_columns(b"JUNK" + data[4:])
    with pytest.raises(ValueError, match="trailing or missing"):
        unpack_columns(data + b"\0")
    assert unpack_columns(None) == {} and unpack_columns(b"") == {}


@pytest.mark.django_db
def test_field_stores_and_reads_back_columns() -> None:
    run = BacktestRun.objects.create(strategies=[], symbols=["AAA"])
    trades = {"entry_time": np.array([10, 20]), "return_pct": np.array([1.5, -0.5])}
    BacktestResult.objects.create(run=run, symbol="AAA", strategy="s", trades=trades)
    stored = BacktestResult.objects.get(run=run)
    assert stored.trades["entry_time"].tolist() == [10, 20]
    assert stored.trades["return_pct"].tolist() == [1.5, -0.5]
    assert stored.equity == {}


@pytest.mark.django_db(transaction=True)
def test_migration_converts_json_trades_and_equity_without_loss() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate([("backtester", "0001_initial")])
    old = executor.loader.project_state([("backtester", "0001_initial")]).apps
    Run = old.get_model("backtester", "BacktestRun")
    Result = old.get_model("backtester", "BacktestResult")
    run = Run.objects.create(strategies=[], symbols=["AAA", "BBB"])
    Result.objects.create(
        run=run, symbol="AAA", strategy="s", num_trades=5,
        trades={"count": 5, "entry_time": [100, 200], "exit_time": [150, 260],
                "entry_price": [1.25, 2.5], "exit_price": [1.5, 2.0],
                "return_pct": [20.0, -20.0], "bars_held": [1, 2],
                "fees": [0.1, 0.2], "closed_at_end": [False, True]},
        equity=[[100, 10_000.0, 10_000.0], [200, 10_500.0, 9_800.0]],
    )  # fmt: skip
    Result.objects.create(run=run, symbol="BBB", strategy="s", trades={}, equity=[])

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    aaa = BacktestResult.objects.get(symbol="AAA")
    assert aaa.trades["entry_time"].tolist() == [100, 200]
    assert aaa.trades["entry_price"].tolist() == [1.25, 2.5]
    assert aaa.trades["closed_at_end"].tolist() == [False, True]
    assert aaa.equity["time"].tolist() == [100, 200]
    assert aaa.equity["strategy"].tolist() == [10_000.0, 10_500.0]
    assert aaa.equity["buy_hold"].tolist() == [10_000.0, 9_800.0]
    bbb = BacktestResult.objects.get(symbol="BBB")
    assert len(bbb.trades["entry_time"]) == 0 and len(bbb.equity["time"]) == 0

    # And back: the JSON shapes return with the same values.
    executor = MigrationExecutor(connection)
    executor.migrate([("backtester", "0001_initial")])
    Result = executor.loader.project_state([("backtester", "0001_initial")]).apps
    Result = Result.get_model("backtester", "BacktestResult")
    aaa = Result.objects.get(symbol="AAA")
    assert aaa.trades["count"] == 5 and aaa.trades["exit_time"] == [150, 260]
    assert aaa.trades["closed_at_end"] == [False, True]
    assert aaa.equity == [[100, 10_000.0, 10_000.0], [200, 10_500.0, 9_800.0]]
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
