"""What a run's piece computes: every job of the run on one coin's bars, and
the public data and stored extras of each (coin, strategy) result."""

from __future__ import annotations

import functools
from datetime import UTC, datetime

import numpy as np

from backtester.execution.handles import ResultRow
from backtester.library.selectors import strategy_or_key
from backtester.runs.trades import EXIT_REASONS, SIDES, encode
from backtester.runs.validation import RunSpec
from prices.types import PriceSeries
from strategies.engine import run_many
from strategies.risk import DEFAULT_RISK, Risk
from strategies.types import BacktestResult, Bars

EQUITY_POINTS = 200
# Why a (coin, strategy) row has no metrics.
NO_DATA = "no data in range"
# Trades stored per result for the detail page (metrics always use all of them).
MAX_STORED_TRADES = 100
# The stored trade columns and their types (an engine result with no trades has
# float columns; storing fixed types keeps every stored value alike). ``side``
# and ``exit_reason`` are int8 codes: indexes into trades.SIDES and
# trades.EXIT_REASONS.
TRADE_COLUMNS = {
    "entry_time": np.int64, "exit_time": np.int64, "entry_price": np.float64,
    "exit_price": np.float64, "return_pct": np.float64, "bars_held": np.int64,
    "fees": np.float64, "closed_at_end": np.bool_, "gap": np.bool_, "side": np.int8,
    "exit_reason": np.int8,
}  # fmt: skip
CODED_COLUMNS = {"side": SIDES, "exit_reason": EXIT_REASONS}


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def equity_columns(
    times: np.ndarray, equity: np.ndarray, buy_hold: np.ndarray
) -> dict[str, np.ndarray]:
    """Return both curves at no more than EQUITY_POINTS evenly spread bars.

    The first and last bars are always kept, so the final equity is exact.
    """
    index = _equity_index(len(times))
    # Picked before converting: the bars' times arrive as float64 (the price
    # cache's block), and converting all of them first cost more than the rest.
    return {
        "time": np.asarray(times)[index].astype(np.int64),
        "strategy": np.asarray(equity)[index].astype(np.float64),
        "buy_hold": np.asarray(buy_hold)[index].astype(np.float64),
    }


@functools.lru_cache(maxsize=64)
def _equity_index(n: int) -> np.ndarray:
    """Return the bars equity_columns keeps of ``n`` (the same for every
    strategy of a coin, so computed once per length)."""
    index = np.unique(np.linspace(0, n - 1, min(n, EQUITY_POINTS)).round().astype(int))
    index.flags.writeable = False  # shared between calls
    return index


def trade_columns(
    table: dict[str, np.ndarray], limit: int = MAX_STORED_TRADES
) -> dict[str, np.ndarray]:
    """Return the most recent ``limit`` trades column-wise, as stored.

    Columns (not one dict per trade) keep a run with a quarter of a million trades
    cheap to build and store; the full count is the ``num_trades`` metric.
    """
    keep = slice(max(0, len(table["return_pct"]) - limit), None)
    columns = {
        name: np.array(table[name][keep], dtype=dtype)
        for name, dtype in TRADE_COLUMNS.items()
        if name not in CODED_COLUMNS and name in table
    }
    # A table from before the engine flagged gaps: none flagged.
    columns.setdefault("gap", np.zeros(len(columns["return_pct"]), np.bool_))
    if "side" in table:
        columns["side"] = encode(table["side"][keep], SIDES)
        columns["exit_reason"] = encode(table["exit_reason"][keep], EXIT_REASONS)
    else:  # a trade table without them: long trades, out on a signal or at the end
        columns["side"] = np.zeros(len(columns["return_pct"]), np.int8)
        columns["exit_reason"] = np.where(
            columns["closed_at_end"], EXIT_REASONS.index("end"), 0
        ).astype(np.int8)
    return columns


def result_row(
    symbol: str,
    series: PriceSeries,
    result: BacktestResult,
    risk: Risk = DEFAULT_RISK,
) -> ResultRow:
    """Build the public data and stored extras of one backtest result."""
    n = len(series.time)
    data = {
        "symbol": symbol,
        "strategy": result.strategy,
        "params": dict(result.params),
        "risk": risk.as_dict(),
        "first_bar": _iso(series.time[0]) if n else None,
        "last_bar": _iso(series.time[-1]) if n else None,
        "bars": n,
        "metrics": result.metrics,
    }
    return ResultRow(
        data=data,
        trades=trade_columns(result.trade_table),
        equity=equity_columns(series.time, result.equity, result.buy_hold_equity),
    )


def empty_row(
    symbol: str, strategy: str, params: dict, risk: Risk = DEFAULT_RISK
) -> ResultRow:
    """Return the row for a coin with no bars in the requested range."""
    return ResultRow(
        data={
            "symbol": symbol,
            "strategy": strategy,
            "params": dict(params),
            "risk": risk.as_dict(),
            "first_bar": None,
            "last_bar": None,
            "bars": 0,
            "metrics": None,
            "skipped": NO_DATA,
        }
    )


def compute_coin(symbol: str, series: PriceSeries, spec: RunSpec) -> list[ResultRow]:
    """Run every job of the spec on one coin's bars."""
    if not len(series.time):
        return [empty_row(symbol, key, params, spec.risk) for key, params in spec.jobs]
    # A saved strategy runs the version the run recorded, not today's text.
    jobs = [
        (strategy_or_key(key, spec.versions, spec.sources), p) for key, p in spec.jobs
    ]
    results = run_many(
        Bars(*series),
        jobs,
        fee=spec.fee,
        slippage_bps=spec.slippage_bps,
        interval=spec.interval,
        risk=spec.risk,
    )
    return [result_row(symbol, series, r, spec.risk) for r in results]
