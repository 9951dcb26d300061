"""Compute a checked portfolio sweep: the basket's bars once, one portfolio
run per combination (``strategies.portfolio_sweep``), the best cell.

The command line calls ``portfolio_sweep_run``; the stored sweeps'
executors share ``basket_load`` and ``best_cell``'s rule.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from backtester.portfolio.sweep import PORTFOLIO_OBJECTIVES, PortfolioSweepSpec
from backtester.runs.validation import iso
from prices.models import Cryptocurrency
from prices.selectors import bars_load
from strategies.portfolio_sweep import portfolio_sweep
from strategies.types import Bars

# Called after each finished cell: (completed, total).
Progress = Callable[[int, int], None]


def _finite(value: object) -> object:
    """Return None for NaN and infinities (JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def best_cell(cells: list[dict], objective: str) -> dict | None:
    """Return the cell with the best objective (the first of equals), or None."""
    sign = 1 if PORTFOLIO_OBJECTIVES[objective] else -1
    scored = [c for c in cells if c.get(objective) is not None]
    if not scored:
        return None
    return max(scored, key=lambda c: sign * c[objective])


def basket_load(
    coins: list[Cryptocurrency], *, start, end, interval: str
) -> dict[str, Bars]:
    """Return the basket's bars by symbol (coins without bars in range left
    out): one load for the whole sweep, as every cell trades the same bars.

    ValueError when no coin of the basket has a bar in the range.
    """
    series = bars_load(coins=coins, start=start, end=end, interval=interval)
    basket = {s: Bars(*series[s]) for s in sorted(series) if len(series[s].time)}
    if not basket:
        raise ValueError("symbols: no coin of the basket has prices in this range")
    return basket


def portfolio_sweep_run(
    spec: PortfolioSweepSpec,
    coins: list[Cryptocurrency],
    *,
    progress: Progress | None = None,
) -> dict:
    """Run every combination over the coins; return ``{"sweep", "cells", "best"}``.

    ValueError when no coin of the basket has a bar in the range.
    """
    began = time.perf_counter()
    base = spec.base
    basket = basket_load(coins, start=base.start, end=base.end, interval=base.interval)
    total = len(spec.combinations)
    cells: list[dict | None] = [None] * total
    results = portfolio_sweep(
        basket, base.strategy, spec.combinations, rank=base.rank, fee=base.fee,
        slippage_bps=base.slippage_bps, interval=base.interval,
    )  # fmt: skip
    for done, (index, result) in enumerate(results, 1):
        metrics = {k: _finite(v) for k, v in result.metrics.items()}
        cells[index] = {"params": spec.combinations[index], **metrics}
        if progress is not None:
            progress(done, total)
    finished = [c for c in cells if c is not None]
    return {
        "sweep": {
            "portfolio": True,
            "strategy": base.strategy,
            "grid": spec.grid,
            "axes": spec.axes,
            "params": spec.base_params,
            "symbols": sorted(c.symbol for c in coins),
            "interval": base.interval,
            "start": iso(base.start),
            "end": iso(base.end),
            "fee": base.fee,
            "slippage_bps": base.slippage_bps,
            "rank": base.rank,
            "objective": spec.objective,
            "combinations": total,
            "skipped": spec.skipped,
            "completed": len(finished),
            "elapsed_s": round(time.perf_counter() - began, 3),
        },
        "cells": finished,
        "best": best_cell(finished, spec.objective),
    }
