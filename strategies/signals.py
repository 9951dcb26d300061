"""Strategy rules: price bars and parameters in, a 0/1 target position out.

The target at bar t uses only information up to t's close; the engine fills it at
the next bar's open. NaN indicators (warm-up) never produce a position.
"""

from __future__ import annotations

import numpy as np

from strategies import indicators as ind
from strategies.types import Bars


class IndicatorCache:
    """Memoize indicators of one coin so several strategies share the work."""

    def __init__(self, bars: Bars) -> None:
        self.bars = bars
        self._memo: dict[tuple, object] = {}

    def get(self, name: str, *args: object):
        key = (name, *args)
        if key not in self._memo:
            if name == "macd":
                # Reuse the EMAs the EMA crossover may already have computed.
                fast, slow, signal = args
                line = self.get("ema", fast) - self.get("ema", slow)
                signal_line = ind.ema(line, signal)
                self._memo[key] = ind.MACD(line, signal_line, line - signal_line)
            else:
                self._memo[key] = _COMPUTE[name](self.bars, *args)
        return self._memo[key]


_COMPUTE = {
    "sma": lambda b, n: ind.sma(b.close, n),
    "ema": lambda b, n: ind.ema(b.close, n),
    "rsi": lambda b, n: ind.rsi(b.close, n),
    "bbands": lambda b, n, k: ind.bbands(b.close, n, k),
    "dhigh": lambda b, n: ind.donchian_high(b.high, n),
    "dlow": lambda b, n: ind.donchian_low(b.low, n),
}


# "A > B" must hold by more than this fraction of the price: on flat prices two
# averages that are equal in exact arithmetic can differ in the last bits, and
# that noise must not open positions.
TIE_TOLERANCE = 1e-12


def above(a: np.ndarray, b: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Return a > b by more than TIE_TOLERANCE * scale (False where NaN)."""
    with np.errstate(invalid="ignore"):
        return (a - b) > TIE_TOLERANCE * np.abs(scale)


def hold_while(condition: np.ndarray) -> np.ndarray:
    """Return the target for "long while condition" rules (NaN compares False)."""
    return condition.astype(np.int8)


def enter_exit(entry: np.ndarray, exit_: np.ndarray) -> np.ndarray:
    """Return the target of an "enter when / exit when" rule, without a loop.

    Each bar with an entry or exit signal sets the state; other bars carry the
    last state forward (0 before any signal). Entry wins if both hold on one
    bar; none of the shipped strategies can have both at once.
    """
    n = len(entry)
    event = np.where(entry, 1, np.where(exit_, 0, -1)).astype(np.int8)
    last = np.where(event >= 0, np.arange(n), -1)
    np.maximum.accumulate(last, out=last)
    state = np.where(last >= 0, event[np.maximum(last, 0)], 0)
    return state.astype(np.int8)


def sma_crossover(cache: IndicatorCache, fast: int, slow: int) -> np.ndarray:
    close = cache.bars.close
    return hold_while(above(cache.get("sma", fast), cache.get("sma", slow), close))


def ema_crossover(cache: IndicatorCache, fast: int, slow: int) -> np.ndarray:
    close = cache.bars.close
    return hold_while(above(cache.get("ema", fast), cache.get("ema", slow), close))


def rsi_reversion(
    cache: IndicatorCache, period: int, lower: float, upper: float
) -> np.ndarray:
    value = cache.get("rsi", period)
    return enter_exit(value < lower, value > upper)


def bollinger_reversion(cache: IndicatorCache, period: int, std: float) -> np.ndarray:
    bands = cache.get("bbands", period, std)
    close = cache.bars.close
    return enter_exit(close < bands.lower, close > bands.middle)


def macd_crossover(
    cache: IndicatorCache, fast: int, slow: int, signal: int
) -> np.ndarray:
    value = cache.get("macd", fast, slow, signal)
    return hold_while(above(value.macd, value.signal, cache.bars.close))


def donchian_breakout(cache: IndicatorCache, entry: int, exit: int) -> np.ndarray:
    close = cache.bars.close
    return enter_exit(
        close > cache.get("dhigh", entry), close < cache.get("dlow", exit)
    )
