"""Many backtests of one coin at once: targets in a 2-D block, one row each.

When only the cell metrics of a sweep are asked for (``segments.SEGMENT_KEYS``)
``run_block`` hands each block's trades to ``segments.segment_metrics``
instead, which needs no equity curve (Sharpe and the drawdown then agree to
rounding rather than to the bit). Otherwise:

``block_metrics`` takes the held position of B backtests as a (B, n) boolean
block and returns each row's metrics, equal to the last bit to what
``engine.simulate`` and ``metrics.compute_metrics`` give for that row alone:
the trades and the equity curves by the same floating-point operations in the
same order (the per-bar arithmetic elementwise, the sequential products of the
trade growths), the curve's and the trades' statistics by the same compiled
kernels (``fused.curve_summary``, ``fused.trade_summary``) row by row. What
changes is the number of NumPy calls: one per block instead of one per
backtest, and none for metrics nobody asked for.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Collection, Mapping, Sequence

import numpy as np

from strategies import metrics as mx
from strategies.bartime import Calendar, calendar_of
from strategies.block_stats import (
    SIDE_KEYS,
    TRADE_STAT_KEYS,
    more_metrics,
    side_stats,
    trade_stats,
    trade_table,
)
from strategies.kernels import scratch
from strategies.metrics import METRIC_KEYS
from strategies.registry import StrategySpec, is_builtin
from strategies.segments import SEGMENT_KEYS, CloseTables, Trades, segment_metrics
from strategies.signals import IndicatorCache
from strategies.types import Bars, Metrics

# Backtests per block: enough to spread the cost of each NumPy call, few
# enough that a block's arrays stay in the CPU caches.
ROWS = 8
# Without equity curves a block holds its positions and trades only, and the
# trade arithmetic costs per call and per freshly mapped array more than per
# trade: sweep S runs fastest as one block per coin (measured: 32 rows 1.36 s,
# 64 1.22 s, 174 1.09 s, 256 1.10 s). 256 rows of 43,800 bars hold 22 MB.
SEGMENT_ROWS = 256
# "Long while A > B" rules whose target is one subtraction of two cached
# indicators: their rows are written straight into the block.
_CROSSOVERS = {"sma_crossover": "sma", "ema_crossover": "ema"}
_local = threading.local()


class Work:
    """Reusable buffers for blocks of up to ``rows`` backtests of ``n`` bars.

    Kept per thread from one coin to the next: freshly mapped memory costs
    more to touch than the arithmetic done in it. The buffers are flat, so a
    shorter series gets contiguous blocks out of the same memory.
    """

    def __init__(self, rows: int, n: int) -> None:
        self.rows, self.n = rows, n
        self._held = np.zeros(rows * (n + 1), dtype=np.bool_)
        self._changed = np.empty(rows * n, dtype=np.bool_)
        # Equity curves come ROWS at a time at most (the segment path's larger
        # blocks use one row, for the crossover gap).
        self.curves = min(rows, ROWS)
        self._returns = np.empty(self.curves * n)
        self._temp = np.empty(self.curves * n)
        self.shape(rows, n)

    def fits(self, rows: int, n: int) -> bool:
        """Return whether blocks of ``rows`` backtests of ``n`` bars fit."""
        return rows <= self.rows and n <= self.n

    def shape(self, rows: int, n: int) -> None:
        """Lay the buffers out for ``rows`` backtests of ``n`` bars."""
        # A flat column after the last bar closes every row's last trade.
        self.held = self._held[: rows * (n + 1)].reshape(rows, n + 1)
        self.changed = self._changed[: rows * n].reshape(rows, n)
        lines = min(rows, self.curves)
        size = lines * max(n - 1, 0)
        self.returns = self._returns[:size].reshape(lines, max(n - 1, 0))
        self.temp = self._temp[:size].reshape(lines, max(n - 1, 0))


def _work(rows: int, n: int) -> Work:
    """Return this thread's buffers for ``rows`` x ``n``, reallocated only
    when they are too small."""
    work = getattr(_local, "work", None)
    if work is None or not work.fits(rows, n):
        work = _local.work = Work(max(rows, ROWS), n)
    work.shape(rows, n)
    return work


def run_block(
    bars: Bars,
    spec: StrategySpec,
    jobs: Sequence[Mapping[str, int | float]],
    *,
    fee: float,
    slippage_bps: float,
    interval: str,
    initial_equity: float,
    keys: Collection[str] = METRIC_KEYS,
) -> list[Metrics]:
    """Return the metrics of strategy ``spec`` with each of ``jobs`` (validated
    parameters) on one coin, sharing the indicators, ROWS backtests at a time.

    Inputs are trusted (the caller validated bars, costs and parameters).
    """
    n = len(bars.close)
    wanted = frozenset(keys)
    # The cell metrics alone come from the trades and tables of the closes
    # built once here (see segments): no equity curve per backtest, so more
    # rows per block.
    tables = CloseTables(bars.close) if jobs and wanted <= SEGMENT_KEYS else None
    per_block = ROWS if tables is None else SEGMENT_ROWS
    work = _work(min(per_block, len(jobs)), n)
    calendar = calendar_of(bars.time, n, interval)
    # The fast path reads the built-ins' own parameters: never a rule program
    # that happens to carry a built-in's key.
    kind = _CROSSOVERS.get(spec.key) if is_builtin(spec) else None
    out: list[Metrics] = []
    # Crossover rows take nothing but the cached averages, which may live in
    # scratch memory; other rules leave temporaries behind on every call,
    # which scratch memory would keep until the end (a large grid: gigabytes).
    with scratch() if kind else contextlib.nullcontext():
        cache = IndicatorCache(bars)
        tolerance = cache.get("tolerance")[:-1] if kind else None
        for start in range(0, len(jobs), per_block):
            block = jobs[start : start + per_block]
            held = work.held[: len(block)]
            held[:, 0] = held[:, n] = False
            for row, params in enumerate(block):
                if kind:
                    # signals.above, less its last bar (a target with no next
                    # open), written as the next bar's position.
                    gap = work.returns[0, : n - 1]
                    fast = cache.get(kind, params["fast"])
                    slow = cache.get(kind, params["slow"])
                    np.subtract(fast[:-1], slow[:-1], out=gap)
                    np.greater(gap, tolerance, out=held[row, 1:n])
                else:
                    held[row, 1:n] = spec.signal(cache, **params)[:-1]
            if tables is None:
                found = block_metrics(
                    bars,
                    held,
                    fee=fee,
                    slippage_bps=slippage_bps,
                    initial_equity=initial_equity,
                    keys=keys,
                    work=work,
                    calendar=calendar,
                )
            else:
                laid = block_trades(
                    bars,
                    held,
                    fee=fee,
                    slippage_bps=slippage_bps,
                    initial_equity=initial_equity,
                    work=work,
                )
                found = segment_metrics(
                    bars,
                    tables,
                    laid,
                    interval=interval,
                    initial_equity=initial_equity,
                    keys=wanted,
                )
            out.extend(found)
    return out


def block_metrics(
    bars: Bars,
    held: np.ndarray,
    *,
    fee: float,
    slippage_bps: float,
    initial_equity: float,
    keys: Collection[str] = METRIC_KEYS,
    work: Work,
    calendar: Calendar,
) -> list[Metrics]:
    """Return the metrics of each row of ``held`` (B, n + 1): True where a
    position is held at a bar (the target of the bar before), with column 0
    and the extra column n False.

    Only ``keys`` are computed and returned, in METRIC_KEYS order. Inputs are
    trusted: bars checked, costs valid, the flat columns False.
    """
    rows, n = held.shape[0], held.shape[1] - 1
    close = bars.close
    # Annual figures count the calendar (see metrics): the same for every row.
    periods, years = calendar.periods, calendar.years
    wanted = set(keys)
    laid = block_trades(bars, held, fee=fee, slippage_bps=slippage_bps,
                        initial_equity=initial_equity, work=work)  # fmt: skip
    trades, trade_start, trade_row = laid.counts, laid.trade_start, laid.trade_row
    entries, exits, is_open = laid.entries, laid.exits, laid.is_open
    entry_price, exit_price, growth = laid.entry_price, laid.exit_price, laid.growth
    units, cash_after = laid.units, laid.cash_after
    total = len(entries)
    bounds = trade_start.tolist()

    # The equity curve: each row is a flat segment, then a held and a flat one
    # per trade, laid out with one np.repeat (a flat segment worth the cash, a
    # held one the units, times the close below).
    first = 2 * trade_start[:-1] + np.arange(rows)  # each row's first segment
    begin = np.empty(rows + 2 * total, dtype=np.intp)
    value = np.empty(rows + 2 * total)
    begin[first] = 0
    value[first] = initial_equity
    held_at = 2 * np.arange(total) + trade_row + 1
    begin[held_at] = entries
    value[held_at] = units
    begin[held_at + 1] = exits
    value[held_at + 1] = cash_after
    length = np.empty(len(begin), dtype=np.intp)
    np.subtract(begin[1:], begin[:-1], out=length[:-1])
    last = np.empty(rows, dtype=np.intp)
    last[:-1] = first[1:] - 1
    last[-1:] = len(begin) - 1
    length[last] = n - begin[last]
    equity = np.repeat(value, length).reshape(rows, n)
    np.multiply(equity, close, out=equity, where=held[:, :n])
    equity[trade_row[is_open], n - 1] = cash_after[is_open]

    if "exposure_pct" in wanted:
        held_bars = np.bincount(
            trade_row, weights=exits - entries, minlength=rows
        ).tolist()
    if wanted & TRADE_STAT_KEYS:
        # An exit at n (still open at the end) holds the last bar too, as
        # engine.simulate counts it.
        table = trade_table(growth, units, entry_price, exit_price,
                            exits - entries, fee)  # fmt: skip
    if wanted & SIDE_KEYS:
        wins = np.bincount(trade_row[growth > 1.0], minlength=rows).tolist()
        open_rows = np.bincount(trade_row[is_open], minlength=rows).tolist()
    buy_hold = mx.buy_hold_return_pct(close)
    gaps = calendar.gap_metrics()
    finals = equity[:, -1].tolist()
    counts_of = trades.tolist()
    out: list[Metrics] = []
    for row in range(rows):
        final = finals[row]
        found: Metrics = {"buy_hold_return_pct": buy_hold, **gaps}
        # Python floats round as NumPy's float64 scalars do: equal values.
        found["total_return_pct"] = mx._num((final / initial_equity - 1.0) * 100.0)
        # The same compiled pass as compute_metrics: the same numbers.
        mean, std, downside, lowest, longest = mx.curve_stats(equity[row])
        found["sharpe"] = mx.sharpe(mean, std, periods)
        found["max_drawdown_pct"] = (1.0 - lowest) * 100.0
        found["num_trades"] = counts_of[row]
        if not wanted.issubset(found):
            more_metrics(found, wanted, equity[row], mean, std, periods, years,
                         downside, longest)  # fmt: skip
            if "exposure_pct" in wanted:
                found["exposure_pct"] = int(held_bars[row]) * 100.0 / n
            if wanted & SIDE_KEYS:
                side_stats(found, counts_of[row], wins[row], open_rows[row])
            if wanted & TRADE_STAT_KEYS:
                trade_stats(found, table, bounds[row], bounds[row + 1])
        out.append({key: found[key] for key in METRIC_KEYS if key in wanted})
    return out


def block_trades(
    bars: Bars,
    held: np.ndarray,
    *,
    fee: float,
    slippage_bps: float,
    initial_equity: float,
    work: Work,
) -> Trades:
    """Return the trades of each row of ``held`` (B, n + 1), as block_metrics
    takes it, with their fills, growths, units and proceeds computed by the
    engine's operations in the engine's order."""
    rows, n = held.shape[0], held.shape[1] - 1
    close = bars.close
    slip = slippage_bps / 10_000.0

    # The bars where a row's position changes, in row and time order. Every
    # row starts and (with the flat column after its last bar) ends flat, so
    # the changes of the whole block alternate entry, exit, entry, ...; an
    # exit at n is a position still open on the last bar.
    changed = work.changed[:rows]
    np.not_equal(held[:, 1:], held[:, :-1], out=changed)
    # One flat scan: a 2-D nonzero costs several times more.
    row_of, moves = np.divmod(np.flatnonzero(changed), n)
    moves += 1
    entries, exits = moves[0::2], moves[1::2]
    trade_row = row_of[0::2]
    total = len(entries)
    trades = np.bincount(trade_row, minlength=rows)
    trade_start = np.zeros(rows + 1, dtype=np.intp)
    np.cumsum(trades, out=trade_start[1:])
    is_open = exits == n
    exit_index = np.minimum(exits, n - 1)
    entry_price = bars.open[entries] * (1.0 + slip)
    exit_price = bars.open[exit_index] * (1.0 - slip)
    exit_price[is_open] = close[-1]

    # Cash before each trade: the row's running product of the growths of the
    # trades before it (1, g0, g0 g1, ...), multiplied in order as the engine
    # does; one short call per row.
    cost = entry_price * (1.0 + fee)
    growth = exit_price * (1.0 - fee) / cost
    cash_before = np.empty(total)
    bounds = trade_start.tolist()
    for first, end in zip(bounds[:-1], bounds[1:], strict=True):
        if end > first:
            cash_before[first] = 1.0
            np.cumprod(growth[first : end - 1], out=cash_before[first + 1 : end])
    cash_before *= initial_equity
    units = cash_before / cost
    cash_after = units * exit_price * (1.0 - fee)
    return Trades(rows, trades, trade_start, trade_row, entries, exits,
                  exit_index, is_open, entry_price, exit_price, growth, units,
                  cash_after)  # fmt: skip
