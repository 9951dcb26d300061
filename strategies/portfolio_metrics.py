"""Metrics of a portfolio run, its buy & hold benchmark and a chart-sized curve.

The single-coin set (``metrics.compute_metrics``) is computed on the account's
equity over the union of the coins' bar times, plus what only an account has:
positions held, rejected signals, fees, each coin's contribution and the
equal-weight benchmark.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from strategies.metrics import compute_metrics
from strategies.types import Bars, Metrics

MAX_CHART_POINTS = 2000


def benchmark_return_pct(bars: Sequence[Bars], *, fee: float) -> float:
    """Return the equal-weight buy & hold return of the first bar's coins, in %.

    Convention: the coins with a bar at the earliest time of all get equal
    shares of the account; each share buys at that bar's open with the fee (no
    slippage) and sells at the coin's own last close with the fee. Coins that
    start later are not in it.
    """
    first = min(int(coin.time[0]) for coin in bars)
    growth = [
        float(coin.close[-1]) * (1.0 - fee) / (float(coin.open[0]) * (1.0 + fee))
        for coin in bars
        if int(coin.time[0]) == first
    ]
    return (sum(growth) / len(growth) - 1.0) * 100.0


def contributions(
    symbols: Sequence[str], trades: Mapping[str, np.ndarray]
) -> dict[str, float]:
    """Return each coin's P&L in money (its trades' pnl summed; 0 without trades)."""
    out = dict.fromkeys(symbols, 0.0)
    for symbol, pnl in zip(
        trades["symbol"].tolist(), trades["pnl"].tolist(), strict=True
    ):
        out[symbol] += pnl
    return out


def portfolio_metrics(
    time: np.ndarray,
    equity: np.ndarray,
    positions: np.ndarray,
    trades: Mapping[str, np.ndarray],
    symbols: Sequence[str],
    bars: Sequence[Bars],
    *,
    fees_paid: float,
    rejected_signals: int,
    fee: float,
    interval: str,
) -> tuple[Metrics, dict[str, float]]:
    """Return (metrics, contributions) of a portfolio run.

    ``buy_hold_return_pct`` is the benchmark without fees (the market's move,
    as for one coin); ``benchmark_return_pct`` with them. ``exposure_pct``
    counts the bars with at least one position.
    """
    metrics = compute_metrics(
        equity, trades, positions, equity, interval=interval, time=time
    )
    metrics["buy_hold_return_pct"] = benchmark_return_pct(bars, fee=0.0)
    metrics["benchmark_return_pct"] = benchmark_return_pct(bars, fee=fee)
    metrics["avg_positions"] = float(positions.mean())
    metrics["max_positions_held"] = int(positions.max())
    metrics["rejected_signals"] = int(rejected_signals)
    metrics["fees_paid"] = float(fees_paid)
    return metrics, contributions(symbols, trades)


def downsample(
    time: np.ndarray, values: np.ndarray, max_points: int = MAX_CHART_POINTS
) -> tuple[np.ndarray, np.ndarray]:
    """Return at most ``max_points`` of a curve, keeping each bucket's extremes.

    The first and last points stay; the ones between are cut into equal
    buckets and each keeps its lowest and highest point, in time order, so no
    drawdown or peak disappears from the chart.
    """
    if (
        isinstance(max_points, bool)
        or not isinstance(max_points, int)
        or max_points < 4
    ):
        raise ValueError(
            f"max_points: must be an integer of at least 4, got {max_points!r}"
        )
    n = len(values)
    if len(time) != n:
        raise ValueError("time: must have one entry per value")
    if n <= max_points:
        return np.asarray(time), np.asarray(values)
    buckets = (max_points - 2) // 2
    edges = np.linspace(1, n - 1, buckets + 1).astype(np.int64)
    keep = [np.array([0, n - 1])]
    for start, stop in zip(edges[:-1], edges[1:], strict=True):
        if stop > start:
            part = values[start:stop]
            keep.append(np.array([start + part.argmin(), start + part.argmax()]))
    index = np.unique(np.concatenate(keep))
    return np.asarray(time)[index], np.asarray(values)[index]
