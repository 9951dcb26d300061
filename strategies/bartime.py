"""Time on a coin's bars: calendar span, bars a year holds, missing bars.

What depends only on the bars' times is the same for every backtest of one
coin: ``calendar_of`` works it out once, and the engine hands the result to the
metrics of each strategy it runs on those bars.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

# Bar intervals from 1 minute to 1 day. Crypto trades every minute of the year:
# a year holds 525,600 / the interval's minutes bars (8,760 hourly, 365 daily).
INTERVAL_MINUTES = {
    "1m": 1,
    "5m": 5,
    "15m": 15,
    "30m": 30,
    "1h": 60,
    "4h": 240,
    "1d": 1440,
}
MINUTES_PER_YEAR = 525_600
PERIODS_PER_YEAR = {k: MINUTES_PER_YEAR // m for k, m in INTERVAL_MINUTES.items()}
INTERVAL_SECONDS = {k: m * 60 for k, m in INTERVAL_MINUTES.items()}
SECONDS_PER_YEAR = 365 * 86_400


def calendar_years(time: np.ndarray | None, n: int, interval: str) -> float:
    """Return the calendar span of n bars in years of 365 days: the first bar's
    open to the last bar's open plus one interval (without times: n intervals).

    43,800 hourly bars without a gap are exactly five years; the same bars with
    a month missing in the middle span five years and a month.
    """
    step = INTERVAL_SECONDS[interval]
    if time is None or not len(time):
        return n * step / SECONDS_PER_YEAR
    return (int(time[-1]) - int(time[0]) + step) / SECONDS_PER_YEAR


def periods_per_year(time: np.ndarray | None, interval: str) -> float:
    """Return the bars a calendar year holds at this range's rate.

    PERIODS_PER_YEAR (8,760 hourly) when no bar is missing; fewer when some
    are, so that a per-bar mean or deviation is scaled to a calendar year, not
    to a year of bars that would take longer than a year to happen.
    """
    if time is None or len(time) < 2:
        return PERIODS_PER_YEAR[interval]
    step = INTERVAL_SECONDS[interval]
    span = int(time[-1]) - int(time[0]) + step
    if span == len(time) * step:
        return PERIODS_PER_YEAR[interval]
    return len(time) * SECONDS_PER_YEAR / span


def gap_stats(time: np.ndarray | None, interval: str) -> tuple[int, float]:
    """Return (missing_bars, longest_gap_hours) of a range's bar times.

    Against the interval's spacing: ``missing_bars`` counts the bars absent
    between the first and the last bar, ``longest_gap_hours`` the longest
    stretch without a bar (the time between two consecutive bars less one
    interval; 0.0 when none is missing).
    """
    if time is None or len(time) < 2:
        return 0, 0.0
    step = INTERVAL_SECONDS[interval]
    late = np.diff(np.asarray(time, dtype=np.int64)) - step
    late = late[late > 0]
    if not len(late):
        return 0, 0.0
    return int((late // step).sum()), int(late.max()) / 3600.0


def trade_gaps(
    entry_time: np.ndarray,
    exit_time: np.ndarray,
    bars_held: np.ndarray,
    closed_at_end: np.ndarray,
    interval: str,
) -> np.ndarray:
    """Return, for each trade, whether bars are missing while it was held.

    A trade held over k bars without a gap spans k intervals from its entry
    bar's open to its exit bar's open (k - 1 when closed at the last bar's
    close, which is also its exit bar); any more time means bars are missing.
    """
    step = INTERVAL_SECONDS[interval]
    spanned = np.asarray(bars_held, dtype=np.int64) - np.asarray(
        closed_at_end, dtype=np.int64
    )
    elapsed = np.asarray(exit_time, dtype=np.int64) - np.asarray(
        entry_time, dtype=np.int64
    )
    return elapsed > spanned * step


class Calendar(NamedTuple):
    """The time figures every backtest of one range of bars shares."""

    periods: float  # periods_per_year
    years: float  # calendar_years
    missing_bars: int
    longest_gap_hours: float

    def gap_metrics(self) -> dict[str, int | float]:
        """Return the two gap figures keyed as the metrics name them."""
        return {
            "missing_bars": self.missing_bars,
            "longest_gap_hours": self.longest_gap_hours,
        }


def calendar_of(time: np.ndarray | None, n: int, interval: str) -> Calendar:
    """Return the Calendar of ``n`` bars opening at ``time`` (None: evenly spaced)."""
    missing, longest = gap_stats(time, interval)
    return Calendar(
        periods_per_year(time, interval),
        calendar_years(time, n, interval),
        missing,
        longest,
    )
