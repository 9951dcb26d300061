"""Cut and thin recomputed series for the charts and the trade list (no ORM).

Down-sampling keeps what the eye and the metrics need: each bucket of bars
keeps the bars where each curve is lowest and highest, so a chart at any zoom
draws the true extremes (the deepest drawdown among them); prices are merged
into coarser candles (first open, highest high, lowest low, last close).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

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
        sides = text_column(trades, "side", "long")
        keep &= sides == side
    if reason:
        keep &= text_column(trades, "exit_reason", "") == reason
    rows = np.flatnonzero(keep)
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    if key != "n":
        values = (
            text_column(trades, key, "")
            if key in ("side", "exit_reason")
            else np.asarray(trades[key])
        )[rows]
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


def text_column(
    trades: Mapping[str, np.ndarray], name: str, default: str
) -> np.ndarray:
    """Return a trade column as strings (``default`` for every row if missing)."""
    n = len(trades["return_pct"])
    if name not in trades:
        return np.full(n, default, dtype=object)
    return np.asarray([str(v) for v in np.asarray(trades[name]).tolist()], dtype=object)
