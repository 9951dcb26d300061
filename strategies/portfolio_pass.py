"""The portfolio pass: one account trading many coins, bar by bar, compiled.

Which signal gets a slot depends on the cash and the positions every earlier
fill and stop left behind, so the pass is sequential by nature, like
``strategies.paths``; it walks the union of the coins' bar times once,
compiled by Numba (``cache=True``, ``nogil``).

Coins are numbered in symbol order and their bars concatenated: bar ``g``
belongs to coin ``coin_of[g]``, whose bars end at ``coin_end[coin]``.
``order[group_start[u]:group_start[u + 1]]`` are the bars open at union time
``u``, in coin order. Stops, targets and trailing stops are computed by the
same floating-point operations as in ``paths.trade_path`` (a long's side of
it), so a one-coin portfolio trades exactly as a single-coin run.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from strategies.paths import END, SIGNAL, STOP_LOSS, TAKE_PROFIT, TRAILING_STOP

# Columns of the integer and float trade records the pass returns.
T_COIN, T_ENTRY, T_EXIT, T_REASON, T_BARS = range(5)
T_ENTRY_FILL, T_EXIT_FILL, T_UNITS = range(3)


@njit(cache=True, nogil=True)
def _grow(ints: np.ndarray, floats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the trade records with twice the room, the rows kept."""
    rows = len(ints)
    more_ints = np.empty((2 * rows, ints.shape[1]), np.int64)
    more_floats = np.empty((2 * rows, floats.shape[1]))
    more_ints[:rows] = ints
    more_floats[:rows] = floats
    return more_ints, more_floats


@njit(cache=True, nogil=True)
def _record(
    ints: np.ndarray,
    floats: np.ndarray,
    count: int,
    coin: int,
    entry: int,
    exit_bar: int,
    reason: int,
    bars: int,
    entry_fill: float,
    exit_fill: float,
    units: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Write closed trade number ``count``; return the records (grown if full)."""
    if count == len(ints):
        ints, floats = _grow(ints, floats)
    ints[count, T_COIN] = coin
    ints[count, T_ENTRY] = entry
    ints[count, T_EXIT] = exit_bar
    ints[count, T_REASON] = reason
    ints[count, T_BARS] = bars
    floats[count, T_ENTRY_FILL] = entry_fill
    floats[count, T_EXIT_FILL] = exit_fill
    floats[count, T_UNITS] = units
    return ints, floats


@njit(cache=True, nogil=True)
def portfolio_pass(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    entry: np.ndarray,
    exit_: np.ndarray,
    rank: np.ndarray,
    coin_of: np.ndarray,
    coin_end: np.ndarray,
    holds_while: np.ndarray,
    order: np.ndarray,
    group_start: np.ndarray,
    max_positions: int,
    stop_loss: float,
    take_profit: float,
    trailing_stop: float,
    fee: float,
    slip: float,
    initial_equity: float,
) -> tuple:
    """Return (equity, positions, trade ints, trade floats, fees, rejected).

    ``equity`` and ``positions`` (held during the bar, after the open's fills)
    are per union time; a trade's ints are (coin, entry bar, exit bar, reason,
    bars held) and its floats (entry fill, exit fill, units). Risk fractions
    are NaN when off. At each union time: signal exits at the open in coin
    order; signal entries in rank order (ties by coin) while a slot is free,
    staking min(cash, E / max_positions) of the previous close's equity E
    (under 1 not placed; a signal not placed is rejected); each held coin's
    stop, target and trailing stop; at its close each coin's exit (held) or
    entry (flat; a "while" rule needs its condition false once after a stop
    or target before it counts again); a coin's last bar closes its position.
    """
    coins = len(coin_end)
    times = len(group_start) - 1
    use_stop = not np.isnan(stop_loss)
    use_target = not np.isnan(take_profit)
    use_trail = not np.isnan(trailing_stop)
    has_level = use_stop or use_trail
    trail = 1.0 - trailing_stop if use_trail else 0.0

    held = np.zeros(coins, np.bool_)
    units = np.zeros(coins)
    entry_fill = np.zeros(coins)
    entry_bar = np.zeros(coins, np.int64)
    best = np.zeros(coins)
    stop = np.zeros(coins)
    target = np.zeros(coins)
    want_exit = np.zeros(coins, np.bool_)
    want_entry = np.zeros(coins, np.bool_)
    want_key = np.zeros(coins)
    armed = np.ones(coins, np.bool_)
    last_close = np.zeros(coins)
    candidates = np.empty(coins, np.int64)  # bars with an entry signal to fill

    equity = np.empty(times)
    positions = np.empty(times, np.int64)
    ints = np.empty((64, 5), np.int64)
    floats = np.empty((64, 3))
    count = 0
    cash = initial_equity
    open_count = 0
    fees = 0.0
    rejected = 0

    for u in range(times):
        first, stop_row = group_start[u], group_start[u + 1]
        previous_equity = equity[u - 1] if u > 0 else initial_equity

        # (1) Exits signalled at each coin's previous close, in coin order.
        for r in range(first, stop_row):
            g = order[r]
            c = coin_of[g]
            if want_exit[c]:
                want_exit[c] = False
                fill = open_[g] * (1.0 - slip)
                cash += units[c] * fill * (1.0 - fee)
                fees += units[c] * fill * fee
                ints, floats = _record(
                    ints,
                    floats,
                    count,
                    c,
                    entry_bar[c],
                    g,
                    SIGNAL,
                    g - entry_bar[c],
                    entry_fill[c],
                    fill,
                    units[c],
                )
                count += 1
                held[c] = False
                open_count -= 1

        # (2) Entries signalled at the previous close, best rank first.
        waiting = 0
        for r in range(first, stop_row):
            g = order[r]
            c = coin_of[g]
            if want_entry[c]:
                want_entry[c] = False
                # Insertion by (key, coin): a handful of signals at a time.
                i = waiting
                while i > 0:
                    other = coin_of[candidates[i - 1]]
                    if want_key[other] < want_key[c] or (
                        want_key[other] == want_key[c] and other < c
                    ):
                        break
                    candidates[i] = candidates[i - 1]
                    i -= 1
                candidates[i] = g
                waiting += 1
        share = previous_equity / max_positions
        for i in range(waiting):
            g = candidates[i]
            c = coin_of[g]
            stake = cash if cash < share else share
            if open_count >= max_positions or not stake >= 1.0:
                rejected += 1
                continue
            fill = open_[g] * (1.0 + slip)
            units[c] = stake / (fill * (1.0 + fee))
            cash -= stake
            fees += units[c] * fill * fee
            held[c] = True
            open_count += 1
            entry_fill[c] = fill
            entry_bar[c] = g
            best[c] = fill
            if use_stop:
                stop[c] = fill * (1.0 - stop_loss)
            if use_target:
                target[c] = fill * (1.0 + take_profit)
        positions[u] = open_count

        # (3) During the bar: stops and targets; (4) at its close: signals.
        for r in range(first, stop_row):
            g = order[r]
            c = coin_of[g]
            last_close[c] = close[g]
            if held[c] and (has_level or use_target):
                level = 0.0
                if use_trail:
                    level = best[c] * trail
                    if use_stop and stop[c] > level:
                        level = stop[c]
                elif use_stop:
                    level = stop[c]
                barrier = level if has_level else -np.inf
                if low[g] <= barrier or (use_target and high[g] >= target[c]):
                    kind = STOP_LOSS
                    if use_trail and (not use_stop or level > stop[c]):
                        kind = TRAILING_STOP
                    gap = g > entry_bar[c]
                    o = open_[g]
                    if has_level and gap and o <= level:
                        price, reason = o, kind
                    elif use_target and gap and o >= target[c]:
                        price, reason = o, TAKE_PROFIT
                    elif has_level and low[g] <= level:
                        price, reason = level, kind
                    else:
                        price, reason = target[c], TAKE_PROFIT
                    fill = price * (1.0 - slip)
                    cash += units[c] * fill * (1.0 - fee)
                    fees += units[c] * fill * fee
                    ints, floats = _record(
                        ints,
                        floats,
                        count,
                        c,
                        entry_bar[c],
                        g,
                        reason,
                        g + 1 - entry_bar[c],
                        entry_fill[c],
                        fill,
                        units[c],
                    )
                    count += 1
                    held[c] = False
                    open_count -= 1
                    # A "while" rule must see its condition false again first.
                    armed[c] = not holds_while[c]
            if g == coin_end[c]:
                if held[c]:
                    # The coin's last bar: close at its close, no slippage.
                    fill = close[g]
                    cash += units[c] * fill * (1.0 - fee)
                    fees += units[c] * fill * fee
                    ints, floats = _record(
                        ints,
                        floats,
                        count,
                        c,
                        entry_bar[c],
                        g,
                        END,
                        g + 1 - entry_bar[c],
                        entry_fill[c],
                        fill,
                        units[c],
                    )
                    count += 1
                    held[c] = False
                    open_count -= 1
            elif held[c]:
                if exit_[g] and not entry[g]:
                    want_exit[c] = True
                if high[g] > best[c]:
                    best[c] = high[g]
            elif not armed[c]:
                armed[c] = not entry[g]
            elif entry[g]:
                want_entry[c] = True
                want_key[c] = rank[g]

        value = cash
        for c in range(coins):
            if held[c]:
                value += units[c] * last_close[c]
        equity[u] = value

    return equity, positions, ints[:count].copy(), floats[:count].copy(), fees, rejected


def compile_kernels() -> None:
    """Compile the pass now, or load it from Numba's on-disk cache."""
    price = np.array([10.0, 11.0, 12.0])
    flags = np.array([True, False, False])
    bars = np.arange(3, dtype=np.int64)
    portfolio_pass(
        price, price, price, price, flags, ~flags, price, bars * 0,
        bars[2:], flags[:1], bars, bars, 1, 0.05, 0.1, 0.03, 0.001, 0.0, 10_000.0,
    )  # fmt: skip
