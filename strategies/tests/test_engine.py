"""The engine against the plain-loop reference, on random price paths."""

from __future__ import annotations

import functools
import json
import math
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from strategies.engine import run_backtest, run_many
from strategies.metrics import METRIC_KEYS, PERIODS_PER_YEAR
from strategies.registry import STRATEGIES, validate_params
from strategies.tests import reference as ref
from strategies.types import Bars, Trade

RTOL = 1e-9


def make_bars(seed: int, n: int, flat_runs: int = 0, vol: float | None = None) -> Bars:
    """Return a geometric random walk with valid OHLC and some flat stretches."""
    rng = np.random.default_rng(seed)
    vol = rng.uniform(0.002, 0.03) if vol is None else vol
    close = 100 * np.exp(np.cumsum(rng.normal(0, vol, n)))
    for _ in range(flat_runs if n > 10 else 0):
        start = int(rng.integers(5, n - 4))
        close[start : start + int(rng.integers(2, 30))] = close[start - 1]
    open_ = np.r_[close[0], close[:-1]] * (1 + rng.normal(0, vol / 4, n))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, vol, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, vol, n))
    time = 1_700_000_000 + 3600 * np.arange(n, dtype=np.int64)
    return Bars(time, open_, high, low, close, rng.uniform(0, 50, n))


SPECS = {key: {p.name: p for p in spec.params} for key, spec in STRATEGIES.items()}


def window(draw, strategy: str, name: str, low: int, high: int) -> int:
    """Draw integer parameter ``name`` from [low, high] clipped to its schema."""
    spec = SPECS[strategy][name]
    low = max(low, spec.min)
    return draw(st.integers(low, max(low, min(high, spec.max))))


@st.composite
def params_for(draw, strategy: str, n: int, shortest: int = 2):
    """Draw valid parameters that can trade on ``n`` bars.

    Windows run from ``shortest`` up to a third of the series (within the
    schema), so the warm-up leaves bars to trade on. Hypothesis favours the low
    end of every range (a third of the draws or more), so each range starts at
    a value that trades. Left to test_degenerate_parameters_never_trade: a MACD
    signal of 1 bar (the MACD line itself, never above itself), Bollinger bands
    wider than the period allows, RSI entry levels the RSI does not reach.
    """
    top = max(4, n // 3)
    if strategy in ("sma_crossover", "ema_crossover", "macd_crossover"):
        fast = window(draw, strategy, "fast", shortest, top - 1)
        params = {"fast": fast, "slow": window(draw, strategy, "slow", fast + 1, top)}
        if strategy == "macd_crossover":
            params["signal"] = window(draw, strategy, "signal", 2, top // 2)
        return params
    if strategy == "rsi_reversion":
        period = window(draw, strategy, "period", shortest, top)
        # Wilder's RSI of a random walk strays about 55 / sqrt(period) from 50
        # (both ways) over a few hundred bars: a lower level that close to 50,
        # or above it, is reached.
        reach = max(1.0, min(49.0, 55.0 / math.sqrt(period)))
        if draw(st.booleans()):  # levels anywhere above that, lower < upper
            lower = draw(st.floats(50.0 - reach, 98.0))
            upper = draw(st.floats(lower, 99.0, exclude_min=True))
        else:  # levels around 50
            lower = 50.0 - draw(st.floats(0.5, reach))
            upper = 50.0 + draw(st.floats(0.5, reach))
        return {"period": period, "lower": lower, "upper": upper}
    if strategy == "bollinger_reversion":
        period = window(draw, strategy, "period", shortest, top)
        # A close lies at most sqrt(period - 1) deviations below the mean of its
        # window (the other closes all equal), so wider bands can never trade;
        # on a random walk more than 2.5 is rare, more than 3 seldom happens.
        # Bands up to that limit in about a quarter of the draws.
        widest = min(SPECS[strategy]["std"].max, math.sqrt(period - 1))
        if not (draw(st.booleans()) and draw(st.booleans())):
            widest = min(widest, 2.5)
        return {"period": period, "std": draw(st.floats(0.1, max(0.1, widest)))}
    assert strategy == "donchian_breakout"
    return {
        "entry": window(draw, strategy, "entry", 1, top),
        "exit": window(draw, strategy, "exit", 1, top),
    }


def close_enough(got, want) -> bool:
    if got is None or want is None:
        return got is None and want is None
    if isinstance(want, dict):
        return got == want
    return math.isclose(got, want, rel_tol=RTOL, abs_tol=1e-9)


def check_against_reference(bars, strategy, params, fee, slippage, interval="1h"):
    high, low, close = (col.tolist() for col in bars[2:5])
    complete = validate_params(strategy, params)  # defaults filled in
    target = ref.targets(strategy, complete, high, low, close)
    curve, position, trades = ref.simulate(
        target, bars.open.tolist(), close, fee=fee, slippage_bps=slippage
    )
    result = run_backtest(
        bars, strategy, params, fee=fee, slippage_bps=slippage, interval=interval
    )

    assert result.position.tolist() == position
    np.testing.assert_allclose(result.equity, curve, rtol=RTOL, atol=1e-9)
    assert len(result.trades) == len(trades)
    for got, want in zip(result.trades, trades, strict=True):
        for key in ("entry_index", "exit_index", "bars_held", "closed_at_end"):
            assert getattr(got, key) == want[key], key
        assert got.side == "long"
        assert got.exit_reason == ("end" if want["closed_at_end"] else "signal")
        assert got.entry_time == bars.time[want["entry_index"]]
        assert got.exit_time == bars.time[want["exit_index"]]
        for key in ("entry_price", "exit_price", "units", "return_pct", "fees"):
            assert close_enough(getattr(got, key), want[key]), key
    periods = PERIODS_PER_YEAR[interval]
    expected = ref.metrics(curve, position, trades, close, periods, bars.time.tolist())
    assert set(result.metrics) == set(expected) == set(METRIC_KEYS)
    for key, want in expected.items():
        assert close_enough(result.metrics[key], want), (key, result.metrics[key], want)
    json.dumps(result.metrics, allow_nan=False)
    return len(trades)


# Costs anywhere the app accepts (fee up to 5%, slippage up to 500 bps), most
# often in the usual range.
COSTS = {
    "fee": st.floats(0.0, 0.01) | st.floats(0.0, 0.05),
    "slippage": st.floats(0.0, 50.0) | st.floats(0.0, 500.0),
    "interval": st.sampled_from(["1h", "1d"]),
}


def property_test(sizes, examples: int, trading: float, shortest: int = 2):
    """Return a test of the engine against the reference on ``sizes`` bars.

    At least a share ``trading`` of the examples must trade, so the comparison
    cannot pass on flat equity curves alone.
    """

    @pytest.mark.parametrize("strategy", list(STRATEGIES))
    def test(strategy):
        counts = []

        @settings(
            max_examples=examples,
            deadline=None,
            derandomize=True,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(
            data=st.data(),
            seed=st.integers(0, 2**32 - 1),
            n=sizes,
            flat_runs=st.integers(0, 4),
            **COSTS,
        )
        def compare(data, seed, n, flat_runs, fee, slippage, interval):
            params = data.draw(params_for(strategy, n, shortest), label="params")
            bars = make_bars(seed, n, flat_runs)
            trades = check_against_reference(
                bars, strategy, params, fee, slippage, interval
            )
            counts.append(trades)
            event(
                "trades: " + ("none" if not trades else "1-3" if trades < 4 else "4+")
            )

        compare()
        traded = sum(count > 0 for count in counts)
        assert traded >= trading * len(counts), (
            f"only {traded} of {len(counts)} examples traded"
        )

    return test


# Most examples trade (over 0.75 of them with each of a dozen seeds tried).
test_engine_matches_the_reference = property_test(st.integers(50, 400), 100, 0.7)
# About a third of these series are shorter than any warm-up: the edge cases.
test_engine_matches_the_reference_on_tiny_series = property_test(
    st.integers(1, 50), 25, 0.2
)
# Windows from 100 bars up to the schema's limits (1,000 for a slow average).
test_engine_matches_the_reference_with_long_windows = property_test(
    st.integers(1500, 4000), 10, 0.5, shortest=100
)


@pytest.mark.parametrize(
    "strategy, params",
    [
        # Valid, but far beyond what a random walk reaches. (A 1-bar MACD signal
        # and bands of sqrt(period - 1) deviations or more, which can never
        # trade, are refused by validation: test_params.)
        ("bollinger_reversion", {"period": 400, "std": 10.0}),
        ("rsi_reversion", {"period": 400, "lower": 1.0, "upper": 99.0}),
    ],
)
def test_degenerate_parameters_never_trade(strategy, params):
    """Valid parameters the property tests leave out, since they cannot trade."""
    bars = make_bars(12, 2000, flat_runs=6)
    assert check_against_reference(bars, strategy, params, 0.001, 5.0) == 0


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_defaults_on_a_long_series_match_the_reference(strategy):
    bars = make_bars(7, 3000, flat_runs=8)
    check_against_reference(bars, strategy, {}, 0.001, 2.0)


FIVE_YEARS = 43_800  # hourly bars


@functools.cache
def five_years_of_bars() -> Bars:
    return make_bars(21, FIVE_YEARS, flat_runs=40, vol=0.01)


@pytest.mark.parametrize(
    "strategy, params",
    [
        # Fast averages (decay 1 - 1/n for Wilder's averages, 1 - 2/(n + 1) for
        # an EMA), and slow ones carried over thousands of bars.
        ("rsi_reversion", {"period": 2, "lower": 30, "upper": 70}),
        ("macd_crossover", {"fast": 2, "slow": 3, "signal": 2}),
        ("ema_crossover", {"fast": 500, "slow": 1000}),
        ("macd_crossover", {"fast": 12, "slow": 26, "signal": 9}),
        # Windows merged from many doubling levels (333 = 256+64+8+4+1,
        # 999 = 512+256+128+64+32+4+2+1, 255 = 128+64+...+1).
        ("sma_crossover", {"fast": 333, "slow": 999}),
        ("bollinger_reversion", {"period": 255, "std": 1.5}),
    ],
)
def test_five_years_of_hourly_bars_match_the_reference(strategy, params):
    """The recursions and deep window merges over a long series."""
    trades = check_against_reference(five_years_of_bars(), strategy, params, 0.001, 2.0)
    assert trades >= 10


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_no_look_ahead(strategy):
    """Changing prices after bar t leaves every position up to t+1 unchanged."""
    bars = make_bars(11, 800, vol=0.02)
    base = run_backtest(bars, strategy).position
    rng = np.random.default_rng(3)
    later_changed = False
    for t in (60, 250, 400, 700, 798):
        changed = [column.copy() for column in bars]
        scale = np.exp(rng.normal(0, 0.05, len(bars.close) - t - 1))
        for column in (1, 2, 3, 4):  # open, high, low, close after bar t
            changed[column][t + 1 :] *= scale
        changed[2] = np.maximum.reduce([changed[1], changed[2], changed[4]])
        changed[3] = np.minimum.reduce([changed[1], changed[3], changed[4]])
        moved = run_backtest(Bars(*changed), strategy).position
        assert moved[: t + 2].tolist() == base[: t + 2].tolist()
        later_changed |= moved[t + 2 :].tolist() != base[t + 2 :].tolist()
    # The perturbation does reach the rules: later positions move.
    assert later_changed


def bars_from(open_, close) -> Bars:
    open_, close = np.asarray(open_, float), np.asarray(close, float)
    high, low = np.maximum(open_, close), np.minimum(open_, close)
    time = np.arange(len(close), dtype=np.int64) * 3600
    return Bars(time, open_, high, low, close, np.ones(len(close)))


def test_fills_by_hand():
    # Donchian(1, 1): enter when the close beats the previous high, exit when it
    # falls below the previous low.
    bars = Bars(
        np.arange(6, dtype=np.int64) * 60,
        np.array([10.0, 10.0, 12.0, 13.0, 11.0, 9.0]),
        np.array([10.0, 12.0, 13.0, 13.0, 11.0, 9.0]),
        np.array([10.0, 10.0, 12.0, 11.0, 9.0, 9.0]),
        np.array([10.0, 12.0, 13.0, 11.0, 9.0, 9.0]),
        np.ones(6),
    )
    result = run_backtest(
        bars, "donchian_breakout", {"entry": 1, "exit": 1}, fee=0.01, slippage_bps=100
    )
    # Signal at the close of bar 1 (12 > 10), fill at the open of bar 2: 12 * 1.01.
    # Exit signal at the close of bar 3 (11 < 12), fill at the open of bar 4.
    entry, exit_ = 12 * 1.01, 11 * 0.99
    units = 10_000 / (entry * 1.01)
    assert result.position.tolist() == [0, 0, 1, 1, 0, 0]
    assert result.equity[2] == pytest.approx(units * 13)
    assert result.equity[3] == pytest.approx(units * 11)
    assert result.equity[4] == pytest.approx(units * exit_ * 0.99)
    (trade,) = result.trades
    assert trade == Trade(
        entry_index=2, exit_index=4, entry_time=120, exit_time=240,
        entry_price=pytest.approx(entry), exit_price=pytest.approx(exit_),
        units=pytest.approx(units),
        return_pct=pytest.approx((exit_ * 0.99 / (entry * 1.01) - 1) * 100),
        bars_held=2, fees=pytest.approx(units * (entry + exit_) * 0.01),
        closed_at_end=False,
    )  # fmt: skip


def test_open_position_is_closed_at_the_last_close_with_the_fee():
    bars = bars_from([10, 10, 11, 12], [10, 11, 12, 20])
    result = run_backtest(bars, "donchian_breakout", {"entry": 1, "exit": 1}, fee=0.5)
    units = 10_000 / (11 * 1.5)  # signal at the close of bar 1, fill at bar 2
    (trade,) = result.trades
    assert trade.closed_at_end and trade.exit_index == 3 and trade.exit_price == 20
    assert result.equity[-1] == pytest.approx(units * 20 * 0.5)
    assert result.metrics["final_equity"] == result.equity[-1]
    assert result.position.tolist() == [0, 0, 1, 1]


def test_a_signal_on_the_last_bar_is_ignored():
    # The close of the last bar breaks out, but there is no next open to buy at.
    bars = bars_from([10, 10, 10], [10, 10, 20])
    result = run_backtest(bars, "donchian_breakout", {"entry": 1, "exit": 1})
    assert result.metrics["num_trades"] == 0
    assert result.position.tolist() == [0, 0, 0]
    assert result.equity.tolist() == [10_000.0] * 3


@pytest.mark.parametrize("n", [1, 2, 5])
@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_short_series_give_no_trades_and_defined_metrics(strategy, n):
    bars = bars_from(np.linspace(10, 11, n), np.linspace(10, 11, n))
    result = run_backtest(bars, strategy)
    metrics = result.metrics
    assert metrics["num_trades"] == 0 and metrics["win_rate_pct"] is None
    assert metrics["final_equity"] == 10_000 and metrics["total_return_pct"] == 0
    # A few hours are no basis for an annual rate.
    assert metrics["cagr_pct"] is None and metrics["max_drawdown_pct"] == 0
    assert metrics["exposure_pct"] == 0 and metrics["sharpe"] is None
    assert len(result.equity) == len(result.position) == n
    json.dumps(metrics, allow_nan=False)


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_flat_market_never_trades(strategy):
    bars = bars_from(np.full(500, 7.0), np.full(500, 7.0))
    result = run_backtest(bars, strategy)
    assert result.metrics["num_trades"] == 0
    assert result.metrics["sharpe"] is None and result.metrics["sortino"] is None
    json.dumps(result.metrics, allow_nan=False)


def test_gaps_in_time_are_not_filled():
    """A month missing between two bars is one step like any other: no bars
    are filled in and holding periods count bars, times are kept; annual
    figures count the calendar and the gap is reported."""
    day = 86_400
    # The bars of test_fills_by_hand, daily, with days 3 to 32 missing.
    time = np.array([0, 1, 2, 33, 34, 35], dtype=np.int64) * day
    bars = Bars(
        time,
        np.array([10.0, 10.0, 12.0, 13.0, 11.0, 9.0]),
        np.array([10.0, 12.0, 13.0, 13.0, 11.0, 9.0]),
        np.array([10.0, 10.0, 12.0, 11.0, 9.0, 9.0]),
        np.array([10.0, 12.0, 13.0, 11.0, 9.0, 9.0]),
        np.ones(6),
    )
    result = run_backtest(
        bars, "donchian_breakout", {"entry": 1, "exit": 1}, fee=0.0, interval="1d"
    )
    # Bought at the open of day 2 (12), sold at the open of day 34 (11): two
    # bars held across the gap, though 32 days passed.
    units = 10_000 / 12
    (trade,) = result.trades
    assert (trade.entry_index, trade.exit_index, trade.bars_held) == (2, 4, 2)
    assert (trade.entry_time, trade.exit_time) == (2 * day, 34 * day)
    assert result.position.tolist() == [0, 0, 1, 1, 0, 0]
    final = units * 11
    np.testing.assert_allclose(
        result.equity, [10_000, 10_000, units * 13, units * 11, final, final]
    )
    metrics = result.metrics
    assert metrics["avg_trade_duration"] == 2
    assert metrics["exposure_pct"] == pytest.approx(100 * 2 / 6)
    assert metrics["max_drawdown_duration"] == 3  # bars after the peak, not days
    # Six bars spanning 36 calendar days (day 0 to day 35 plus one day): the
    # rate is over 36 days, not six (which would claim below -99 %).
    growth = final / 10_000
    assert metrics["cagr_pct"] == pytest.approx((growth ** (365 / 36) - 1) * 100)
    assert -60 < metrics["cagr_pct"] < -58
    assert metrics["missing_bars"] == 30  # days 3 to 32
    assert metrics["longest_gap_hours"] == 30 * 24

    # A long random walk: moving the second half a month later changes the
    # times of the trades and nothing else.
    bars = make_bars(2, 120)
    gapped = bars._replace(time=bars.time + np.where(np.arange(120) >= 60, 30 * day, 0))
    a = run_backtest(bars, "sma_crossover", {"fast": 3, "slow": 8})
    b = run_backtest(gapped, "sma_crossover", {"fast": 3, "slow": 8})
    np.testing.assert_array_equal(a.equity, b.equity)
    np.testing.assert_array_equal(a.position, b.position)
    # Only what counts the calendar moves: the annual figures and the gaps.
    calendar = {"cagr_pct", "volatility_ann_pct", "sharpe", "sortino", "calmar",
                "missing_bars", "longest_gap_hours"}  # fmt: skip
    assert {k: v for k, v in a.metrics.items() if k not in calendar} == {
        k: v for k, v in b.metrics.items() if k not in calendar
    }
    assert (a.metrics["missing_bars"], b.metrics["missing_bars"]) == (0, 30 * 24)
    # run_many works the calendar out once for all its jobs: every job still
    # gets its own range's figures, by hand: 120 bars over 120 hours + 30 days.
    jobs = [("sma_crossover", {"fast": 3, "slow": 8}), ("rsi_reversion", None),
            ("donchian_breakout", {"entry": 5, "exit": 3})]  # fmt: skip
    years = (120 + 30 * 24) / 8760
    for result in run_many(gapped, jobs, interval="1h"):
        found = result.metrics
        assert (found["missing_bars"], found["longest_gap_hours"]) == (720, 720.0)
        growth = found["final_equity"] / 10_000
        assert found["cagr_pct"] == pytest.approx((growth ** (1 / years) - 1) * 100)
        returns = np.diff(result.equity) / result.equity[:-1]
        if returns.std() > 0:
            per_year = 120 / years
            assert found["sharpe"] == pytest.approx(
                returns.mean() / returns.std(ddof=1) * math.sqrt(per_year)
            )
    # 120 hourly bars stretched over 120 hours plus 30 days: fewer bars a year.
    scale = math.sqrt(120 / (120 + 30 * 24))
    assert b.metrics["sharpe"] == pytest.approx(a.metrics["sharpe"] * scale)
    across = [t for t in b.trades if t.entry_index < 60 <= t.exit_index]
    assert across, "no trade spans the gap"
    for before, after in zip(a.trades, b.trades, strict=True):
        assert after._replace(entry_time=0, exit_time=0) == before._replace(
            entry_time=0, exit_time=0
        )
        assert after.entry_time == gapped.time[after.entry_index]
        assert after.exit_time == gapped.time[after.exit_index]
    gap_trade = across[0]
    assert gap_trade.exit_time - gap_trade.entry_time == (
        3600 * gap_trade.bars_held + 30 * day
    )
    # The trades held across the gap, and only those, are flagged.
    spans = [t.entry_index < 60 <= t.exit_index for t in b.trades]
    assert b.trade_table["gap"].tolist() == spans
    assert not a.trade_table["gap"].any()


def test_run_many_equals_separate_runs():
    bars = make_bars(5, 900, flat_runs=3)
    jobs = [(key, {}) for key in STRATEGIES] + [
        ("sma_crossover", {"fast": 5, "slow": 9}),
        ("macd_crossover", {"fast": 12, "slow": 26, "signal": 5}),
    ]
    together = run_many(bars, jobs, fee=0.002, slippage_bps=3)
    for (key, params), result in zip(jobs, together, strict=True):
        alone = run_backtest(bars, key, params, fee=0.002, slippage_bps=3)
        assert result.strategy == key
        np.testing.assert_array_equal(result.equity, alone.equity)
        np.testing.assert_array_equal(result.position, alone.position)
        assert result.metrics == alone.metrics
        assert result.trades == alone.trades


def test_results_outlive_later_runs():
    """Results never share memory with the engine's reusable scratch space."""
    first_bars, second_bars = make_bars(1, 700), make_bars(2, 700)
    jobs = [(key, {}) for key in STRATEGIES]
    first = run_many(first_bars, jobs)
    saved = [(r.equity.copy(), r.position.copy(), r.trades) for r in first]
    run_many(second_bars, jobs)
    for result, (equity, position, trades) in zip(first, saved, strict=True):
        np.testing.assert_array_equal(result.equity, equity)
        np.testing.assert_array_equal(result.position, position)
        assert result.trades == trades


def test_threads_give_the_same_results():
    coins = [make_bars(seed, 1500, flat_runs=2) for seed in range(8)]
    jobs = [(key, {}) for key in STRATEGIES]
    serial = [run_many(bars, jobs) for bars in coins]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda bars: run_many(bars, jobs), coins))
    for one, other in zip(serial, threaded, strict=True):
        for a, b in zip(one, other, strict=True):
            np.testing.assert_array_equal(a.equity, b.equity)
            assert a.metrics == b.metrics


def test_result_shapes_and_buy_and_hold():
    bars = make_bars(9, 400)
    result = run_backtest(bars, "ema_crossover", {"fast": 5, "slow": 20})
    assert result.equity.dtype == np.float64 and result.position.dtype == np.int8
    assert len(result.equity) == len(result.position) == len(result.buy_hold_equity)
    assert result.params == {"fast": 5, "slow": 20}
    np.testing.assert_allclose(
        result.buy_hold_equity, 10_000 * bars.close / bars.close[0], rtol=1e-14
    )
    assert result.metrics["buy_hold_return_pct"] == pytest.approx(
        (bars.close[-1] / bars.close[0] - 1) * 100
    )
    assert result.metrics["num_trades"] == len(result.trades) > 0


def test_inputs_are_not_modified():
    bars = make_bars(4, 300)
    before = [column.copy() for column in bars]
    run_many(bars, [(key, {}) for key in STRATEGIES])
    for column, saved in zip(bars, before, strict=True):
        np.testing.assert_array_equal(column, saved)


def test_bad_arguments_name_the_argument():
    bars = bars_from([1.0, 2.0], [1.0, 2.0])
    for kwargs, name in [
        ({"fee": -0.1}, "fee"),
        ({"fee": 1.0}, "fee"),
        ({"fee": "0.001"}, "fee"),
        ({"fee": float("nan")}, "fee"),
        ({"slippage_bps": None}, "slippage_bps"),
        ({"slippage_bps": -1}, "slippage_bps"),
        ({"interval": "2h"}, "interval"),
        ({"interval": ["1h"]}, "interval"),
        ({"initial_equity": 0}, "initial_equity"),
    ]:
        with pytest.raises(ValueError, match=name):
            run_backtest(bars, "sma_crossover", **kwargs)
    with pytest.raises(ValueError, match="bars: empty"):
        run_backtest(bars_from([], []), "sma_crossover")
    with pytest.raises(ValueError, match="bars"):
        run_backtest(bars._replace(close=np.ones(3)), "sma_crossover")
    with pytest.raises(ValueError, match="bars"):
        run_backtest(bars._replace(open=np.array([1.0, np.nan])), "sma_crossover")
    with pytest.raises(ValueError, match="bars"):
        run_backtest(bars._replace(close=np.array([1.0, 0.0])), "sma_crossover")
    with pytest.raises(ValueError, match="strategy"):
        run_backtest(bars, "nope")
    with pytest.raises(ValueError, match="fast"):
        run_backtest(bars, "sma_crossover", {"fast": 60})


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    "column, index, value, message",
    [
        ("open", 3, NAN, "every open must be a positive finite price; bar 3 "),
        ("open", 0, 0.0, "every open must be a positive finite price; bar 0 "),
        ("close", 7, INF, "every close must be a positive finite price; bar 7 "),
        ("close", 9, -1.0, "every close must be a positive finite price; bar 9 "),
        ("high", 5, NAN, "every high must be a positive finite price; bar 5 "),
        ("high", 4, INF, "every high must be a positive finite price; bar 4 "),
        ("low", 6, NAN, "every low must be a positive finite price; bar 6 "),
        ("low", 2, 0.0, "every low must be a positive finite price; bar 2 "),
        ("low", 8, -INF, "every low must be a positive finite price; bar 8 "),
        ("high", 1, 0.5, "high must not be below low; bar 1 has high=0.5 < low="),
        ("low", 11, 1e6, "high must not be below low; bar 11 has high="),
    ],
)
def test_malformed_bars_are_refused_naming_the_first_bad_bar(
    column, index, value, message
):
    bars = make_bars(8, 20)
    values = getattr(bars, column).copy()
    values[index] = value
    if column in ("high", "low"):
        # A second, later bad bar: the error names the first one.
        values[index + 5] = value
    bad = bars._replace(**{column: values})
    with pytest.raises(ValueError, match="^bars: " + re.escape(message)):
        run_backtest(bad, "donchian_breakout")
    with pytest.raises(ValueError, match=re.escape(message)):
        run_many(bad, [("sma_crossover", {})])


def test_the_earliest_malformed_bar_is_named():
    bars = make_bars(8, 20)
    close, high = bars.close.copy(), bars.high.copy()
    close[12] = NAN
    high[4] = bars.low[4] * 0.99
    with pytest.raises(ValueError, match="high must not be below low; bar 4 "):
        run_backtest(bars._replace(close=close, high=high), "sma_crossover")


def test_bars_touching_their_limits_are_accepted():
    # high == low == open == close (a bar without trades) is well formed.
    price = np.full(30, 3.0)
    bars = Bars(np.arange(30, dtype=np.int64), price, price, price, price, price)
    assert run_backtest(bars, "donchian_breakout").metrics["num_trades"] == 0


def test_plain_sequences_are_accepted_as_bars():
    bars = make_bars(3, 200)
    as_lists = tuple(column.tolist() for column in bars)
    a = run_backtest(bars, "rsi_reversion")
    b = run_backtest(as_lists, "rsi_reversion")
    np.testing.assert_array_equal(a.equity, b.equity)


# The shared candles beside the repository (../shared/data), as in conftest.py.
_SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
REAL_DATA = Path(os.environ.get("BTLAB_REAL_DATA", _SHARED)) / "ohlcv-1h"
SHORT = {
    "sma_crossover": {"fast": 2, "slow": 3},
    "ema_crossover": {"fast": 2, "slow": 3},
    "rsi_reversion": {"period": 2, "lower": 40, "upper": 60},
    "bollinger_reversion": {"period": 3, "std": 1.0},
    "macd_crossover": {"fast": 2, "slow": 3, "signal": 2},
    "donchian_breakout": {"entry": 2, "exit": 2},
}


@pytest.mark.parametrize("symbol", ["BTC", "SHIB", "PAXG"])
def test_real_candles_match_the_reference(symbol):
    """Real prices move in ticks: equal closes and exact ties are common."""
    path = REAL_DATA / f"{symbol}USDT.csv.gz"
    if not path.exists():
        pytest.skip(f"real data not found at {path}")
    frame = pd.read_csv(path).tail(1500)
    time = pd.to_datetime(frame["timestamp"], utc=True).astype("int64") // 10**9
    columns = (frame[name].to_numpy(float) for name in Bars._fields[1:])
    bars = Bars(time.to_numpy(np.int64), *columns)
    for strategy in STRATEGIES:
        for params in ({}, SHORT[strategy]):
            check_against_reference(bars, strategy, params, 0.001, 1.0)


@pytest.mark.parametrize(
    "risk",
    [None, {"stop_loss_pct": 1.0}, {"take_profit_pct": 2.0, "direction": "both"},
     {"trailing_stop_pct": 1.5, "direction": "short", "position_size": 0.5}],
)  # fmt: skip
@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_bars_held_add_up_to_exposure(strategy, risk):
    """Every bar a position is held during belongs to one trade's bars_held:
    the exit bar counts when the trade is closed within it or at its close
    (the end), not when a signal sells at its open."""
    bars = make_bars(11, 700)
    result = run_backtest(bars, strategy, {}, risk=risk)
    table = result.trade_table
    held = np.asarray(table["bars_held"], dtype=np.int64)
    assert held.sum() == np.count_nonzero(result.position)
    n = len(bars.close)
    assert result.metrics["exposure_pct"] == pytest.approx(100 * held.sum() / n)
    for trade in result.trades:
        # The bars of this trade, read from the position column.
        span = result.position[trade.entry_index : trade.exit_index + 1]
        side = 1 if trade.side == "long" else -1
        assert trade.bars_held == int(np.count_nonzero(span == side)), trade


def test_a_trade_closed_at_the_end_holds_its_last_bar():
    # Bought at the open of bar 2 and still long: closed at bar 4's close, so
    # bars 2, 3 and 4 were held.
    bars = bars_from([10, 10, 10, 11, 12], [10, 12, 11, 12, 13])
    result = run_backtest(bars, "donchian_breakout", {"entry": 1, "exit": 1})
    (trade,) = result.trades
    assert (trade.entry_index, trade.exit_index, trade.closed_at_end) == (2, 4, True)
    assert trade.bars_held == 3
    assert result.position.tolist() == [0, 0, 1, 1, 1]
    assert result.metrics["exposure_pct"] == pytest.approx(60.0)
    assert result.metrics["avg_trade_duration"] == 3
