"""Technical indicators as pure NumPy functions.

Contract (every function): 1-D float64 in, same length out, NaN through the
warm-up, inputs never mutated, ``ValueError`` for a window below 1. A NaN input
makes every window that contains it NaN; a recursive average (EMA, Wilder)
stays NaN after a NaN, since a series with holes has no meaningful average
until it is repaired. Results are new arrays (inside the engine's
``kernels.scratch`` block they come from its reusable buffer instead).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from strategies.fused_signals import rsi_loop
from strategies.kernels import (
    Windows,
    empty,
    linear_recursion,
    linear_recursion_pair,
    rolling_extreme,
)


class BBands(NamedTuple):
    """Bollinger bands (TA-Lib's output names)."""

    upper: np.ndarray
    middle: np.ndarray
    lower: np.ndarray


class MACD(NamedTuple):
    """MACD line, its signal line and their difference (TA-Lib's output names)."""

    macd: np.ndarray
    signal: np.ndarray
    hist: np.ndarray


class Donchian(NamedTuple):
    """Highest high and lowest low of the previous bars."""

    upper: np.ndarray
    lower: np.ndarray


def _check(values: np.ndarray, n: int, name: str = "n") -> np.ndarray:
    """Return values as a 1-D float64 array, or raise ValueError for a bad window."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"{name}: window must be a positive integer, got {n!r}")
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError("values: expected a 1-D array")
    return values


def _nan_head(length: int, warmup: int) -> np.ndarray:
    """Return an output array whose first ``warmup`` values are NaN."""
    out = empty(length)
    out[: min(warmup, length)] = np.nan
    return out


def sma(values: np.ndarray, n: int, *, windows: Windows | None = None) -> np.ndarray:
    """Return the simple moving average of ``n`` values; warm-up n-1 bars.

    Windows are summed pairwise (see ``kernels``), so a flat window averages to
    its value exactly. ``windows`` (built on the same values) shares that work
    across lengths.
    """
    values = _check(values, n)
    out = _nan_head(len(values), n - 1)
    if len(values) >= n:
        (windows or Windows(values)).rolling_mean(n, out[n - 1 :])
    return out


def rolling_max(values: np.ndarray, n: int) -> np.ndarray:
    """Return the highest of each window of ``n`` values, current included."""
    values = _check(values, n)
    out = _nan_head(len(values), n - 1)
    if len(values) >= n:
        rolling_extreme(values, n, np.maximum, out[n - 1 :])
    return out


def rolling_min(values: np.ndarray, n: int) -> np.ndarray:
    """Return the lowest of each window of ``n`` values, current included."""
    values = _check(values, n)
    out = _nan_head(len(values), n - 1)
    if len(values) >= n:
        rolling_extreme(values, n, np.minimum, out[n - 1 :])
    return out


def donchian_high(high: np.ndarray, n: int = 20) -> np.ndarray:
    """Return the highest high of the previous ``n`` bars (current excluded)."""
    high = _check(high, n)
    out = _nan_head(len(high), n)
    if len(high) > n:
        rolling_extreme(high, n, np.maximum, out[n:])
    return out


def donchian_low(low: np.ndarray, n: int = 20) -> np.ndarray:
    """Return the lowest low of the previous ``n`` bars (current excluded)."""
    low = _check(low, n)
    out = _nan_head(len(low), n)
    if len(low) > n:
        rolling_extreme(low, n, np.minimum, out[n:])
    return out


def donchian(high: np.ndarray, low: np.ndarray, n: int = 20) -> Donchian:
    """Return the Donchian channel over the previous ``n`` bars; warm-up n bars."""
    return Donchian(donchian_high(high, n), donchian_low(low, n))


def _seed(values: np.ndarray, n: int) -> tuple[int, float] | None:
    """Return where a recursive average over ``values`` starts and its seed,
    the mean of the first ``n`` defined values; None when it never starts.

    Leading NaNs are skipped (the MACD signal line starts where the MACD line
    does); a NaN inside the seed window leaves everything NaN.
    """
    length = len(values)
    # Most series start defined (prices do): then no pass over them is needed
    # to find where they start.
    first = 0
    if length and np.isnan(values[0]):
        first = int(np.isnan(values).argmin())
    seed_at = first + n - 1
    if seed_at >= length or np.isnan(values[first : seed_at + 1]).any():
        return None
    return seed_at, float(values[first : seed_at + 1].mean())


def _recursive_average(values: np.ndarray, n: int, decay: float) -> np.ndarray:
    """Return y[t] = (1-decay)*x[t] + decay*y[t-1], seeded with the mean of the
    first ``n`` defined values at the n-th of them, NaN before that (and
    everywhere when the seed window holds a NaN)."""
    start = _seed(values, n)
    if start is None:
        return _nan_head(len(values), len(values))
    seed_at, seed = start
    out = _nan_head(len(values), seed_at)
    linear_recursion(values[seed_at:], decay, seed, out[seed_at:])
    return out


def _recursive_averages(
    a: np.ndarray, b: np.ndarray, n: int, decay: float
) -> tuple[np.ndarray, np.ndarray]:
    """Return _recursive_average of two series of one length, side by side
    when both start at the same bar (kernels.linear_recursion_pair)."""
    start_a, start_b = _seed(a, n), _seed(b, n)
    if start_a is None or start_b is None or start_a[0] != start_b[0]:
        return _recursive_average(a, n, decay), _recursive_average(b, n, decay)
    seed_at = start_a[0]
    out_a, out_b = _nan_head(len(a), seed_at), _nan_head(len(b), seed_at)
    linear_recursion_pair(a[seed_at:], b[seed_at:], decay, start_a[1], start_b[1],
                          out_a[seed_at:], out_b[seed_at:])  # fmt: skip
    return out_a, out_b


def ema(values: np.ndarray, n: int) -> np.ndarray:
    """Return the exponential moving average, alpha = 2/(n+1), seeded with the
    SMA of the first ``n`` defined values; warm-up n-1 bars after the first."""
    values = _check(values, n)
    return _recursive_average(values, n, 1.0 - 2.0 / (n + 1))


def rsi(close: np.ndarray, n: int = 14) -> np.ndarray:
    """Return Wilder's RSI; warm-up n bars.

    The first average gain and loss are the plain means of the first ``n``
    close-to-close changes, then avg = (avg*(n-1) + x)/n. RSI = 100*gain/(gain +
    loss), which equals 100 - 100/(1 + gain/loss): 100 when the average loss is
    0, and 50 (by convention) when both are 0.
    """
    close = _check(close, n)
    length = len(close)
    if length <= n:
        return _nan_head(length, length)
    if not np.isnan(close[: n + 1]).any():
        # Prices: one compiled pass, no temporaries.
        out = empty(length)
        rsi_loop(close, int(n), out)
        return out
    # NaN among the first changes (a series that starts in an indicator's
    # warm-up): the averages start where the changes are defined, if at all.
    change = empty(length - 1)
    np.subtract(close[1:], close[:-1], out=change)
    gain, loss = empty(length - 1), change
    # Against an array of zeros: NumPy's maximum with a scalar takes a slower
    # loop than the fill and the comparison together.
    gain.fill(0.0)
    np.maximum(change, gain, out=gain)
    np.subtract(gain, change, out=loss)  # max(c, 0) - c = max(-c, 0), exactly
    avg_gain, avg_loss = _recursive_averages(gain, loss, n, 1.0 - 1.0 / n)
    out = empty(length)
    out[0] = np.nan
    value = out[1:]
    np.add(avg_gain, avg_loss, out=avg_loss)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(avg_gain, avg_loss, out=value)
    value *= 100.0
    # 0/0: no movement at all over the averaging horizon (rare: the masked
    # copy only runs when it happens).
    still = avg_loss == 0.0
    if still.any():
        np.copyto(value, 50.0, where=still)
    return out


def bbands(
    close: np.ndarray,
    n: int = 20,
    k: float = 2.0,
    *,
    windows: Windows | None = None,
) -> BBands:
    """Return Bollinger bands: SMA(n) plus/minus k population (ddof=0) standard
    deviations; warm-up n-1 bars. A flat window has a width of exactly 0."""
    close = _check(close, n)
    length = len(close)
    middle = _nan_head(length, n - 1)
    upper = _nan_head(length, n - 1)
    lower = _nan_head(length, n - 1)
    if length >= n:
        width = upper[n - 1 :]
        (windows or Windows(close)).rolling_var(n, middle[n - 1 :], width)
        np.sqrt(width, out=width)
        width *= k
        np.subtract(middle[n - 1 :], width, out=lower[n - 1 :])
        width += middle[n - 1 :]
    return BBands(upper, middle, lower)


def macd(
    close: np.ndarray,
    fast: int = 12,
    slow: int = 26,
    signal: int = 9,
    *,
    fast_ema: np.ndarray | None = None,
    slow_ema: np.ndarray | None = None,
) -> MACD:
    """Return the MACD line EMA(fast) - EMA(slow), its signal line (the EMA of
    the line over ``signal`` bars, seeded from its first ``signal`` defined
    values) and the histogram line - signal. Precomputed EMAs may be passed."""
    close = _check(close, fast, "fast")
    _check(close, slow, "slow")
    _check(close, signal, "signal")
    line = empty(len(close))
    np.subtract(
        ema(close, fast) if fast_ema is None else fast_ema,
        ema(close, slow) if slow_ema is None else slow_ema,
        out=line,
    )
    signal_line = ema(line, signal)
    hist = empty(len(close))
    np.subtract(line, signal_line, out=hist)
    return MACD(line, signal_line, hist)
