"""Execution with risk settings against the plain-loop reference."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strategies.engine import run_backtest
from strategies.metrics import METRIC_KEYS, PERIODS_PER_YEAR
from strategies.registry import STRATEGIES, validate_params
from strategies.risk import Risk
from strategies.tests import reference as ref
from strategies.tests.test_engine import close_enough, make_bars, params_for

RTOL = 1e-9
TRADE_KEYS = ("entry_index", "exit_index", "side", "exit_reason", "closed_at_end")


def reference_run(bars, strategy, params, risk: Risk, fee, slippage):
    """Return the reference's (curve, position, trades) for these settings."""
    high, low, close = (column.tolist() for column in bars[2:5])
    rules = ref.side_rules(strategy, validate_params(strategy, params), high, low,
                           close)  # fmt: skip
    return ref.simulate_risk(
        rules, bars.open.tolist(), high, low, close, fee=fee,
        slippage_bps=slippage, **risk.as_dict(),
    )  # fmt: skip


def check_risk_against_reference(
    bars, strategy, params, risk: Risk, fee, slippage, interval="1h", *,
    metrics=True,
):  # fmt: skip
    """Assert the engine and the reference agree; return the reference trades.

    Trade lists identical (bars, side, reason), every price and amount and the
    equity curve within 1e-9 relative, the metrics too (unless ``metrics`` is
    False, for the long real-data runs where the reference metrics are slow).
    """
    curve, position, trades = reference_run(bars, strategy, params, risk, fee,
                                            slippage)  # fmt: skip
    result = run_backtest(
        bars, strategy, params, fee=fee, slippage_bps=slippage, interval=interval,
        risk=risk,
    )  # fmt: skip
    got = [tuple(getattr(t, key) for key in TRADE_KEYS) for t in result.trades]
    want = [tuple(t[key] for key in TRADE_KEYS) for t in trades]
    assert got == want
    assert result.position.tolist() == position
    np.testing.assert_allclose(result.equity, curve, rtol=RTOL, atol=1e-9)
    for have, expected in zip(result.trades, trades, strict=True):
        assert have.entry_time == bars.time[expected["entry_index"]]
        assert have.exit_time == bars.time[expected["exit_index"]]
        assert have.bars_held == expected["bars_held"]
        for key in ("entry_price", "exit_price", "units", "return_pct", "fees"):
            assert close_enough(getattr(have, key), expected[key]), key
    if metrics:
        periods = PERIODS_PER_YEAR[interval]
        expected = ref.metrics(curve, position, trades, bars.close.tolist(), periods)
        assert set(result.metrics) == set(expected) == set(METRIC_KEYS)
        for key, want_value in expected.items():
            assert close_enough(result.metrics[key], want_value), (
                key, result.metrics[key], want_value,
            )  # fmt: skip
        json.dumps(result.metrics, allow_nan=False)
    return trades


RISKS = [
    Risk(direction="short"),
    Risk(direction="both"),
    Risk(stop_loss_pct=2.0),
    Risk(take_profit_pct=3.0, direction="short"),
    Risk(trailing_stop_pct=1.5, direction="both"),
    Risk(5.0, 10.0, 3.0, "both", 0.5),
    Risk(1.0, 1.0, None, "both", 1.0),
    Risk(None, None, 0.5, "long", 0.25),
]

# Risk settings Hypothesis draws: each off or on across its range, weighted
# towards levels a random walk reaches within a trade.
RISK_DRAWS = st.builds(
    Risk,
    stop_loss_pct=st.none() | st.floats(0.1, 10) | st.floats(0.1, 99.9),
    take_profit_pct=st.none() | st.floats(0.1, 20) | st.floats(0.1, 1000),
    trailing_stop_pct=st.none() | st.floats(0.1, 10) | st.floats(0.1, 99.9),
    direction=st.sampled_from(["long", "short", "both"]),
    position_size=st.floats(0.01, 1.0) | st.just(1.0),
)


@pytest.mark.parametrize("strategy", list(STRATEGIES))
@pytest.mark.parametrize("risk", RISKS, ids=lambda risk: str(risk.as_dict()))
def test_risk_settings_match_the_reference(strategy, risk):
    bars = make_bars(17, 700, flat_runs=3)
    trades = check_risk_against_reference(bars, strategy, {}, risk, 0.001, 3.0)
    assert trades


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_random_risk_settings_match_the_reference(strategy):
    traded = []

    @settings(
        max_examples=40,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(
        data=st.data(),
        seed=st.integers(0, 2**32 - 1),
        n=st.integers(2, 300),
        vol=st.sampled_from([None, 0.05, 0.15]),
        risk=RISK_DRAWS,
        fee=st.floats(0.0, 0.01) | st.floats(0.0, 0.05),
        slippage=st.floats(0.0, 50.0) | st.floats(0.0, 500.0),
    )
    def compare(data, seed, n, vol, risk, fee, slippage):
        params = data.draw(params_for(strategy, n), label="params")
        bars = make_bars(seed, n, flat_runs=2, vol=vol)
        trades = check_risk_against_reference(bars, strategy, params, risk, fee,
                                              slippage)  # fmt: skip
        traded.append(len(trades))

    compare()
    assert sum(count > 0 for count in traded) >= 0.5 * len(traded)


def test_a_liquidation_matches_the_reference_and_stops_trading():
    # A falling market a short enters, then one bar that more than doubles:
    # the short is liquidated there, and nothing trades afterwards.
    bars = make_bars(4, 300, vol=0.01)
    jump = np.where(np.arange(300) >= 150, 2.5, 1.0)
    fall = np.exp(-0.002 * np.arange(300))
    bars = bars._replace(
        open=bars.open * fall * jump, high=bars.high * fall * jump,
        low=bars.low * fall * jump, close=bars.close * fall * jump,
    )  # fmt: skip
    risk = Risk(direction="both")
    params = {"fast": 3, "slow": 20}
    trades = check_risk_against_reference(bars, "sma_crossover", params, risk,
                                          0.001, 2.0)  # fmt: skip
    assert trades[-1]["exit_reason"] == "liquidation"
    assert trades[-1]["exit_index"] == 150 and trades[-1]["side"] == "short"
    result = run_backtest(bars, "sma_crossover", params, risk=risk, slippage_bps=2.0)
    assert (result.equity[150:] == 0).all() and not result.position[151:].any()
    assert result.metrics["exit_reasons"]["liquidation"] == 1
    assert math.isclose(result.metrics["total_return_pct"], -100.0)
