"""Every trade and every bar of a result: trades.json/.csv, equity.json, price.json."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import numpy as np
import pytest
from django.core.management import call_command

from backtester.runs import replay, series
from backtester.runs.models import BacktestResult, BacktestRun
from backtester.runs.tests.factories import START, random_walk
from prices.models import Cryptocurrency
from prices.services import bars_import
from strategies.tests import reference

pytestmark = pytest.mark.django_db(transaction=True)
BARS = 5000
RSI = {"period": 2, "lower": 30.0, "upper": 70.0}


@pytest.fixture(autouse=True)
def _fresh_replays():
    replay.cache_clear()
    yield
    replay.cache_clear()


def backtest(*args: str) -> BacktestRun:
    out = io.StringIO()
    call_command("backtest", *args, "--format", "json", stdout=out)
    return BacktestRun.objects.get(pk=json.loads(out.getvalue())["run"]["id"])


@pytest.fixture
def rsi_run() -> tuple[BacktestRun, BacktestResult]:
    """A 5,000-bar RSI(2) run on one coin: several hundred trades."""
    bars_import(symbol="AAA", series=random_walk(BARS, seed=7))
    run = backtest("--strategy", "rsi_reversion", "--param", "period=2",
                   "--symbols", "AAA", "--fee", "0.002")  # fmt: skip
    return run, run.results.get()


def reference_run(strategy: str, params: dict, fee: float):
    bars = random_walk(BARS, seed=7)
    close, open_ = bars.close.tolist(), bars.open.tolist()
    target = reference.targets(
        strategy, params, bars.high.tolist(), bars.low.tolist(), close
    )
    curve, _, trades = reference.simulate(
        target, open_, close, fee=fee, slippage_bps=0.0
    )
    return bars, curve, trades


def url(run: BacktestRun, name: str, **query) -> str:
    query = {"symbol": "AAA", "strategy": "rsi_reversion", **query}
    return f"/runs/{run.pk}/{name}?" + "&".join(f"{k}={v}" for k, v in query.items())


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_trades_csv_has_every_trade_of_the_reference(client, rsi_run):
    run, result = rsi_run
    bars, _, expected = reference_run("rsi_reversion", RSI, 0.002)
    assert result.num_trades == len(expected) > 400
    # The stored preview is capped; the CSV is not.
    assert len(result.trades["return_pct"]) < result.num_trades
    response = client.get(url(run, "trades.csv"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == result.num_trades
    for row, trade in zip(rows, expected, strict=True):
        assert row["entry_time"] == iso(int(bars.time[trade["entry_index"]]))
        assert row["exit_time"] == iso(int(bars.time[trade["exit_index"]]))
        assert float(row["entry_price"]) == pytest.approx(trade["entry_price"])
        assert float(row["exit_price"]) == pytest.approx(trade["exit_price"])
        assert float(row["return_pct"]) == pytest.approx(trade["return_pct"])
        assert int(row["bars_held"]) == trade["bars_held"]
        assert row["closed_at_end"] == str(trade["closed_at_end"])
    assert [int(r["n"]) for r in rows] == list(range(1, len(rows) + 1))


def test_trade_list_pages_through_every_trade(client, rsi_run):
    run, result = rsi_run
    seen, page, pages = [], 1, None
    while pages is None or page <= pages:
        data = client.get(url(run, "trades.json", page=page, per_page=100)).json()
        assert data["total"] == data["count"] == result.num_trades
        assert len(data["rows"]) <= 100
        seen += [row["n"] for row in data["rows"]]
        pages, page = data["pages"], page + 1
    assert seen == list(range(1, result.num_trades + 1))


def test_trade_list_filters_and_sorts_on_the_server(client, rsi_run):
    run, result = rsi_run
    _, _, expected = reference_run("rsi_reversion", RSI, 0.002)
    winners = [t for t in expected if t["return_pct"] > 0]
    losers = [t for t in expected if t["return_pct"] < 0]
    data = client.get(url(run, "trades.json", outcome="winners", per_page=500)).json()
    assert data["count"] == len(winners)
    assert all(row["return_pct"] > 0 for row in data["rows"])
    data = client.get(url(run, "trades.json", outcome="losers", per_page=500)).json()
    assert data["count"] == len(losers)
    data = client.get(url(run, "trades.json", sort="-return_pct", per_page=5)).json()
    best = sorted((t["return_pct"] for t in expected), reverse=True)[:5]
    assert [r["return_pct"] for r in data["rows"]] == pytest.approx(best)
    data = client.get(url(run, "trades.json", side="long", per_page=1)).json()
    assert data["count"] == result.num_trades  # every trade is long here
    assert client.get(url(run, "trades.json", side="short")).json()["count"] == 0
    at_end = sum(t["closed_at_end"] for t in expected)
    data = client.get(url(run, "trades.json", reason="end")).json()
    assert data["count"] == at_end
    data = client.get(url(run, "trades.json", reason="signal")).json()
    assert data["count"] == result.num_trades - at_end > 0
    assert {row["exit_reason"] for row in data["rows"]} == {"signal"}


def test_trade_list_bad_queries_name_the_field(client, rsi_run):
    run, _ = rsi_run
    cases = {
        "sort=price": "sort",
        "outcome=best": "outcome",
        "page=0": "page",
        "per_page=abc": "per_page",
        "params=%7Bnot": "params",
    }
    for query, field in cases.items():
        response = client.get(url(run, "trades.json") + "&" + query)
        assert response.status_code == 400, query
        assert response.json()["field"] == field
        assert response.json()["error"].startswith(f"{field}: ")
    missing = client.get(f"/runs/{run.pk}/trades.json?strategy=rsi_reversion")
    assert missing.status_code == 400 and missing.json()["field"] == "symbol"
    assert client.get(url(run, "trades.json", symbol="ZZZ")).status_code == 404
    other = json.dumps({"period": 3, "lower": 30.0, "upper": 70.0})
    assert client.get(url(run, "trades.csv", params=other)).status_code == 404
    same = json.dumps(RSI)
    assert client.get(url(run, "trades.csv", params=same)).status_code == 200


def test_equity_at_full_resolution_has_the_stored_max_drawdown(client, rsi_run):
    run, result = rsi_run
    bars, curve, _ = reference_run("rsi_reversion", RSI, 0.002)
    data = client.get(url(run, "equity.json", points=BARS)).json()
    assert data["bars"] == data["points"] == BARS and not data["downsampled"]
    assert data["strategy_equity"] == pytest.approx(curve, rel=1e-9)
    assert data["buy_hold"][-1] == pytest.approx(
        10_000 * bars.close[-1] / bars.close[0]
    )
    # Drawdown from a plain running peak over the response's own equity.
    peak, deepest = 0.0, 0.0
    for value in data["strategy_equity"]:
        peak = max(peak, value)
        deepest = min(deepest, (value / peak - 1) * 100)
    assert -deepest == pytest.approx(result.max_drawdown_pct, rel=1e-9)
    assert -min(data["drawdown_pct"]) == pytest.approx(result.max_drawdown_pct)


def test_downsampled_equity_keeps_the_deepest_drawdown(client, rsi_run):
    run, result = rsi_run
    full = client.get(url(run, "equity.json", points=BARS)).json()
    data = client.get(url(run, "equity.json", points=100)).json()
    assert data["downsampled"] and data["points"] == len(data["time"]) <= 100
    assert -min(data["drawdown_pct"]) == pytest.approx(result.max_drawdown_pct)
    assert max(data["strategy_equity"]) == max(full["strategy_equity"])
    assert min(data["buy_hold"]) == min(full["buy_hold"])
    assert data["time"][0] == full["time"][0]
    assert data["time"][-1] == full["time"][-1]
    assert data["strategy_equity"][-1] == pytest.approx(result.metrics["final_equity"])


def test_equity_window_of_a_week_has_every_hour(client, rsi_run):
    run, _ = rsi_run
    start, end = START + 1000 * 3600, START + (1000 + 167) * 3600
    data = client.get(
        url(run, "equity.json", start=iso(start), end=iso(end), points=2000)
    ).json()
    assert data["bars"] == data["points"] == 168
    assert data["time"] == [1000 * (start + 3600 * i) for i in range(168)]
    bad = client.get(url(run, "equity.json", start="soon"))
    assert bad.status_code == 400 and bad.json()["field"] == "start"


def test_replay_refuses_when_the_prices_changed(client, rsi_run):
    run, _ = rsi_run
    assert client.get(url(run, "equity.json")).status_code == 200
    Cryptocurrency.objects.filter(symbol="AAA").update(data_version=99)
    response = client.get(url(run, "trades.csv"))
    assert response.status_code == 409
    assert "changed since this run" in response.json()["error"]


def test_replay_refuses_when_it_disagrees_with_the_stored_metrics(client, rsi_run):
    run, result = rsi_run
    metrics = {**result.metrics, "num_trades": result.num_trades + 1}
    BacktestResult.objects.filter(pk=result.pk).update(metrics=metrics)
    response = client.get(url(run, "trades.json"))
    assert response.status_code == 409
    assert "num_trades" in response.json()["error"]


def test_price_series_merges_candles_and_carries_indicators(client):
    bars_import(symbol="AAA", series=random_walk(1000, seed=3))
    run = backtest("--strategy", "sma_crossover", "--param", "fast=5",
                   "--param", "slow=30", "--symbols", "AAA")  # fmt: skip
    query = {"symbol": "AAA", "strategy": "sma_crossover"}
    data = client.get(url(run, "price.json", **query, points=100)).json()
    bars = random_walk(1000, seed=3)
    assert len(data["time"]) == 100 and data["bars"] == 1000
    # Candle k merges bars 10k .. 10k+9.
    for k in (0, 37, 99):
        part = slice(10 * k, 10 * k + 10)
        assert data["open"][k] == bars.open[part][0]
        assert data["high"][k] == bars.high[part].max()
        assert data["low"][k] == bars.low[part].min()
        assert data["close"][k] == bars.close[part][-1]
    sma5 = data["overlay"]["SMA 5"]
    assert sma5[0] is None  # warm-up
    assert sma5[10] == pytest.approx(bars.close[96:101].mean())
    assert data["trades"]["count"] == run.results.get().num_trades
    assert data["panel"] is None
    rsi = backtest("--strategy", "rsi_reversion", "--symbols", "AAA")
    data = client.get(url(rsi, "price.json", points=5000)).json()
    assert data["panel"]["levels"] == [30.0, 70.0]
    assert len(data["panel"]["lines"]["RSI"]) == len(data["time"]) == 1000


def test_extremes_keep_each_buckets_min_and_max():
    rng = np.random.default_rng(5)
    curve = np.cumsum(rng.normal(size=1003))
    index = series.extremes([curve], [curve], 50)
    assert len(index) <= 50 and index[0] == 0 and index[-1] == 1002
    kept = set(index.tolist())
    buckets = (50 - 2) // 2
    bounds = np.linspace(0, 1003, buckets + 1).astype(int)
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        part = curve[lo:hi].tolist()
        assert lo + part.index(min(part)) in kept
        assert lo + part.index(max(part)) in kept
    assert series.extremes([curve], [], 5000).tolist() == list(range(1003))


def test_monthly_returns_run_from_one_month_end_to_the_next():
    jan31 = int(datetime(2024, 1, 31, 23, tzinfo=UTC).timestamp())
    times = np.array(
        [jan31 - 7200, jan31, jan31 + 3600, jan31 + 7200, jan31 + 30 * 86400]
    )
    equity = np.array([10_500.0, 11_000.0, 9_900.0, 10_450.0, 12_540.0])
    # Jan: 10,000 -> 11,000; Feb: 11,000 -> 10,450; Mar (1 March 23:00): 12,540.
    got = series.monthly_returns(times, equity, 10_000.0)
    assert [(y, m) for y, m, _ in got] == [(2024, 1), (2024, 2), (2024, 3)]
    assert [r for _, _, r in got] == pytest.approx([10.0, -5.0, 20.0])
    assert series.monthly_returns(times[:0], equity[:0], 10_000.0) == []


def test_sides_and_exit_reasons_read_stored_codes_and_old_trades():
    coded = {"return_pct": np.zeros(3), "side": np.array([0, 1, 1], np.int8),
             "exit_reason": np.array([1, 4, 0], np.int8)}  # fmt: skip
    assert series.sides(coded).tolist() == ["long", "short", "short"]
    assert series.exit_reasons(coded).tolist() == ["stop_loss", "end", "signal"]
    old = {"return_pct": np.zeros(2), "closed_at_end": np.array([False, True])}
    assert series.sides(old).tolist() == ["long", "long"]
    assert series.exit_reasons(old).tolist() == ["signal", "end"]
    rows, total = series.trade_rows(coded, side="short", sort="-exit_reason")
    assert (rows.tolist(), total) == ([2, 1], 3)  # "signal" after "end"


def test_trade_list_of_a_run_with_stops_and_both_sides(client):
    bars_import(symbol="AAA", series=random_walk(3000, seed=11))
    run = backtest("--strategy", "sma_crossover", "--param", "fast=5",
                   "--param", "slow=20", "--symbols", "AAA", "--direction", "both",
                   "--stop-loss", "1", "--take-profit", "2")  # fmt: skip
    result = run.results.get()
    query = {"strategy": "sma_crossover", "per_page": 500}
    rows, page, pages = [], 1, 1
    while page <= pages:
        data = client.get(url(run, "trades.json", **query, page=page)).json()
        rows += data["rows"]
        pages, page = data["pages"], page + 1
    assert len(rows) == result.num_trades
    counts = {}
    for row in rows:
        counts[row["exit_reason"]] = counts.get(row["exit_reason"], 0) + 1
    assert counts == {k: v for k, v in result.metrics["exit_reasons"].items() if v}
    shorts = [row for row in rows if row["side"] == "short"]
    assert len(shorts) == result.metrics["short_trades"] > 0
    data = client.get(url(run, "trades.json", **query, side="short")).json()
    assert data["count"] == len(shorts) and data["sides"] == ["long", "short"]
    data = client.get(url(run, "trades.json", **query, reason="stop_loss")).json()
    assert data["count"] == counts["stop_loss"]
    price = client.get(url(run, "price.json", strategy="sma_crossover")).json()
    assert sorted(set(price["trades"]["exit_reason"])) == sorted(counts)
