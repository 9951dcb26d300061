"""Read the real hourly candles for tests, without Django or the prices app."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from strategies.types import Bars


def load_bars(directory: Path, symbol: str, last: int | None = None) -> Bars:
    """Return a coin's bars from ``SYMBOLUSDT.csv.gz``, the ``last`` bars only if
    given (time in epoch seconds)."""
    frame = pd.read_csv(directory / f"{symbol}USDT.csv.gz")
    if last is not None:
        frame = frame.iloc[-last:]
    times = pd.to_datetime(frame["timestamp"], utc=True)
    seconds = (times - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    columns = [frame[c].to_numpy(np.float64) for c in ("open", "high", "low", "close")]
    return Bars(
        seconds.to_numpy(np.int64), *columns, frame["volume"].to_numpy(np.float64)
    )
