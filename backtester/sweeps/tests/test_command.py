"""`manage.py sweep`: cells against separate backtests, skipped combinations,
output formats and errors; storing a unit of work twice."""

from __future__ import annotations

import csv
import io
import json
import statistics

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from backtester.runs.tests.factories import make_coins
from backtester.sweeps.models import Sweep, SweepCell, SweepCoinResult
from backtester.sweeps.selectors import sweep_all_done, sweep_plan
from backtester.sweeps.services import sweep_block_compute
from prices.services import bars_import
from prices.types import PriceSeries
from strategies.tests.realdata import load_bars

pytestmark = pytest.mark.django_db(transaction=True)
REAL = ["BTC", "ETH", "SOL"]


def run(command: str, *args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command(command, *args, stdout=out, stderr=err)
    return out.getvalue()


# 2023-03-01 .. 2023-09-01: half a year that all three coins cover.
SPAN = (1_677_628_800, 1_693_526_400)


@pytest.fixture
def real_coins(real_data_dir):
    """Import half a year of real hourly bars of three coins."""
    for symbol in REAL:
        series = PriceSeries(*load_bars(real_data_dir, symbol)).slice(*SPAN)
        bars_import(symbol=symbol, series=series)


@pytest.fixture
def coins():
    make_coins(["AAA", "BBB", "CCC"], bars=600)


def test_cells_equal_the_medians_of_separate_backtests(real_coins):
    args = [
        "--strategy", "sma_crossover", "--grid", "fast=10,20",
        "--grid", "slow=40:60:20", "--symbols", ",".join(REAL),
        "--start", "2023-04-01", "--format", "json",
    ]  # fmt: skip
    payload = json.loads(run("sweep", *args))
    assert set(payload) == {"sweep", "cells", "best"}
    assert payload["sweep"]["axes"] == {"fast": [10, 20], "slow": [40, 60]}
    assert payload["sweep"]["skipped"] == 0
    assert len(payload["cells"]) == 4
    for cell in payload["cells"]:
        params = cell["params"]
        args = [
            "--strategy", "sma_crossover",
            "--param", f"fast={params['fast']}", "--param", f"slow={params['slow']}",
            "--symbols", ",".join(REAL), "--start", "2023-04-01",
            "--format", "json", "--no-save",
        ]  # fmt: skip
        separate = json.loads(run("backtest", *args))
        metrics = [r["metrics"] for r in separate["results"]]
        returns = [m["total_return_pct"] for m in metrics]
        assert cell["coins"] == 3
        # Three coins: the median is the middle value exactly.
        assert cell["median_return_pct"] == sorted(returns)[1]
        assert cell["mean_return_pct"] == pytest.approx(np.mean(returns), rel=1e-12)
        sharpes = [m["sharpe"] for m in metrics if m["sharpe"] is not None]
        # A sweep takes Sharpe and the drawdown from per-trade sums and range
        # queries (strategies.segments), not from each equity curve: equal to
        # a separate backtest's to rounding, 1e-9 stated.
        assert cell["mean_sharpe"] == pytest.approx(np.mean(sharpes), rel=1e-9)
        drawdowns = sorted(m["max_drawdown_pct"] for m in metrics)
        assert cell["median_max_drawdown_pct"] == pytest.approx(drawdowns[1], rel=1e-9)
        assert cell["trades"] == sum(m["num_trades"] for m in metrics)
        assert cell["beat_buy_hold"] == sum(
            1
            for m in metrics
            if m["num_trades"] and m["total_return_pct"] > m["buy_hold_return_pct"]
        )
    medians = [c["median_return_pct"] for c in payload["cells"]]
    best = payload["best"]
    assert best["median_return_pct"] == max(medians)
    assert best["params"] == payload["cells"][medians.index(max(medians))]["params"]


def test_invalid_combinations_are_skipped_and_counted(coins, settings):
    settings.SWEEP_FIRST_BLOCK = 12  # the 3 combinations in one block
    args = [
        "--strategy", "sma_crossover", "--grid", "fast=10,30,50",
        "--grid", "slow=30,50", "--format", "json",
    ]  # fmt: skip
    payload = json.loads(run("sweep", *args))
    # fast < slow holds for (10, 30), (10, 50), (30, 50) only.
    assert payload["sweep"]["skipped"] == 3
    assert [(c["params"]["fast"], c["params"]["slow"]) for c in payload["cells"]] == [
        (10, 30),
        (10, 50),
        (30, 50),
    ]
    assert payload["sweep"]["status"] == "complete"
    assert payload["sweep"]["symbols"] == ["AAA", "BBB", "CCC"]
    sweep = Sweep.objects.get()
    assert sweep.source == "cli" and sweep.completed == 3
    # 3 coins x 1 block each: three packed rows, not one per backtest.
    assert SweepCoinResult.objects.count() == 3


def test_table_and_csv(coins):
    args = [
        "--strategy", "ema_crossover", "--grid", "fast=5:15:5",
        "--grid", "slow=20,40", "--symbols", "AAA,BBB",
    ]  # fmt: skip
    table = run("sweep", *args)
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["fast", "slow", "coins"]
    body = lines[2 : lines.index("")]
    assert len(body) == 6
    medians = [float(line.split()[3]) for line in body]
    assert medians == sorted(medians, reverse=True)  # best first
    assert "6/6 combinations" in table and "0 skipped" in table
    rows = list(csv.DictReader(io.StringIO(run("sweep", *args, "--format", "csv"))))
    assert len(rows) == 6
    assert {r["coins"] for r in rows} == {"2"}
    assert json.loads(rows[0]["params"])["fast"] == int(rows[0]["fast"])


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--grid", "fast=10:5:5"], "--grid fast:"),
        (["--grid", "fast=a,b"], "--grid fast:"),
        (["--grid", "speed=1,2"], "--grid speed:"),
        (["--grid", "fast=1,2"], "--grid fast:"),  # below the minimum of 2
        (["--grid", "fast=60,70"], "--grid: none of its 2"),
        (["--grid", "fast"], "--grid: expected NAME="),
        (["--grid", "fast=5,10", "--objective", "luck"], "--objective:"),
        (["--grid", "fast=5,10", "--symbols", "NOPE"], "--symbols:"),
        (["--grid", "fast=5,10", "--format", "xml"], "--format:"),
        ([], "--grid: give at least one axis"),
    ],
)
def test_bad_arguments_name_the_flag(coins, args, needle):
    with pytest.raises(CommandError) as info:
        run("sweep", "--strategy", "sma_crossover", *args)
    assert str(info.value).startswith(needle), str(info.value)
    assert Sweep.objects.count() == 0


def test_storing_a_block_twice_stores_it_once(coins):
    args = [
        "--strategy",
        "sma_crossover",
        "--grid",
        "fast=5,10",
        "--grid",
        "slow=20,30",
    ]
    run("sweep", *args)
    sweep = Sweep.objects.get()
    plan = sweep_plan(sweep.pk)
    cells_before = {
        c.index: (c.median_return_pct, c.trades) for c in SweepCell.objects.all()
    }
    rows_before = SweepCoinResult.objects.count()
    # A retried unit of work: nothing new is stored, nothing counted twice; the
    # block's finished cells are reported again (the consumer drops repeats).
    block = list(plan.blocks()[0])
    events = sweep_block_compute(sweep.pk, "AAA", block)
    assert SweepCoinResult.objects.count() == rows_before
    sweep.refresh_from_db()
    assert sweep.completed == 4
    assert [c["index"] for c in events[0]["cells"]] == block
    after = {c.index: (c.median_return_pct, c.trades) for c in SweepCell.objects.all()}
    assert after == cells_before


def test_a_block_is_reported_once_by_the_coin_that_completes_it(coins, settings):
    from backtester.runs.services import run_coins
    from backtester.sweeps.services import sweep_create
    from backtester.sweeps.validation import sweep_spec

    settings.SWEEP_FIRST_BLOCK = 2
    settings.SWEEP_BLOCK = 2
    spec = sweep_spec(
        {"strategy": "sma_crossover", "grid": {"fast": [5, 10, 15], "slow": [20]}}
    )
    sweep = sweep_create(spec=spec, coins=run_coins(spec))
    plan = sweep_plan(sweep.pk)
    assert [list(b) for b in plan.blocks()] == [[0, 1], [2]]
    reported = []
    for symbol in ("AAA", "BBB", "CCC"):
        for block in plan.blocks():
            assert not sweep_all_done(sweep.pk)
            events = sweep_block_compute(sweep.pk, symbol, list(block))
            reported.append((symbol, [c["index"] for e in events for c in e["cells"]]))
    assert sweep_all_done(sweep.pk)
    assert reported == [
        ("AAA", []), ("AAA", []), ("BBB", []), ("BBB", []),
        ("CCC", [0, 1]), ("CCC", [2]),
    ]  # fmt: skip
    # The cells hold the medians of the three coins' stored metrics.
    cell = SweepCell.objects.get(sweep=sweep, index=1)
    returns = []
    for row in SweepCoinResult.objects.filter(sweep=sweep, first=0):
        position = row.metrics["index"].tolist().index(1)
        returns.append(float(row.metrics["total_return_pct"][position]))
    assert cell.done and cell.coins == 3
    assert cell.median_return_pct == statistics.median(returns)
    with pytest.raises(ValueError, match="combo_indices"):
        sweep_block_compute(sweep.pk, "AAA", [1, 2])


def test_axes_keep_the_grid_order(coins):
    # PostgreSQL's jsonb would hand {"slow", "fast"} back as fast, slow.
    args = ["--strategy", "sma_crossover", "--grid", "slow=30,50", "--grid", "fast=10"]
    payload = json.loads(run("sweep", *args, "--format", "json"))
    assert list(payload["sweep"]["axes"]) == ["slow", "fast"]
    header = run("sweep", *args).splitlines()[0].split()
    assert header[:2] == ["slow", "fast"]


def test_pieces_stored_together_complete_their_blocks_once(coins, settings):
    from backtester.runs.services import run_coins
    from backtester.sweeps.services import (
        sweep_block_run,
        sweep_create,
        sweep_pieces_store,
    )
    from backtester.sweeps.validation import sweep_spec
    from prices.selectors import bars_load

    settings.SWEEP_FIRST_BLOCK = 2
    settings.SWEEP_BLOCK = 2
    spec = sweep_spec(
        {"strategy": "sma_crossover", "grid": {"fast": [5, 10, 15], "slow": [20]}}
    )
    sweep = sweep_create(spec=spec, coins=run_coins(spec))
    plan = sweep_plan(sweep.pk)
    series = bars_load(["AAA", "BBB", "CCC"])
    pieces = [
        sweep_block_run(plan, symbol, series[symbol], block)
        for block in plan.blocks()
        for symbol in ("AAA", "BBB", "CCC")
    ]
    # The first block's three coins and one coin of the second: one insert.
    events = sweep_pieces_store(plan, pieces[:4], complete=[0])
    assert [c["index"] for e in events for c in e["cells"]] == [0, 1]
    assert SweepCoinResult.objects.filter(sweep=sweep).count() == 4
    # Stored again (a duplicate): falls back to one by one, stores nothing
    # new, and reports the finished block again.
    events = sweep_pieces_store(plan, pieces[:4], complete=[0])
    assert [c["index"] for e in events for c in e["cells"]] == [0, 1]
    assert SweepCoinResult.objects.filter(sweep=sweep).count() == 4
    events = sweep_pieces_store(plan, pieces[4:], complete=[2])
    assert [c["index"] for e in events for c in e["cells"]] == [2]
    sweep.refresh_from_db()
    assert sweep.completed == 3 and sweep_all_done(sweep.pk)
