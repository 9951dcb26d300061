"""Execution with risk settings: stops, targets, trailing stops, short
positions, reversals and position sizing (the rules are in the README's
"Strategies and execution" section and in DESIGN.md).

Every trade starts at a *candidate*: a close where exactly one side's entry
condition holds fills at the next open, if the position is flat at that close.
Each candidate's trade is worked out on its own (its exit signal, and in
``strategies.stops`` the first bar whose stop, target or liquidation price it
reaches), and a trade ending on close e (a stop inside bar e, or an exit
signal on close e) is followed by the first candidate on a close >= e. That
chain, from the first candidate, is the path actually traded. No Python loop
runs over bars; the only per-trade loop follows the chain over the candidates
not followed by the next one (none, for the crossovers).
"""

from __future__ import annotations

import numpy as np

from strategies.kernels import empty
from strategies.risk import Risk
from strategies.signals import Sides
from strategies.stops import (
    END,
    LIQUIDATION,
    REASON_NAMES,
    SIDE_NAMES,
    SIGNAL,
    OrientedPrices,
    execution_prices,
    first_exits,
    liquidation_price,
)
from strategies.types import Bars

__all__ = ["execution_prices", "simulate_risk"]


def _first_exits_signalled(
    exit_: np.ndarray, entry: np.ndarray, start: np.ndarray
) -> np.ndarray:
    """Return, for each start, the first close >= start where ``exit_`` holds
    and ``entry`` does not (len(exit_) where there is none).

    The closes are found through the first close of each run of exits, which
    are few even where exits are most closes (a crossover's side is out of
    the market about half the time): the first exit from s on is s itself or
    the first run to begin after s.
    """
    size = len(exit_)
    held = empty(size, np.bool_)
    np.greater(exit_, entry, out=held)  # exit and not entry
    begins = empty(size, np.bool_)
    begins[:1] = held[:1]
    np.greater(held[1:], held[:-1], out=begins[1:])
    runs = np.flatnonzero(begins)
    after = np.append(runs, size)[np.searchsorted(runs, start, side="right")]
    inside = start < size
    at_start = np.zeros(len(start), dtype=np.bool_)
    at_start[inside] = held[start[inside]]
    return np.where(at_start, start, after)


def _chain(follow: np.ndarray) -> np.ndarray:
    """Return the candidates reached from the first one through ``follow``.

    Most candidates are followed by the next one (every crossover candidate
    is): the chain runs through them whole. Only the others, the jumps, are
    visited one by one: from a jump the chain goes to the candidate it is
    followed by and runs on to the next jump at or after it.
    """
    count = len(follow)
    if not count:
        return np.empty(0, dtype=np.intp)
    jumping = follow != np.arange(1, count + 1)
    jumping[-1] = True  # the chain ends there at the latest
    jumps = np.flatnonzero(jumping)
    if len(jumps) == 1:
        return np.arange(count)
    landing = follow[jumps]  # where the chain goes on from each jump
    # The jump each landing runs on to (len(jumps): the chain has ended).
    next_jump = np.searchsorted(jumps, landing).tolist()
    visited = []
    k, end = 0, len(jumps)
    while k < end:
        visited.append(k)
        k = next_jump[k]
    # Mark each run taken: +1 at its first candidate, -1 after its last.
    visited = np.array(visited)
    marks = np.zeros(count + 1, dtype=np.int32)
    marks[0] = 1
    marks[landing[visited[:-1]]] = 1
    marks[jumps[visited] + 1] -= 1
    return np.flatnonzero(np.cumsum(marks[:count]))


def simulate_risk(
    bars: Bars,
    sides: Sides,
    risk: Risk,
    *,
    fee: float,
    slippage_bps: float,
    initial_equity: float,
    prices: OrientedPrices | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Return (equity, position, trade table) under the risk settings.

    ``prices`` are ``execution_prices(bars, risk.direction)``, which several
    strategies on one coin can share.

    ``position`` is +1 / -1 on every bar a long / short is held at the open
    (the bar of a stop exit included), 0 when flat.
    """
    n = len(bars.close)
    slip = slippage_bps / 10_000.0
    size = risk.position_size
    last_close = n - 1  # a signal on the last close has no next open

    # Candidates: closes where exactly one side's entry holds.
    long_entry, short_entry = sides.long_entry, sides.short_entry
    both = long_entry is not None and short_entry is not None
    if both:
        one = long_entry[:last_close] != short_entry[:last_close]
        closes = np.flatnonzero(one)
        side = np.where(long_entry[closes], 1, -1).astype(np.int8)
    elif long_entry is not None:
        closes = np.flatnonzero(long_entry[:last_close])
        side = np.ones(len(closes), dtype=np.int8)
    else:
        closes = np.flatnonzero(short_entry[:last_close])
        side = np.full(len(closes), -1, dtype=np.int8)
    count = len(closes)
    start = closes + 1

    # Each candidate's exit signal: the first close from its entry bar on where
    # its own exit holds and its own entry does not (n - 1: none, held to the end).
    signal_exit = np.full(count, last_close, dtype=np.intp)
    for value, own_entry, own_exit in (
        (1, long_entry, sides.long_exit),
        (-1, short_entry, sides.short_exit),
    ):
        if own_entry is None:
            continue
        mine = np.flatnonzero(side == value) if both else slice(None)
        signal_exit[mine] = _first_exits_signalled(
            own_exit[:last_close], own_entry[:last_close], start[mine]
        )

    # Entry fills and oriented levels: a short sees the prices negated, so its
    # stop above the entry is a level below the negated entry. One search
    # serves both sides, the shorts' bars placed after the longs' (``base``).
    sign = side.astype(np.float64)
    entry = bars.open[start] * (1.0 + sign * slip)
    oriented_entry = entry * sign
    stop = target = trail = liq = None
    if risk.stop_loss is not None:
        stop = entry * (1.0 - sign * risk.stop_loss) * sign
    if risk.take_profit is not None:
        target = entry * (1.0 + sign * risk.take_profit) * sign
    if risk.trailing_stop is not None:
        trail = 1.0 - sign * risk.trailing_stop
    liquidation = np.full(count, np.inf)
    if risk.direction != "long":
        shorts = side < 0
        liquidation[shorts] = liquidation_price(entry[shorts], size, fee)
        liq = np.where(shorts, -liquidation, -np.inf)
    if prices is None:
        prices = execution_prices(bars, risk.direction)
    base = np.where(side < 0, n, 0) if both else 0
    bar, price, reason = first_exits(
        prices, start + base, signal_exit + base, oriented_entry,
        stop=stop, target=target, trail=trail, liquidation=liq,
    )  # fmt: skip
    bar[bar >= n] -= n
    price *= sign

    # Each candidate's exit: a stop, target or liquidation inside a bar, else
    # its exit signal at the next open, else the last close.
    stopped = bar >= 0
    at_end = ~stopped & (signal_exit == last_close)
    by_signal = ~stopped & ~at_end
    exit_bar = np.where(stopped, bar, signal_exit + 1)
    exit_bar[at_end] = last_close
    exit_price = price
    exit_price[by_signal] = bars.open[exit_bar[by_signal]] * (
        1.0 - sign[by_signal] * slip
    )
    exit_price[at_end] = bars.close[last_close]
    reason[by_signal] = SIGNAL
    reason[at_end] = END
    slipped = stopped & (reason != LIQUIDATION)
    exit_price[slipped] *= 1.0 - sign[slipped] * slip
    # A short closed at or beyond its liquidation price is liquidated there.
    lost = exit_price >= liquidation
    exit_price[lost], reason[lost] = liquidation[lost], LIQUIDATION

    # The chain: a trade ending on close e (a stop inside bar e, an exit signal
    # on close e) is followed by the first candidate on a close >= e; the end
    # of the bars and a liquidation end all trading.
    ends = np.where(stopped, bar, signal_exit)
    follow = np.searchsorted(closes, ends)
    follow[ends >= last_close] = count
    follow[reason == LIQUIDATION] = count
    path = _chain(follow)

    side, start, entry, reason = side[path], start[path], entry[path], reason[path]
    stopped, at_end = stopped[path], at_end[path]
    exit_bar, exit_price = exit_bar[path], exit_price[path]

    # Money: each trade commits f of the equity before it.
    cost = entry * (1.0 + fee)
    long_ = side > 0
    per_unit = np.where(
        long_, exit_price * (1.0 - fee) - cost, entry * (1.0 - fee) - exit_price * (
            1.0 + fee
        ),
    )  # fmt: skip
    trade_return = per_unit / cost
    trade_return[reason == LIQUIDATION] = -1.0 / size
    growth = 1.0 + size * trade_return
    growth[reason == LIQUIDATION] = 0.0
    trades_count = len(path)
    before = np.empty(trades_count)
    if trades_count:
        before[0] = 1.0
        before[1:] = growth[:-1]
        np.cumprod(before, out=before)
        before *= initial_equity
    after = before * growth
    units = before * size / cost

    # Bars: flat stretches are worth the cash, a long's bars the cash kept plus
    # units * close, a short's the equity at entry plus units * (p (1 - fee) -
    # close): each stretch is a + b * close, laid out with np.repeat.
    bounds = np.empty(2 * trades_count + 2, dtype=np.intp)
    bounds[0], bounds[-1] = 0, n
    bounds[1:-1:2] = start
    bounds[2:-1:2] = exit_bar
    lengths = np.diff(bounds)
    a = np.empty(2 * trades_count + 1)
    b = np.zeros(2 * trades_count + 1)
    a[0] = initial_equity
    a[2::2] = after
    a[1::2] = np.where(long_, before * (1.0 - size), before + units * entry * (
        1.0 - fee
    ))  # fmt: skip
    b[1::2] = np.where(long_, units, -units)
    equity = np.repeat(b, lengths)
    equity *= bars.close
    equity += np.repeat(a, lengths)

    held_bounds = bounds.copy()
    held_end = np.where(stopped, exit_bar + 1, exit_bar)
    held_end[at_end] = n
    held_bounds[2:-1:2] = held_end
    held = np.zeros(2 * trades_count + 1, dtype=np.int8)
    held[1::2] = side
    position = np.repeat(held, np.diff(held_bounds))

    trades = {
        "entry_index": start,
        "exit_index": exit_bar,
        "entry_time": bars.time[start],
        "exit_time": bars.time[exit_bar],
        "entry_price": entry,
        "exit_price": exit_price,
        "units": units,
        "return_pct": trade_return * 100.0,
        # The bars the position column marks held: the exit bar too when the
        # trade ends within it or at its close (see engine.simulate).
        "bars_held": held_end - start,
        "fees": units * (entry + exit_price) * fee,
        "closed_at_end": at_end,
        "side": SIDE_NAMES[side + 1],
        "exit_reason": REASON_NAMES[reason],
    }
    return equity, position, trades
