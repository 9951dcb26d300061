"""Strategy rules: price bars and parameters in, a boolean target position out.

The target at bar t uses only information up to t's close; the engine fills it
at the next bar's open. NaN indicators (warm-up) never produce a position.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from strategies import indicators as ind
from strategies.kernels import Windows, empty
from strategies.types import Bars

# Where a rule compares a computed average or band, "A > B" must hold by more
# than this fraction of the close. Values that are equal in exact arithmetic
# (two averages of a flat stretch; a 2-bar band one deviation wide is exactly
# the lower close) can differ in their last bits, and that noise must not trade.
TIE_TOLERANCE = 1e-12


class IndicatorCache:
    """Memoize the indicators of one coin so several strategies share the work.

    Inside the engine the arrays live in scratch memory (``kernels.scratch``):
    the cache must not outlive the engine's block, nor fill inside a ``frame``.
    """

    def __init__(self, bars: Bars) -> None:
        self.bars = bars
        self._memo: dict[tuple, object] = {}
        self._windows: Windows | None = None

    def get(self, name: str, *args: float) -> Any:
        """Return indicator ``name`` with ``args``, computing it on first use."""
        key = (name, *args)
        if key not in self._memo:
            self._memo[key] = getattr(self, "_" + name)(*args)
        return self._memo[key]

    @property
    def windows(self) -> Windows:
        """Return the doubling levels of the close, shared by SMA and bands."""
        if self._windows is None:
            self._windows = Windows(self.bars.close)
        return self._windows

    def _sma(self, n: int) -> np.ndarray:
        return ind.sma(self.bars.close, n, windows=self.windows)

    def _ema(self, n: int) -> np.ndarray:
        return ind.ema(self.bars.close, n)

    def _rsi(self, n: int) -> np.ndarray:
        return ind.rsi(self.bars.close, n)

    def _bbands(self, n: int, k: float) -> ind.BBands:
        return ind.bbands(self.bars.close, n, k, windows=self.windows)

    def _macd(self, fast: int, slow: int, signal: int) -> ind.MACD:
        # Reuse the EMAs an EMA crossover on the same coin may have computed.
        return ind.macd(
            self.bars.close,
            fast,
            slow,
            signal,
            fast_ema=self.get("ema", fast),
            slow_ema=self.get("ema", slow),
        )

    def _donchian_high(self, n: int) -> np.ndarray:
        return ind.donchian_high(self.bars.high, n)

    def _donchian_low(self, n: int) -> np.ndarray:
        return ind.donchian_low(self.bars.low, n)

    def _tolerance(self) -> np.ndarray:
        scale = empty(len(self.bars.close))
        np.abs(self.bars.close, out=scale)
        scale *= TIE_TOLERANCE
        return scale


def above(cache: IndicatorCache, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return a > b by more than TIE_TOLERANCE of the close (False where NaN)."""
    gap = empty(len(a))
    np.subtract(a, b, out=gap)
    out = empty(len(a), np.bool_)
    np.greater(gap, cache.get("tolerance"), out=out)
    return out


def enter_exit(entry: np.ndarray, exit_: np.ndarray) -> np.ndarray:
    """Return the target of an "enter when / exit when" rule, without a loop.

    The state after a signal bar is that signal (enter -> long, exit -> flat):
    an entry while long or an exit while flat changes nothing. So the position
    flips only at signals that differ from the previous signal; those flips
    alternate and are laid out with one np.repeat. Entry wins if both hold on
    one bar (none of the shipped rules can have both at once).
    """
    either = empty(len(entry), np.bool_)
    np.logical_or(entry, exit_, out=either)
    events = np.flatnonzero(either)
    kind = entry[events]
    # A flip is an event of another kind than the one before (the first entry).
    differs = empty(len(kind), np.bool_)
    differs[:1] = kind[:1]
    np.not_equal(kind[1:], kind[:-1], out=differs[1:])
    flips = events[differs]
    bounds = np.empty(len(flips) + 2, dtype=np.intp)
    bounds[0], bounds[-1] = 0, len(entry)
    bounds[1:-1] = flips
    state = np.zeros(len(bounds) - 1, dtype=np.bool_)
    state[1::2] = True
    return np.repeat(state, bounds[1:] - bounds[:-1])


def sma_crossover(cache: IndicatorCache, fast: int, slow: int) -> np.ndarray:
    """Return long while SMA(fast) > SMA(slow) of the close."""
    return above(cache, cache.get("sma", fast), cache.get("sma", slow))


def ema_crossover(cache: IndicatorCache, fast: int, slow: int) -> np.ndarray:
    """Return long while EMA(fast) > EMA(slow) of the close."""
    return above(cache, cache.get("ema", fast), cache.get("ema", slow))


def rsi_reversion(
    cache: IndicatorCache, period: int, lower: float, upper: float
) -> np.ndarray:
    """Return enter when RSI < lower, exit when RSI > upper."""
    value = cache.get("rsi", period)
    return enter_exit(value < lower, value > upper)


def bollinger_reversion(cache: IndicatorCache, period: int, std: float) -> np.ndarray:
    """Return enter when the close < lower band, exit when it > the middle band."""
    bands = cache.get("bbands", period, std)
    close = cache.bars.close
    return enter_exit(
        above(cache, bands.lower, close), above(cache, close, bands.middle)
    )


def macd_crossover(
    cache: IndicatorCache, fast: int, slow: int, signal: int
) -> np.ndarray:
    """Return long while the MACD line > its signal line."""
    value = cache.get("macd", fast, slow, signal)
    return above(cache, value.macd, value.signal)


def donchian_breakout(cache: IndicatorCache, entry: int, exit: int) -> np.ndarray:
    """Return enter above the previous ``entry`` bars' highest high, exit below
    the previous ``exit`` bars' lowest low."""
    close = cache.bars.close
    return enter_exit(
        close > cache.get("donchian_high", entry),
        close < cache.get("donchian_low", exit),
    )
