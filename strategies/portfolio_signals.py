"""Each coin's long entry and exit conditions and rank values for a portfolio run.

The conditions come from the same strategy code a single-coin run uses (the
registry's ``sides`` with direction "long"), so any strategy that provides
``sides`` and says how its rule reads (``StrategySpec.rule``) trades in a
portfolio too. A "while" rule (long while A > B) enters on every close where
its condition holds and exits where it does not; a "when" rule has its own
entry and exit conditions. NaN warm-up values never signal.

Rank values are sort keys, lowest first, taken at each close on the coin's
own bars; +inf where the value is undefined (too few bars), so it sorts after
every defined one. Ties are broken by symbol in the pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from strategies import indicators as ind
from strategies.registry import StrategySpec
from strategies.signals import IndicatorCache
from strategies.types import Bars

RANKS = ("symbol", "roc_24", "rsi_14", "volume_24")
RANK_WINDOW = 24
RANK_RSI = 14


class CoinSignals(NamedTuple):
    """One coin's long conditions at each close, and whether the rule is "while"."""

    entry: np.ndarray
    exit: np.ndarray
    holds_while: bool


def coin_signals(
    bars: Bars, spec: StrategySpec, params: Mapping[str, object]
) -> CoinSignals:
    """Return a coin's long entry and exit conditions under a validated strategy.

    The conditions are fresh arrays: the indicators behind them may live in
    the engine's scratch memory (``kernels.scratch``).
    """
    if spec.sides is None:
        raise ValueError(f"strategy: {spec.key!r} gives no entry and exit conditions")
    sides = spec.sides(IndicatorCache(bars), "long", **params)
    exit_ = np.array(sides.long_exit, dtype=np.bool_)
    if spec.rule == "while":
        # The exit is the condition's negation (NaN warm-up included, where
        # the condition is False), so the condition is its negation back.
        return CoinSignals(~exit_, exit_, True)
    entry = np.array(sides.long_entry, dtype=np.bool_)
    return CoinSignals(entry, exit_, False)


def rank_keys(bars: Bars, rank: str) -> np.ndarray:
    """Return the sort key of ``rank`` at each close (lowest first, +inf undefined)."""
    close = np.asarray(bars.close, dtype=np.float64)
    n = len(close)
    key = np.full(n, np.inf)
    if rank == "symbol":
        key[:] = 0.0  # every coin ties; the symbol decides
    elif rank == "roc_24":
        # Highest close[t] / close[t - 24] - 1 first.
        key[RANK_WINDOW:] = -(close[RANK_WINDOW:] / close[:-RANK_WINDOW] - 1.0)
    elif rank == "rsi_14":
        value = ind.rsi(close, RANK_RSI)
        defined = ~np.isnan(value)
        key[defined] = value[defined]
    elif rank == "volume_24":
        # Highest sum of volume x close over the last 24 bars first.
        traded = np.asarray(bars.volume, dtype=np.float64) * close
        # Each window summed afresh: a running total would carry the rounding
        # of years of volume into every window.
        windows = np.lib.stride_tricks.sliding_window_view(traded, RANK_WINDOW)
        key[RANK_WINDOW - 1 :] = -windows.sum(axis=1)
    else:
        raise ValueError(f"rank: must be one of {', '.join(RANKS)}, got {rank!r}")
    return key
