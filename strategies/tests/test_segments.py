"""The sweep's cell metrics from trades alone, against run_backtest and loops.

``sweep_coin(..., keys=SWEEP_KEYS)`` takes Sharpe and the maximum drawdown
from per-trade sums and range queries over the closes (strategies.segments)
instead of each backtest's equity curve. The same quantities summed in
another order agree to about 1e-13 relative; the tests allow rel 1e-9 (and
1e-9 absolute for a Sharpe near 0, where the reference's own rounding of a
sum of ~40,000 returns is the larger error). Trade counts, total and buy &
hold returns must be exactly equal: they are computed as the engine does.
"""

from __future__ import annotations

import numpy as np
import pytest

from strategies.engine import run_backtest
from strategies.segments import CloseTables
from strategies.sweep import SWEEP_KEYS, grid_expand, sweep_coin
from strategies.tests.realdata import load_bars
from strategies.tests.test_engine import make_bars

EXACT = ("total_return_pct", "buy_hold_return_pct", "num_trades")
REL = 1e-9


def assert_close_to_engine(found: dict, expected: dict, label: object) -> None:
    """Assert the cell metrics equal run_backtest's: exact or rel 1e-9."""
    assert list(found) == list(SWEEP_KEYS), label
    for key in EXACT:
        assert found[key] == expected[key], (label, key)
    for key in ("sharpe", "max_drawdown_pct"):
        if expected[key] is None:
            assert found[key] is None, (label, key)
        else:
            assert found[key] == pytest.approx(expected[key], rel=REL, abs=REL), (
                label,
                key,
            )


@pytest.mark.parametrize("symbol", ["BTC", "DOGE", "ALICE"])
def test_cells_equal_run_backtest_on_real_data(real_data_dir, symbol):
    # Whole histories (up to five years); slippage on, a grid with fast and
    # slow windows and many trades.
    bars = load_bars(real_data_dir, symbol)
    grid = grid_expand("sma_crossover", {"fast": [5, 15, 40], "slow": [20, 90, 200]})
    found = sweep_coin(
        bars, "sma_crossover", grid.combinations, fee=0.001, slippage_bps=5,
        keys=SWEEP_KEYS,
    )  # fmt: skip
    for combination, metrics in zip(grid.combinations, found, strict=True):
        expected = run_backtest(
            bars, "sma_crossover", combination, fee=0.001, slippage_bps=5
        ).metrics
        assert metrics["num_trades"] > 10
        assert_close_to_engine(metrics, expected, (symbol, combination))


STRATEGY_GRIDS = {
    "sma_crossover": {"fast": [2, 3, 5, 9], "slow": [3, 6, 20, 60]},
    "ema_crossover": {"fast": [2, 4], "slow": [5, 30]},
    "rsi_reversion": {"period": [3, 14], "upper": [60.0, 80.0]},
    "bollinger_reversion": {"period": [5, 20], "std": [1.0, 2.0]},
    "donchian_breakout": {"entry": [3, 20], "exit": [2, 10]},
}


@pytest.mark.parametrize("seed", range(16))
def test_cells_equal_run_backtest_on_random_data(seed):
    # Tiny series, lengths around powers of two (the range tables), flat
    # stretches (zero returns, ties), positions still open at the end or
    # entered on the last bar, costs on and off.
    rng = np.random.default_rng(100 + seed)
    n = int(rng.choice([1, 2, 3, 4, 5, 10, 255, 256, 257, 1024, 1025, 3000]))
    bars = make_bars(seed, n, flat_runs=int(rng.integers(0, 6)))
    fee = float(rng.choice([0.0, 0.001, 0.01]))
    slippage = float(rng.choice([0.0, 5.0, 30.0]))
    for strategy, axes in STRATEGY_GRIDS.items():
        combinations = grid_expand(strategy, axes).combinations
        found = sweep_coin(bars, strategy, combinations, fee=fee,
                           slippage_bps=slippage, keys=SWEEP_KEYS)  # fmt: skip
        for combination, metrics in zip(combinations, found, strict=True):
            expected = run_backtest(
                bars, strategy, combination, fee=fee, slippage_bps=slippage
            ).metrics
            assert_close_to_engine(metrics, expected, (n, strategy, combination))


def plain_runs(close: np.ndarray, a: int, b: int) -> tuple[float, float, float]:
    """Max, min and lowest close / running max of close over [a, b), by loop."""
    high, low, fall = -np.inf, np.inf, np.inf
    for t in range(a, b):
        high = max(high, close[t])
        low = min(low, close[t])
        fall = min(fall, close[t] / high)
    return high, low, fall


@pytest.mark.parametrize("n", [1, 2, 7, 64, 65, 300])
def test_range_queries_equal_a_loop(n):
    rng = np.random.default_rng(n)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.05, n)))
    tables = CloseTables(close)
    # Every run of a short series; random ones of a longer one, with the
    # power-of-two lengths (where the two halves coincide) included.
    if n <= 65:
        pairs = [(a, b) for a in range(n) for b in range(a + 1, n + 1)]
    else:
        pairs = [(int(a), int(a) + int(d)) for a, d in zip(
            rng.integers(0, n - 64, 400), rng.integers(1, 64, 400), strict=True
        )] + [(5, 5 + 2**k) for k in range(8)]  # fmt: skip
    a = np.array([p[0] for p in pairs])
    b = np.array([p[1] for p in pairs])
    high, low, fall = tables.runs(a, b)
    for i, (start, end) in enumerate(pairs):
        assert (high[i], low[i]) == plain_runs(close, start, end)[:2]
        # The fall is one division of two closes either way: exact.
        assert fall[i] == plain_runs(close, start, end)[2], (start, end)
    # Sums of the close-to-close returns of bars [a, b), and of their squares.
    steps = np.r_[0.0, close[1:] / close[:-1] - 1.0]
    ones, twos = tables.run_sums(np.maximum(a, 1), b)
    for i, (start, end) in enumerate(pairs):
        run = steps[max(start, 1) : end]
        assert ones[i] == pytest.approx(sum(run), rel=1e-12, abs=1e-15)
        assert twos[i] == pytest.approx(sum(run * run), rel=1e-12, abs=1e-15)
