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
from strategies.types import Bars

RTOL = 1e-9
TRADE_KEYS = ("entry_index", "exit_index", "side", "exit_reason", "closed_at_end")


def reference_rules(bars, strategy, params):
    """Return the reference's side rules of a strategy on these bars."""
    high, low, close = (column.tolist() for column in bars[2:5])
    return ref.side_rules(strategy, validate_params(strategy, params), high, low,
                          close)  # fmt: skip


def reference_run(bars, strategy, params, risk: Risk, fee, slippage, rules=None):
    """Return the reference's (curve, position, trades) for these settings."""
    high, low, close = (column.tolist() for column in bars[2:5])
    if rules is None:
        rules = reference_rules(bars, strategy, params)
    return ref.simulate_risk(
        rules, bars.open.tolist(), high, low, close, fee=fee,
        slippage_bps=slippage, **risk.as_dict(),
    )  # fmt: skip


def check_risk_against_reference(
    bars, strategy, params, risk: Risk, fee, slippage, interval="1h", *,
    metrics=True, rules=None,
):  # fmt: skip
    """Assert the engine and the reference agree; return the reference trades.

    Trade lists identical (bars, side, reason), every price and amount and the
    equity curve within 1e-9 relative, the metrics too (unless ``metrics`` is
    False). ``rules`` are the reference's side rules when already computed.
    """
    curve, position, trades = reference_run(bars, strategy, params, risk, fee,
                                            slippage, rules)  # fmt: skip
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
        expected = ref.metrics(
            curve, position, trades, bars.close.tolist(), periods, bars.time.tolist()
        )
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


# -- hand-computed cases ----------------------------------------------------------

# Donchian(1, 1): enter long when the close beats the previous bar's high, exit
# when it falls below the previous bar's low (short: the mirror image).
DONCHIAN_1 = {"entry": 1, "exit": 1}


def ohlc(*rows) -> Bars:
    """Return bars from (open, high, low, close) rows, an hour apart."""
    columns = zip(*rows, strict=True)
    open_, high, low, close = (np.array(column, dtype=float) for column in columns)
    time = np.arange(len(rows), dtype=np.int64) * 3600
    return Bars(time, open_, high, low, close, np.ones(len(rows)))


def test_a_bar_reaching_both_stop_and_target_exits_at_the_stop():
    bars = ohlc(
        (10, 10, 10, 10),
        (10, 12, 10, 12),  # close 12 > previous high 10: buy at the next open
        (12, 14, 11, 12),  # bought at 12; stop 12 * 0.95 = 11.4, target 13.2
        (12, 12.5, 11.5, 12),
    )
    result = run_backtest(
        bars, "donchian_breakout", DONCHIAN_1, fee=0.001,
        risk=Risk(stop_loss_pct=5, take_profit_pct=10),
    )  # fmt: skip
    # The range 11..14 holds both 11.4 and 13.2: the stop wins.
    # units = 10,000 / (12 * 1.001) = 832.5008...; sold at 11.4:
    # 832.5008 * 11.4 * 0.999 = 9,481.0190 (a 5.19% loss with both fees).
    (trade,) = result.trades
    # Held during bar 2 (bought at its open, stopped within it): one bar.
    assert (trade.entry_index, trade.exit_index, trade.bars_held) == (2, 2, 1)
    assert (trade.exit_reason, trade.side) == ("stop_loss", "long")
    assert trade.exit_price == pytest.approx(11.4)
    assert trade.units == pytest.approx(832.50083250)
    assert result.equity[2] == pytest.approx(9_481.01898102, rel=1e-9)
    assert result.equity.tolist()[3:] == [result.equity[2]]
    assert result.position.tolist() == [0, 0, 1, 0]  # held at bar 2's open
    assert result.metrics["exit_reasons"]["stop_loss"] == 1


def test_a_gap_through_the_stop_fills_at_the_open():
    bars = ohlc(
        (10, 10, 10, 10),
        (10, 12, 10, 12),  # buy signal
        (12, 12.5, 11.8, 12),  # bought at 12; stop 11.4 not reached
        (10, 10.5, 9.5, 10),  # opens at 10, below the stop: sold at 10, not 11.4
        (10, 10, 10, 10),
    )
    result = run_backtest(
        bars, "donchian_breakout", DONCHIAN_1, fee=0.0, slippage_bps=100,
        risk=Risk(stop_loss_pct=5),
    )  # fmt: skip
    # Bought at 12 * 1.01 = 12.12 (slippage 1%), sold at 10 * 0.99 = 9.9:
    # 10,000 * 9.9 / 12.12 = 8,168.3168.
    (trade,) = result.trades
    assert (trade.entry_index, trade.exit_index, trade.exit_reason) == (
        2,
        3,
        "stop_loss",
    )
    assert trade.entry_price == pytest.approx(12.12)
    assert trade.exit_price == pytest.approx(9.9)
    assert result.metrics["final_equity"] == pytest.approx(8_168.31683168)


def test_a_trailing_stop_ratchets_up_over_five_bars():
    bars = ohlc(
        (100, 100, 99, 99.5),
        (99.5, 101, 99, 101),  # close 101 > previous high 100: buy
        (100, 105, 99.5, 104),  # bought at 100; trailing level 0.9 * 100 = 90
        (104, 110, 103, 109),  # level 0.9 * 105 = 94.5
        (108, 108, 102, 105),  # level 0.9 * 110 = 99
        (105, 115, 104, 114),  # level still 99 (no new high on bar 4)
        (112, 112, 105, 106),  # level 0.9 * 115 = 103.5
        (106, 107, 103, 104),  # level 103.5; low 103 reaches it: sold at 103.5
        (104, 104, 104, 104),
    )
    result = run_backtest(
        bars, "donchian_breakout", DONCHIAN_1, fee=0.0,
        risk=Risk(trailing_stop_pct=10),
    )  # fmt: skip
    (trade,) = result.trades
    assert (trade.entry_index, trade.exit_index) == (2, 7)
    assert (trade.exit_reason, trade.exit_price) == (
        "trailing_stop",
        pytest.approx(103.5),
    )
    # 100 units held: equity 100 * close while held, then 10,350 in cash.
    np.testing.assert_allclose(
        result.equity, [10_000, 10_000, 10_400, 10_900, 10_500, 11_400, 10_600,
                        10_350, 10_350],
    )  # fmt: skip
    # With a 12% fixed stop beside it (88), the trailing level is the tighter
    # one from the start, so the exit is still the trailing stop's.
    both = Risk(stop_loss_pct=12, trailing_stop_pct=10)
    tighter = run_backtest(bars, "donchian_breakout", DONCHIAN_1, fee=0.0, risk=both)
    assert tighter.trades == result.trades


def test_a_reversal_in_both_is_two_fills_with_two_fees():
    bars = ohlc(
        (10, 10, 10, 10),
        (10, 12, 10, 12),  # close 12 > previous high 10: buy
        (12, 13, 12, 13),  # long from 12
        (13, 13, 10, 10.5),  # close 10.5 < previous low 12: exit long AND go short
        (11, 11, 9, 9),  # sold the long at 11, sold short at 11
        (9, 9, 9, 9),  # the short is bought back at the last close, 9
    )
    result = run_backtest(bars, "donchian_breakout", DONCHIAN_1, fee=0.01,
                          risk=Risk(direction="both"))  # fmt: skip
    long_, short = result.trades
    # Long: u1 = 10,000 / (12 * 1.01) = 825.0825 units; sold at 11 for
    # 825.0825 * 11 * 0.99 = 8,985.1485.
    assert (long_.side, long_.entry_index, long_.exit_index) == ("long", 2, 4)
    assert long_.units == pytest.approx(825.08250825)
    # Short at the same open: u2 = 8,985.1485 / (11 * 1.01) = 808.7442 units.
    assert (short.side, short.entry_index, short.exit_index) == ("short", 4, 5)
    assert short.units == pytest.approx(808.74424076)
    # Two fees at bar 4's open: 825.0825 * 11 * 0.01 = 90.7591 on the exit and
    # 808.7442 * 11 * 0.01 = 88.9619 on the entry.
    assert long_.fees == pytest.approx(825.08250825 * (12 + 11) * 0.01)
    assert short.fees == pytest.approx(808.74424076 * (11 + 9) * 0.01)
    # Bought back at 9 (fee 1%): 8,985.1485 + 808.7442 * (11 * 0.99 - 9 * 1.01)
    # = 8,985.1485 + 1,455.7396 = 10,440.8881.
    assert (short.exit_reason, short.closed_at_end) == ("end", True)
    assert result.metrics["final_equity"] == pytest.approx(10_440.88815, rel=1e-9)
    assert result.position.tolist() == [0, 0, 1, 1, -1, -1]
    assert (result.metrics["long_trades"], result.metrics["short_trades"]) == (1, 1)


def test_a_short_that_loses_everything_is_liquidated_and_trading_stops():
    bars = ohlc(
        (10, 10, 10, 10),
        (10, 10, 8, 8),  # close 8 < previous low 10: sell short
        (8, 9, 8, 8.5),  # short 1,250 units from 8
        (9, 20, 9, 18),  # the high 20 passes 16, where equity is 0
        (18, 18, 5, 5),  # a new short signal, never taken: trading has stopped
        (5, 5, 5, 5),
    )
    result = run_backtest(bars, "donchian_breakout", DONCHIAN_1, fee=0.0,
                          risk=Risk(direction="short"))  # fmt: skip
    # 10,000 / 8 = 1,250 units sold at 8; at 8.5 equity is
    # 10,000 + 1,250 * (8 - 8.5) = 9,375; it is 0 at 8 + 10,000 / 1,250 = 16.
    (trade,) = result.trades
    assert (trade.side, trade.exit_reason) == ("short", "liquidation")
    assert (trade.entry_index, trade.exit_index) == (2, 3)
    assert trade.exit_price == pytest.approx(16.0)
    assert trade.return_pct == pytest.approx(-100.0)
    assert result.equity.tolist() == [10_000, 10_000, 9_375, 0, 0, 0]
    assert result.position.tolist() == [0, 0, -1, -1, 0, 0]
    assert result.metrics["total_return_pct"] == -100.0
    assert result.metrics["max_drawdown_pct"] == 100.0
    # A stop that would fill beyond the liquidation price: sold short at
    # 8 * 0.95 = 7.6 (5% slippage), stop 7.6 * 1.99 = 15.124 reached on bar 3,
    # bought back at 15.124 * 1.05 = 15.88, past 7.6 + 7.6 = 15.2 where equity
    # is 0: liquidated at 15.2 instead, and the short signal of bar 4 is not
    # taken either.
    slipped = run_backtest(bars, "donchian_breakout", DONCHIAN_1, fee=0.0,
                           slippage_bps=500,
                           risk=Risk(stop_loss_pct=99, direction="short"))  # fmt: skip
    (trade,) = slipped.trades
    assert (trade.exit_index, trade.exit_reason) == (3, "liquidation")
    assert trade.exit_price == pytest.approx(15.2)
    assert slipped.equity.tolist()[3:] == [0, 0, 0]


# -- properties -----------------------------------------------------------------


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**32 - 1),
    strategy=st.sampled_from(list(STRATEGIES)),
    direction=st.sampled_from(["long", "short", "both"]),
    stop=st.floats(0.5, 20.0),
    fee=st.floats(0.0, 0.01),
    slippage=st.floats(0.0, 100.0),
)
def test_a_stop_loses_no_more_than_its_level_and_costs_except_through_a_gap(
    seed, strategy, direction, stop, fee, slippage
):
    """A stop-loss exit inside the bar fills at the level (less slippage), so
    the trade loses at most the stop distance plus both fees and slippage; only
    an open beyond the level (a gap) can lose more."""
    bars = make_bars(seed, 400, vol=0.02)
    risk = Risk(stop_loss_pct=stop, direction=direction)
    result = run_backtest(bars, strategy, {}, fee=fee, slippage_bps=slippage, risk=risk)
    s, sl = slippage / 10_000, stop / 100
    for trade in result.trades:
        if trade.exit_reason != "stop_loss":
            continue
        p, k = trade.entry_price, trade.exit_index
        if trade.side == "long":
            level = p * (1 - sl)
            worst = level * (1 - s) * (1 - fee) / (p * (1 + fee)) - 1
            gap = k > trade.entry_index and bars.open[k] <= level
        else:
            level = p * (1 + sl)
            worst = (p * (1 - fee) - level * (1 + s) * (1 + fee)) / (p * (1 + fee))
            gap = k > trade.entry_index and bars.open[k] >= level
        if gap:
            assert trade.return_pct / 100 <= worst + 1e-12
        else:
            assert trade.return_pct / 100 >= worst - 1e-12


@settings(max_examples=40, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), entry=st.integers(1, 30),
       exit=st.integers(1, 30), fee=st.floats(0.0, 0.01))  # fmt: skip
def test_a_short_on_prices_mirrors_a_long_on_their_inverse(seed, entry, exit, fee):
    """Donchian's windows are highest highs and lowest lows, and 1/x turns one
    into the other, so a short on prices p trades on exactly the bars where a
    long trades on 1/p (highs and lows swapped), at inverse prices.

    This does not hold for the other strategies: the mean of 1/p is not 1/mean
    of p (SMA, EMA, MACD, Bollinger), nor are the changes of 1/p the negated
    changes of p (RSI). Nor do the amounts mirror: a short gains E (1 - x / p)
    where the long on 1/p gains E (p / x - 1).
    """
    bars = make_bars(seed, 500, vol=0.02)
    inverse = Bars(bars.time, 1 / bars.open, 1 / bars.low, 1 / bars.high,
                   1 / bars.close, bars.volume)  # fmt: skip
    params = {"entry": entry, "exit": exit}
    short = run_backtest(bars, "donchian_breakout", params, fee=fee,
                         risk=Risk(direction="short"))  # fmt: skip
    long_ = run_backtest(inverse, "donchian_breakout", params, fee=fee)
    assert [(t.entry_index, t.exit_index, t.exit_reason) for t in short.trades] == [
        (t.entry_index, t.exit_index, t.exit_reason) for t in long_.trades
    ]
    assert short.position.tolist() == (-long_.position).tolist()
    for a, b in zip(short.trades, long_.trades, strict=True):
        assert a.side == "short" and b.side == "long"
        assert a.entry_price * b.entry_price == pytest.approx(1.0, rel=1e-12)
        if a.exit_reason != "liquidation":
            assert a.exit_price * b.exit_price == pytest.approx(1.0, rel=1e-12)


@settings(max_examples=50, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**32 - 1),
    strategy=st.sampled_from(list(STRATEGIES)),
    risk=RISK_DRAWS,
    size=st.floats(0.01, 1.0),
    fee=st.floats(0.0, 0.01),
    slippage=st.floats(0.0, 50.0),
)
def test_position_size_scales_the_first_trades_profit(
    seed, strategy, risk, size, fee, slippage
):
    """The first trade commits f of the starting equity; its levels depend on
    the entry price only, so it is the same trade, with f times the profit."""
    bars = make_bars(seed, 300)
    costs = {"fee": fee, "slippage_bps": slippage}
    whole = Risk(**{**risk.as_dict(), "position_size": 1.0})
    sized = Risk(**{**risk.as_dict(), "position_size": size})
    full = run_backtest(bars, strategy, {}, risk=whole, **costs)
    part = run_backtest(bars, strategy, {}, risk=sized, **costs)
    if not full.trades:
        assert not part.trades
        return
    a, b = full.trades[0], part.trades[0]
    # A liquidation price depends on f (the equity behind the position).
    assume = a.exit_reason != "liquidation" and b.exit_reason != "liquidation"
    if not assume:
        return
    assert (a.entry_index, a.exit_index, a.side, a.exit_reason) == (
        b.entry_index, b.exit_index, b.side, b.exit_reason,
    )  # fmt: skip

    def profit(trade):
        move = trade.exit_price - trade.entry_price
        return trade.units * (move if trade.side == "long" else -move) - trade.fees

    assert profit(b) == pytest.approx(size * profit(a), rel=1e-9, abs=1e-9)
    assert b.return_pct == pytest.approx(a.return_pct, rel=1e-9, abs=1e-12)
