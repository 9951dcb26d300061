"""The statistics of a block of backtests, row by row (see batch.py): trade and
side figures by the same floating-point operations in the same order as
``metrics.compute_metrics`` gives for one backtest (the same compiled kernels)."""

from __future__ import annotations

import numpy as np

from strategies import metrics as mx
from strategies.fused import trade_summary
from strategies.types import Metrics

TRADE_STAT_KEYS = frozenset(
    ("win_rate_pct", "profit_factor", "expectancy_pct", "avg_trade_pct",
     "best_trade_pct", "worst_trade_pct", "avg_trade_duration")
)  # fmt: skip
SIDE_KEYS = frozenset(
    ("long_trades", "short_trades", "win_rate_long_pct", "win_rate_short_pct",
     "exit_reasons")
)  # fmt: skip


def more_metrics(
    found: Metrics,
    wanted: set[str],
    curve: np.ndarray,
    mean: float | None,
    std: float | None,
    periods: float,
    years: float,
    downside: float | None,
    longest: int | None,
) -> None:
    """Add the metrics beyond the sweep's own that need only the curve."""
    cagr = mx.cagr_pct(curve, years)
    found["cagr_pct"] = cagr
    found["volatility_ann_pct"] = mx.volatility_ann_pct(std, periods)
    if "max_drawdown_pct" in found:
        found["calmar"] = mx.calmar(cagr, found["max_drawdown_pct"])
    if longest is not None:
        found["max_drawdown_duration"] = longest
    found["final_equity"] = mx._num(curve[-1])
    if "sortino" in wanted:
        found["sortino"] = mx.sortino(mean, downside, periods)


def trade_table(
    growth: np.ndarray,
    units: np.ndarray,
    entry_price: np.ndarray,
    exit_price: np.ndarray,
    bars_held: np.ndarray,
    fee: float,
) -> tuple[np.ndarray, ...]:
    """Return the columns fused.trade_summary reads, for every trade of the
    block, computed element by element as the engine's trade table is."""
    fees = units * (entry_price + exit_price) * fee
    short = np.zeros(len(growth), dtype=np.bool_)
    return ((growth - 1.0) * 100.0, units, entry_price, exit_price, fees, short,
            bars_held.astype(np.int64))  # fmt: skip


def trade_stats(
    found: Metrics, table: tuple[np.ndarray, ...], first: int, end: int
) -> None:
    """Add metrics.trade_stats of the trades [first, end) of the block."""
    if end == first:
        found.update(dict.fromkeys(TRADE_STAT_KEYS))
        return
    columns = [column[first:end] for column in table]
    found.update(mx.summarize_trades(end - first, trade_summary(*columns)))


def side_stats(found: Metrics, trades: int, wins: int, open_at_end: int) -> None:
    """Add metrics.side_stats for long trades closed by a signal or at the end."""
    found["long_trades"] = trades
    found["short_trades"] = 0
    found["win_rate_long_pct"] = wins * 100.0 / trades if trades else None
    found["win_rate_short_pct"] = None
    reasons = dict.fromkeys(mx.EXIT_REASONS, 0)
    reasons["signal"] = trades - open_at_end
    reasons["end"] = open_at_end
    found["exit_reasons"] = reasons
