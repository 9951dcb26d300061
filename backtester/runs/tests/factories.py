"""Small deterministic price data for run tests."""

from __future__ import annotations

import numpy as np

from prices.services import bars_import
from prices.types import PriceSeries

START = 1_704_067_200  # 2024-01-01T00:00:00Z


def random_walk(n: int, seed: int, *, start: int = START, step: int = 3600):
    """Return a valid hourly OHLCV series from a seeded random walk."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.005, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.005, n))
    volume = rng.uniform(1, 100, n)
    time = start + step * np.arange(n, dtype=np.int64)
    return PriceSeries(time, open_, high, low, close, volume)


def make_coins(symbols, bars: int = 400) -> None:
    """Import a random walk for each symbol."""
    for i, symbol in enumerate(symbols):
        bars_import(symbol=symbol, series=random_walk(bars, seed=i + 1))


def crash_engine_on(monkeypatch, symbol: str) -> None:
    """Make the runner's per-coin computation raise for ``symbol`` only."""
    from backtester.runs import compute as runner

    compute = runner.compute_coin

    def crashing(coin: str, series, spec):
        if coin == symbol:
            raise RuntimeError(f"engine blew up on {symbol}")
        return compute(coin, series, spec)

    monkeypatch.setattr(runner, "compute_coin", crashing)
