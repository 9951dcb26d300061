"""Metrics on hand-made equity curves and trades, plus engine edge cases."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from strategies import metrics as m
from strategies.engine import run_backtest, simulate
from strategies.params import ParamError
from strategies.registry import STRATEGIES, schema, validate_params
from strategies.types import Bars


def test_drawdown_by_hand():
    equity = np.array([100.0, 120, 90, 95, 130, 117])
    # Peak 120 -> trough 90 is -25%; 130 -> 117 is -10%.
    assert m.max_drawdown_pct(equity) == pytest.approx(25.0)
    # Bars under a previous peak: 90, 95 (2 in a row), then 117 (1).
    assert m.max_drawdown_duration(equity) == 2
    assert m.max_drawdown_duration(np.array([1.0, 2, 3])) == 0


def test_returns_sharpe_sortino_by_hand():
    equity = np.array([100.0, 110.0, 99.0, 108.9])
    returns = m.bar_returns(equity)
    assert returns == pytest.approx([0.1, -0.1, 0.1])
    mean, std = (
        0.1 / 3,
        math.sqrt(((0.1 - 0.1 / 3) ** 2 * 2 + (0.1 + 0.1 / 3) ** 2) / 2),
    )
    assert m.sharpe(returns, 365) == pytest.approx(mean / std * math.sqrt(365))
    downside = math.sqrt(0.01 / 3)
    assert m.sortino(returns, 365) == pytest.approx(mean / downside * math.sqrt(365))
    assert m.volatility_ann_pct(returns, 365) == pytest.approx(
        std * math.sqrt(365) * 100
    )
    assert m.total_return_pct(equity) == pytest.approx(8.9)


def test_cagr_and_calmar_by_hand():
    # 366 daily points = 365 periods = one year: CAGR equals the total return.
    equity = np.linspace(100.0, 150.0, 366)
    assert m.cagr_pct(equity, 365) == pytest.approx(50.0)
    assert m.calmar(50.0, 20.0) == pytest.approx(2.5)
    assert m.calmar(50.0, 0.0) is None
    assert m.cagr_pct(np.array([100.0]), 365) is None


def test_undefined_ratios_are_none():
    flat = np.full(10, 100.0)
    returns = m.bar_returns(flat)
    assert m.sharpe(returns, 8760) is None
    assert m.sortino(returns, 8760) is None
    assert m.sharpe(returns[:1], 8760) is None


def trade_table(returns_pct, units, entry, exit_, fees, held):
    return {
        "return_pct": np.array(returns_pct, float),
        "units": np.array(units, float),
        "entry_price": np.array(entry, float),
        "exit_price": np.array(exit_, float),
        "fees": np.array(fees, float),
        "bars_held": np.array(held, float),
    }


def test_trade_stats_by_hand():
    # Three trades of one unit: +10 (win), -5 (loss), +20 (win), no fees.
    table = trade_table([10, -5, 20], [1, 1, 1], [100, 100, 100], [110, 95, 120],
                        [0, 0, 0], [2, 4, 6])  # fmt: skip
    stats = m.trade_stats(table)
    assert stats["win_rate_pct"] == pytest.approx(200 / 3)
    assert stats["profit_factor"] == pytest.approx(30 / 5)
    assert stats["expectancy_pct"] == pytest.approx(25 / 3)
    geometric = (1.1 * 0.95 * 1.2) ** (1 / 3) - 1
    assert stats["avg_trade_pct"] == pytest.approx(geometric * 100)
    assert (stats["best_trade_pct"], stats["worst_trade_pct"]) == (20, -5)
    assert stats["avg_trade_duration"] == pytest.approx(4)
    no_loss = m.trade_stats(trade_table([5], [1], [100], [105], [0], [1]))
    assert no_loss["profit_factor"] is None and no_loss["win_rate_pct"] == 100


def bars_from(open_, close):
    open_, close = np.asarray(open_, float), np.asarray(close, float)
    high, low = np.maximum(open_, close), np.minimum(open_, close)
    return Bars(np.arange(len(close), dtype=np.int64) * 3600, open_, high, low,
                close, np.ones(len(close)))  # fmt: skip


def test_simulate_by_hand():
    bars = bars_from([10, 10, 11, 12, 12], [10, 11, 12, 12, 13])
    # Target long from the close of bar 0, flat from the close of bar 2.
    equity, position, trades = simulate(
        bars, np.array([1, 1, 0, 0, 0]), fee=0.01, slippage_bps=100
    )
    entry, exit_ = 10 * 1.01, 12 * 0.99  # fills at the opens of bars 1 and 3
    units = 10_000 / (entry * 1.01)
    assert position.tolist() == [0, 1, 1, 0, 0]
    assert equity[1] == pytest.approx(units * 11)
    assert equity[2] == pytest.approx(units * 12)
    assert equity[3] == pytest.approx(units * exit_ * 0.99)
    assert trades["bars_held"].tolist() == [2]
    assert trades["fees"][0] == pytest.approx(units * (entry + exit_) * 0.01)


def test_open_position_closed_at_the_last_close_with_fee():
    bars = bars_from([10, 10, 10], [10, 10, 20])
    result = run_backtest(bars, "donchian_breakout", {"entry": 1, "exit": 1}, fee=0.0)
    equity, position, trades = simulate(bars, np.array([1, 1, 1]), fee=0.5,
                                        slippage_bps=0)  # fmt: skip
    units = 10_000 / (10 * 1.5)
    assert equity[-1] == pytest.approx(units * 20 * 0.5)
    assert trades["closed_at_end"].tolist() == [True]
    assert result.metrics["num_trades"] == len(result.trades)


@pytest.mark.parametrize("n", [1, 2, 5])
@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_short_windows_give_no_trades_and_defined_metrics(strategy, n):
    bars = bars_from(np.linspace(10, 11, n), np.linspace(10, 11, n))
    result = run_backtest(bars, strategy)
    assert result.metrics["num_trades"] == 0
    assert result.metrics["final_equity"] == 10_000
    assert result.metrics["total_return_pct"] == 0
    assert result.metrics["win_rate_pct"] is None
    json.dumps(result.metrics, allow_nan=False)


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_flat_market_never_trades(strategy):
    bars = bars_from(np.full(500, 7.0), np.full(500, 7.0))
    result = run_backtest(bars, strategy)
    assert result.metrics["num_trades"] == 0
    assert result.metrics["sharpe"] is None
    json.dumps(result.metrics, allow_nan=False)


def test_gaps_in_time_are_not_filled():
    bars = bars_from(np.linspace(10, 20, 50), np.linspace(10, 20, 50))
    gapped = bars._replace(time=bars.time + np.r_[np.zeros(25), np.full(25, 86_400)])
    a, b = (
        run_backtest(bars, "sma_crossover", {"fast": 2, "slow": 5}),
        run_backtest(gapped, "sma_crossover", {"fast": 2, "slow": 5}),
    )
    np.testing.assert_array_equal(a.equity, b.equity)
    assert b.trades[0].entry_time == int(gapped.time[b.trades[0].entry_index])


def test_bad_engine_arguments_name_the_argument():
    bars = bars_from([1.0, 2.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="fee"):
        run_backtest(bars, "sma_crossover", fee=-0.1)
    with pytest.raises(ValueError, match="slippage_bps"):
        run_backtest(bars, "sma_crossover", slippage_bps=-1)
    with pytest.raises(ValueError, match="interval"):
        run_backtest(bars, "sma_crossover", interval="5m")
    with pytest.raises(ValueError, match="bars"):
        run_backtest(bars_from([], []), "sma_crossover")


def test_validate_params_lists_every_problem():
    with pytest.raises(ParamError) as caught:
        validate_params("sma_crossover", {"fast": "x", "slow": 1, "speed": 3})
    fields = [name for name, _ in caught.value.errors]
    assert fields == ["speed", "fast", "slow"]
    assert "speed" in str(caught.value) and "fast" in str(caught.value)
    with pytest.raises(ParamError, match="fast: must be less than slow"):
        validate_params("sma_crossover", {"fast": 40, "slow": 30})
    with pytest.raises(ParamError, match="boolean"):
        validate_params("rsi_reversion", {"period": True})
    with pytest.raises(ParamError, match="integer"):
        validate_params("rsi_reversion", {"period": 14.5})
    with pytest.raises(ParamError, match="unknown strategy"):
        validate_params("nope", {})
    assert validate_params("rsi_reversion", {"period": "10", "lower": 25}) == {
        "period": 10, "lower": 25.0, "upper": 70.0,
    }  # fmt: skip
    assert validate_params("bollinger_reversion", {"std": "1.5"})["std"] == 1.5


def test_schema_is_json_and_complete():
    data = json.loads(json.dumps(schema()))
    assert [s["key"] for s in data] == list(STRATEGIES)
    for strategy in data:
        for param in strategy["params"]:
            assert set(param) == {"name", "type", "default", "min", "max", "help"}
            assert param["min"] <= param["default"] <= param["max"]
