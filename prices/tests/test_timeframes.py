"""Timeframes: aggregation against a plain loop, gaps, sources, and the loader."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from prices.selectors import bars_load
from prices.services import bars_import, file_import
from prices.timeframes import (
    aggregate,
    interval_seconds,
    periods_per_year,
    resample,
    source_interval,
)
from prices.types import PriceSeries


def real_series(directory: Path, symbol: str, last: int | None = None) -> PriceSeries:
    frame = pd.read_csv(directory / f"{symbol}USDT.csv.gz")
    if last is not None:
        frame = frame.iloc[-last:]
    times = pd.to_datetime(frame["timestamp"], utc=True)
    seconds = (times - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    columns = ("open", "high", "low", "close", "volume")
    return PriceSeries(
        seconds.to_numpy(np.int64), *(frame[c].to_numpy(np.float64) for c in columns)
    )


def loop_aggregate(series: PriceSeries, seconds: int) -> list[tuple]:
    """The reference: one pass over the bars, a dict per bucket."""
    buckets: dict[int, list[float]] = {}
    for t, o, h, lo, c, v in zip(*(col.tolist() for col in series), strict=True):
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


def rows(series: PriceSeries) -> list[tuple]:
    return list(zip(*(col.tolist() for col in series), strict=True))


@pytest.mark.parametrize("interval", ["4h", "1d"])
def test_aggregate_matches_a_plain_loop_on_real_data(real_data_dir, interval):
    hourly = real_series(real_data_dir, "ETH", last=5000)
    built = aggregate(hourly, interval_seconds(interval))
    expected = loop_aggregate(hourly, interval_seconds(interval))
    assert len(built.time) == len(expected)
    np.testing.assert_allclose(np.array(rows(built)), np.array(expected), rtol=1e-12)


def test_buckets_without_bars_are_absent_and_partial_ones_use_what_is_there():
    hour = 3600
    # 00:00, 01:00, then nothing until 09:00 and 10:00 (4h buckets 0, 8h).
    times = np.array([0, 1, 9, 10]) * hour
    series = PriceSeries(
        times,
        np.array([10.0, 11, 20, 21]),
        np.array([12.0, 15, 22, 30]),
        np.array([9.0, 10, 19, 5]),
        np.array([11.0, 12, 21, 25]),
        np.array([1.0, 2, 3, 4]),
    )
    built = aggregate(series, 4 * hour)
    assert rows(built) == [
        (0, 10.0, 15.0, 9.0, 12.0, 3.0),
        (8 * hour, 20.0, 30.0, 5.0, 25.0, 7.0),
    ]


def test_buckets_are_utc_aligned():
    # A bar at 23:00 and one at 01:00 the next day fall in different days.
    day = 86_400
    times = np.array([day - 3600, day + 3600])
    ones = np.ones(2)
    built = aggregate(PriceSeries(times, ones, ones, ones, ones, ones), day)
    assert built.time.tolist() == [0, day]


def test_empty_series_and_bad_arguments():
    assert len(aggregate(PriceSeries.empty(), 3600).time) == 0
    with pytest.raises(ValueError, match="seconds"):
        aggregate(PriceSeries.empty(), 0)
    with pytest.raises(ValueError, match="interval: '2h'"):
        interval_seconds("2h")
    with pytest.raises(ValueError, match="target: 5m is not a multiple of 1h"):
        resample(PriceSeries.empty(), "1h", "5m")


def test_source_interval_picks_the_stored_interval_or_the_finest_divisor():
    assert source_interval("1h", ["1h", "1m", "1d"]) == "1h"
    assert source_interval("4h", ["1d", "1h", "5m"]) == "5m"
    assert source_interval("15m", ["5m", "1d"]) == "5m"
    with pytest.raises(ValueError, match=r"1m bars cannot be built .*\(1h, 1d\)"):
        source_interval("1m", ["1d", "1h"])
    with pytest.raises(ValueError, match=r"\(nothing\)"):
        source_interval("1h", [])


@pytest.mark.parametrize(
    ("interval", "periods"),
    [("1m", 525_600), ("5m", 105_120), ("15m", 35_040), ("30m", 17_520),
     ("1h", 8_760), ("4h", 2_190), ("1d", 365)],
)  # fmt: skip
def test_periods_per_year(interval, periods):
    assert periods_per_year(interval) == periods


@pytest.mark.django_db(transaction=True)
def test_4h_built_from_imported_1h_equals_4h_imported_directly(real_data_dir, tmp_path):
    hourly = real_series(real_data_dir, "BTC", last=24 * 40 + 5)
    bars_import(symbol="HOURLY", series=hourly, interval="1h")
    four = tmp_path / "FOURUSDT-4h-test.csv"
    # The 4h file is built here by the plain loop, not by the code under test.
    reference = loop_aggregate(hourly, 4 * 3600)
    four.write_text(
        "".join(
            f"{t * 1000},{o!r},{h!r},{lo!r},{c!r},{v!r},0,0,0,0,0,0\n"
            for t, o, h, lo, c, v in reference
        )
    )
    file_import(four, symbol="FOUR", interval="4h")
    loaded = bars_load(["HOURLY", "FOUR"], interval="4h")
    built, direct = loaded["HOURLY"], loaded["FOUR"]
    assert built.time.tolist() == direct.time.tolist()
    for column in range(1, 6):
        np.testing.assert_allclose(built[column], direct[column], rtol=1e-12)


@pytest.mark.django_db(transaction=True)
def test_loader_builds_15m_from_5m_within_whole_buckets():
    five = 300
    times = np.arange(0, 12) * five + 86_400  # 01-02 00:00 .. 00:55
    prices = np.arange(1.0, 13.0)
    bars_import(
        symbol="FIVE",
        series=PriceSeries(times, prices, prices + 1, prices - 0.5, prices, prices),
        interval="5m",
    )
    start = datetime.fromtimestamp(86_400 + 60, UTC)  # inside the first bucket
    loaded = bars_load(["FIVE"], interval="15m", start=start)["FIVE"]
    # The bucket at 00:00 opens before start: left out; 00:15, 00:30, 00:45 kept.
    assert loaded.time.tolist() == [86_400 + 900, 86_400 + 1800, 86_400 + 2700]
    assert loaded.open.tolist() == [4.0, 7.0, 10.0]
    assert loaded.high.tolist() == [7.0, 10.0, 13.0]
    assert loaded.volume.tolist() == [4.0 + 5 + 6, 7.0 + 8 + 9, 10.0 + 11 + 12]
    # Served from the cache the second time, with the same bars.
    again = bars_load(["FIVE"], interval="15m", start=start)["FIVE"]
    assert again.time.tolist() == loaded.time.tolist()


@pytest.mark.django_db(transaction=True)
def test_loader_refuses_an_interval_finer_than_stored():
    times = np.arange(0, 3) * 3600
    ones = np.ones(3)
    bars_import(symbol="HOUR", series=PriceSeries(times, ones, ones, ones, ones, ones))
    with pytest.raises(ValueError, match=r"1m bars .* \(1h, 1d\) of HOUR$"):
        bars_load(["HOUR"], interval="1m")
