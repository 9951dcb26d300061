"""The vectorized backtest engine.

Execution model: the target position is decided on the close of bar t and filled
at the open of bar t+1, moved against the trader by the slippage. Long-only,
all-in with fractional units: an entry with equity E at fill price p buys
E / (p (1 + fee)) units, an exit of u units at p returns u p (1 - fee). A target
on the last bar has no next open and is ignored. A position still open on the
last bar is closed at that bar's close (no slippage, fee charged): the last
point of the equity curve and ``final_equity`` are after that fee, and the trade
is flagged ``closed_at_end``.

No Python loop runs over bars: positions, fills, the equity curve and the
metrics are array operations; only the (few) trades become Python objects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from strategies.metrics import PERIODS_PER_YEAR, compute_metrics
from strategies.registry import get_strategy, validate_params
from strategies.signals import IndicatorCache
from strategies.types import BacktestResult, Bars

INITIAL_EQUITY = 10_000.0


def _check_bars(bars: Bars) -> Bars:
    if not isinstance(bars, Bars):
        bars = Bars(*bars)
    n = len(bars.time)
    if n == 0:
        raise ValueError("bars: empty")
    columns = [np.asarray(c, dtype=np.float64) for c in bars[1:]]
    if any(c.ndim != 1 or len(c) != n for c in columns):
        raise ValueError("bars: every column must be 1-D and of the same length")
    return Bars(np.asarray(bars.time, dtype=np.int64), *columns)


def _check_costs(fee: float, slippage_bps: float, interval: str) -> None:
    if not 0.0 <= fee < 1.0:
        raise ValueError(f"fee: must be in [0, 1), got {fee!r}")
    if not 0.0 <= slippage_bps < 10_000.0:
        raise ValueError(f"slippage_bps: must be in [0, 10000), got {slippage_bps!r}")
    if interval not in PERIODS_PER_YEAR:
        raise ValueError(f"interval: must be one of {', '.join(PERIODS_PER_YEAR)}")


def simulate(
    bars: Bars,
    target: np.ndarray,
    *,
    fee: float,
    slippage_bps: float,
    initial_equity: float = INITIAL_EQUITY,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Return (equity, position, trade table) for a 0/1 target at each close."""
    n = len(bars.close)
    slip = slippage_bps / 10_000.0
    position = np.zeros(n, dtype=np.int8)
    position[1:] = target[:-1]
    change = np.diff(position, prepend=np.int8(0))
    moves = np.flatnonzero(change)
    # Positions alternate 0 -> 1 -> 0, so moves alternate entry, exit, entry...
    entries, exits = moves[0::2], moves[1::2]
    open_at_end = len(exits) < len(entries)

    entry_price = bars.open[entries] * (1.0 + slip)
    exit_price = bars.open[exits] * (1.0 - slip)
    exit_index = exits
    if open_at_end:
        exit_price = np.r_[exit_price, bars.close[-1]]
        exit_index = np.r_[exits, n - 1]

    # Equity before each trade, then units bought.
    growth = (exit_price * (1.0 - fee)) / (entry_price * (1.0 + fee))
    cash_before = initial_equity * np.r_[1.0, np.cumprod(growth)[:-1]]
    units = cash_before / (entry_price * (1.0 + fee))
    cash_after = units * exit_price * (1.0 - fee)

    # Bars split into alternating segments: flat [0, e0), held [e0, x0), flat
    # [x0, e1), ... Held bars are worth units * close, flat bars the cash after
    # the previous trade; np.repeat lays the per-segment values out per bar.
    edges = np.empty(len(entries) + len(exits), dtype=np.int64)
    edges[0::2] = entries
    edges[1::2] = exits
    lengths = np.diff(edges, prepend=0, append=n)
    factor = np.zeros(len(lengths))
    factor[1::2] = units
    cash = np.zeros(len(lengths))
    cash[0] = initial_equity
    cash[2::2] = cash_after[: len(exits)]
    equity = np.repeat(factor, lengths) * bars.close + np.repeat(cash, lengths)
    if open_at_end:
        equity[-1] = cash_after[-1]

    closed_at_end = np.zeros(len(entries), dtype=bool)
    if open_at_end:
        closed_at_end[-1] = True
    trades = {
        "entry_index": entries,
        "exit_index": exit_index,
        "entry_time": bars.time[entries],
        "exit_time": bars.time[exit_index],
        "entry_price": entry_price,
        "exit_price": exit_price,
        "units": units,
        "return_pct": (growth - 1.0) * 100.0,
        "bars_held": exit_index - entries,
        "fees": units * (entry_price + exit_price) * fee,
        "closed_at_end": closed_at_end,
    }
    return equity, position, trades


def _run(
    bars: Bars,
    cache: IndicatorCache,
    key: str,
    params: dict,
    fee: float,
    slippage_bps: float,
    interval: str,
    initial_equity: float,
) -> BacktestResult:
    spec = get_strategy(key)
    target = spec.signal(cache, **params)
    equity, position, trades = simulate(
        bars, target, fee=fee, slippage_bps=slippage_bps, initial_equity=initial_equity
    )
    metrics = compute_metrics(equity, trades, position, bars.close, interval=interval)
    return BacktestResult(
        strategy=key,
        params=params,
        equity=equity,
        position=position,
        trade_table=trades,
        metrics=metrics,
        buy_hold_equity=initial_equity * bars.close / bars.close[0],
    )


def run_backtest(
    bars: Bars,
    strategy: str,
    params: Mapping | None = None,
    *,
    fee: float = 0.001,
    slippage_bps: float = 0.0,
    interval: str = "1h",
    initial_equity: float = INITIAL_EQUITY,
) -> BacktestResult:
    """Backtest one strategy on one coin's bars."""
    return run_many(
        bars,
        [(strategy, params or {})],
        fee=fee,
        slippage_bps=slippage_bps,
        interval=interval,
        initial_equity=initial_equity,
    )[0]


def run_many(
    bars: Bars,
    jobs: Sequence[tuple[str, Mapping | None]],
    *,
    fee: float = 0.001,
    slippage_bps: float = 0.0,
    interval: str = "1h",
    initial_equity: float = INITIAL_EQUITY,
) -> list[BacktestResult]:
    """Backtest several (strategy, params) jobs on one coin, sharing indicators."""
    bars = _check_bars(bars)
    _check_costs(fee, slippage_bps, interval)
    checked = [(key, validate_params(key, params or {})) for key, params in jobs]
    cache = IndicatorCache(bars)
    return [
        _run(bars, cache, key, params, fee, slippage_bps, interval, initial_equity)
        for key, params in checked
    ]
