"""The account's curve at chart resolution: equity, benchmark, drawdown, positions.

The benchmark curve is the engine's ``benchmark_return_pct`` bar by bar: the
coins with a bar at the first time get equal shares, each bought at that bar's
open with the fee; each share is valued at its coin's latest close as if sold
then, with the fee, so the curve's last point is the benchmark's return. The
curve keeps at most MAX_CHART_POINTS points, each bucket's lowest and highest
equity among them, so no drawdown or peak of the account disappears.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from strategies.engine import INITIAL_EQUITY
from strategies.portfolio import PortfolioResult
from strategies.portfolio_metrics import MAX_CHART_POINTS, downsample
from strategies.types import Bars


def benchmark_curve(
    time: np.ndarray,
    bars: Sequence[Bars],
    *,
    fee: float,
    initial_equity: float = INITIAL_EQUITY,
) -> np.ndarray:
    """Return the equal-weight buy & hold account at each union time."""
    first = min(int(coin.time[0]) for coin in bars)
    held = [coin for coin in bars if int(coin.time[0]) == first]
    share = initial_equity / len(held)
    total = np.zeros(len(time))
    for coin in held:
        units = share / (float(coin.open[0]) * (1.0 + fee))
        # The coin's latest close at or before each union time.
        latest = np.searchsorted(coin.time, time, side="right") - 1
        total += units * np.asarray(coin.close)[latest] * (1.0 - fee)
    return total


def drawdown_pct(equity: np.ndarray) -> np.ndarray:
    """Return each bar's percentage below the running peak (0 or negative)."""
    peak = np.maximum.accumulate(equity)
    return (equity / peak - 1.0) * 100.0


def chart_curve(
    result: PortfolioResult,
    bars: Sequence[Bars],
    *,
    fee: float,
    max_points: int = MAX_CHART_POINTS,
) -> dict[str, np.ndarray]:
    """Return the run's curve columns, at most ``max_points`` points each."""
    n = len(result.time)
    # downsample keeps indices when given the bar numbers as its "time".
    kept, _ = downsample(np.arange(n), result.equity, max_points)
    benchmark = benchmark_curve(result.time, bars, fee=fee)
    return {
        "time": np.asarray(result.time, dtype=np.int64)[kept] * 1000,
        "equity": np.asarray(result.equity, dtype=np.float64)[kept],
        "benchmark": benchmark[kept],
        "drawdown_pct": drawdown_pct(result.equity)[kept],
        "positions": np.asarray(result.positions, dtype=np.int16)[kept],
    }


def curve_data(columns: dict[str, np.ndarray]) -> dict[str, list]:
    """Return stored curve columns as JSON lists (the ``equity`` event's body)."""
    return {
        name: np.round(values, 6).tolist() if values.dtype.kind == "f"
        else values.tolist()
        for name, values in columns.items()
    }  # fmt: skip
