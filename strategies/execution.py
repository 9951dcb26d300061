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

from strategies.kernels import empty
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


def execution_prices(bars: Bars, direction: str) -> _Prices:
    """Return the bars as the traded sides see them.

    Long: the bars. Short: the bars negated. Both: the long view, then the
    short one (a short's bar i is at n + i). Each view runs on for another n
    copies of its last bar, so that a search reading a block of bars past a
    trade's last one needs no bounds check.
    """
    views = []
    if direction != "short":
        views.append((bars.open, bars.low, bars.high))
    if direction != "long":
        views.append((-bars.open, -bars.high, -bars.low))
    n = len(bars.open)
    columns = []
    for part in zip(*views, strict=True):
        # Scratch memory when the engine provides it: rebuilt per coin.
        out = empty(len(part) * n + n)
        for index, column in enumerate(part):
            out[index * n : (index + 1) * n] = column
        out[len(part) * n :] = part[-1][-1]
        columns.append(out)
    return _Prices(*columns)


def liquidation_price(entry: np.ndarray, size: float, fee: float) -> np.ndarray:
    """Return where a short's equity after the closing fee is 0.

    With equity E at entry and u = f E / (p (1 + fee)) units sold at p, closing
    at x leaves E + u p (1 - fee) - u x (1 + fee); that is 0 at
    x = p / f + p (1 - fee) / (1 + fee).
    """
    return entry / size + entry * ((1.0 - fee) / (1.0 + fee))


@lru_cache(maxsize=64)
def _offsets(n: int) -> np.ndarray:
    """Return 0..n-1, shared by every block of that width (read-only)."""
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
    trail: np.ndarray | None,
    liquidation: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (bar, price, reason) of each trade's first stop, target or
    liquidation exit on bars start..last, or bar -1 where none is reached.

    Prices are oriented (``_Prices``) and may hold several orientations one
    after the other, ``start`` and ``last`` indexing into them: each trade's
    ``stop`` is below its ``entry`` and its ``target`` above; ``trail`` is the
    factor of the running best price (1 - ts for a long, 1 + ts for a short's
    negated prices); ``liquidation`` the oriented liquidation price (-inf for
    none). Returned bars index the same arrays; prices are oriented too.

    The entry bar is checked for every trade at once; the trades still open
    then look 2, 4, 8, ... bars further in each round, as a 2-D block.
    """
    count = len(start)
    bar = np.full(count, -1, dtype=np.intp)
    price = np.zeros(count)
    reason = np.zeros(count, dtype=np.int8)
    if count == 0 or (stop is None and target is None and trail is None
                      and liquidation is None):  # fmt: skip
        return bar, price, reason
    hits: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]] = []

    # The entry bar: the trailing level is trail * entry there.
    adverse = prices.adverse[start]
    if trail is not None:
        level = entry * trail
        if stop is not None:
            np.maximum(level, stop, out=level)
    else:
        level = stop
    barrier = _barrier(level, liquidation)
    hit = adverse <= barrier
    if target is not None or trail is not None:
        favourable = prices.favourable[start]
    if target is not None:
        hit |= favourable >= target
    done = np.flatnonzero(hit)
    if len(done):
        hits.append((done, start[done], None if level is None else level[done]))
    rows = np.flatnonzero(~hit & (last > start))
    pos = start[rows] + 1  # the next bar to look at
    best = entry[rows]  # the best price before ``pos`` (trailing stops)
    if trail is not None:
        np.maximum(best, favourable[rows], out=best)

    width = 2
    while len(rows):
        remaining = last[rows] - pos
        # The price arrays run on past the last bar (``execution_prices``), so
        # a block may reach beyond a trade's last bar; hits there are ignored.
        width = min(width, int(remaining.max()) + 1)
        # A block has a row per bar ahead and a column per trade while there
        # are more trades than bars (NumPy's running maximum and reductions
        # then run along long rows), else a row per trade.
        tall = width <= len(rows)
        if tall:
            index = _offsets(width)[:, None] + pos
            per_trade = np.s_[None, :]
        else:
            index = pos[:, None] + _offsets(width)
            per_trade = np.s_[:, None]
        axis = 0 if tall else 1
        adverse = prices.adverse[index]
        # The stop level is max(stop, trail * max(best, running high)); as
        # rounding is monotonic, that is max(stop, trail * best, trail * each
        # running high): a floor per trade, and one product per bar. For the
        # test the liquidation price joins the floor.
        floor = None if stop is None else stop[rows]
        if trail is not None:
            factor = trail[rows]
            carried = best * factor
            floor = carried if floor is None else np.maximum(floor, carried)
        lowest = floor
        if liquidation is not None:
            lowest = (
                liquidation[rows] if floor is None
                else np.maximum(floor, liquidation[rows])
            )  # fmt: skip
        if trail is not None:
            favourable = prices.favourable[index]
            run = _running(np.maximum, favourable, axis)
            barrier = np.empty_like(adverse)
            if tall:
                head, inner, before = barrier[0], barrier[1:], run[:-1]
            else:
                head, inner, before = barrier[:, 0], barrier[:, 1:], run[:, :-1]
            head[...] = lowest
            np.multiply(before, factor[per_trade], out=inner)
            np.maximum(inner, lowest[per_trade], out=inner)
        elif lowest is not None:
            barrier = lowest[per_trade]
        else:
            barrier = -np.inf
        hit = adverse <= barrier
        if target is not None:
            if trail is None:
                favourable = prices.favourable[index]
            hit |= favourable >= target[rows][per_trade]
        if tall:
            # The first hit of each column: the count of bars before any hit.
            first = width - np.count_nonzero(_running(np.logical_or, hit, 0), axis=0)
        else:
            first = hit.argmax(axis=1)
            first[~hit[np.arange(len(rows)), first]] = width
        found = first <= np.minimum(remaining, width - 1)
        done = np.flatnonzero(found)
        if len(done):
            col = first[done]
            lvl = None if floor is None else floor[done]
            if trail is not None:
                later = np.flatnonzero(col > 0)
                which = done[later]
                ahead = (col[later] - 1, which) if tall else (which, col[later] - 1)
                trailing = run[ahead] * factor[which]
                lvl[later] = np.maximum(lvl[later], trailing)
            hits.append((rows[done], pos[done] + col, lvl))
        more = np.flatnonzero(~found & (remaining >= width))
        rows, pos = rows[more], pos[more] + width
        best = best[more]
        if trail is not None:
            np.maximum(best, run[-1, more] if tall else run[more, -1], out=best)
        width *= 2

    if hits:
        who = np.concatenate([h[0] for h in hits])
        k = np.concatenate([h[1] for h in hits])
        lvl = None if hits[0][2] is None else np.concatenate([h[2] for h in hits])
        b, p, r = _fill(prices, k, start[who], lvl, who, stop, target, trail,
                        liquidation)  # fmt: skip
        bar[who], price[who], reason[who] = b, p, r
    return bar, price, reason


def _running(op: np.ufunc, values: np.ndarray, axis: int) -> np.ndarray:
    """Return op accumulated along ``axis`` (np.maximum: the running maximum).

    By doubling (each step folds in the values 1, 2, 4, ... places back), in
    log2(width) array operations: ``op.accumulate`` along a short axis pays
    a call per row, which costs more than the arithmetic.
    """
    out = values.copy()
    size, step = out.shape[axis], 1
    while step < size:
        if axis == 0:
            op(out[step:], out[:-step], out=out[step:])
        else:
            op(out[:, step:], out[:, :-step], out=out[:, step:])
        step *= 2
    return out


def _barrier(
    level: np.ndarray | None, liquidation: np.ndarray | None
) -> np.ndarray | float:
    """Return the price whose reach ends a trade: the stop level or the
    liquidation price, whichever comes first (-inf when there is neither)."""
    if level is None:
        return -np.inf if liquidation is None else liquidation
    if liquidation is None:
        return level
    return np.maximum(level, liquidation)


def _fill(
    prices: _Prices,
    k: np.ndarray,
    start: np.ndarray,
    level: np.ndarray | None,
    who: np.ndarray,
    stop: np.ndarray | None,
    target: np.ndarray | None,
    trail: np.ndarray | None,
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
    prices: _Prices | None = None,
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
