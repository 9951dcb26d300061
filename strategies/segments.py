"""A sweep's metrics from its trades alone, without building equity curves.

A long-only curve is flat between trades and ``units * close`` inside one, so
everything a sweep cell reads follows from the trades and a few tables of the
coin's closes built once (``CloseTables``):

* Sharpe needs the sum and the sum of squares of the bar returns. A flat bar
  returns 0; a held bar after a held bar returns the close-to-close return,
  whose sums over any run of bars are differences of prefix sums; only the
  entry bar and the exit bar of each trade are computed one by one.
* The deepest drawdown inside a trade entered under a running peak P is
  min(units * min(close) / P, lowest close / running max of close) over the
  trade's bars, since x / max(p, q) = min(x / p, x / q). Both come from sparse
  tables of the closes' max, min and "lowest close over running max" over
  power-of-two runs, answered in O(1) per trade.

So a backtest costs O(trades) here, after O(n log n) per coin. The numbers are
the same quantities as ``metrics.compute_metrics`` summed in another order:
total return and trade counts are bit for bit equal, Sharpe and the maximum
drawdown agree to about 1e-13 relative (the prefix sums carry their rounding
errors alongside, so that differences of large sums lose nothing).
"""

from __future__ import annotations

import functools
import math
import threading
import weakref
from typing import NamedTuple

import numpy as np

from strategies import metrics as mx
from strategies.types import Bars, Metrics

# What this path computes; any other metric needs the equity curve.
SEGMENT_KEYS = frozenset(
    ("total_return_pct", "buy_hold_return_pct", "sharpe", "max_drawdown_pct",
     "num_trades")
)  # fmt: skip


@functools.lru_cache(maxsize=8)
def _log2_table(n: int) -> np.ndarray:
    """Return floor(log2(m)) for run lengths m = 1..n (index 0 unused),
    read-only: coins of one length share it."""
    out = np.zeros(n + 1, dtype=np.intp)
    out[1:] = np.frexp(np.arange(1, n + 1, dtype=np.float64))[1] - 1
    out.flags.writeable = False
    return out


_local = threading.local()


def _level_memory(owner: object, levels: int, n: int) -> np.ndarray:
    """Return (3, levels, n) float64 memory for ``owner``'s sparse tables.

    A thread reuses one buffer from one coin to the next while its previous
    owner is gone: NumPy backs arrays this large (17 MB for five years of
    hourly bars) with huge pages, and zeroing fresh ones cost about a quarter
    of a sweep block's time (system time, measured per coin: 4.3 ms of 16 ms).
    """
    size = 3 * levels * n
    buffer = getattr(_local, "buffer", None)
    holder = getattr(_local, "owner", None)
    if buffer is None or len(buffer) < size or (holder is not None and holder()):
        buffer = np.empty(size)
        if getattr(_local, "buffer", None) is None or len(buffer) >= len(_local.buffer):
            _local.buffer = buffer
    if buffer is _local.buffer:
        _local.owner = weakref.ref(owner)
    return buffer[:size].reshape(3, levels, n)


class CloseTables:
    """Per-coin tables over the closes: prefix sums of the close-to-close
    returns and their squares, and sparse tables of (max, min, lowest close
    over running max) over every run of 2**k bars."""

    def __init__(self, close: np.ndarray) -> None:
        n = len(close)
        self.n = n
        self.close = close
        step = np.zeros(n)
        if n > 1:
            np.divide(close[1:], close[:-1], out=step[1:])
            step[1:] -= 1.0
        # Prefix sums of the returns of bars 1..j-1 (bar 0 has none) and of
        # their squares, each as a pair of doubles (hi + lo): the difference
        # of two prefix sums is then as exact as the sum of the run itself.
        self.sum1 = self._pair(step)
        self.sum2 = self._pair(step * step)
        levels = max(n.bit_length(), 1)
        # Filled level by level as queries need them (a coin whose trades
        # are all short never pays for the long runs).
        self.high, self.low, self.fall = _level_memory(self, levels, n)
        self.high[0] = self.low[0] = close
        self.fall[0] = 1.0
        self.levels = 1
        self.log2 = _log2_table(n)

    def _build(self, level: int) -> None:
        """Fill the tables up to runs of 2**level bars."""
        n = self.n
        for k in range(self.levels, level + 1):
            half = 1 << (k - 1)
            starts = n - 2 * half + 1  # runs of 2**k bars that fit
            left, right = slice(0, starts), slice(half, half + starts)
            high, low, fall = self.high[k - 1], self.low[k - 1], self.fall[k - 1]
            np.maximum(high[left], high[right], out=self.high[k, :starts])
            np.minimum(low[left], low[right], out=self.low[k, :starts])
            # A bar of the right half is below the left half's top too.
            out = self.fall[k, :starts]
            np.divide(low[right], high[left], out=out)
            np.minimum(out, fall[left], out=out)
            np.minimum(out, fall[right], out=out)
        self.levels = max(self.levels, level + 1)

    @staticmethod
    def _pair(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return the prefix sums of ``values`` as hi and lo doubles, each of
        length n + 1 starting at 0: hi the running sum, lo the running sum of
        the rounding error of each of its additions (Knuth's two-sum)."""
        hi = np.zeros(len(values) + 1)
        np.cumsum(values, out=hi[1:])
        # hi[i+1] = fl(hi[i] + v[i]); the exact sum is hi[i+1] + err[i].
        before = hi[:-1]
        part = hi[1:] - before
        err = before - (hi[1:] - part)
        err += values - part
        lo = np.zeros(len(values) + 1)
        np.cumsum(err, out=lo[1:])
        return hi, lo

    def run_sums(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return the sums of the returns and of their squares over the bars
        [a, b) (a >= 1; zero where b <= a)."""
        a = np.minimum(a, b)
        out = []
        for hi, lo in (self.sum1, self.sum2):
            found = hi[b] - hi[a]
            found += lo[b] - lo[a]
            out.append(found)
        return out[0], out[1]

    def runs(
        self, a: np.ndarray, b: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return (max, min, lowest close / running max of close) over each
        run of bars [a, b), for runs with b > a.

        Two overlapping power-of-two runs L = [a, a + 2**k) and R = [b - 2**k,
        b) cover [a, b). Max and min combine as they are. For the fall, a bar
        t of R past L has as running max max(max(L), running max within R),
        so its ratio is the smaller of close / max(L) and its ratio within R;
        the first needs the min of [a + 2**k, b), a third query. R's bars
        inside L score no lower within R than in the whole run (a lower or
        equal running max), so counting them again changes nothing.
        """
        n = self.n
        length = b - a
        k = self.log2[length]
        self._build(int(k.max(initial=0)))
        span = np.left_shift(1, k)
        k *= n
        high_flat, low_flat = self.high.ravel(), self.low.ravel()
        fall_flat = self.fall.ravel()
        left = k + a
        right = k + (b - span)
        top_left = high_flat[left]
        high = np.maximum(top_left, high_flat[right])
        low = np.minimum(low_flat[left], low_flat[right])
        fall = np.minimum(fall_flat[left], fall_flat[right])
        # The min of [a + 2**k, b). Where that is empty (a run of exactly
        # 2**k bars) it takes the last bar instead, whose running max is
        # max(L) itself: its true ratio, which the fall already counts.
        rest = length - span
        np.maximum(rest, 1, out=rest)
        k2 = self.log2[rest]
        begin = a + span
        np.minimum(begin, b - 1, out=begin)
        end = b - np.left_shift(1, k2)
        k2 *= n
        bottom = np.minimum(low_flat[k2 + begin], low_flat[k2 + end])
        bottom /= top_left
        np.minimum(fall, bottom, out=fall)
        return high, low, fall


class Trades(NamedTuple):
    """A block's trades in row and time order (see ``batch.block_trades``)."""

    rows: int
    counts: np.ndarray  # trades per row
    trade_start: np.ndarray  # (rows + 1,) each row's first trade
    trade_row: np.ndarray
    entries: np.ndarray  # bar of the entry fill
    exits: np.ndarray  # bar of the exit fill, n if still open at the end
    exit_index: np.ndarray  # bar of the exit fill, n - 1 if open at the end
    is_open: np.ndarray
    entry_price: np.ndarray
    exit_price: np.ndarray
    growth: np.ndarray  # proceeds over cost
    units: np.ndarray
    cash_after: np.ndarray  # proceeds


def segment_metrics(
    bars: Bars,
    tables: CloseTables,
    trades: Trades,
    *,
    interval: str,
    initial_equity: float,
    keys: frozenset[str] | set[str],
) -> list[Metrics]:
    """Return each row's ``keys`` (a subset of SEGMENT_KEYS) in METRIC_KEYS
    order, from the block's trades and the coin's tables."""
    rows, n, close = trades.rows, tables.n, bars.close
    starts, count = trades.trade_start, trades.counts
    a, b = trades.entries, trades.exit_index
    units, after = trades.units, trades.cash_after
    # The cash held flat before each trade: the previous trade's proceeds, or
    # the initial equity for a row's first trade.
    before = np.empty(len(a))
    before[1:] = after[:-1]
    firsts = starts[:-1][count > 0]
    before[firsts] = initial_equity
    # A trade entered on the last bar holds no bar at units * close: the
    # only one whose exit bar is its entry bar (at most one per row).
    bare = np.flatnonzero(b == a)

    finals = np.full(rows, initial_equity)
    lasts = starts[1:][count > 0] - 1
    finals[count > 0] = after[lasts]
    wanted = set(keys)

    sharpes: list[float | None] = [None] * rows
    if "sharpe" in wanted and n > 1:
        periods = mx.periods_per_year(bars.time, interval)
        sums = _return_sums(tables, a, b, bare, units, before, after)
        sharpes = _sharpes(sums, count, firsts, n - 1, periods)
    lows = None
    if "max_drawdown_pct" in wanted:
        worst = _worst(tables, a, b, bare, units, after, trades, initial_equity)
        lows = np.ones(rows)
        if len(firsts):
            lows[count > 0] = np.minimum(np.minimum.reduceat(worst, firsts), 1.0)
        lows = lows.tolist()

    buy_hold = mx.buy_hold_return_pct(close)
    counts = count.tolist()
    finals_of = finals.tolist()
    out: list[Metrics] = []
    for row in range(rows):
        found: Metrics = {
            "total_return_pct": mx._num(
                (finals_of[row] / initial_equity - 1.0) * 100.0
            ),
            "buy_hold_return_pct": buy_hold,
            "sharpe": sharpes[row],
            "max_drawdown_pct": None if lows is None else (1.0 - lows[row]) * 100.0,
            "num_trades": counts[row],
        }
        out.append({key: found[key] for key in mx.METRIC_KEYS if key in wanted})
    return out


def _return_sums(
    tables: CloseTables,
    a: np.ndarray,
    b: np.ndarray,
    bare: np.ndarray,
    units: np.ndarray,
    before: np.ndarray,
    after: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Return each trade's share of the sum of the bar returns and of their
    squares.

    Per trade: the entry bar (cash before -> units * close), the held bars
    after it (the closes' returns, from the prefix sums) and the exit bar
    (units * previous close -> proceeds); a trade entered on the last bar has
    one bar, cash before -> proceeds. Every other bar is flat and returns 0.
    """
    close = tables.close
    entry = units * close[a]
    entry[bare] = after[bare]
    entry /= before
    entry -= 1.0
    leave = units * close[b - 1]
    np.divide(after, leave, out=leave)
    leave -= 1.0
    leave[bare] = 0.0
    # Held bars a+1 .. b-1 (none when b <= a + 1).
    first, second = tables.run_sums(a + 1, b)
    first += entry
    first += leave
    entry *= entry
    leave *= leave
    second += entry
    second += leave
    return first, second


def _sharpes(
    sums: tuple[np.ndarray, np.ndarray],
    count: np.ndarray,
    firsts: np.ndarray,
    bars: int,
    periods: float,
) -> list[float | None]:
    """Return each row's Sharpe ratio from its trades' sums of the ``bars``
    bar returns and of their squares."""
    rows = len(count)
    total = np.zeros(rows)
    squares = np.zeros(rows)
    if len(firsts):
        traded = count > 0
        total[traded] = np.add.reduceat(sums[0], firsts)
        squares[traded] = np.add.reduceat(sums[1], firsts)
    out: list[float | None] = []
    for s1, s2 in zip(total.tolist(), squares.tolist(), strict=True):
        mean = s1 / bars
        if bars < 2:
            out.append(None)
            continue
        # Sum of squared deviations over bars - 1; never below 0 (a row that
        # never moves gives 0 - 0).
        spread = max((s2 - s1 * mean) / (bars - 1), 0.0)
        out.append(mx.sharpe(mean, math.sqrt(spread), periods))
    return out


def _worst(
    tables: CloseTables,
    a: np.ndarray,
    b: np.ndarray,
    bare: np.ndarray,
    units: np.ndarray,
    after: np.ndarray,
    trades: Trades,
    initial_equity: float,
) -> np.ndarray:
    """Return each trade's lowest equity / running peak, from its entry to
    the next entry.

    Trade k held over bars [a, b) under the running peak P of everything
    before it: its worst bar is min(units * min(close) / P, fall of the close
    over [a, b)); afterwards the peak is max(P, units * max(close), proceeds),
    and the flat bars from its exit on stand at proceeds / that peak.
    """
    b = b.copy()
    b[bare] += 1  # a valid run, its figures replaced below
    high, low, fall = tables.runs(a, b)
    high[bare] = 0.0
    low[bare] = fall[bare] = np.inf
    top = high
    top *= units
    np.maximum(top, after, out=top)
    # The running peak before each trade: the initial equity, then the tops
    # of the row's earlier trades; a running max along each row of a padded
    # block (column 0 the initial equity).
    place = np.arange(len(a)) - trades.trade_start[trades.trade_row] + 1
    pad = np.zeros((trades.rows, int(trades.counts.max(initial=0)) + 1))
    pad[:, 0] = initial_equity
    pad[trades.trade_row, place] = top
    np.maximum.accumulate(pad, axis=1, out=pad)
    peak = pad[trades.trade_row, place - 1]
    worst = low
    worst *= units
    worst /= peak
    np.minimum(worst, fall, out=worst)
    np.maximum(peak, top, out=peak)
    np.divide(after, peak, out=peak)
    np.minimum(worst, peak, out=worst)
    return worst
