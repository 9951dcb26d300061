"""The engine's execution as it stood before the risk settings, frozen here so
that the default path can be proven bit for bit unchanged (test_real_data).
Only the module around the function is new."""

from __future__ import annotations

import numpy as np

from strategies.kernels import empty
from strategies.types import Bars

INITIAL_EQUITY = 10_000.0


def simulate(
    bars: Bars,
    target: np.ndarray,
    *,
    fee: float,
    slippage_bps: float,
    initial_equity: float = INITIAL_EQUITY,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Return (equity, position, trade table) for a 0/1 target at each close."""
    n = len(bars.close)
    slip = slippage_bps / 10_000.0
    position = np.empty(n, dtype=np.int8)
    position[0] = 0
    position[1:] = target[:-1]
    held = position.view(np.bool_)
    changed = empty(n - 1, np.bool_)
    np.not_equal(held[1:], held[:-1], out=changed)
    # The bars where the position changes, between 0 and n: the bounds of the
    # alternating flat and held segments.
    changes = np.flatnonzero(changed)
    bounds = np.empty(len(changes) + 2, dtype=np.intp)
    bounds[0], bounds[-1] = 0, n
    moves = bounds[1:-1]
    np.add(changes, 1, out=moves)
    # Bar 0 is flat, so the moves alternate entry, exit, entry, ...
    entries, exits = moves[0::2], moves[1::2]
    count, closed = len(entries), len(exits)
    open_at_end = closed < count

    entry_price = bars.open[entries] * (1.0 + slip)
    exit_price = np.empty(count)
    exit_index = np.empty(count, dtype=np.intp)
    exit_index[:closed] = exits
    np.multiply(bars.open[exits], 1.0 - slip, out=exit_price[:closed])
    if open_at_end:
        exit_price[-1] = bars.close[-1]
        exit_index[-1] = n - 1

    # Each trade multiplies the cash by its growth; equity before a trade is
    # the initial equity times the growth of the trades before it.
    cost = entry_price * (1.0 + fee)
    growth = exit_price * (1.0 - fee) / cost
    cash_before = np.empty(count)
    if count:
        cash_before[0] = 1.0
        cash_before[1:] = growth[:-1]
        np.cumprod(cash_before, out=cash_before)
        cash_before *= initial_equity
    units = cash_before / cost
    cash_after = units * exit_price * (1.0 - fee)

    # Bars fall into alternating segments: flat [0, e0), held [e0, x0), flat
    # [x0, e1), ... A flat bar is worth the cash after the last exit, a held bar
    # units * close: lay the per-segment number out with one np.repeat and
    # multiply the held bars by the close.
    lengths = bounds[1:] - bounds[:-1]
    value = np.empty(len(lengths))
    value[0] = initial_equity
    value[2::2] = cash_after[:closed]
    value[1::2] = units
    equity = np.repeat(value, lengths)
    np.multiply(equity, bars.close, out=equity, where=held)
    if open_at_end:
        equity[-1] = cash_after[-1]

    closed_at_end = np.zeros(len(entries), dtype=bool)
    closed_at_end[-1:] = open_at_end
    trades = {
        "entry_index": entries,
        "exit_index": exit_index,
        "entry_time": bars.time[entries],
        "exit_time": bars.time[exit_index],
        "entry_price": entry_price,
        "exit_price": exit_price,
        "units": units,
        "return_pct": (growth - 1.0) * 100.0,
        # The one deliberate change since: a position closed at the last bar's
        # close counts that bar as held, as exposure_pct does.
        "bars_held": exit_index - entries + closed_at_end,
        "fees": units * (entry_price + exit_price) * fee,
        "closed_at_end": closed_at_end,
    }
    return equity, position, trades
