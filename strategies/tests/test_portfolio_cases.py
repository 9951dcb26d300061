"""Portfolio rules on tiny hand-computed cases: slots, stakes, ranks and ties,
the union clock, the benchmark, the chart curve and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from strategies.portfolio import portfolio_from_signals, run_portfolio
from strategies.portfolio_metrics import downsample
from strategies.portfolio_signals import CoinSignals, coin_signals, rank_keys
from strategies.registry import StrategySpec
from strategies.risk import Risk
from strategies.signals import Sides
from strategies.types import Bars

HOUR = 3600


def coin(prices, times=None, opens=None) -> Bars:
    """Return bars whose open, high, low and close are ``prices`` (or ``opens``)."""
    close = np.array(prices, dtype=float)
    open_ = close if opens is None else np.array(opens, dtype=float)
    hours = range(len(close)) if times is None else times
    time = np.array([h * HOUR for h in hours], dtype=np.int64)
    return Bars(time, open_, np.maximum(open_, close), np.minimum(open_, close),
                close, np.ones(len(close)))  # fmt: skip


def signals(n, entries=(), exits=(), holds_while=False) -> CoinSignals:
    """Return conditions true on the listed closes."""
    entry, exit_ = np.zeros(n, bool), np.zeros(n, bool)
    entry[list(entries)] = True
    exit_[list(exits)] = True
    return CoinSignals(entry, exit_, holds_while)


def run(coins, *, max_positions=1, fee=0.0, keys=None, initial_equity=10_000.0):
    """Run the pass on {symbol: (bars, signals)}; keys default to "symbol"."""
    symbols = sorted(coins)
    bars = [coins[s][0] for s in symbols]
    keys = keys or {}
    return portfolio_from_signals(
        symbols, bars, [coins[s][1] for s in symbols],
        [np.asarray(keys.get(s, np.zeros(len(coins[s][0].time))), float)
         for s in symbols],
        strategy="hand", params={}, max_positions=max_positions, rank="symbol",
        risk=Risk(), fee=fee, slippage_bps=0.0, interval="1h",
        initial_equity=initial_equity,
    )  # fmt: skip


def test_a_signal_without_a_free_slot_is_rejected_and_ties_go_by_symbol():
    result = run(
        {
            "B": (coin([5, 5, 5]), signals(3, entries=[0])),
            "A": (coin([10, 20, 30]), signals(3, entries=[0])),
        }
    )
    # A (first by symbol) buys 10,000 / 20 = 500 at the open of bar 1; B finds
    # no slot. A closes at its last close, 30: 500 x 30 = 15,000.
    assert result.trades["symbol"].tolist() == ["A"]
    assert result.trades["units"].tolist() == [500.0]
    assert result.trades["exit_reason"].tolist() == ["end"]
    assert result.trades["bars_held"].tolist() == [2]
    assert result.rejected_signals == 1
    assert result.equity.tolist() == [10_000.0, 10_000.0, 15_000.0]
    assert result.positions.tolist() == [0, 1, 1]
    assert result.contributions == {"A": 5_000.0, "B": 0.0}
    assert result.metrics["max_positions_held"] == 1
    assert result.metrics["avg_positions"] == pytest.approx(2 / 3)
    assert result.metrics["exposure_pct"] == pytest.approx(200 / 3)


def test_the_best_rank_gets_the_slot_and_equal_ranks_go_by_symbol():
    n = 3
    keys = {"A": [0.5] * n, "B": [0.2] * n, "C": [0.2] * n}
    result = run(
        {
            "A": (coin([10, 10, 10]), signals(n, entries=[0])),
            "B": (coin([4, 4, 8]), signals(n, entries=[0])),
            "C": (coin([2, 2, 1]), signals(n, entries=[0])),
        },
        max_positions=2,
        fee=0.001,
        keys=keys,
    )
    # B and C (equal rank, B first by symbol) each stake 10,000 / 2; A, the
    # worst rank, finds both slots taken.
    stake = 5_000.0
    units_b, units_c = stake / (4 * 1.001), stake / (2 * 1.001)
    assert result.trades["symbol"].tolist() == ["B", "C"]
    np.testing.assert_allclose(result.trades["units"], [units_b, units_c], rtol=1e-12)
    assert result.rejected_signals == 1
    final = units_b * 8 * 0.999 + units_c * 1 * 0.999
    assert result.equity[-1] == pytest.approx(final, rel=1e-12)
    fees = (units_b * 4 + units_c * 2 + units_b * 8 + units_c * 1) * 0.001
    assert result.fees_paid == pytest.approx(fees, rel=1e-12)
    assert result.contributions["B"] == pytest.approx(
        units_b * 8 * 0.999 - stake, rel=1e-12
    )


def test_a_stake_is_capped_by_the_cash_and_under_1_is_not_placed():
    # Three slots. A buys 10,000 / 3 at 10 and closes bar 1 at 50, so at that
    # close E = 6,666.67 + 333.33 x 50 = 23,333.33 and E / 3 = 7,777.78: B gets
    # only the 6,666.67 of cash left, and C (after B by symbol) nothing.
    result = run(
        {
            "A": (coin([10, 50, 50], opens=[10, 10, 50]), signals(3, entries=[0])),
            "B": (coin([1, 1, 1]), signals(3, entries=[1])),
            "C": (coin([1, 1, 1]), signals(3, entries=[1])),
        },
        max_positions=3,
    )
    third = 10_000.0 / 3
    assert result.trades["symbol"].tolist() == ["A", "B"]
    np.testing.assert_allclose(
        result.trades["units"], [third / 10, 10_000.0 - third], rtol=1e-12
    )
    assert result.rejected_signals == 1
    assert result.positions.tolist() == [0, 1, 2]
    assert result.equity[1] == pytest.approx(10_000.0 - third + third / 10 * 50)


def test_a_stake_under_1_is_not_placed():
    result = run(
        {"A": (coin([10, 10, 10]), signals(3, entries=[0]))},
        max_positions=2,
        initial_equity=1.5,  # a stake of 0.75
    )
    assert len(result.trades["symbol"]) == 0
    assert result.rejected_signals == 1
    assert result.equity.tolist() == [1.5, 1.5, 1.5]


def test_exits_fill_before_entries_and_free_the_slot_at_the_same_open():
    result = run(
        {
            "A": (coin([10, 10, 8, 8]), signals(4, entries=[0], exits=[1])),
            "B": (coin([5, 5, 5, 5]), signals(4, entries=[1])),
        },
        fee=0.001,
    )
    units_a = 10_000.0 / (10 * 1.001)
    cash = units_a * 8 * 0.999  # A sold at bar 2's open
    # E at close 1 was units_a x 10, more than the cash: B stakes the cash.
    assert cash < units_a * 10
    assert result.trades["symbol"].tolist() == ["A", "B"]
    np.testing.assert_allclose(
        result.trades["units"], [units_a, cash / (5 * 1.001)], rtol=1e-12
    )
    assert result.rejected_signals == 0
    assert result.trades["exit_reason"].tolist() == ["signal", "end"]


def test_a_coin_without_a_bar_has_no_fill_and_keeps_its_last_close():
    result = run(
        {
            "A": (coin([1, 1, 1, 1]), signals(4)),
            "B": (
                coin([4, 5, 6], times=[0, 1, 3], opens=[4, 4, 5]),
                signals(3, entries=[0]),
            ),
        }
    )
    # B buys 2,500 at 4 at hour 1; hour 2 has no B bar: valued at 5.
    assert result.time.tolist() == [0, HOUR, 2 * HOUR, 3 * HOUR]
    assert result.equity.tolist() == [10_000.0, 12_500.0, 12_500.0, 15_000.0]
    assert result.positions.tolist() == [0, 1, 1, 1]
    assert result.trades["bars_held"].tolist() == [2]  # B's own bars 1 and 3
    assert result.trades["exit_time"].tolist() == [3 * HOUR]


def test_an_entry_waits_for_the_coins_next_bar():
    result = run(
        {
            "A": (coin([1, 1, 1, 1]), signals(4)),
            "B": (coin([4, 5, 6], times=[0, 2, 3]), signals(3, entries=[0])),
        }
    )
    assert result.trades["entry_time"].tolist() == [2 * HOUR]
    assert result.positions.tolist() == [0, 0, 1, 1]


def test_a_while_rule_rejected_for_want_of_a_slot_tries_again_at_the_next_close():
    n = 4
    result = run(
        {
            "A": (coin([2] * n), signals(n, entries=range(n), holds_while=True)),
            "B": (coin([3] * n), signals(n, entries=[0], exits=[1])),
        },
        keys={"A": [1.0] * n, "B": [0.0] * n},
    )
    # Bar 1: B (better rank) takes the slot, A is rejected; B exits at bar 2's
    # open and A, still long by its rule, buys then.
    assert result.trades["symbol"].tolist() == ["B", "A"]
    assert result.trades["entry_time"].tolist() == [HOUR, 2 * HOUR]
    assert result.rejected_signals == 1


def test_benchmark_buys_the_first_bars_coins_at_the_open_with_fees():
    result = run(
        {
            "A": (coin([20, 20, 20], opens=[10, 20, 20]), signals(3)),
            "B": (coin([4, 4, 4], opens=[5, 4, 4]), signals(3)),
            "C": (coin([1, 9], times=[1, 2]), signals(2)),  # starts later: left out
        },
        fee=0.001,
    )
    growth = (20 * 0.999 / (10 * 1.001) + 4 * 0.999 / (5 * 1.001)) / 2
    assert result.metrics["benchmark_return_pct"] == pytest.approx(
        (growth - 1) * 100, rel=1e-12
    )
    assert result.metrics["buy_hold_return_pct"] == pytest.approx(
        ((20 / 10 + 4 / 5) / 2 - 1) * 100, rel=1e-12
    )


def test_rank_keys_follow_their_definitions():
    close = 100.0 * 1.01 ** np.arange(40)
    volume = np.arange(1.0, 41.0)
    bars = Bars(np.arange(40, dtype=np.int64), close, close, close, close, volume)
    roc = rank_keys(bars, "roc_24")
    assert np.all(np.isposinf(roc[:24]))
    np.testing.assert_allclose(roc[24:], -(1.01**24 - 1), rtol=1e-12)
    traded = rank_keys(bars, "volume_24")
    assert np.all(np.isposinf(traded[:23]))
    assert traded[30] == pytest.approx(
        -sum(volume[i] * close[i] for i in range(7, 31)), rel=1e-12
    )
    rsi = rank_keys(bars, "rsi_14")
    assert np.all(np.isposinf(rsi[:14]))
    assert rsi[14:].tolist() == [100.0] * 26  # only gains: RSI 100
    assert rank_keys(bars, "symbol").tolist() == [0.0] * 40


def test_downsample_keeps_the_ends_and_every_buckets_extremes():
    rng = np.random.default_rng(7)
    values = np.cumsum(rng.normal(size=10_000))
    time = np.arange(10_000) * HOUR
    t, v = downsample(time, values, 2000)
    assert len(v) <= 2000
    assert t[0] == 0 and t[-1] == time[-1]
    assert np.all(np.diff(t) > 0)
    np.testing.assert_array_equal(v, values[t // HOUR])
    assert v.max() == values.max() and v.min() == values.min()
    # Every stretch of 20 points keeps its low and high within a bucket's reach.
    edges = np.linspace(1, 9_999, 999 + 1).astype(int)
    kept = set((t // HOUR).tolist())
    for start, stop in zip(edges[:-1], edges[1:], strict=True):
        part = values[start:stop]
        assert start + int(np.argmin(part)) in kept
        assert start + int(np.argmax(part)) in kept
    short_t, short_v = downsample(time[:50], values[:50], 2000)
    assert short_v.tolist() == values[:50].tolist()


@pytest.mark.parametrize(
    ("bad", "name"),
    [
        ({"max_positions": 0}, "max_positions"),
        ({"max_positions": 101}, "max_positions"),
        ({"max_positions": 2.5}, "max_positions"),
        ({"rank": "volume"}, "rank"),
        ({"risk": Risk(direction="both")}, "direction"),
        ({"risk": Risk(position_size=0.5)}, "position_size"),
        ({"fee": -0.1}, "fee"),
    ],
)
def test_bad_settings_raise_value_errors_naming_them(bad, name):
    coins = {"A": coin([1.0] * 30)}
    with pytest.raises(ValueError, match=name):
        run_portfolio(coins, "sma_crossover", **bad)


def test_bad_coins_raise_value_errors_naming_them():
    with pytest.raises(ValueError, match="coins"):
        run_portfolio({}, "sma_crossover")
    backwards = coin([1, 2, 3], times=[0, 2, 1])
    with pytest.raises(ValueError, match=r"coins\['A'\].*increase"):
        run_portfolio({"A": backwards}, "sma_crossover")
    with pytest.raises(ValueError, match=r"coins\['B'\].*positive"):
        run_portfolio({"A": coin([1, 2]), "B": coin([1, -2])}, "sma_crossover")
    with pytest.raises(ValueError, match="max_points"):
        downsample(np.arange(10), np.arange(10.0), 3)


def test_any_strategy_with_sides_gives_its_conditions():
    """A strategy outside the six (as a rule-language one would be) needs only
    ``sides`` and ``rule``."""
    bars = coin([1, 2, 3, 2])
    above = np.array([False, True, True, False])

    def sides(cache, direction, **params):
        assert direction == "long" and params == {"level": 1.5}
        return Sides(above & ~np.r_[False, above[:-1]], ~above, None, None)

    for rule, entry in (("while", above), ("when", np.array([0, 1, 0, 0], bool))):
        spec = StrategySpec(
            "custom", "Custom", "", (), lambda c: above, (), sides, rule
        )
        got = coin_signals(bars, spec, {"level": 1.5})
        assert got.entry.tolist() == entry.tolist()
        assert got.exit.tolist() == (~above).tolist()
        assert got.holds_while == (rule == "while")
