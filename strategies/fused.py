"""Compiled kernels that replace several NumPy passes over a backtest with one.

``long_path`` is ``engine.simulate``'s execution in one loop over the bars,
by the same floating-point operations in the same order (so the same equity
to the bit). ``curve_summary`` reads an equity curve once for its bar returns'
sum, downside squares and drawdowns, and once more for the squares about the
mean. ``trade_summary`` reduces a trade table in one loop. The sums run in bar
order (NumPy sums pairwise): equal to NumPy's to rounding, not to the bit, so
every path that reports these metrics (one backtest, a block of a sweep)
calls these kernels and the paths stay equal to each other to the bit.

Numba compiles them on first use and keeps the machine code in its on-disk
cache (``compile_kernels`` does it ahead of time).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def long_path(
    target: np.ndarray,
    open_: np.ndarray,
    close: np.ndarray,
    fee: float,
    slip: float,
    initial_equity: float,
) -> tuple[np.ndarray, ...]:
    """Return (equity, position, entries, exit_index, entry_price, exit_price,
    units, growth, curve) of an all-in long 0/1 ``target`` filled at the next
    open; curve is ``curve_summary(equity)``.

    A position still open on the last bar is sold at its close: its exit index
    is n - 1 and its last equity point the cash after that sale.
    """
    n = len(close)
    # The position is the target one bar later; its entries are the bars
    # where the target turns on. Integer passes without branches first, then
    # one that branches only at the (rare) changes.
    flags = target.view(np.uint8)
    count = 0
    before = np.uint8(0)
    for k in range(n - 1):
        now = flags[k]
        count += now & (before ^ np.uint8(1))
        before = now
    position = np.empty(n, np.int8)
    position[0] = 0
    for k in range(1, n):
        position[k] = flags[k - 1]
    entries = np.empty(count, np.intp)
    exit_index = np.empty(count, np.intp)
    trade = 0
    before = np.uint8(0)
    for k in range(n - 1):
        now = flags[k]
        if now != before:
            if now:
                entries[trade] = k + 1
            else:
                exit_index[trade] = k + 1
                trade += 1
            before = now
    if trade < count:
        exit_index[trade] = n  # still held on the last bar
    entry_price = np.empty(count)
    exit_price = np.empty(count)
    units = np.empty(count)
    growth = np.empty(count)
    equity = np.empty(n)
    buy, sell, keep = 1.0 + slip, 1.0 - slip, 1.0 - fee
    cash = initial_equity
    # The product of the growths so far, from 1.0 in trade order: what
    # np.cumprod gives, times the initial equity after.
    so_far = 1.0
    # curve_summary's figures, carried along as each trade's bars are laid
    # out (they are still in the cache): the same numbers, one pass fewer.
    returns = np.empty(max(n - 1, 0))
    state = (0.0, 0.0, initial_equity, initial_equity, 1.0, 0, 0)
    k = 0
    for i in range(count):
        start, stop = entries[i], exit_index[i]
        equity[k:start] = cash
        price = open_[start] * buy
        entry_price[i] = price
        cost = price * (1.0 + fee)
        held = so_far * initial_equity / cost
        units[i] = held
        for j in range(start, stop):
            equity[j] = held * close[j]
        if stop == n:  # sold at the last close, without slippage
            stop = n - 1
            price = close[stop]
        else:
            price = open_[stop] * sell
        exit_index[i] = stop
        exit_price[i] = price
        growth[i] = price * keep / cost
        so_far *= growth[i]
        cash = held * price * keep
        state = _scan(equity, returns, max(k, 1), stop, *state)
        k = stop
    equity[k:] = cash
    summary = _finish(returns, n, *_scan(equity, returns, max(k, 1), n, *state))
    return (equity, position, entries, exit_index, entry_price, exit_price, units,
            growth, summary)  # fmt: skip


@njit(cache=True, nogil=True)
def curve_summary(equity: np.ndarray) -> tuple[float, float, float, float, int]:
    """Return (mean, sum of squares about it, sum of squared losses) of the bar
    returns, the lowest equity / running peak and the longest run of bars
    below a previous peak.

    A bar after one at 0 (a liquidated short stays there) returns 0. With
    fewer than 2 bars the sums are 0 and the mean NaN.
    """
    n = len(equity)
    returns = np.empty(max(n - 1, 0))
    first = equity[0]
    state = _scan(equity, returns, 1, n, 0.0, 0.0, first, first, 1.0, 0, 0)
    return _finish(returns, n, *state)


@njit(cache=True, nogil=True)
def _scan(
    equity: np.ndarray,
    returns: np.ndarray,
    lo: int,
    hi: int,
    total: float,
    losses: float,
    peak: float,
    trough: float,
    lowest: float,
    last_top: int,
    longest: int,
) -> tuple[float, float, float, float, float, int, int]:
    """Carry curve_summary's running figures over bars [lo, hi), writing their
    returns; the state in and out is (total, losses, peak, trough, lowest,
    last_top, longest)."""
    for k in range(lo, hi):
        before, now = equity[k - 1], equity[k]
        # x / x - 1 is exactly 0: no division on flat bars.
        flat = now == before or before == 0.0
        change = 0.0 if flat else now / before - 1.0
        returns[k - 1] = change
        total += change
        # Branch-free: a loss is as likely as a gain, a guess at it costs more.
        loss = min(change, 0.0)
        losses += loss * loss
        if now >= peak:
            # Division by the peak keeps the order, so the lowest ratio of a
            # stretch below one peak is its lowest equity over it: one
            # division per stretch instead of one per bar, the same number.
            lowest = min(lowest, trough / peak)
            peak = trough = now
            longest = max(longest, k - last_top)
            last_top = k
        else:
            trough = min(trough, now)
    return total, losses, peak, trough, lowest, last_top, longest


@njit(cache=True, nogil=True)
def _finish(
    returns: np.ndarray,
    n: int,
    total: float,
    losses: float,
    peak: float,
    trough: float,
    lowest: float,
    last_top: int,
    longest: int,
) -> tuple[float, float, float, float, int]:
    """Return curve_summary's figures from the state after the last bar."""
    lowest = min(lowest, trough / peak)
    longest = max(longest, n - last_top)
    mean = total / (n - 1) if n > 1 else math.nan
    squares = 0.0
    for k in range(n - 1):
        centered = returns[k] - mean
        squares += centered * centered
    return mean, squares, losses, lowest, longest - 1


@njit(cache=True, nogil=True)
def trade_summary(
    return_pct: np.ndarray,
    units: np.ndarray,
    entry_price: np.ndarray,
    exit_price: np.ndarray,
    fees: np.ndarray,
    short: np.ndarray,
    bars_held: np.ndarray,
) -> tuple[int, float, float, float, float, float, float, float]:
    """Return (wins, gross profit, gross loss, sum of returns, sum of log
    growths, best, worst return, sum of bars held) of a trade table.

    Returns are fractions; profit and loss are in money, fees included (a
    short, where ``short`` is True, gains what the price falls). A return of
    -100% or worse has no logarithm: the sum is then -inf or NaN.
    """
    wins = 0
    gains = losses = total = logs = held = 0.0
    best, worst = -math.inf, math.inf
    for i in range(len(return_pct)):
        value = return_pct[i] / 100.0
        move = exit_price[i] - entry_price[i]
        if short[i]:
            move = -move
        pnl = units[i] * move - fees[i]
        if pnl > 0.0:
            gains += pnl
        elif pnl < 0.0:
            losses -= pnl
        if value > 0.0:
            wins += 1
        total += value
        if value > -1.0:
            logs += math.log1p(value)
        elif value == -1.0:
            logs -= math.inf
        else:
            logs = math.nan
        best = max(best, value)
        worst = min(worst, value)
        held += bars_held[i]
    return wins, gains, losses, total, logs, best, worst, held


def compile_kernels() -> None:
    """Compile the engine's kernels now (these and ``fused_signals``'), or load
    them from Numba's on-disk cache: a few seconds once per checkout, a
    fraction of a second to load, otherwise paid by a process's first run."""
    from strategies import fused_signals as signal_kernels

    close = np.array([10.0, 11.0, 12.0])
    target = np.array([True, False, False])
    path = long_path(target, close, close, 0.001, 0.0, 10_000.0)
    curve_summary(path[0])
    counts = np.zeros(1, np.int64)
    trade_summary(close[:1], close[:1], close[:1], close[:1], close[:1],
                  target[:1], counts)  # fmt: skip
    out = np.empty(3)
    recursion(close, 0.5, 10.0, out)
    recursion_pair(close, close, 0.5, 10.0, 10.0, out, out.copy())
    signal_kernels.rsi_loop(close, 1, out)
    signal_kernels.above_into(close, close, close, np.empty(3, np.bool_))
    signal_kernels.enter_exit_loop(target, target)


@njit(cache=True, nogil=True)
def recursion(x: np.ndarray, decay: float, y0: float, out: np.ndarray) -> None:
    """Write out[0] = y0, out[t] = (1-decay)*x[t] + decay*out[t-1] for t >= 1."""
    weight = 1.0 - decay
    value = y0
    out[0] = value
    for t in range(1, len(x)):
        value = weight * x[t] + decay * value
        out[t] = value


@njit(cache=True, nogil=True)
def recursion_pair(
    x: np.ndarray,
    y: np.ndarray,
    decay: float,
    x0: float,
    y0: float,
    out_x: np.ndarray,
    out_y: np.ndarray,
) -> None:
    """Run ``recursion`` on two series of one length in one loop: each step
    waits for the one before, so two independent ones take the time of one."""
    weight = 1.0 - decay
    value_x, value_y = x0, y0
    out_x[0], out_y[0] = value_x, value_y
    for t in range(1, len(x)):
        value_x = weight * x[t] + decay * value_x
        value_y = weight * y[t] + decay * value_y
        out_x[t] = value_x
        out_y[t] = value_y
