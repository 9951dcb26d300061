"""Runs at any interval from 1 minute to 1 day: bars built from a finer stored
interval give the same backtest as those bars imported directly, and a request
finer than what is stored is refused naming what is."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from prices.services import file_import
from strategies.engine import run_many
from strategies.tests.realdata import load_bars
from strategies.types import Bars

pytestmark = pytest.mark.django_db(transaction=True)


def write_csv(path: Path, bars: Bars) -> Path:
    """Write bars in the import format (ISO-8601 UTC timestamps)."""
    lines = ["timestamp,open,high,low,close,volume"]
    for i in range(len(bars.time)):
        stamp = np.datetime64(int(bars.time[i]), "s").astype(str) + "Z"
        lines.append(
            f"{stamp},{float(bars.open[i])!r},{float(bars.high[i])!r},"
            f"{float(bars.low[i])!r},{float(bars.close[i])!r},"
            f"{float(bars.volume[i])!r}"
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def buckets(bars: Bars, seconds: int) -> Bars:
    """Aggregate bars into UTC-aligned buckets with a plain loop (first open,
    max high, min low, last close, summed volume; empty buckets absent)."""
    out: dict[int, list[float]] = {}
    for i in range(len(bars.time)):
        key = int(bars.time[i]) // seconds * seconds
        if key not in out:
            out[key] = [bars.open[i], bars.high[i], bars.low[i], bars.close[i], 0.0]
        row = out[key]
        row[1] = max(row[1], bars.high[i])
        row[2] = min(row[2], bars.low[i])
        row[3] = bars.close[i]
        row[4] += bars.volume[i]
    times = sorted(out)
    cols = [np.array([out[t][k] for t in times]) for k in range(5)]
    return Bars(np.array(times, dtype=np.int64), *cols)


def backtest(symbol: str, interval: str) -> dict:
    out = io.StringIO()
    call_command(
        "backtest", "--strategy", "sma_crossover", "--param", "fast=5",
        "--param", "slow=20", "--symbols", symbol, "--interval", interval,
        "--format", "json", "--no-save", stdout=out, stderr=io.StringIO(),
    )  # fmt: skip
    (result,) = json.loads(out.getvalue())["results"]
    return result


def test_a_4h_run_equals_a_run_on_4h_bars_imported_directly(real_data_dir, tmp_path):
    hourly = load_bars(real_data_dir, "BTC", last=3000)
    file_import(write_csv(tmp_path / "h.csv", hourly), symbol="BTC", interval="1h")
    four = buckets(hourly, 4 * 3600)
    file_import(write_csv(tmp_path / "f.csv", four), symbol="BTCF", interval="4h")

    built, direct = backtest("BTC", "4h"), backtest("BTCF", "4h")
    # The whole history: every bucket that holds a bar, the edges included.
    assert built["bars"] == direct["bars"] == len(four.time)
    assert built["metrics"] == direct["metrics"]
    # And both against the engine on the plain loop's buckets.
    (expected,) = run_many(four, [("sma_crossover", {"fast": 5, "slow": 20})],
                           interval="4h")  # fmt: skip
    assert built["metrics"]["num_trades"] == expected.metrics["num_trades"]
    assert built["metrics"]["total_return_pct"] == pytest.approx(
        expected.metrics["total_return_pct"], rel=1e-12
    )
    # Annualized per interval: 2,190 four-hour bars a year.
    assert built["metrics"]["sharpe"] == pytest.approx(
        expected.metrics["sharpe"], rel=1e-12
    )


def test_15m_bars_from_stored_5m_bars_and_a_finer_request_is_refused(tmp_path):
    rng = np.random.default_rng(7)
    n = 6000  # about three weeks of 5-minute bars, with a gap of two hours
    start = 1_700_000_400 // 300 * 300
    time = start + 300 * np.arange(n, dtype=np.int64)
    time[3000:] += 7200
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    open_ = np.concatenate([[close[0]], close[:-1]])
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.001, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.001, n))
    five = Bars(time, open_, high, low, close, rng.uniform(1, 5, n))
    file_import(write_csv(tmp_path / "m.csv", five), symbol="MINU", interval="5m")

    result = backtest("MINU", "15m")
    quarter = buckets(five, 900)
    (expected,) = run_many(quarter, [("sma_crossover", {"fast": 5, "slow": 20})],
                           interval="15m")  # fmt: skip
    assert result["bars"] == len(quarter.time)
    assert result["metrics"]["num_trades"] == expected.metrics["num_trades"]
    assert result["metrics"]["total_return_pct"] == pytest.approx(
        expected.metrics["total_return_pct"], rel=1e-12
    )
    assert result["metrics"]["sharpe"] == pytest.approx(
        expected.metrics["sharpe"], rel=1e-12
    )

    with pytest.raises(CommandError, match=r"interval: MINU: .*5m"):
        backtest("MINU", "1m")
    with pytest.raises(CommandError, match="--interval: must be one of 1m, 5m"):
        backtest("MINU", "2h")


def test_annualization_and_a_request_finer_than_any_coins_bars(tmp_path):
    from backtester.runs.services import run_coins
    from backtester.runs.validation import RequestError, run_spec
    from strategies.bartime import PERIODS_PER_YEAR

    # 525,600 minutes a year over the interval's minutes.
    assert PERIODS_PER_YEAR == {
        "1m": 525_600, "5m": 105_120, "15m": 35_040, "30m": 17_520,
        "1h": 8_760, "4h": 2_190, "1d": 365,
    }  # fmt: skip
    hourly = Bars(
        3600 * np.arange(1, 50, dtype=np.int64) + 1_700_000_000 // 3600 * 3600,
        *(np.full(49, 10.0) for _ in range(4)),
        np.ones(49),
    )
    file_import(write_csv(tmp_path / "h.csv", hourly), symbol="HOUR", interval="1h")
    spec = run_spec({"strategy": "sma_crossover", "interval": "15m"})
    with pytest.raises(RequestError) as caught:
        run_coins(spec)
    assert caught.value.field == "interval"
    assert "HOUR" in caught.value.message and "1h" in caught.value.message
