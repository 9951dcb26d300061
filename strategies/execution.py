"""Execution with risk settings: stops, targets, trailing stops, short
positions, reversals and position sizing (the rules are in the README's
"Strategies and execution" section and in DESIGN.md).

Every trade starts at a *candidate*: a close where exactly one side's entry
condition holds fills at the next open, if the position is flat at that close.
Each candidate's trade is worked out on its own (the signal exit, the first
bar whose stop, target or liquidation price is reached, the fill), and a
trade ending on close e (a stop inside bar e, or an exit signal on close e)
is followed by the first candidate on a close >= e. That chain, from the first
candidate, is the path actually traded. The search for each candidate's
first stop runs over all candidates at once, in rounds that look 1, 2, 4, 8,
... bars further ahead: no Python loop over bars, and the only per-trade loop
follows the chain (skipped when every candidate is on it, as for crossovers).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from strategies.risk import Risk
from strategies.signals import Sides
from strategies.types import Bars

REASONS = ("signal", "stop_loss", "take_profit", "trailing_stop", "end", "liquidation")
SIGNAL, STOP_LOSS, TAKE_PROFIT, TRAILING_STOP, END, LIQUIDATION = range(6)
SIDE_NAMES = np.array(["short", "", "long"])  # indexed by side + 1
REASON_NAMES = np.array(REASONS)


@dataclass
class _Prices:
    """One side's view of the bars, oriented so that the adverse move is down.

    Shorts see the prices negated: a short's stop above its entry becomes a
    level below it, its running low a running high, and one search serves both
    sides (negation is exact, so no comparison changes).
    """

    open: np.ndarray
    adverse: np.ndarray  # the low of a long's bar, minus the high of a short's
    favourable: np.ndarray  # the high of a long's bar, minus the low of a short's


def oriented(bars: Bars, side: int) -> _Prices:
    """Return the bars as the given side (+1 long, -1 short) sees them."""
    if side > 0:
        return _Prices(bars.open, bars.low, bars.high)
    return _Prices(-bars.open, -bars.high, -bars.low)


def liquidation_price(entry: np.ndarray, size: float, fee: float) -> np.ndarray:
    """Return where a short's equity after the closing fee is 0.

    With equity E at entry and u = f E / (p (1 + fee)) units sold at p, closing
    at x leaves E + u p (1 - fee) - u x (1 + fee); that is 0 at
    x = p / f + p (1 - fee) / (1 + fee).
    """
    return entry / size + entry * ((1.0 - fee) / (1.0 + fee))


@lru_cache(maxsize=8)
def _offsets(n: int) -> np.ndarray:
    """Return 0..n-1, shared by the calls on series of that length (read-only)."""
    out = np.arange(n, dtype=np.intp)
    out.flags.writeable = False
    return out


def first_exits(
    prices: _Prices,
    start: np.ndarray,
    last: np.ndarray,
    entry: np.ndarray,
    *,
    stop: np.ndarray | None,
    target: np.ndarray | None,
    trail: float | None,
    liquidation: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (bar, price, reason) of each trade's first stop, target or
    liquidation exit on bars start..last, or bar -1 where none is reached.

    Prices are oriented (``_Prices``): ``stop`` is below ``entry`` and
    ``target`` above it; ``trail`` is the factor of the running best price
    (1 - ts for a long, 1 + ts for a short's negated prices); ``liquidation``
    the oriented liquidation price. Returned prices are oriented too.
    """
    count = len(start)
    bar = np.full(count, -1, dtype=np.intp)
    price = np.zeros(count)
    reason = np.zeros(count, dtype=np.int8)
    if count == 0 or (stop is None and target is None and trail is None
                      and liquidation is None):  # fmt: skip
        return bar, price, reason
    n = len(prices.open)
    rows = np.arange(count)  # which trade each active row is
    pos = start.copy()  # the next bar to look at
    best = entry.copy()  # the best price before ``pos`` (trailing stops)
    width = 1
    offsets = _offsets(n)
    while len(rows):
        span = offsets[:width]
        index = pos[:, None] + span
        np.minimum(index, n - 1, out=index)
        adverse = prices.adverse[index]
        if trail is not None:
            favourable = prices.favourable[index]
            run = np.maximum.accumulate(favourable, axis=1)
            level = np.empty_like(adverse)
            level[:, 0] = best
            np.maximum(run[:, :-1], best[:, None], out=level[:, 1:])
            level *= trail
            if stop is not None:
                np.maximum(level, stop[rows, None], out=level)
        elif stop is not None:
            level = np.broadcast_to(stop[rows, None], adverse.shape)
        else:
            level = None
        hit = np.zeros(adverse.shape, dtype=np.bool_) if level is None else (
            adverse <= level
        )  # fmt: skip
        if target is not None:
            if trail is None:
                favourable = prices.favourable[index]
            hit |= favourable >= target[rows, None]
        if liquidation is not None:
            hit |= adverse <= liquidation[rows, None]
        hit &= span <= (last[rows] - pos)[:, None]
        first = hit.argmax(axis=1)
        found = hit[np.arange(len(rows)), first]
        done = np.flatnonzero(found)
        if len(done):
            col = first[done]
            k = pos[done] + col
            who = rows[done]
            lvl = None if level is None else level[done, col]
            b, p, r = _fill(prices, k, start[who], lvl, who, stop, target, trail,
                            liquidation)  # fmt: skip
            bar[who], price[who], reason[who] = b, p, r
        keep = np.flatnonzero(~found)
        best = best[keep]
        if trail is not None:
            np.maximum(best, run[keep, -1], out=best)
        rows = rows[keep]
        pos = pos[keep] + width
        alive = pos <= last[rows]
        rows, pos, best = rows[alive], pos[alive], best[alive]
        width *= 2
    return bar, price, reason


def _fill(
    prices: _Prices,
    k: np.ndarray,
    start: np.ndarray,
    level: np.ndarray | None,
    who: np.ndarray,
    stop: np.ndarray | None,
    target: np.ndarray | None,
    trail: float | None,
    liquidation: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (bar, oriented price, reason) at the bars where an exit is due.

    The order within a bar: an open beyond the stop, then beyond the target
    (not on the entry bar, whose open is the entry); then the stop, if the bar
    reaches it and it comes before the liquidation price; then liquidation;
    then the target.
    """
    count = len(k)
    open_ = prices.open[k]
    adverse = prices.adverse[k]
    gap = k > start
    price = np.empty(count)
    reason = np.full(count, TAKE_PROFIT, dtype=np.int8)
    settled = np.zeros(count, dtype=np.bool_)
    if level is not None:
        kind = np.full(count, STOP_LOSS, dtype=np.int8)
        if trail is not None:
            tighter = (
                np.ones(count, dtype=np.bool_) if stop is None else level > stop[who]
            )
            kind[tighter] = TRAILING_STOP
        through = gap & (open_ <= level)
        price[through], reason[through] = open_[through], kind[through]
        settled |= through
    if target is not None:
        up = ~settled & gap & (open_ >= target[who])
        price[up], reason[up] = open_[up], TAKE_PROFIT
        settled |= up
    if level is not None:
        first = adverse <= level
        if liquidation is not None:
            first &= level >= liquidation[who]
        stopped = ~settled & first
        price[stopped], reason[stopped] = level[stopped], kind[stopped]
        settled |= stopped
    if liquidation is not None:
        lost = ~settled & (adverse <= liquidation[who])
        price[lost], reason[lost] = liquidation[who][lost], LIQUIDATION
        settled |= lost
    if target is not None:
        rest = ~settled
        price[rest] = target[who][rest]
    return k, price, reason


def _chain(follow: np.ndarray) -> np.ndarray:
    """Return the candidates reached from the first one through ``follow``.

    Most candidates are followed by the next one (every crossover candidate
    is), so the loop only visits those that are not: it jumps from one to the
    next and takes the run in between whole.
    """
    count = len(follow)
    if not count:
        return np.empty(0, dtype=np.intp)
    index = np.arange(count)
    jumping = follow != index + 1
    jumping[-1] = True  # the chain ends there at the latest
    jumps = np.flatnonzero(jumping)
    # For each candidate, the first jump at or after it.
    next_jump = np.repeat(jumps, np.diff(np.concatenate(([-1], jumps)))).tolist()
    follow_list = follow.tolist()
    runs = []
    i = 0
    while i < count:
        j = next_jump[i]
        runs.append((i, j + 1))
        i = follow_list[j]
    if len(runs) == 1:
        return index[runs[0][0] : runs[0][1]]
    return np.concatenate([index[a:b] for a, b in runs])


def simulate_risk(
    bars: Bars,
    sides: Sides,
    risk: Risk,
    *,
    fee: float,
    slippage_bps: float,
    initial_equity: float,
    short_prices: _Prices | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Return (equity, position, trade table) under the risk settings.

    ``position`` is +1 / -1 on every bar a long / short is held at the open
    (the bar of a stop exit included), 0 when flat.
    """
    n = len(bars.close)
    slip = slippage_bps / 10_000.0
    size = risk.position_size
    last_close = n - 1  # a signal on the last close has no next open

    # Candidates: closes where exactly one side's entry holds.
    long_entry, short_entry = sides.long_entry, sides.short_entry
    if long_entry is not None and short_entry is not None:
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
    entry = np.empty(count)
    liquidation = np.full(count, np.inf)
    bar = np.full(count, -1, dtype=np.intp)
    price = np.zeros(count)
    reason = np.zeros(count, dtype=np.int8)
    for value, own_entry, own_exit in (
        (1, long_entry, sides.long_exit),
        (-1, short_entry, sides.short_exit),
    ):
        if own_entry is None:
            continue
        mine = np.flatnonzero(side == value)
        if not len(mine):
            continue
        exits = np.flatnonzero(own_exit[:last_close] & ~own_entry[:last_close])
        at = np.searchsorted(exits, start[mine])
        found = at < len(exits)
        signal_exit[mine[found]] = exits[at[found]]
        fill = bars.open[start[mine]] * (1.0 + value * slip)
        entry[mine] = fill
        if value > 0:
            prices = oriented(bars, 1)
            oriented_entry = fill
            liq = None
        else:
            prices = short_prices if short_prices is not None else oriented(bars, -1)
            oriented_entry = -fill
            liq_real = liquidation_price(fill, size, fee)
            liquidation[mine] = liq_real
            liq = -liq_real
        # Oriented levels: a short's stop above its entry is a negated level
        # below the negated entry.
        stop = target = None
        if risk.stop_loss is not None:
            stop = fill * (1.0 - value * risk.stop_loss) * value
        if risk.take_profit is not None:
            target = fill * (1.0 + value * risk.take_profit) * value
        trail = None
        if risk.trailing_stop is not None:
            trail = 1.0 - risk.trailing_stop if value > 0 else 1.0 + risk.trailing_stop
        b, p, r = first_exits(
            prices, start[mine], signal_exit[mine], oriented_entry,
            stop=stop, target=target, trail=trail, liquidation=liq,
        )  # fmt: skip
        bar[mine], price[mine], reason[mine] = b, p * value, r

    # The chain: a trade ending on close e is followed by the first candidate on
    # a close >= e; a liquidation ends all trading.
    stopped = bar >= 0
    ends = np.where(stopped, bar, signal_exit)
    follow = np.searchsorted(closes, ends)
    follow[ends >= last_close] = count
    follow[reason == LIQUIDATION] = count
    path = _chain(follow)

    # The path's trades.
    side = side[path]
    start = start[path]
    entry = entry[path]
    stopped = stopped[path]
    reason = reason[path]
    exit_bar = np.where(stopped, bar[path], signal_exit[path] + 1)
    at_end = ~stopped & (signal_exit[path] == last_close)
    exit_bar[at_end] = last_close
    exit_price = np.where(stopped, price[path], 0.0)
    by_signal = ~stopped & ~at_end
    exit_price[by_signal] = bars.open[exit_bar[by_signal]] * (
        1.0 - side[by_signal] * slip
    )
    exit_price[at_end] = bars.close[last_close]
    reason[by_signal] = SIGNAL
    reason[at_end] = END
    slipped = stopped & (reason != LIQUIDATION)
    exit_price[slipped] *= 1.0 - side[slipped] * slip
    # A short closed at or beyond its liquidation price is liquidated there.
    liq = liquidation[path]
    lost = (side < 0) & (exit_price >= liq)
    exit_price[lost], reason[lost] = liq[lost], LIQUIDATION

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
        "bars_held": exit_bar - start,
        "fees": units * (entry + exit_price) * fee,
        "closed_at_end": at_end,
        "side": SIDE_NAMES[side + 1],
        "exit_reason": REASON_NAMES[reason],
    }
    return equity, position, trades
