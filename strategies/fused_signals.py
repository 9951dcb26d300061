"""Compiled loops behind the indicators and rules where NumPy needs several
passes and temporaries: Wilder's RSI in one pass, "A above B" and an
"enter when / exit when" state in one pass each. Each gives exactly the
numbers of the plain loop it replaces (see the tests)."""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def rsi_loop(close: np.ndarray, n: int, out: np.ndarray) -> None:
    """Write Wilder's RSI of ``close`` (longer than ``n``, no NaN in its first
    n + 1 values) to ``out``: NaN for the first n bars, then 100 * gain /
    (gain + loss) of the averages, 50 where both are 0.

    The averages start at the plain means of the first n changes, then
    avg = (1 - decay) * x + decay * avg with decay = 1 - 1/n.
    """
    decay = 1.0 - 1.0 / n
    weight = 1.0 - decay
    gain = loss = 0.0
    for i in range(1, n + 1):
        change = close[i] - close[i - 1]
        up = 0.0 if change < 0.0 else change
        gain += up
        loss += up - change  # max(c, 0) - c = max(-c, 0), exactly
    gain /= n
    loss /= n
    for i in range(n):
        out[i] = math.nan
    out[n] = _rsi_value(gain, loss)
    for i in range(n + 1, len(close)):
        change = close[i] - close[i - 1]
        up = 0.0 if change < 0.0 else change
        gain = weight * up + decay * gain
        loss = weight * (up - change) + decay * loss
        out[i] = _rsi_value(gain, loss)


@njit(cache=True, nogil=True, inline="always")
def _rsi_value(gain: float, loss: float) -> float:
    """Return 100 * gain / (gain + loss); 50 when both are 0."""
    total = gain + loss
    if total == 0.0:
        return 50.0
    return gain / total * 100.0


@njit(cache=True, nogil=True)
def above_into(
    a: np.ndarray, b: np.ndarray, tolerance: np.ndarray, out: np.ndarray
) -> None:
    """Write a - b > tolerance to ``out`` (False where either is NaN)."""
    for i in range(len(a)):
        out[i] = a[i] - b[i] > tolerance[i]


@njit(cache=True, nogil=True)
def enter_exit_loop(entry: np.ndarray, exit_: np.ndarray) -> np.ndarray:
    """Return the held state after each bar: an entry holds, an exit lets go,
    neither keeps the state before (entry wins when both hold)."""
    out = np.empty(len(entry), np.bool_)
    held = False
    for i in range(len(entry)):
        if entry[i]:
            held = True
        elif exit_[i]:
            held = False
        out[i] = held
    return out
