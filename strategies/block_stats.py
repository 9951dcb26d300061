"""The statistics of a block of backtests, row by row (see batch.py): trade,
side, return and drawdown figures by the same floating-point operations in
the same order as ``metrics.compute_metrics`` gives for one backtest."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from strategies import metrics as mx
from strategies.types import Metrics

if TYPE_CHECKING:
    from strategies.batch import Work

TRADE_STAT_KEYS = frozenset(
    ("win_rate_pct", "profit_factor", "expectancy_pct", "avg_trade_pct",
     "best_trade_pct", "worst_trade_pct", "avg_trade_duration")
)  # fmt: skip
RETURN_KEYS = frozenset(("volatility_ann_pct", "sharpe", "sortino"))
DRAWDOWN_KEYS = frozenset(("max_drawdown_pct", "max_drawdown_duration", "calmar"))
SIDE_KEYS = frozenset(
    ("long_trades", "short_trades", "win_rate_long_pct", "win_rate_short_pct",
     "exit_reasons")
)  # fmt: skip
_BLOCK = 256  # bars per block in the drawdown scan, as in metrics.drawdown


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
) -> dict[str, np.ndarray]:
    """Return the columns metrics.trade_stats reads, for every trade of the
    block, computed element by element as the engine's trade table and
    trade_stats compute them."""
    returns = (growth - 1.0) * 100.0 / 100.0
    fees = units * (entry_price + exit_price) * fee
    pnl = units * (exit_price - entry_price) - fees
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log1p(returns)
    return {"returns": returns, "pnl": pnl, "logs": logs, "bars_held": bars_held}


def trade_stats(
    found: Metrics, table: dict[str, np.ndarray], first: int, end: int
) -> None:
    """Add metrics.trade_stats of the trades [first, end) of the block."""
    if end == first:
        found.update(dict.fromkeys(TRADE_STAT_KEYS))
        return
    returns = table["returns"][first:end]
    pnl = table["pnl"][first:end]
    gains, losses = float(pnl[pnl > 0].sum()), float(-pnl[pnl < 0].sum())
    geometric = np.exp(table["logs"][first:end].mean()) - 1.0
    found["win_rate_pct"] = float(np.count_nonzero(returns > 0) * 100.0 / len(returns))
    found["profit_factor"] = mx._num(gains / losses) if losses > 0 else None
    found["expectancy_pct"] = mx._num(returns.mean() * 100.0)
    found["avg_trade_pct"] = mx._num(geometric * 100.0)
    found["best_trade_pct"] = mx._num(returns.max() * 100.0)
    found["worst_trade_pct"] = mx._num(returns.min() * 100.0)
    found["avg_trade_duration"] = float(np.mean(table["bars_held"][first:end]))


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


def return_stats(
    equity: np.ndarray, downside: bool, work: Work
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Return each row's mean, sample std and (if asked) downside deviation of
    its bar returns, as metrics.mean_std and downside_deviation compute them."""
    rows, n = equity.shape
    returns = work.returns[:rows]
    np.divide(equity[:, 1:], equity[:, :-1], out=returns)
    returns -= 1.0
    # A row reduction of a contiguous row sums pairwise exactly as the 1-D sum.
    mean = returns.sum(axis=1)
    mean /= n - 1
    temp = work.temp[:rows]
    np.subtract(returns, mean[:, None], out=temp)
    # einsum over 2-D rows accumulates in another order than over 1-D: per row.
    squares = np.array([mx._sum_of_squares(line) for line in temp])
    std = np.sqrt(squares / (n - 2)) if n > 2 else np.full(rows, math.nan)
    down = None
    if downside:
        np.minimum(returns, 0.0, out=temp)
        losses = np.array([mx._sum_of_squares(line) for line in temp])
        down = np.sqrt(losses / (n - 1))
    return mean, std, down


def drawdowns(
    equity: np.ndarray, durations: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Return each row's lowest equity / running peak and (if asked) longest run
    of bars below a previous peak, by metrics.drawdown's block scan."""
    rows, n = equity.shape
    blocks = n // _BLOCK
    cut = blocks * _BLOCK
    body = equity[:, :cut].reshape(rows, blocks, _BLOCK)
    block_max = body.max(axis=2)
    before = np.empty((rows, blocks + 1))
    before[:, 0] = -np.inf
    np.maximum.accumulate(block_max, axis=1, out=before[:, 1:])
    prior = before[:, :blocks]
    calm = block_max <= prior
    lowest = np.full(rows, np.inf)
    if calm.any():
        ratio = np.full((rows, blocks), np.inf)
        np.divide(body.min(axis=2), prior, out=ratio, where=calm)
        np.minimum(lowest, ratio.min(axis=1), out=lowest)
    # Blocks reaching the peak before them are scanned bar by bar.
    touch_row, touch_block = np.nonzero(block_max >= prior)
    scan = body[touch_row, touch_block]
    peak = np.maximum.accumulate(scan, axis=1)
    np.maximum(peak, prior[touch_row, touch_block][:, None], out=peak)
    if len(touch_row):
        np.minimum.at(lowest, touch_row, (scan / peak).min(axis=1))
    high_rows, high_at = [], []
    if durations:
        hit, column = np.nonzero(scan >= peak)
        high_rows.append(touch_row[hit])
        high_at.append(touch_block[hit] * _BLOCK + column)
    if n > cut:
        tail = equity[:, cut:]
        peak = np.maximum.accumulate(tail, axis=1)
        np.maximum(peak, before[:, blocks][:, None], out=peak)
        np.minimum(lowest, (tail / peak).min(axis=1), out=lowest)
        if durations:
            hit, column = np.nonzero(tail >= peak)
            high_rows.append(hit)
            high_at.append(cut + column)
    if not durations:
        return lowest, None
    # Each row's bars at their peak in order; the longest gap between two of
    # them, or after the last one, less one (metrics._longest_gap).
    row_of = np.concatenate(high_rows)
    at = np.concatenate(high_at)
    order = np.lexsort((at, row_of))
    row_of, at = row_of[order], at[order]
    gap = np.empty(len(at), dtype=np.intp)
    gap[:-1] = at[1:] - at[:-1]
    last = np.ones(len(at), dtype=np.bool_)
    last[:-1] = row_of[1:] != row_of[:-1]
    gap[last] = n - at[last]
    longest = np.zeros(rows, dtype=np.intp)
    np.maximum.at(longest, row_of, gap)
    return lowest, longest - 1
