"""Minute bars made from real hourly candles, and a plain reader of price files.

Each real hour becomes sixty minutes: a random path (seeded, so deterministic)
from the hour's open to its close, one minute reaching the hour's high and
another its low, prices written with the hour's own number of decimal places
and volumes split over the minutes: text that looks like an exchange's file.
"""

from __future__ import annotations

import csv
import gzip
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

HEADER = "timestamp,open,high,low,close,volume\n"


def _decimals(text: str) -> int:
    return len(text.partition(".")[2])


def real_hours(path: Path, count: int, skip: int = 0) -> list[list[str]]:
    """Return ``count`` rows of a real hourly file as text, after ``skip`` rows."""
    with gzip.open(path, "rt") as handle:
        rows = list(csv.reader(handle))[1 + skip : 1 + skip + count]
    return rows


def minute_lines(hours: list[list[str]], seed: int = 7) -> list[str]:
    """Return CSV lines of sixty 1-minute bars for each real hourly row."""
    rng = np.random.default_rng(seed)
    lines = []
    for stamp, *values in hours:
        o, h, lo, c, v = map(float, values)
        places = max(_decimals(text) for text in values[:4])
        vplaces = max(_decimals(values[4]), 2)
        start = int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp())
        steps = rng.normal(0, 1, 60).cumsum()
        bridge = (
            o
            + (c - o) * np.arange(1, 61) / 60
            + (steps - steps[-1] * np.arange(1, 61) / 60) * (h - lo) / 8
        )
        closes = np.clip(bridge, lo, h)
        closes[-1] = c
        closes = np.round(closes, places)
        opens = np.r_[o, closes[:-1]]
        highs = np.maximum(opens, closes)
        lows = np.minimum(opens, closes)
        highs[rng.integers(60)] = h
        lows[rng.integers(60)] = lo
        weights = rng.random(60)
        volumes = np.round(v * weights / weights.sum(), vplaces)
        for minute in range(60):
            when = datetime.fromtimestamp(start + 60 * minute, UTC)
            lines.append(
                f"{when:%Y-%m-%dT%H:%M:%SZ},{opens[minute]:.{places}f},"
                f"{max(highs[minute], opens[minute], closes[minute]):.{places}f},"
                f"{min(lows[minute], opens[minute], closes[minute]):.{places}f},"
                f"{closes[minute]:.{places}f},{volumes[minute]:.{vplaces}f}\n"
            )
    return lines


def plain_read(lines: list[str]) -> list[tuple]:
    """The reference reader: one float() per field, epoch seconds per row."""
    rows = []
    for line in lines:
        stamp, *values = line.strip().split(",")
        when = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        rows.append((int(when.timestamp()), *(float(x) for x in values)))
    return rows


def plain_aggregate(rows: list[tuple], seconds: int) -> list[tuple]:
    """The reference aggregation: a dict of buckets filled bar by bar."""
    buckets: dict[int, list[float]] = {}
    for t, o, h, lo, c, v in rows:
        start = t - t % seconds
        if start not in buckets:
            buckets[start] = [o, h, lo, c, v]
        else:
            bar = buckets[start]
            bar[1] = max(bar[1], h)
            bar[2] = min(bar[2], lo)
            bar[3] = c
            bar[4] += v
    return [(start, *bar) for start, bar in sorted(buckets.items())]
