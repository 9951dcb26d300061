"""The path a strategy trades under the risk settings, bar by bar, compiled.

A stop, target or trailing exit depends on every bar of its trade, and the
next trade can only start after it, so the traded path is sequential by
nature. ``trade_path`` walks it once, in one pass over the bars, compiled by
Numba (``nogil``: threads running it use every core). The vectorized search it
replaces (candidate trades, each searched ahead in doubling blocks, then
chained) did about six times the work and cost 2.6 times the time of the whole
backtest without risk settings; this costs a fraction of it.

Prices are *oriented* inside: a short sees them negated, so that for either
side the adverse move is down, the stop a level below the entry and the
target one above (negation is exact: no comparison changes). Every level is
computed by the same floating-point operations, in the same order, as the
rules in the README state them, so results do not depend on the order in
which they are found.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Exit reasons, indexing ``strategies.execution.REASONS``.
SIGNAL, STOP_LOSS, TAKE_PROFIT, TRAILING_STOP, END, LIQUIDATION = range(6)


@njit(cache=True, nogil=True)
def trade_path(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    long_entry: np.ndarray,
    long_exit: np.ndarray,
    short_entry: np.ndarray,
    short_exit: np.ndarray,
    has_long: bool,
    has_short: bool,
    stop_loss: float,
    take_profit: float,
    trailing_stop: float,
    size: float,
    fee: float,
    slip: float,
) -> tuple[np.ndarray, ...]:
    """Return the traded path: per trade (side, entry bar, entry fill, exit
    bar, exit fill, reason, stopped, closed at end).

    ``stop_loss``, ``take_profit`` and ``trailing_stop`` are fractions, NaN
    for off. A flat position at close c takes the side whose entry alone holds
    there (filled at the next open); a position checks, on each bar it is
    held, the entry bar included: an open beyond the stop, then beyond the
    target (a gap, filled at the open; not on the entry bar); the stop (which
    wins when the bar's range holds both); a short's liquidation price; the
    target; then at the close its own exit signal (own exit and not own
    entry), filled at the next open. A trade that ends on close e is followed
    by the first entry on a close >= e; the last close and a liquidation end
    all trading.
    """
    n = len(close)
    last_close = n - 1
    use_stop = not np.isnan(stop_loss)
    use_target = not np.isnan(take_profit)
    use_trail = not np.isnan(trailing_stop)
    sides = np.empty(n, np.int8)
    entries = np.empty(n, np.int64)
    entry_fills = np.empty(n)
    exits = np.empty(n, np.int64)
    exit_fills = np.empty(n)
    reasons = np.empty(n, np.int8)
    stopped_flags = np.empty(n, np.bool_)
    end_flags = np.empty(n, np.bool_)
    count = 0
    c = 0
    while c < last_close:
        go_long = has_long and long_entry[c]
        go_short = has_short and short_entry[c]
        if go_long == go_short:
            c += 1
            continue
        sign = 1.0 if go_long else -1.0
        s = c + 1
        entry = open_[s] * (1.0 + sign * slip)
        oriented_entry = entry * sign
        stop = entry * (1.0 - sign * stop_loss) * sign if use_stop else 0.0
        target = entry * (1.0 + sign * take_profit) * sign if use_target else 0.0
        trail = 1.0 - sign * trailing_stop if use_trail else 0.0
        if go_long:
            liquidation = np.inf
            oriented_liquidation = -np.inf
        else:
            # Where the short's equity after the closing fee is 0 (README).
            liquidation = entry / size + entry * ((1.0 - fee) / (1.0 + fee))
            oriented_liquidation = -liquidation
        has_level = use_stop or use_trail
        best = oriented_entry  # the best oriented price before bar k
        k = s
        bar = -1
        price = 0.0
        reason = SIGNAL
        signal_close = last_close
        while True:
            if go_long:
                o, adverse, favourable = open_[k], low[k], high[k]
            else:
                o, adverse, favourable = -open_[k], -high[k], -low[k]
            level = 0.0
            if use_trail:
                level = best * trail
                if use_stop and stop > level:
                    level = stop
            elif use_stop:
                level = stop
            barrier = level if has_level else -np.inf
            if oriented_liquidation > barrier:
                barrier = oriented_liquidation
            if adverse <= barrier or (use_target and favourable >= target):
                bar = k
                kind = STOP_LOSS
                if use_trail and (not use_stop or level > stop):
                    kind = TRAILING_STOP
                gap = k > s
                if has_level and gap and o <= level:
                    price, reason = o, kind
                elif use_target and gap and o >= target:
                    price, reason = o, TAKE_PROFIT
                elif has_level and adverse <= level and level >= oriented_liquidation:
                    price, reason = level, kind
                elif adverse <= oriented_liquidation:
                    price, reason = oriented_liquidation, LIQUIDATION
                else:
                    price, reason = target, TAKE_PROFIT
                break
            if k == last_close:
                break
            if go_long:
                held_exit, held_entry = long_exit[k], long_entry[k]
            else:
                held_exit, held_entry = short_exit[k], short_entry[k]
            if held_exit and not held_entry:
                signal_close = k
                break
            if favourable > best:
                best = favourable
            k += 1
        stopped = bar >= 0
        at_end = not stopped and signal_close == last_close
        if stopped:
            exit_bar = bar
            exit_fill = price * sign
            if reason != LIQUIDATION:
                exit_fill *= 1.0 - sign * slip
        elif at_end:
            exit_bar = last_close
            exit_fill = close[last_close]
            reason = END
        else:
            exit_bar = signal_close + 1
            exit_fill = open_[exit_bar] * (1.0 - sign * slip)
        if exit_fill >= liquidation:
            exit_fill, reason = liquidation, LIQUIDATION
        sides[count] = 1 if go_long else -1
        entries[count] = s
        entry_fills[count] = entry
        exits[count] = exit_bar
        exit_fills[count] = exit_fill
        reasons[count] = reason
        stopped_flags[count] = stopped
        end_flags[count] = at_end
        count += 1
        end = bar if stopped else signal_close
        if end >= last_close or reason == LIQUIDATION:
            break
        c = end
    return (
        sides[:count].copy(),
        entries[:count].copy(),
        entry_fills[:count].copy(),
        exits[:count].copy(),
        exit_fills[:count].copy(),
        reasons[:count].copy(),
        stopped_flags[:count].copy(),
        end_flags[:count].copy(),
    )


@njit(cache=True, nogil=True)
def mark_to_market(
    close: np.ndarray,
    sides: np.ndarray,
    entries: np.ndarray,
    entry_fills: np.ndarray,
    exits: np.ndarray,
    exit_fills: np.ndarray,
    reasons: np.ndarray,
    stopped: np.ndarray,
    at_end: np.ndarray,
    size: float,
    fee: float,
    initial_equity: float,
) -> tuple[np.ndarray, ...]:
    """Return (equity, position, units, return per trade, held end) of a path.

    Each trade commits ``size`` of the equity before it. A long's bars are
    worth the cash kept plus units * close; a short's, the equity at entry
    plus units * (p (1 - fee) - close); flat bars the cash. ``position`` is
    +1 / -1 on every bar a long / short is held at the open (a stop's exit bar
    included, and every bar to the end for a trade closed at the last close).
    """
    n = len(close)
    count = len(sides)
    equity = np.empty(n)
    position = np.zeros(n, np.int8)
    units = np.empty(count)
    returns = np.empty(count)
    held_end = np.empty(count, np.int64)
    growth_so_far = 1.0
    cash = initial_equity
    k = 0
    for i in range(count):
        entry = entry_fills[i]
        cost = entry * (1.0 + fee)
        if sides[i] > 0:
            per_unit = exit_fills[i] * (1.0 - fee) - cost
        else:
            per_unit = entry * (1.0 - fee) - exit_fills[i] * (1.0 + fee)
        if reasons[i] == LIQUIDATION:
            returns[i] = -1.0 / size
            growth = 0.0
        else:
            returns[i] = per_unit / cost
            growth = 1.0 + size * returns[i]
        before = growth_so_far * initial_equity
        units[i] = before * size / cost
        start, stop = entries[i], exits[i]
        while k < start:
            equity[k] = cash
            k += 1
        if sides[i] > 0:
            base = before * (1.0 - size)
            slope = units[i]
        else:
            base = before + units[i] * entry * (1.0 - fee)
            slope = -units[i]
        while k < stop:
            equity[k] = slope * close[k] + base
            k += 1
        if at_end[i]:
            held_end[i] = n
        elif stopped[i]:
            held_end[i] = stop + 1
        else:
            held_end[i] = stop
        position[start : held_end[i]] = sides[i]
        growth_so_far *= growth
        cash = before * growth
    while k < n:
        equity[k] = cash
        k += 1
    return equity, position, units, returns, held_end


def compile_kernels() -> None:
    """Compile both kernels now, or load them from Numba's on-disk cache.

    The first risk run of a process otherwise pays it: a few seconds to
    compile once per checkout, about 0.3 s to load after that. The demo and
    the container image call this at set-up.
    """
    close = np.array([10.0, 11.0, 12.0])
    flags = np.array([True, False, False])
    path = trade_path(
        close, close, close, close, flags, ~flags, ~flags, flags,
        True, True, 0.05, 0.1, 0.03, 1.0, 0.001, 0.0,
    )  # fmt: skip
    mark_to_market(close, *path, 1.0, 0.001, 10_000.0)
