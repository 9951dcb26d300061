"""Cut and thin recomputed series for the charts and the trade list (no ORM).

Down-sampling keeps what the eye and the metrics need: each bucket of bars
keeps the bars where each curve is lowest and highest, so a chart at any zoom
draws the true extremes (the deepest drawdown among them); prices are merged
into coarser candles (first open, highest high, lowest low, last close).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from backtester.runs.trades import EXIT_REASONS, SIDES

# What the trade list may be sorted by (the stored column of each key).
TRADE_SORTS = (
    "n", "entry_time", "exit_time", "entry_price", "exit_price", "return_pct",
    "bars_held", "fees", "side", "exit_reason",
)  # fmt: skip


def window(times: np.ndarray, start: int | None, end: int | None) -> slice:
    """Return the slice of time-ordered ``times`` with start <= time <= end."""
    lo = 0 if start is None else int(np.searchsorted(times, start, "left"))
    hi = len(times) if end is None else int(np.searchsorted(times, end, "right"))
    return slice(lo, max(lo, hi))


def _bucket_bounds(n: int, buckets: int) -> np.ndarray:
    """Return the first index of each of ``buckets`` near-equal runs of n bars."""
    return np.unique(np.linspace(0, n, buckets + 1).astype(np.int64)[:-1])


def extremes(
    lows: Sequence[np.ndarray], highs: Sequence[np.ndarray], points: int
) -> np.ndarray:
    """Return sorted indexes, at most ``points``, that keep each bucket's extremes.

    Every curve in ``lows`` keeps its lowest bar of each bucket, every curve in
    ``highs`` its highest; the first and last bars are always kept. With
    ``points`` at least the length, every index is returned.
    """
    n = len((list(lows) + list(highs))[0])
    if n <= points:
        return np.arange(n)
    per_bucket = len(lows) + len(highs)
    buckets = max(1, (points - 2) // per_bucket)
    starts = _bucket_bounds(n, buckets)
    picks = [np.array([0, n - 1])]
    for curves, reduce in ((lows, np.minimum), (highs, np.maximum)):
        for curve in curves:
            best = reduce.reduceat(curve, starts)
            # The first bar of each bucket that reaches its extreme.
            bucket_of = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, n]))
            hit = np.flatnonzero(curve == best[bucket_of])
            first_hit = np.unique(bucket_of[hit], return_index=True)[1]
            picks.append(hit[first_hit])
    return np.unique(np.concatenate(picks))


def candles(
    time: np.ndarray,
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    points: int,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Return (first bar index of each candle, OHLC) merging bars into at most
    ``points`` candles; with fewer bars than that, the bars themselves."""
    n = len(time)
    if n <= points:
        starts = np.arange(n)
        return starts, {"open": open_, "high": high, "low": low, "close": close}
    starts = _bucket_bounds(n, points)
    ends = np.r_[starts[1:], n] - 1
    return starts, {
        "open": open_[starts],
        "high": np.maximum.reduceat(high, starts),
        "low": np.minimum.reduceat(low, starts),
        "close": close[ends],
    }


def finite(values: np.ndarray, digits: int | None = None) -> list:
    """Return values as a JSON-ready list, NaN and infinities as None."""
    values = np.asarray(values, dtype=np.float64)
    if digits is not None:
        values = values.round(digits)
    out = values.tolist()
    bad = ~np.isfinite(values)
    if bad.any():
        for i in np.flatnonzero(bad):
            out[i] = None
    return out


def trade_rows(
    trades: Mapping[str, np.ndarray],
    *,
    outcome: str = "",
    side: str = "",
    reason: str = "",
    sort: str = "n",
) -> tuple[np.ndarray, int]:
    """Return (row indexes of the matching trades in sort order, total trades).

    ``outcome`` is "winners" (net return > 0), "losers" (< 0) or ""; ``side``
    and ``reason`` match the ``side`` and ``exit_reason`` columns when the
    trades have them (trades without a side are long). ``sort`` is a key of
    TRADE_SORTS, "-" first for descending; ties keep trade order.
    """
    returns = np.asarray(trades["return_pct"], dtype=np.float64)
    total = len(returns)
    keep = np.ones(total, dtype=bool)
    if outcome == "winners":
        keep &= returns > 0
    elif outcome == "losers":
        keep &= returns < 0
    if side:
        keep &= sides(trades) == side
    if reason:
        keep &= exit_reasons(trades) == reason
    rows = np.flatnonzero(keep)
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    if key != "n":
        if key == "side":
            values = sides(trades)
        elif key == "exit_reason":
            values = exit_reasons(trades)
        else:
            values = np.asarray(trades[key])
        values = values[rows]
        # A stable sort; descending reverses a stable sort of the reversed rows so
        # equal values still come in trade order.
        if descending:
            order = np.argsort(values[::-1], kind="stable")[::-1]
            rows = rows[::-1][order]
        else:
            rows = rows[np.argsort(values, kind="stable")]
    elif descending:
        rows = rows[::-1]
    return rows, total


def _labels(
    trades: Mapping[str, np.ndarray], name: str, names: tuple[str, ...]
) -> np.ndarray | None:
    """Return a side or exit reason column as names (codes or names stored)."""
    if name not in trades:
        return None
    values = np.asarray(trades[name])
    if values.dtype.kind in "iu":
        return np.asarray(names, dtype=object)[values.astype(np.intp)]
    return np.asarray([str(v) for v in values.tolist()], dtype=object)


def sides(trades: Mapping[str, np.ndarray]) -> np.ndarray:
    """Return each trade's side; trades recorded without one are long."""
    found = _labels(trades, "side", SIDES)
    if found is None:
        return np.full(len(trades["return_pct"]), "long", dtype=object)
    return found


def exit_reasons(trades: Mapping[str, np.ndarray]) -> np.ndarray:
    """Return each trade's exit reason; trades recorded without one exited on a
    signal, or at the end when still open on the last bar."""
    found = _labels(trades, "exit_reason", EXIT_REASONS)
    if found is None:
        at_end = np.asarray(trades["closed_at_end"], dtype=bool)
        return np.where(at_end, "end", "signal").astype(object)
    return found


def monthly_returns(
    times: np.ndarray, equity: np.ndarray, start_equity: float
) -> list[tuple[int, int, float]]:
    """Return (year, month, return %) for each calendar month (UTC) with bars.

    A month's return runs from the equity at the previous month's last close
    (the starting equity for the first month) to its own last close.
    """
    if not len(times):
        return []
    months = np.asarray(times, dtype="datetime64[s]").astype("datetime64[M]")
    last = np.r_[np.flatnonzero(months[1:] != months[:-1]), len(months) - 1]
    closes = np.asarray(equity, dtype=np.float64)[last]
    bases = np.r_[start_equity, closes[:-1]]
    out = []
    for month, base, close in zip(months[last], bases, closes, strict=True):
        year, index = divmod(int(month.astype(np.int64)), 12)
        out.append((1970 + year, index + 1, float((close / base - 1.0) * 100.0)))
    return out
