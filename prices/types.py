"""The array shape prices travel in: one NumPy array per column, no model objects."""

from typing import NamedTuple

import numpy as np

COLUMNS = ("time", "open", "high", "low", "close", "volume")


class PriceSeries(NamedTuple):
    """OHLCV bars of one coin; ``time`` is int64 epoch seconds (UTC bar open)."""

    time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:  # type: ignore[override]
        return len(self.time)

    @classmethod
    def empty(cls) -> "PriceSeries":
        return cls(np.empty(0, np.int64), *(np.empty(0, np.float64) for _ in range(5)))

    def slice(self, start: int | None, end: int | None) -> "PriceSeries":
        """Return the bars with start <= time < end (epoch seconds, None = open)."""
        lo = 0 if start is None else int(np.searchsorted(self.time, start, "left"))
        hi = (
            len(self.time)
            if end is None
            else int(np.searchsorted(self.time, end, "left"))
        )
        return PriceSeries(*(column[lo:hi] for column in self))
