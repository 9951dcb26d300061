"""Bar intervals and building coarser bars from finer ones; NumPy only, no Django.

A bar of interval ``k`` minutes is built from the finer bars whose open times
fall in the same UTC-aligned bucket ``[t - t % k, t - t % k + k)``: first open,
highest high, lowest low, last close, summed volume. A bucket without any finer
bar is absent (no bar is invented); a bucket with some bars missing uses those
present.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from prices.types import PriceSeries

# The intervals a run may ask for, finest first, in minutes.
INTERVAL_MINUTES = {
    "1m": 1,
    "5m": 5,
    "15m": 15,
    "30m": 30,
    "1h": 60,
    "4h": 240,
    "1d": 1440,
}
INTERVALS = tuple(INTERVAL_MINUTES)
INTERVAL_SECONDS = {name: minutes * 60 for name, minutes in INTERVAL_MINUTES.items()}
MINUTES_PER_YEAR = 525_600  # 365 days; crypto trades every day of the year


def interval_seconds(interval: str) -> int:
    """Return the length of one bar of ``interval`` in seconds."""
    try:
        return INTERVAL_SECONDS[interval]
    except KeyError:
        raise ValueError(
            f"interval: {interval!r} is not one of {', '.join(INTERVALS)}"
        ) from None


def periods_per_year(interval: str) -> float:
    """Return the bars a year for annualizing: 525,600 / the interval's minutes."""
    return MINUTES_PER_YEAR / (interval_seconds(interval) // 60)


def source_interval(requested: str, stored: Iterable[str]) -> str:
    """Return the interval to build ``requested`` bars from, given those stored.

    The requested interval itself when stored (its bars are read as they are),
    else the finest stored interval that divides it. Raise ValueError naming
    what is stored when nothing stored is fine enough.
    """
    wanted = interval_seconds(requested)
    stored = sorted(set(stored), key=interval_seconds)
    if requested in stored:
        return requested
    for candidate in stored:
        if wanted % interval_seconds(candidate) == 0:
            return candidate
    what = ", ".join(stored) if stored else "nothing"
    raise ValueError(
        f"interval: {requested} bars cannot be built from the stored bars ({what})"
    )


def aggregate(series: PriceSeries, seconds: int) -> PriceSeries:
    """Return ``series`` (time-ordered) aggregated into UTC buckets of ``seconds``."""
    if seconds <= 0:
        raise ValueError(f"seconds: must be positive, got {seconds}")
    if not len(series.time):
        return PriceSeries.empty()
    bucket = series.time // seconds
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], len(bucket)] - 1
    return PriceSeries(
        bucket[starts] * seconds,
        series.open[starts],
        np.maximum.reduceat(series.high, starts),
        np.minimum.reduceat(series.low, starts),
        series.close[ends],
        np.add.reduceat(series.volume, starts),
    )


def resample(series: PriceSeries, source: str, target: str) -> PriceSeries:
    """Return ``source`` bars as ``target`` bars (unchanged when they are equal)."""
    step, size = interval_seconds(source), interval_seconds(target)
    if size % step:
        raise ValueError(f"target: {target} is not a multiple of {source}")
    return series if size == step else aggregate(series, size)
