"""The compiled kernels (and the rolling extremes) against plain Python loops
written from their contracts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies import fused, fused_signals, kernels, signals
from strategies import indicators as ind
from strategies.tests import reference as ref


def plain_curve(equity: list[float]) -> tuple[float, float, float, float, int]:
    """Return curve_summary's five numbers by the definitions, one bar at a time."""
    returns = []
    for before, now in zip(equity[:-1], equity[1:], strict=True):
        returns.append(0.0 if before == 0.0 else now / before - 1.0)
    mean = math.fsum(returns) / len(returns) if returns else math.nan
    squares = math.fsum((r - mean) ** 2 for r in returns)
    losses = math.fsum(min(r, 0.0) ** 2 for r in returns)
    peak, lowest, run, longest = equity[0], 1.0, 0, 0
    for value in equity:
        peak = max(peak, value)
        lowest = min(lowest, value / peak)
        run = run + 1 if value < peak else 0
        longest = max(longest, run)
    return mean, squares, losses, lowest, longest


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 2000),
    flat=st.booleans(),
    wiped=st.booleans(),
)
def test_curve_summary_matches_the_plain_loop(seed, n, flat, wiped):
    rng = np.random.default_rng(seed)
    equity = 100 * np.exp(np.cumsum(rng.normal(0.0, 0.02, n)))
    if flat:  # cash stretches between trades, some exactly at a peak
        equity = np.repeat(equity[::9], 9)[:n]
    if wiped and n > 3:  # a liquidated short stays at 0 to the end
        equity[n // 2 :] = 0.0
    got = fused.curve_summary(equity)
    want = plain_curve(equity.tolist())
    if n == 1:
        assert math.isnan(got[0]) and got[1:] == (0.0, 0.0, 1.0, 0)
        return
    for found, expected in zip(got[:3], want[:3], strict=True):
        assert found == pytest.approx(expected, rel=1e-9, abs=1e-15)
    # The drawdown takes no sum: exact.
    assert got[3:] == want[3:]


def test_curve_summary_by_hand():
    equity = np.array([100.0, 120, 90, 95, 130, 117])
    mean, squares, losses, lowest, longest = fused.curve_summary(equity)
    returns = [0.2, -0.25, 5 / 90, 35 / 95, -0.1]
    assert mean == pytest.approx(sum(returns) / 5)
    assert losses == pytest.approx(0.25**2 + 0.1**2)
    assert squares == pytest.approx(sum((r - sum(returns) / 5) ** 2 for r in returns))
    assert (lowest, longest) == (0.75, 2)


def test_trade_summary_by_hand():
    # A long won 10% (pnl 2 * (110 - 100) - 1 = 19), a short lost 5% (it
    # fell from 100 to 104: pnl 1 * -4 - 1 = -5), a short wiped out (-100%).
    return_pct = np.array([10.0, -5.0, -100.0])
    units = np.array([2.0, 1.0, 1.0])
    entry = np.array([100.0, 100.0, 50.0])
    exit_ = np.array([110.0, 104.0, 100.0])
    fees = np.array([1.0, 1.0, 0.0])
    short = np.array([False, True, True])
    held = np.array([3, 4, 5], dtype=np.int64)
    got = fused.trade_summary(return_pct, units, entry, exit_, fees, short, held)
    wins, gains, losses, total, logs, best, worst, bars = got
    assert (wins, gains, losses, bars) == (1, 19.0, 5.0 + 50.0, 12.0)
    assert total == pytest.approx(0.1 - 0.05 - 1.0)
    assert logs == -math.inf  # a -100% trade has no logarithm
    assert (best, worst) == (0.1, -1.0)
    beyond = fused.trade_summary(
        np.array([-150.0]), units[:1], entry[:1], exit_[:1], fees[:1],
        short[1:2], held[:1],
    )  # fmt: skip
    assert math.isnan(beyond[4])


@pytest.mark.parametrize("slip", [0.0, 0.0007])
def test_long_path_by_hand(slip):
    open_ = np.array([10.0, 11.0, 12.0, 13.0, 14.0, 15.0])
    close = np.array([10.5, 11.5, 12.5, 13.5, 14.5, 15.5])
    # Held on bars 2-3 (target on bars 1-2), then from bar 5 to the end.
    target = np.array([False, True, True, False, True, False])
    fee, start = 0.01, 1_000.0
    equity, position, entries, exits, entry_p, exit_p, units, growth, curve = (
        fused.long_path(target, open_, close, fee, slip, start)
    )
    # The curve's figures summed up on the way equal those of the curve.
    assert curve == fused.curve_summary(equity)
    assert position.tolist() == [0, 0, 1, 1, 0, 1]
    assert entries.tolist() == [2, 5] and exits.tolist() == [4, 5]
    first_in, first_out = 12.0 * (1 + slip), 14.0 * (1 - slip)
    first_units = start / (first_in * (1 + fee))
    cash = first_units * first_out * (1 - fee)
    second_in = 15.0 * (1 + slip)
    second_units = cash / (second_in * (1 + fee))
    assert entry_p.tolist() == pytest.approx([first_in, second_in])
    assert exit_p.tolist() == pytest.approx([first_out, 15.5])  # the last close
    assert units.tolist() == pytest.approx([first_units, second_units])
    assert growth[0] == pytest.approx(cash / start)
    assert equity.tolist() == pytest.approx(
        [start, start, first_units * 12.5, first_units * 13.5, cash,
         second_units * 15.5 * (1 - fee)]
    )  # fmt: skip


def test_long_path_that_never_trades():
    close = np.array([5.0, 6.0, 7.0])
    path = fused.long_path(np.zeros(3, np.bool_), close, close, 0.001, 0.0, 100.0)
    assert path[0].tolist() == [100.0] * 3 and path[1].tolist() == [0, 0, 0]
    assert all(len(column) == 0 for column in path[2:8])
    assert path[8] == (0.0, 0.0, 0.0, 1.0, 0)  # flat at its peak: never below


@settings(max_examples=40, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 400))
def test_enter_exit_matches_the_state_loop(seed, n):
    rng = np.random.default_rng(seed)
    entry, exit_ = rng.random(n) < 0.1, rng.random(n) < 0.1
    state, want = False, []
    for enter, leave in zip(entry.tolist(), exit_.tolist(), strict=True):
        state = True if enter else (False if leave else state)
        want.append(state)
    assert signals.enter_exit(entry, exit_).tolist() == want


def test_above_into_by_hand():
    a = np.array([1.0, 2.0, np.nan, 3.0, 5.0])
    b = np.array([0.5, 2.0, 1.0, np.nan, 4.0])
    tolerance = np.array([0.1, 0.1, 0.1, 0.1, 1.0])
    out = np.empty(5, np.bool_)
    fused_signals.above_into(a, b, tolerance, out)
    assert out.tolist() == [True, False, False, False, False]


@pytest.mark.parametrize("n", [1, 2, 14, 100])
def test_rsi_loop_matches_the_plain_reference(n):
    rng = np.random.default_rng(n)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 3_000)))
    close[500:540] = close[499]  # a flat stretch: no gain, no loss
    got = ind.rsi(close, n)
    want = ref.rsi(close.tolist(), n)
    np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-9)
    assert np.isnan(got[:n]).all() and not np.isnan(got[n:]).any()


def test_rsi_of_a_series_starting_in_warm_up_skips_it():
    close = 100 * np.exp(np.cumsum(np.random.default_rng(3).normal(0, 0.01, 300)))
    late = np.r_[np.full(20, np.nan), close]
    np.testing.assert_allclose(ind.rsi(late, 14)[21:], ind.rsi(close, 14)[1:],
                               rtol=1e-12)  # fmt: skip
    assert np.isnan(ind.rsi(late, 14)[:34]).all()  # 20 undefined, 14 of warm-up


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**32 - 1),
    length=st.integers(1, 300),
    n=st.integers(1, 40),
    holes=st.booleans(),
)
def test_rolling_extreme_matches_the_plain_scan(seed, length, n, holes):
    n = min(n, length)  # the callers' contract: a window fits
    rng = np.random.default_rng(seed)
    values = np.round(rng.normal(0, 1, length), 1)  # ties happen
    if holes:
        values[rng.random(length) < 0.05] = np.nan
    size = max(length - n + 1, 0)
    for op, pick in ((np.maximum, max), (np.minimum, min)):
        out = np.empty(size)
        kernels.rolling_extreme(values, n, op, out)
        for start in range(size):
            window = values[start : start + n].tolist()
            want = math.nan if any(map(math.isnan, window)) else pick(window)
            got = out[start]
            assert got == want or (math.isnan(got) and math.isnan(want))


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**32 - 1), n=st.integers(1, 3000), odds=st.floats(0.01, 0.5)
)
def test_long_path_sums_the_curve_as_curve_summary_does(seed, n, odds):
    """To the bit: the sweep's blocks call curve_summary on their curves."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = close * (1 + rng.normal(0, 0.002, n))
    flips = rng.random(n) < odds
    target = np.cumsum(flips) % 2 == 1
    path = fused.long_path(target, open_, close, 0.001, 0.0005, 10_000.0)
    # Compared as bytes: the same NaN mean of a single bar matches too.
    assert (
        np.array(path[8]).tobytes() == np.array(fused.curve_summary(path[0])).tobytes()
    )
