"""The engine against the plain-loop reference, on random price paths."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strategies.engine import run_backtest, run_many
from strategies.registry import STRATEGIES
from strategies.tests import reference as ref
from strategies.types import Bars

RTOL = 1e-9


def make_bars(seed: int, n: int, flat_runs: int = 0) -> Bars:
    """Return a random walk with valid OHLC, optionally with short flat stretches."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, rng.uniform(0.002, 0.03), n)))
    for _ in range(flat_runs if n > 10 else 0):
        start = int(rng.integers(5, max(6, n - 4)))
        close[start : start + 3] = close[start - 1]
    open_ = np.r_[close[0], close[:-1]] * (1 + rng.normal(0, 0.001, n))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, n))
    time = 1_700_000_000 + 3600 * np.arange(n, dtype=np.int64)
    return Bars(time, open_, high, low, close, rng.uniform(0, 50, n))


def fast_slow(top: int):
    return st.integers(2, top // 2).flatmap(
        lambda f: st.fixed_dictionaries(
            {"fast": st.just(f), "slow": st.integers(f + 1, top)}
        )
    )


PARAMS = {
    "sma_crossover": fast_slow(60),
    "ema_crossover": fast_slow(60),
    "rsi_reversion": st.fixed_dictionaries(
        {
            "period": st.integers(2, 30),
            "lower": st.floats(10, 45),
            "upper": st.floats(55, 90),
        }
    ),
    "bollinger_reversion": st.fixed_dictionaries(
        {"period": st.integers(2, 40), "std": st.floats(0.5, 3.0)}
    ),
    "macd_crossover": fast_slow(40).flatmap(
        lambda p: st.fixed_dictionaries(
            {"fast": st.just(p["fast"]), "slow": st.just(p["slow"]),
             "signal": st.integers(1, 15)}
        )
    ),
    "donchian_breakout": st.fixed_dictionaries(
        {"entry": st.integers(1, 40), "exit": st.integers(1, 30)}
    ),
}  # fmt: skip


def reference_metrics(curve, position, trades, close, periods=8760):
    """Metrics recomputed from the reference loop's output, in plain Python."""
    returns = [curve[i] / curve[i - 1] - 1 for i in range(1, len(curve))]
    out = {
        "total_return_pct": (curve[-1] / curve[0] - 1) * 100,
        "buy_hold_return_pct": (close[-1] / close[0] - 1) * 100,
        "final_equity": curve[-1],
        "num_trades": len(trades),
        "exposure_pct": 100 * sum(position) / len(position),
    }
    peak, worst, run, longest = curve[0], 0.0, 0, 0
    for value in curve:
        peak = max(peak, value)
        worst = max(worst, 1 - value / peak)
        run = run + 1 if value < peak else 0
        longest = max(longest, run)
    out["max_drawdown_pct"] = worst * 100
    out["max_drawdown_duration"] = longest
    if len(returns) >= 2 and statistics.stdev(returns) > 1e-15:
        out["sharpe"] = (
            statistics.mean(returns) / statistics.stdev(returns) * math.sqrt(periods)
        )
        out["volatility_ann_pct"] = statistics.stdev(returns) * math.sqrt(periods) * 100
    downside = math.sqrt(sum(min(r, 0) ** 2 for r in returns) / len(returns))
    out["sortino"] = (
        statistics.mean(returns) / downside * math.sqrt(periods)
        if downside > 1e-15
        else None
    )
    years = (len(curve) - 1) / periods
    if trades:
        rets = [t["return_pct"] for t in trades]
        out["win_rate_pct"] = 100 * sum(r > 0 for r in rets) / len(rets)
        out["expectancy_pct"] = sum(rets) / len(rets)
        out["best_trade_pct"] = max(rets)
        out["worst_trade_pct"] = min(rets)
        out["avg_trade_duration"] = sum(t["bars_held"] for t in trades) / len(trades)
        pnl = [
            t["units"] * (t["exit_price"] - t["entry_price"]) - t["fees"]
            for t in trades
        ]
        losses = -sum(p for p in pnl if p < 0)
        out["profit_factor"] = sum(p for p in pnl if p > 0) / losses if losses else None
    else:
        for key in (
            "win_rate_pct",
            "expectancy_pct",
            "profit_factor",
            "avg_trade_duration",
        ):
            out[key] = None
    out["_years"] = years
    return out


def close_enough(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=RTOL, abs_tol=1e-9)


def check_against_reference(bars: Bars, strategy: str, params: dict, fee, slippage):
    o, h, lo, c = (list(map(float, col)) for col in bars[1:5])
    target = ref.targets(strategy, params, o, h, lo, c)
    curve, position, trades = ref.simulate(target, o, c, fee=fee, slippage_bps=slippage)
    result = run_backtest(bars, strategy, params, fee=fee, slippage_bps=slippage)

    assert result.position.tolist() == position
    np.testing.assert_allclose(result.equity, curve, rtol=RTOL, atol=1e-9)
    assert len(result.trades) == len(trades)
    for got, want in zip(result.trades, trades, strict=True):
        assert got.entry_index == want["entry_index"]
        assert got.exit_index == want["exit_index"]
        assert got.bars_held == want["bars_held"]
        assert got.closed_at_end == want["closed_at_end"]
        for key in ("entry_price", "exit_price", "units", "return_pct", "fees"):
            assert close_enough(getattr(got, key), want[key]), key
    expected = reference_metrics(curve, position, trades, c)
    for key, want in expected.items():
        if key.startswith("_"):
            continue
        assert close_enough(result.metrics[key], want), (key, result.metrics[key], want)
    if not expected.get("sharpe"):
        assert result.metrics["sharpe"] is None or abs(result.metrics["sharpe"]) < 1e6


@pytest.mark.parametrize("strategy", list(STRATEGIES))
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
@given(
    data=st.data(),
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 300),
    flat_runs=st.integers(0, 3),
    fee=st.sampled_from([0.0, 0.001, 0.0025]),
    slippage=st.sampled_from([0.0, 5.0, 30.0]),
)
def test_engine_matches_the_reference(
    strategy, data, seed, n, flat_runs, fee, slippage
):
    params = data.draw(PARAMS[strategy])
    check_against_reference(
        make_bars(seed, n, flat_runs), strategy, params, fee, slippage
    )


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_defaults_on_a_long_series_match_the_reference(strategy):
    bars = make_bars(7, 3000, flat_runs=5)
    defaults = {p.name: p.default for p in STRATEGIES[strategy].params}
    check_against_reference(bars, strategy, defaults, 0.001, 2.0)


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_no_look_ahead(strategy):
    """Changing prices after bar t leaves every position up to t+1 unchanged."""
    bars = make_bars(11, 600)
    base = run_backtest(bars, strategy).position
    rng = np.random.default_rng(3)
    for t in (100, 250, 400, 598):
        changed = [col.copy() for col in bars]
        scale = np.exp(rng.normal(0, 0.05, len(bars.close) - t - 1))
        for column in (1, 2, 3, 4):
            changed[column][t + 1 :] *= scale
        changed[2] = np.maximum.reduce([changed[1], changed[2], changed[4]])
        changed[3] = np.minimum.reduce([changed[1], changed[3], changed[4]])
        moved = run_backtest(Bars(*changed), strategy).position
        assert moved[: t + 2].tolist() == base[: t + 2].tolist()


def test_run_many_equals_separate_runs():
    bars = make_bars(5, 800)
    jobs = [(key, {}) for key in STRATEGIES] + [
        ("sma_crossover", {"fast": 5, "slow": 9})
    ]
    together = run_many(bars, jobs, fee=0.002)
    for (key, params), result in zip(jobs, together, strict=True):
        alone = run_backtest(bars, key, params, fee=0.002)
        assert result.strategy == key
        np.testing.assert_array_equal(result.equity, alone.equity)
        assert result.metrics == alone.metrics
