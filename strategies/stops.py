"""The search for each trade's first stop, target or liquidation exit.

Prices are *oriented*: a long sees the bars, a short sees them negated, so
that for either side the adverse move is down, the stop is a level below the
entry and the target one above (negation is exact: no comparison changes).
Both sides are searched at once, the shorts' view placed after the longs'.
Trades are checked on their entry bar all at once, then in rounds that look
2, 4, 8, ... bars further ahead, each round one 2-D block of the trades still
open: no Python loop over bars.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from strategies.kernels import empty
from strategies.types import Bars

REASONS = ("signal", "stop_loss", "take_profit", "trailing_stop", "end", "liquidation")
SIGNAL, STOP_LOSS, TAKE_PROFIT, TRAILING_STOP, END, LIQUIDATION = range(6)
SIDE_NAMES = np.array(["short", "", "long"])  # indexed by side + 1
REASON_NAMES = np.array(REASONS)


@dataclass
class OrientedPrices:
    """One side's view of the bars, oriented so that the adverse move is down.

    Shorts see the prices negated: a short's stop above its entry becomes a
    level below it, its running low a running high, and one search serves both
    sides (negation is exact, so no comparison changes).
    """

    open: np.ndarray
    adverse: np.ndarray  # the low of a long's bar, minus the high of a short's
    favourable: np.ndarray  # the high of a long's bar, minus the low of a short's


def execution_prices(bars: Bars, direction: str) -> OrientedPrices:
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
    return OrientedPrices(*columns)


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
    prices: OrientedPrices,
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

    Prices are oriented (``OrientedPrices``) and may hold several orientations one
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
    prices: OrientedPrices,
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
