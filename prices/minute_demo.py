"""Deterministic synthetic 1-minute prices for the demo (pure NumPy, no ORM).

Prices are rounded to five significant digits of the coin's start price and
volumes to five decimal places, as an exchange's tick and lot sizes round
them: the bars are then decimals, which is what real minute data looks like
to the packed storage (``prices.packing``).
"""

from __future__ import annotations

import math

import numpy as np

from prices.demo import ANCHOR_END, demo_coin
from prices.types import PriceSeries

MINUTES_PER_DAY = 1440
DAYS_PER_YEAR = 365
# The last demo minute opens at 2025-12-31T23:59Z, in the hour the hourly
# demo's last bar opens.
MINUTE_ANCHOR_END = ANCHOR_END + 3540
VOLUME_PLACES = 5


def price_places(index: int) -> int:
    """Return the decimal places of a demo coin's prices (5 significant digits)."""
    return max(0, 4 - math.floor(math.log10(demo_coin(index)[2])))


def minute_year(
    index: int, year: int, years: int, seed: int, start_price: float | None = None
) -> PriceSeries:
    """Return year ``year`` (0 = oldest) of ``years`` of a coin's 1-minute bars.

    Years are made one at a time to bound memory; pass the previous year's last
    close as ``start_price`` so they join up (None: the coin's first year).
    """
    rng = np.random.default_rng([seed, index, year, 1])
    bars = DAYS_PER_YEAR * MINUTES_PER_DAY
    if start_price is None:
        start_price = demo_coin(index)[2] * rng.uniform(0.6, 1.4)
    places = price_places(index)
    base_vol = rng.uniform(0.0005, 0.0015)  # a minute: ~40-110% a year
    # Regimes of 1-7 days, each with its own trend and volatility.
    lengths = rng.integers(MINUTES_PER_DAY, 7 * MINUTES_PER_DAY, bars // 1440 + 2)
    regime = np.repeat(np.arange(len(lengths)), lengths)[:bars]
    drift = rng.normal(0.0, 1.2, len(lengths)) / bars
    vol = base_vol * rng.lognormal(0.0, 0.35, len(lengths))
    log_returns = drift[regime] + vol[regime] * rng.standard_t(4, bars) / np.sqrt(2.0)
    tick = 10.0**places
    close = np.rint(start_price * np.exp(np.cumsum(log_returns)) * tick)
    # A minute opens at the last close: the usual case on an exchange.
    open_ = np.r_[np.rint(start_price * tick), close[:-1]]
    wick = np.rint(vol[regime] * rng.exponential(0.5, (2, bars)) * close)
    high = np.maximum(open_, close) + wick[0]
    low = np.maximum(np.minimum(open_, close) - wick[1], 1.0)
    lot = 10.0**VOLUME_PLACES
    volume = np.rint(
        rng.lognormal(np.log(2e4 / start_price), 0.8, bars)
        * (1 + 200 * np.abs(log_returns))
        * lot
    )
    first = MINUTE_ANCHOR_END - 60 * (years * bars - 1) + 60 * bars * year
    time = first + 60 * np.arange(bars, dtype=np.int64)
    return PriceSeries(
        time, open_ / tick, high / tick, low / tick, close / tick, volume / lot
    )
