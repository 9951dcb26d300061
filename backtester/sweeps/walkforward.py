"""Walk-forward validation of a sweep's grid over real prices (no storage).

The engine (strategies.walkforward) does the folds; this module loads the
coins' bars, turns engine errors into request errors naming the field, and
shapes the result for the command line and the page: windows as ISO times and
the stitched out-of-sample equity down-sampled for a chart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import numpy as np

from backtester.runs.validation import RequestError
from backtester.sweeps.validation import SweepSpec
from prices.models import Cryptocurrency
from prices.selectors import bars_load
from strategies.params import ParamError
from strategies.sweep import grid_expand
from strategies.types import Bars
from strategies.walkforward import WalkForward, walk_forward

# Points of the stitched equity curves sent to a chart or printed as JSON.
CURVE_POINTS = 600


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def walk_forward_run(
    *,
    spec: SweepSpec,
    coins: Sequence[Cryptocurrency],
    folds: int | None,
    train_bars: int,
    test_bars: int,
    should_stop: Callable[[], bool] | None = None,
) -> WalkForward:
    """Run a walk-forward of the spec's grid; RequestError names a bad field,
    Stopped (strategies.walkforward) ends it when ``should_stop()`` is true."""
    series = bars_load(
        coins=coins, start=spec.start, end=spec.end, interval=spec.interval
    )
    data = {s: Bars(*bars) for s, bars in series.items() if len(bars.time) > 1}
    if not data:
        raise RequestError("symbols: no coin has bars in the range", "symbols")
    strategy = spec.engine_strategy
    grid = grid_expand(strategy, spec.grid, spec.base_params)
    try:
        return walk_forward(
            data,
            strategy,
            grid,
            train_bars=train_bars,
            test_bars=test_bars,
            objective=spec.objective,
            fee=spec.fee,
            slippage_bps=spec.slippage_bps,
            interval=spec.interval,
            folds=folds,
            should_stop=should_stop,
        )
    except ParamError as exc:
        name, message = exc.errors[0]
        raise RequestError(f"{name}: {message}", name) from None


def _window(window) -> dict:
    return {
        "start": _iso(window.start_time),
        "end": _iso(window.end_time),
        "bars": window.end - window.start,
    }


def walk_forward_data(result: WalkForward) -> dict:
    """Return the walk-forward as JSON: settings, folds, the final equity of
    the out-of-sample portfolio and of buy & hold, and both stitched curves."""
    folds = []
    for number, fold in enumerate(result.folds, 1):
        folds.append(
            {
                "fold": number,
                "train": _window(fold.train),
                "test": _window(fold.test),
                "coins": list(fold.coins),
                "params": fold.params,
                "in_sample": fold.in_sample,
                "out_of_sample": fold.out_of_sample,
                "return_pct": _mean_growth_pct(fold.growth),
                "buy_hold_return_pct": _mean_growth_pct(fold.buy_hold_growth),
            }
        )
    curve = result.stitched
    index = np.unique(
        np.linspace(0, len(curve.time) - 1, min(len(curve.time), CURVE_POINTS))
        .round()
        .astype(int)
    )
    initial = result.initial_equity
    return {
        "strategy": result.strategy,
        "objective": result.objective,
        "train_bars": result.train_bars,
        "test_bars": result.test_bars,
        "combinations": len(result.grid.combinations),
        "skipped": result.grid.skipped,
        "folds": folds,
        "stitched": {
            "return_pct": (result.final["equity"] / initial - 1) * 100,
            "buy_hold_return_pct": (result.final["buy_hold"] / initial - 1) * 100,
            "time": [_iso(t) for t in curve.time[index]],
            "equity": np.round(curve.mean_equity[index], 2).tolist(),
            "buy_hold": np.round(curve.mean_buy_hold[index], 2).tolist(),
        },
    }


def _mean_growth_pct(growth: dict[str, float]) -> float | None:
    """Return the equal-weight portfolio's return over one test window."""
    if not growth:
        return None
    return (sum(growth.values()) / len(growth) - 1) * 100
