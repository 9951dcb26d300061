"""Indicators the rule language has beyond ``strategies.indicators``.

Same contract: 1-D float64 in, same length out, NaN through the warm-up,
inputs never mutated, ``ValueError`` for a window below 1.
"""

from __future__ import annotations

import numpy as np

from strategies.indicators import _check, _nan_head, _recursive_average
from strategies.kernels import Windows


def prev(values: np.ndarray, n: int) -> np.ndarray:
    """Return the value ``n`` bars ago; NaN for the first n bars."""
    values = _check(values, n)
    out = _nan_head(len(values), n)
    out[n:] = values[: max(len(values) - n, 0)]
    return out


def roc(values: np.ndarray, n: int) -> np.ndarray:
    """Return the % change over ``n`` bars, 100 (x[t] / x[t-n] - 1); warm-up n
    bars, NaN where x[t-n] is 0."""
    values = _check(values, n)
    out = _nan_head(len(values), n)
    if len(values) > n:
        before = values[:-n]
        with np.errstate(divide="ignore", invalid="ignore"):
            np.divide(values[n:], before, out=out[n:])
        out[n:][before == 0.0] = np.nan
        out[n:] -= 1.0
        out[n:] *= 100.0
    return out


def stdev(values: np.ndarray, n: int, *, windows: Windows | None = None) -> np.ndarray:
    """Return the population (ddof=0) standard deviation of ``n`` values, as
    the Bollinger bands compute it; warm-up n-1 bars."""
    values = _check(values, n)
    out = _nan_head(len(values), n - 1)
    if len(values) >= n:
        mean = np.empty(len(values) - n + 1)
        (windows or Windows(values)).rolling_var(n, mean, out[n - 1 :])
        np.sqrt(out[n - 1 :], out=out[n - 1 :])
    return out


def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """Return max(high - low, |high - previous close|, |low - previous close|);
    NaN on the first bar, which has no previous close."""
    out = np.empty(len(close))
    out[:1] = np.nan
    previous = close[:-1]
    np.subtract(high[1:], low[1:], out=out[1:])
    np.maximum(out[1:], np.abs(high[1:] - previous), out=out[1:])
    np.maximum(out[1:], np.abs(low[1:] - previous), out=out[1:])
    return out


def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int) -> np.ndarray:
    """Return Wilder's average true range; warm-up n bars.

    The first value (bar n) is the plain mean of the true ranges of bars
    1..n, then avg = (avg (n - 1) + tr) / n, as TA-Lib's ATR.
    """
    close = _check(close, n)
    return _recursive_average(true_range(high, low, close), n, 1.0 - 1.0 / n)
