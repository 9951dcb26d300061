"""Metrics on hand-made equity curves and trades."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies import metrics as m
from strategies.types import Trade


def test_drawdown_by_hand():
    equity = np.array([100.0, 120, 90, 95, 130, 117])
    # Peak 120 -> trough 90 is -25%; 130 -> 117 is -10%.
    assert m.max_drawdown_pct(equity) == pytest.approx(25.0)
    # Bars under a previous peak: 90, 95 (2 in a row), then 117 (1).
    assert m.max_drawdown_duration(equity) == 2
    assert m.max_drawdown_duration(np.array([1.0, 2, 3])) == 0
    assert m.max_drawdown_pct(np.array([1.0, 2, 3])) == 0
    # Still under water at the end: 3 bars below the first.
    assert m.max_drawdown_duration(np.array([10.0, 9, 8, 9.5])) == 3
    # Back at (not above) the old peak ends the drawdown.
    assert m.max_drawdown_duration(np.array([10.0, 9, 10, 9, 8, 7, 11])) == 3


def naive_drawdown(equity: np.ndarray) -> tuple[float, int]:
    peak, deepest, run, longest = equity[0], 0.0, 0, 0
    for value in equity.tolist():
        peak = max(peak, value)
        deepest = max(deepest, 1 - value / peak)
        run = run + 1 if value < peak else 0
        longest = max(longest, run)
    return deepest * 100, longest


@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 3000),
    drift=st.sampled_from([-0.002, 0.0, 0.001, 0.01]),
    plateaus=st.booleans(),
)
def test_blockwise_drawdown_equals_the_plain_scan(seed, n, drift, plateaus):
    rng = np.random.default_rng(seed)
    equity = 100 * np.exp(np.cumsum(rng.normal(drift, 0.01, n)))
    if plateaus:  # flat cash stretches, some of them exactly at a peak
        equity = np.repeat(equity[::7], 7)[:n]
    deepest, longest = naive_drawdown(equity)
    assert m.max_drawdown_pct(equity) == deepest
    assert m.max_drawdown_duration(equity) == longest
    # The assembler finds the duration from the runs of bars at their peak.
    metrics = m.compute_metrics(equity, [], np.zeros(n, np.int8), equity)
    assert metrics["max_drawdown_pct"] == deepest
    assert metrics["max_drawdown_duration"] == longest


def test_a_long_stretch_at_the_peak_is_not_under_water():
    # New high, then 1,000 bars flat at it (cash after a winning exit), a dip.
    equity = np.r_[np.linspace(100, 200, 300), np.full(1000, 200.0), 190, 195, 201]
    assert m.max_drawdown_duration(equity) == 2
    assert m.max_drawdown_pct(equity) == pytest.approx(5.0)


def test_returns_sharpe_sortino_by_hand():
    equity = np.array([100.0, 110.0, 99.0, 108.9])
    returns = m.bar_returns(equity)
    assert returns == pytest.approx([0.1, -0.1, 0.1])
    mean = 0.1 / 3
    std = math.sqrt(((0.1 - mean) ** 2 * 2 + (0.1 + mean) ** 2) / 2)
    assert m.mean_std(returns) == pytest.approx((mean, std))
    assert m.sharpe(mean, std, 365) == pytest.approx(mean / std * math.sqrt(365))
    downside = math.sqrt(0.01 / 3)
    assert m.downside_deviation(returns) == pytest.approx(downside)
    assert m.sortino(mean, downside, 365) == pytest.approx(
        mean / downside * math.sqrt(365)
    )
    assert m.volatility_ann_pct(std, 365) == pytest.approx(std * math.sqrt(365) * 100)
    assert m.total_return_pct(equity) == pytest.approx(8.9)
    metrics = m.compute_metrics(equity, [], np.zeros(4), equity, interval="1d")
    assert metrics["sharpe"] == pytest.approx(mean / std * math.sqrt(365))
    assert metrics["sortino"] == pytest.approx(mean / downside * math.sqrt(365))


def test_cagr_and_calmar_by_hand():
    # 365 daily bars span one calendar year: CAGR equals the total return.
    year = m.calendar_years(np.arange(365) * 86_400, 365, "1d")
    assert year == 1.0
    assert m.cagr_pct(np.linspace(100.0, 150.0, 365), year) == pytest.approx(50.0)
    # 43,800 hourly bars are five years: doubling is 2 ** (1/5) - 1 a year.
    doubling = np.geomspace(1.0, 2.0, 43_800)
    assert m.calendar_years(None, 43_800, "1h") == 5.0
    assert m.cagr_pct(doubling, 5.0) == pytest.approx((2**0.2 - 1) * 100)
    assert m.calmar(50.0, 20.0) == pytest.approx(2.5)
    assert m.calmar(50.0, 0.0) is None and m.calmar(None, 5.0) is None
    # Under 30 days there is no annual rate: +3.96% over 6 hours would
    # compound to about 4e26 % a year.
    six_hours = np.array([100.0, 101, 102, 103, 103.5, 103.96])
    assert m.cagr_pct(six_hours, 6 / 8760) is None
    assert m.cagr_pct(six_hours, 29.9 / 365) is None
    assert m.cagr_pct(six_hours, 30 / 365) == pytest.approx(
        (1.0396 ** (365 / 30) - 1) * 100
    )
    # A huge return has no meaningful annual rate either.
    assert m.cagr_pct(np.array([1.0, 1e300]), 30 / 365) is None


def test_cagr_counts_the_calendar_across_a_gap():
    """An FTT-like coin: 13,000 hourly bars, then 7,467 hours without a bar,
    then 13,000 more. Its equity doubles. Counted in bars the range is
    26,000 / 8,760 = 2.968 years; on the calendar it is (26,000 + 7,467)
    hours = 3.820 years, so the rate is lower."""
    step = 3600
    time = np.r_[np.arange(13_000), np.arange(13_000) + 13_000 + 7_467] * step
    equity = np.geomspace(10_000.0, 20_000.0, len(time))
    metrics = m.compute_metrics(
        equity, [], np.zeros(len(time), np.int8), equity, interval="1h", time=time
    )
    by_bars = (2 ** (8760 / 26_000) - 1) * 100  # 26.31 %
    by_calendar = (2 ** (8760 / 33_467) - 1) * 100  # 19.89 %
    assert metrics["cagr_pct"] == pytest.approx(by_calendar)
    assert metrics["cagr_pct"] != pytest.approx(by_bars)
    assert round(by_bars, 2) == 26.31 and round(by_calendar, 2) == 19.89
    assert metrics["missing_bars"] == 7_467
    assert metrics["longest_gap_hours"] == 7_467.0
    # Per-bar figures are annualized at 26,000 bars in 33,467 / 8,760 years.
    returns = m.bar_returns(equity)
    per_year = 26_000 / (33_467 / 8760)
    mean, std = float(np.mean(returns)), float(np.std(returns, ddof=1))
    assert metrics["volatility_ann_pct"] == pytest.approx(
        std * math.sqrt(per_year) * 100
    )
    # Without the gap the same curve is annualized at 8,760 bars a year.
    even = m.compute_metrics(
        equity, [], np.zeros(len(time), np.int8), equity, interval="1h",
        time=np.arange(len(time)) * step,
    )  # fmt: skip
    assert even["cagr_pct"] == pytest.approx(by_bars)
    assert (even["missing_bars"], even["longest_gap_hours"]) == (0, 0.0)
    assert even["volatility_ann_pct"] == pytest.approx(std * math.sqrt(8760) * 100)
    del mean


def test_gap_stats_by_hand():
    hour = 3600
    # Bars at hours 0, 1, 4, 5, 30: two missing (2, 3), then 24 (6 to 29).
    time = np.array([0, 1, 4, 5, 30]) * hour
    assert m.gap_stats(time, "1h") == (26, 24.0)
    assert m.gap_stats(np.arange(10) * hour, "1h") == (0, 0.0)
    assert m.gap_stats(np.array([5 * hour]), "1h") == (0, 0.0)
    # Daily bars: days 0 and 3 have two days between them, 48 hours.
    assert m.gap_stats(np.array([0, 3]) * 86_400, "1d") == (2, 48.0)


def test_a_trade_held_across_a_gap_is_flagged():
    hour = 3600
    flags = m.trade_gaps(
        entry_time=np.array([0, 10, 20, 40]) * hour,
        # 3 bars held over 3 hours; 3 bars over 5 hours (2 missing); closed
        # at the end after 4 bars: entry bar 20 to the last bar 23; the same
        # with hour 42 missing (last bar 44).
        exit_time=np.array([3, 15, 23, 44]) * hour,
        bars_held=np.array([3, 3, 4, 4]),
        closed_at_end=np.array([False, False, True, True]),
        interval="1h",
    )
    assert flags.tolist() == [False, True, False, True]


def test_undefined_ratios_are_none():
    flat = np.full(10, 100.0)
    mean, std = m.mean_std(m.bar_returns(flat))
    assert (mean, std) == (0.0, 0.0)
    assert m.sharpe(mean, std, 8760) is None
    assert m.sortino(mean, m.downside_deviation(m.bar_returns(flat)), 8760) is None
    assert m.mean_std(np.empty(0)) == (None, None)
    assert m.mean_std(np.array([0.1]))[1] is None
    # Never a losing bar: no downside deviation, so no Sortino ratio.
    rising = m.bar_returns(np.array([1.0, 2.0, 3.0]))
    assert m.downside_deviation(rising) == 0.0
    assert m.sortino(m.mean_std(rising)[0], 0.0, 8760) is None


def trade(ret, units, entry, exit_, fees, held, index=0):
    return Trade(index, index + held, 0, 0, entry, exit_, units, ret, held, fees, False)


def test_trade_stats_by_hand():
    # Three trades: +10, -5, +20 per unit of 100, no fees; one unit each, then
    # two units in the last (money-weighted profit factor).
    trades = [
        trade(10.0, 1, 100, 110, 0, 2),
        trade(-5.0, 1, 100, 95, 0, 4),
        trade(20.0, 2, 100, 120, 0, 6),
    ]
    stats = m.trade_stats(m.trade_table(trades))
    assert stats["win_rate_pct"] == pytest.approx(200 / 3)
    assert stats["profit_factor"] == pytest.approx((10 + 40) / 5)
    assert stats["expectancy_pct"] == pytest.approx(25 / 3)
    geometric = (1.1 * 0.95 * 1.2) ** (1 / 3) - 1
    assert stats["avg_trade_pct"] == pytest.approx(geometric * 100)
    assert (stats["best_trade_pct"], stats["worst_trade_pct"]) == (20, -5)
    assert stats["avg_trade_duration"] == pytest.approx(4)
    # Break-even is not a win.
    even = m.trade_stats(m.trade_table([trade(0.0, 1, 100, 100, 0, 1), *trades]))
    assert even["win_rate_pct"] == pytest.approx(50.0)
    # Fees turn a small gain into a loss of money.
    losing = m.trade_stats(m.trade_table([trade(-0.1, 1, 100, 100.5, 0.6, 1)]))
    assert losing["win_rate_pct"] == 0 and losing["profit_factor"] == 0
    no_loss = m.trade_stats(m.trade_table([trade(5.0, 1, 100, 105, 0, 1)]))
    assert no_loss["profit_factor"] is None and no_loss["win_rate_pct"] == 100
    assert set(m.trade_stats(m.trade_table([])).values()) == {None}


def test_compute_metrics_keys_types_and_json():
    equity = np.array([100.0, 101, 99, 103, 103, 104])
    position = np.array([0, 1, 1, 1, 0, 0], dtype=np.int8)
    trades = [trade(3.0, 1, 100, 103, 0, 3, index=1)]
    metrics = m.compute_metrics(equity, trades, position, equity, interval="1h")
    assert tuple(metrics) == m.METRIC_KEYS
    for key, value in metrics.items():
        if key == "exit_reasons":
            continue
        assert value is None or type(value) in (int, float), key
    assert metrics["exit_reasons"] == {
        "signal": 1, "stop_loss": 0, "take_profit": 0, "trailing_stop": 0,
        "end": 0, "liquidation": 0,
    }  # fmt: skip
    assert (metrics["long_trades"], metrics["short_trades"]) == (1, 0)
    assert metrics["win_rate_long_pct"] == 100.0
    assert metrics["win_rate_short_pct"] is None
    assert type(metrics["num_trades"]) is int
    assert type(metrics["max_drawdown_duration"]) is int
    assert metrics["exposure_pct"] == pytest.approx(50.0)
    assert metrics["max_drawdown_pct"] == pytest.approx(100 * 2 / 101)
    assert metrics["final_equity"] == 104.0
    json.dumps(metrics, allow_nan=False)
    with pytest.raises(KeyError):
        m.compute_metrics(equity, trades, position, equity, interval="2h")


def test_real_ftt_gap_calendar_against_bar_cagr(real_data_dir):
    """FTT's real hourly history has a 7,467-hour hole: its CAGR is taken over
    the calendar (checked here with plain arithmetic on the curve's ends and
    the first and last bar times), not over the bars."""
    from prices.importers import parse_file
    from strategies.engine import run_backtest
    from strategies.types import Bars

    series = parse_file(real_data_dir / "FTTUSDT.csv.gz").series
    result = run_backtest(Bars(*series), "donchian_breakout")
    first, last = int(series.time[0]), int(series.time[-1])
    years = (last - first + 3600) / (365 * 24 * 3600)
    growth = result.equity[-1] / result.equity[0]
    bars = len(series.time)
    assert result.metrics["cagr_pct"] == pytest.approx(
        (growth ** (1 / years) - 1) * 100
    )
    by_bars = (growth ** (8760 / bars) - 1) * 100
    assert round(result.metrics["cagr_pct"], 1) == 73.0 and round(by_bars, 1) == 100.5
    assert result.metrics["longest_gap_hours"] == 7467.0
    assert result.metrics["missing_bars"] == (last - first) // 3600 + 1 - bars
