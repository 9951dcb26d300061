"""The stored equity curve: at most EQUITY_POINTS evenly spread bars, the first
and last kept, checked against a plain loop."""

from __future__ import annotations

import numpy as np
import pytest

from backtester.runs.compute import EQUITY_POINTS, equity_columns


def reference_index(n: int, points: int) -> list[int]:
    """Evenly spread bars by hand: bar round(i * (n - 1) / (m - 1)), no repeats."""
    m = min(n, points)
    if m == 1:
        return [0]
    picked: list[int] = []
    for i in range(m):
        bar = int(np.round(i * (n - 1) / (m - 1)))
        if not picked or picked[-1] != bar:
            picked.append(bar)
    return picked


@pytest.mark.parametrize("n", [1, 2, 7, EQUITY_POINTS - 1, EQUITY_POINTS, 201, 43_800])
def test_equity_columns_keep_evenly_spread_bars(n):
    # Times as the price cache hands them over: float64 epoch seconds.
    times = (1_600_000_000 + 3600 * np.arange(n)).astype(np.float64)
    equity = 10_000 + np.cumsum(np.linspace(-1, 1, n))
    buy_hold = 10_000 * np.linspace(1, 2, n)
    index = reference_index(n, EQUITY_POINTS)

    columns = equity_columns(times, equity, buy_hold)

    assert columns["time"].dtype == np.int64
    assert columns["time"].tolist() == [1_600_000_000 + 3600 * i for i in index]
    assert columns["strategy"].tolist() == [equity[i] for i in index]
    assert columns["buy_hold"].tolist() == [buy_hold[i] for i in index]
    assert index[0] == 0 and index[-1] == n - 1
    # A second call (another strategy of the same coin) gives the same, and the
    # columns are the caller's own.
    again = equity_columns(times, equity, buy_hold)
    assert again["time"].tolist() == columns["time"].tolist()
    again["time"][0] = -1
    assert equity_columns(times, equity, buy_hold)["time"][0] == 1_600_000_000
