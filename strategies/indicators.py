"""Technical indicators as pure NumPy functions.

Contract (every function): 1-D float64 in, same length out, NaN through the
warm-up, inputs never mutated, ``ValueError`` for a window below 1. A NaN input
makes every window that contains it NaN.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd  # rolling variance only


class BBands(NamedTuple):
    upper: np.ndarray
    middle: np.ndarray
    lower: np.ndarray


class MACD(NamedTuple):
    macd: np.ndarray
    signal: np.ndarray
    hist: np.ndarray


def _check(values: np.ndarray, n: int, name: str = "n") -> np.ndarray:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"{name}: window must be a positive integer, got {n!r}")
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError("values: expected a 1-D array")
    return values


def rolling_sum(values: np.ndarray, n: int) -> np.ndarray:
    """Return the sum of each window of ``n`` values (NaN for the first n-1)."""
    values = _check(values, n)
    out = np.full(values.shape, np.nan)
    if len(values) >= n:
        # A direct sum per window (no running cumsum), so long series do not
        # accumulate rounding drift.
        out[n - 1 :] = np.convolve(values, np.ones(n), mode="valid")
    return out


def _rolling_extreme(values: np.ndarray, n: int, op: np.ufunc) -> np.ndarray:
    """Return op (maximum/minimum) over each window of n values ending at t.

    Sparse-table doubling: log2(n) passes over the array instead of n, and exact
    (max and min never round). NaN inside a window propagates.
    """
    out = np.full(values.shape, np.nan)
    m = len(values)
    if m < n:
        return out
    span = 1
    table = values.copy()  # table[i] = op over values[i : i + span]
    while span * 2 <= n:
        table[: m - span] = op(table[: m - span], table[span:])
        span *= 2
    starts = np.arange(m - n + 1)
    out[n - 1 :] = op(table[starts], table[starts + n - span])
    return out


def rolling_max(values: np.ndarray, n: int) -> np.ndarray:
    """Return the highest value of each window of ``n`` values, current included."""
    return _rolling_extreme(_check(values, n), n, np.maximum)


def rolling_min(values: np.ndarray, n: int) -> np.ndarray:
    """Return the lowest value of each window of ``n`` values, current included."""
    return _rolling_extreme(_check(values, n), n, np.minimum)


def flat_windows(values: np.ndarray, n: int) -> np.ndarray:
    """Return True where the window of ``n`` values ending at t is constant."""
    out = np.zeros(values.shape, dtype=bool)
    if len(values) < n:
        return out
    changes = np.r_[0, np.cumsum(values[1:] != values[:-1])]
    out[n - 1 :] = changes[n - 1 :] == changes[: len(values) - n + 1]
    return out


def sma(values: np.ndarray, n: int) -> np.ndarray:
    """Return the simple moving average over ``n`` values; warm-up n-1 bars.

    Where a window is flat (all values equal) the average is that value exactly,
    so comparisons against the price are not decided by rounding.
    """
    values = _check(values, n)
    out = rolling_sum(values, n) / n
    if n > 1:
        flat = flat_windows(values, n)
        out[flat] = values[flat]
    return out


def _linear_recursion(x: np.ndarray, alpha: float, y0: float) -> np.ndarray:
    """Return y with y[0] = y0 and y[t] = alpha*x[t] + (1-alpha)*y[t-1].

    Vectorized in blocks: inside a block of B values the recursion is a weighted
    cumulative sum (weights (1-alpha)^-k, kept below 1e8 so nothing overflows and
    rounding stays near machine precision); the value carried from block to block
    is a short scalar loop over N/B blocks. Agrees with the plain loop to ~1e-15.
    """
    n = len(x)
    decay = 1.0 - alpha
    if n == 0:
        return np.empty(0)
    if decay <= 0.0:
        out = np.asarray(x, dtype=np.float64).copy()
        out[0] = y0
        return out
    size = int(max(1, min(n, np.log(1e8) / -np.log(decay))))
    padded = np.zeros(-(-n // size) * size)
    padded[:n] = x
    padded[0] = 0.0
    blocks = padded.reshape(-1, size)
    k = np.arange(size)
    local = np.cumsum(blocks * (alpha * decay**-k), axis=1)
    local *= decay**k
    block_decay = decay**size
    carry = np.empty(len(blocks))
    value = y0 / decay
    for j, end in enumerate(local[:, -1].tolist()):
        carry[j] = value
        value = value * block_decay + end
    local += carry[:, None] * decay ** (k + 1)
    return local.ravel()[:n]


def _recursive_average(values: np.ndarray, n: int, alpha: float) -> np.ndarray:
    """Return y_t = alpha*x_t + (1-alpha)*y_{t-1}, seeded with the mean of the
    first ``n`` defined values at the n-th of them; NaN before that.

    Leading NaNs are skipped (the MACD signal line starts where the MACD line
    does). A NaN after the seed makes the rest NaN: a price series with holes
    has no meaningful average until it is repaired.
    """
    out = np.full(values.shape, np.nan)
    missing = np.isnan(values)
    first = int(missing.argmin()) if len(values) else 0
    seed_at = first + n - 1
    if seed_at >= len(values) or missing[first] or missing[first : seed_at + 1].any():
        return out  # too short, all NaN, or a hole inside the seed window
    seed = values[first : seed_at + 1].mean()
    out[seed_at:] = _linear_recursion(values[seed_at:], alpha, seed)
    return out


def ema(values: np.ndarray, n: int) -> np.ndarray:
    """Return the exponential moving average, alpha = 2/(n+1), seeded with the SMA
    of the first ``n`` defined values; warm-up n-1 bars after the first value."""
    values = _check(values, n)
    return _recursive_average(values, n, 2.0 / (n + 1))


def rsi(close: np.ndarray, n: int = 14) -> np.ndarray:
    """Return Wilder's RSI: first averages are the plain means of the first ``n``
    changes, then avg = (avg*(n-1) + x)/n; 100 when the average loss is 0, 50
    when both are 0. Warm-up: n bars."""
    close = _check(close, n)
    out = np.full(close.shape, np.nan)
    if len(close) <= n:
        return out
    change = np.diff(close)
    gain = np.where(change > 0, change, 0.0)
    loss = np.where(change < 0, -change, 0.0)
    gain[np.isnan(change)] = np.nan
    loss[np.isnan(change)] = np.nan
    avg_gain = _recursive_average(gain, n, 1.0 / n)
    avg_loss = _recursive_average(loss, n, 1.0 / n)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)
    value = np.where(avg_loss == 0, np.where(avg_gain == 0, 50.0, 100.0), value)
    value[np.isnan(avg_gain) | np.isnan(avg_loss)] = np.nan
    out[1:] = value
    return out


def bbands(close: np.ndarray, n: int = 20, k: float = 2.0) -> BBands:
    """Return Bollinger bands: SMA(n) plus/minus k population (ddof=0) std devs."""
    close = _check(close, n)
    middle = sma(close, n)
    if len(close) < n:
        return BBands(middle.copy(), middle, middle.copy())
    # pandas' rolling variance is O(n) and numerically careful (no E[x^2]-E[x]^2).
    std = pd.Series(close).rolling(n).std(ddof=0).to_numpy(copy=True)
    std[flat_windows(close, n)] = 0.0
    return BBands(middle + k * std, middle, middle - k * std)


def macd(close: np.ndarray, fast: int = 12, slow: int = 26, signal: int = 9) -> MACD:
    """Return the MACD line EMA(fast)-EMA(slow), its signal line (EMA(signal) of
    the line, seeded from its first ``signal`` defined values) and histogram."""
    close = _check(close, fast, "fast")
    _check(close, slow, "slow")
    _check(close, signal, "signal")
    line = ema(close, fast) - ema(close, slow)
    signal_line = ema(line, signal)
    return MACD(line, signal_line, line - signal_line)


def donchian_high(high: np.ndarray, n: int = 20) -> np.ndarray:
    """Return the highest high of the previous ``n`` bars (current excluded)."""
    high = _check(high, n)
    out = np.full(high.shape, np.nan)
    out[1:] = rolling_max(high, n)[:-1]
    return out


def donchian_low(low: np.ndarray, n: int = 10) -> np.ndarray:
    """Return the lowest low of the previous ``n`` bars (current excluded)."""
    low = _check(low, n)
    out = np.full(low.shape, np.nan)
    out[1:] = rolling_min(low, n)[:-1]
    return out
