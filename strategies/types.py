"""The data shapes the engine takes and returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from strategies.risk import DEFAULT_RISK, Risk


class Bars(NamedTuple):
    """OHLCV bars of one coin; ``time`` is int64 epoch seconds of each bar's open."""

    time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray


class Trade(NamedTuple):
    """One round trip; prices are fills (slippage included), return net of fees.

    ``side`` is "long" or "short"; ``exit_reason`` one of "signal",
    "stop_loss", "take_profit", "trailing_stop", "end", "liquidation".
    ``return_pct`` is the profit over the capital committed at entry.
    """

    entry_index: int
    exit_index: int
    entry_time: int
    exit_time: int
    entry_price: float
    exit_price: float
    units: float
    return_pct: float
    bars_held: int
    fees: float
    closed_at_end: bool
    side: str = "long"
    exit_reason: str = "signal"


TRADE_COLUMNS = (
    "entry_index", "exit_index", "entry_time", "exit_time", "entry_price",
    "exit_price", "units", "return_pct", "bars_held", "fees", "closed_at_end",
    "side", "exit_reason",
)  # fmt: skip


def empty_trade_table() -> dict[str, np.ndarray]:
    """Return a trade table with no rows."""
    return {name: np.empty(0) for name in TRADE_COLUMNS}


Metrics = dict[str, float | int | None]


@dataclass
class BacktestResult:
    """Everything one backtest produces.

    ``equity`` is the account value at each bar's close (after the closing fee
    on the last bar if a position was still open), ``position`` 1 (-1) for
    each bar a long (short) is held at the open, ``buy_hold_equity`` the
    initial equity times close / first close.
    Trades are kept column-wise in ``trade_table`` (one array per Trade field,
    plus ``gap``: True where bars are missing while the trade was held);
    ``trades`` turns them into Trade tuples on first use, so a batch run that
    only needs metrics never builds thousands of Python objects.
    """

    strategy: str
    params: dict
    equity: np.ndarray
    position: np.ndarray
    trade_table: dict[str, np.ndarray] = field(default_factory=empty_trade_table)
    metrics: Metrics = field(default_factory=dict)
    buy_hold_equity: np.ndarray = field(default_factory=lambda: np.empty(0))
    risk: Risk = DEFAULT_RISK
    _trades: list[Trade] | None = field(default=None, repr=False, compare=False)

    @property
    def trades(self) -> list[Trade]:
        """Return the trades as Trade tuples, oldest first."""
        if self._trades is None:
            table = self.trade_table
            columns = [table[name].tolist() for name in TRADE_COLUMNS]
            self._trades = [Trade(*row) for row in zip(*columns, strict=True)]
        return self._trades
