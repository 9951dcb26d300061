"""Portfolio sweeps: every cell is the portfolio run of its combination."""

from __future__ import annotations

import numpy as np
import pytest

from strategies.params import ParamError
from strategies.portfolio import run_portfolio
from strategies.portfolio_sweep import portfolio_sweep
from strategies.types import Bars

HOUR = 3600


def walk(n: int, seed: int, start: int) -> Bars:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.012, n)))
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.006, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.006, n))
    time = start + HOUR * np.arange(n, dtype=np.int64)
    return Bars(time, open_, high, low, close, rng.uniform(1, 100, n))


# Bar times differ between coins: a later start and an early end.
COINS = {
    "AAA": walk(600, 1, 0),
    "BBB": walk(500, 2, 100 * HOUR),
    "CCC": walk(450, 3, 0),
}
COMBOS = [
    {"fast": 5, "slow": 20, "max_positions": 1},
    {"fast": 8, "slow": 30, "max_positions": 2, "stop_loss_pct": 3.0},
    {"fast": 5, "slow": 20, "max_positions": 3, "trailing_stop_pct": 2.0},
    {"fast": 8, "slow": 30, "max_positions": 1, "take_profit_pct": 4.0},
]


@pytest.mark.parametrize("rank", ["symbol", "roc_24", "volume_24"])
def test_each_cell_is_the_run_of_its_combination(rank):
    cells = dict(
        portfolio_sweep(COINS, "ema_crossover", COMBOS, rank=rank, fee=0.001,
                        slippage_bps=3.0)
    )  # fmt: skip
    assert sorted(cells) == [0, 1, 2, 3]
    for index, combo in enumerate(COMBOS):
        params = {k: combo[k] for k in ("fast", "slow")}
        risk = {k: v for k, v in combo.items() if k.endswith("_pct")}
        single = run_portfolio(
            COINS, "ema_crossover", params, max_positions=combo["max_positions"],
            rank=rank, risk=risk, fee=0.001, slippage_bps=3.0,
        )  # fmt: skip
        got = cells[index]
        np.testing.assert_array_equal(got.equity, single.equity)
        assert got.metrics.keys() == single.metrics.keys()
        for key, value in single.metrics.items():
            assert got.metrics[key] == value or (
                np.isnan(value) and np.isnan(got.metrics[key])
            )
        assert got.contributions == single.contributions
        assert got.max_positions == combo["max_positions"]


def test_a_bad_combination_is_an_error_naming_it():
    with pytest.raises(ValueError, match="max_positions"):
        list(portfolio_sweep(COINS, "ema_crossover", [{"fast": 5, "slow": 20}]))
    with pytest.raises(ParamError):
        bad = [{"fast": 30, "slow": 20, "max_positions": 2}]
        list(portfolio_sweep(COINS, "ema_crossover", bad))
