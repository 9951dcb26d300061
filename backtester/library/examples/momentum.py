"""An example Python strategy registered through BACKTEST_STRATEGY_MODULES.

Long while the close is above its close ``lookback`` bars ago by more than
``threshold`` percent (short, while below by more than that). Add
``BACKTEST_STRATEGY_MODULES=backtester.library.examples.momentum`` to run it
as ``momentum``.
"""

from __future__ import annotations

import numpy as np

from strategies.params import ParamSpec
from strategies.registry import StrategySpec, register
from strategies.signals import IndicatorCache, Sides


def _momentum_pct(close: np.ndarray, lookback: int) -> np.ndarray:
    """Return the % change of each close over ``lookback`` bars (NaN before)."""
    out = np.full(len(close), np.nan)
    if lookback < len(close):
        out[lookback:] = (close[lookback:] / close[:-lookback] - 1.0) * 100.0
    return out


def momentum(cache: IndicatorCache, lookback: int, threshold: float) -> np.ndarray:
    """Return the long target: True where momentum exceeds the threshold."""
    change = _momentum_pct(cache.bars.close, lookback)
    with np.errstate(invalid="ignore"):
        return change > threshold


def _rising(held: np.ndarray) -> np.ndarray:
    """Return held[t] and not held[t - 1] (bar 0: held[0])."""
    out = np.empty(len(held), dtype=np.bool_)
    out[:1] = held[:1]
    out[1:] = held[1:] & ~held[:-1]
    return out


def momentum_sides(
    cache: IndicatorCache, direction: str, lookback: int, threshold: float
) -> Sides:
    """Return long while momentum > threshold, short while it is < -threshold."""
    change = _momentum_pct(cache.bars.close, lookback)
    with np.errstate(invalid="ignore"):
        long_held, short_held = change > threshold, change < -threshold
    found = [None, None, None, None]
    if direction in ("long", "both"):
        found[:2] = _rising(long_held), ~long_held
    if direction in ("short", "both"):
        found[2:] = _rising(short_held), ~short_held
    return Sides(*found)


SPEC = register(
    StrategySpec(
        key="momentum",
        name="Momentum (Python example)",
        description="Long while the close is up more than a threshold over N bars.",
        params=(
            ParamSpec("lookback", int, 24, 1, 1000, "Bars to measure over."),
            ParamSpec("threshold", float, 0.0, -50.0, 50.0, "Percent change."),
        ),
        signal=momentum,
        sides=momentum_sides,
        rule="while",
    )
)
