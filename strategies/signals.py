"""Strategy rules: price bars and parameters in, a boolean target position out.

The target at bar t uses only information up to t's close; the engine fills it
at the next bar's open. NaN indicators (warm-up) never produce a position.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

import numpy as np

from strategies import indicators as ind
from strategies.fused_signals import above_into, enter_exit_loop
from strategies.kernels import Windows, empty
from strategies.types import Bars

# Where a rule compares a computed average or band, "A > B" must hold by more
# than this fraction of the close. Values that are equal in exact arithmetic
# (two averages of a flat stretch; a 2-bar band one deviation wide is exactly
# the lower close) can differ in their last bits, and that noise must not trade.
TIE_TOLERANCE = 1e-12

T = TypeVar("T")


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

    def remember(self, key: tuple, make: Callable[[], T]) -> T:
        """Return the value stored under ``key``, calling ``make`` on first use.

        For indicators that are not among the named ones (rule programs key
        them by their canonical call, prefixed so as not to meet a name).
        """
        if key not in self._memo:
            self._memo[key] = make()
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
    out = empty(len(a), np.bool_)
    above_into(a, b, cache.get("tolerance"), out)
    return out


def enter_exit(entry: np.ndarray, exit_: np.ndarray) -> np.ndarray:
    """Return the target of an "enter when / exit when" rule.

    The state after a signal bar is that signal (enter -> long, exit -> flat):
    an entry while long or an exit while flat changes nothing. Entry wins if
    both hold on one bar (none of the shipped rules can have both at once).
    One compiled pass (fused_signals.enter_exit_loop).
    """
    return enter_exit_loop(
        np.asarray(entry, dtype=np.bool_), np.asarray(exit_, dtype=np.bool_)
    )


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
    # The histogram is the line less its signal: the difference above takes.
    out = empty(len(value.hist), np.bool_)
    np.greater(value.hist, cache.get("tolerance"), out=out)
    return out


def donchian_breakout(cache: IndicatorCache, entry: int, exit: int) -> np.ndarray:
    """Return enter above the previous ``entry`` bars' highest high, exit below
    the previous ``exit`` bars' lowest low."""
    close = cache.bars.close
    return enter_exit(
        close > cache.get("donchian_high", entry),
        close < cache.get("donchian_low", exit),
    )


# -- both sides: entry and exit conditions per side ------------------------------
#
# With risk settings the engine needs more than one target array: each side's
# entry and exit conditions, at each close. A "long while A > B" rule enters on
# the close where A > B becomes true (so after a stop it needs a fresh cross,
# and a flat position never buys into a trend halfway) and exits on any close
# where it is not true; without stops that holds exactly where the rule says.


class Sides(NamedTuple):
    """Entry and exit conditions at each close; a side not traded is None."""

    long_entry: np.ndarray | None
    long_exit: np.ndarray | None
    short_entry: np.ndarray | None
    short_exit: np.ndarray | None


def _rising(condition: np.ndarray) -> np.ndarray:
    """Return condition[t] and not condition[t - 1] (bar 0: condition[0])."""
    out = empty(len(condition), np.bool_)
    out[:1] = condition[:1]
    np.greater(condition[1:], condition[:-1], out=out[1:])
    return out


def _negation(condition: np.ndarray) -> np.ndarray:
    out = empty(len(condition), np.bool_)
    np.logical_not(condition, out=out)
    return out


def _level_sides(cache: IndicatorCache, a: np.ndarray, b: np.ndarray, direction: str
                 ) -> Sides:  # fmt: skip
    """Return the sides of "long while A > B, short while A < B" (with the tie
    tolerance both ways)."""
    long_ = short = (None, None)
    if direction != "short":
        held = above(cache, a, b)
        long_ = (_rising(held), _negation(held))
    if direction != "long":
        held = above(cache, b, a)
        short = (_rising(held), _negation(held))
    return Sides(*long_, *short)


def _pick(direction: str, long_: tuple, short: tuple) -> Sides:
    """Return Sides with only the directions traded (the others left None)."""
    if direction == "long":
        short = (None, None)
    elif direction == "short":
        long_ = (None, None)
    return Sides(*long_, *short)


def sma_sides(cache: IndicatorCache, direction: str, fast: int, slow: int) -> Sides:
    """Return long while SMA(fast) > SMA(slow), short while it is below."""
    return _level_sides(
        cache, cache.get("sma", fast), cache.get("sma", slow), direction
    )


def ema_sides(cache: IndicatorCache, direction: str, fast: int, slow: int) -> Sides:
    """Return long while EMA(fast) > EMA(slow), short while it is below."""
    return _level_sides(
        cache, cache.get("ema", fast), cache.get("ema", slow), direction
    )


def macd_sides(
    cache: IndicatorCache, direction: str, fast: int, slow: int, signal: int
) -> Sides:
    """Return long while the MACD line > its signal line, short while below."""
    value = cache.get("macd", fast, slow, signal)
    return _level_sides(cache, value.macd, value.signal, direction)


def rsi_sides(
    cache: IndicatorCache, direction: str, period: int, lower: float, upper: float
) -> Sides:
    """Return long: enter below ``lower``, exit above ``upper``; short: enter
    above ``upper``, exit below ``lower``."""
    value = cache.get("rsi", period)
    below, over = value < lower, value > upper
    return _pick(direction, (below, over), (over, below))


def bollinger_sides(
    cache: IndicatorCache, direction: str, period: int, std: float
) -> Sides:
    """Return long: enter below the lower band, exit above the middle; short:
    enter above the upper band, exit below the middle."""
    bands = cache.get("bbands", period, std)
    close = cache.bars.close
    long_ = short = (None, None)
    if direction != "short":
        long_ = (above(cache, bands.lower, close), above(cache, close, bands.middle))
    if direction != "long":
        short = (above(cache, close, bands.upper), above(cache, bands.middle, close))
    return Sides(*long_, *short)


def donchian_sides(
    cache: IndicatorCache, direction: str, entry: int, exit: int
) -> Sides:
    """Return long: enter above the previous ``entry`` bars' highest high, exit
    below the previous ``exit`` bars' lowest low; short: enter below the
    previous ``entry`` bars' lowest low, exit above the previous ``exit`` bars'
    highest high."""
    close = cache.bars.close
    long_ = short = (None, None)
    if direction != "short":
        long_ = (
            close > cache.get("donchian_high", entry),
            close < cache.get("donchian_low", exit),
        )
    if direction != "long":
        short = (
            close < cache.get("donchian_low", entry),
            close > cache.get("donchian_high", exit),
        )
    return Sides(*long_, *short)
