"""A one-coin portfolio with one slot trades exactly as the single-coin engine.

With one slot the stake is min(cash, E / 1): the whole equity when flat, as
the single-coin engine's all-in entry. Real candles, every strategy, with and
without stops, targets and trailing stops.
"""

from __future__ import annotations

import numpy as np
import pytest

from strategies.engine import run_backtest
from strategies.portfolio import run_portfolio
from strategies.registry import STRATEGIES
from strategies.risk import Risk
from strategies.tests.realdata import load_bars

FEE, SLIPPAGE = 0.001, 2.0
RTOL = 1e-9
SETTINGS = [
    None,
    Risk(stop_loss_pct=3.0),
    Risk(take_profit_pct=5.0),
    Risk(trailing_stop_pct=2.0),
    Risk(stop_loss_pct=5.0, take_profit_pct=10.0, trailing_stop_pct=3.0),
]


@pytest.mark.parametrize("symbol", ["BTC", "SOL"])
@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_one_coin_one_slot_equals_the_single_coin_run(real_data_dir, strategy, symbol):
    bars = load_bars(real_data_dir, symbol, last=8000)
    for risk in SETTINGS:
        single = run_backtest(bars, strategy, fee=FEE, slippage_bps=SLIPPAGE, risk=risk)
        mine = run_portfolio(
            {symbol: bars}, strategy, max_positions=1, risk=risk, fee=FEE,
            slippage_bps=SLIPPAGE,
        )  # fmt: skip
        table, want = mine.trades, single.trade_table
        assert len(want["entry_time"]) > 10, "too few trades to compare"
        for column in ("entry_time", "exit_time", "exit_reason", "bars_held"):
            assert table[column].tolist() == want[column].tolist(), (column, risk)
        for column in ("entry_price", "exit_price", "units", "return_pct", "fees"):
            np.testing.assert_allclose(table[column], want[column], rtol=RTOL)
        assert mine.time.tolist() == bars.time.tolist()
        np.testing.assert_allclose(mine.equity, single.equity, rtol=RTOL)
        assert mine.positions.tolist() == single.position.tolist()
        assert mine.metrics["final_equity"] == pytest.approx(
            single.metrics["final_equity"], rel=RTOL
        )
        assert mine.metrics["exposure_pct"] == single.metrics["exposure_pct"]
        assert mine.fees_paid == pytest.approx(want["fees"].sum(), rel=RTOL)
        assert set(mine.contributions) == {symbol}
        assert mine.contributions[symbol] == pytest.approx(
            single.metrics["final_equity"] - 10_000.0, rel=1e-9, abs=1e-6
        )
