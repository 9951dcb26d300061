"""Plain-loop references the saved-strategy tests check the engine against."""

from __future__ import annotations

import math


def sma(values: list[float], n: int) -> list[float]:
    """Return the simple moving average, NaN for the first n - 1 bars (loop)."""
    out = []
    for i in range(len(values)):
        if i + 1 < n:
            out.append(math.nan)
        else:
            out.append(sum(values[i + 1 - n : i + 1]) / n)
    return out


def crossover_trades(close: list[float], fast: int, slow: int) -> int:
    """Return the trades of "long when: sma(close, fast) > sma(close, slow)".

    A position opens at the next bar's open after each close where the
    condition becomes true, so a rise on the last bar opens nothing; every
    opened position is one trade (closed by a signal or at the end).
    """
    a, b = sma(close, fast), sma(close, slow)
    held = [
        not (math.isnan(x) or math.isnan(y)) and x - y > 1e-12 * abs(c)
        for x, y, c in zip(a, b, close, strict=True)
    ]
    trades = 0
    for t in range(len(close) - 1):
        if held[t] and (t == 0 or not held[t - 1]):
            trades += 1
    return trades


def crossover_source(fast: int, slow: int) -> str:
    """Return a saved strategy's text: long while SMA(fast) > SMA(slow)."""
    return (
        f"# long while the {fast}-bar SMA is above the {slow}-bar one\n"
        f"long when: sma(close, {fast}) > sma(close, {slow})\n"
    )


def cross_entries(
    open_: list[float], close: list[float], fast: int, slow: int, exit_slow: int
) -> list[float]:
    """Return the entry fills of "long entry: crosses_above(sma(close, fast),
    sma(close, slow))" with "long exit: crosses_below(sma(close, fast),
    sma(close, exit_slow))" (loop).

    A cross needs a known comparison on both closes (three-valued logic: a
    NaN makes it unknown); a signal on close t fills at the open of t + 1, so
    a signal on the last bar does nothing.
    """
    f, s, x = sma(close, fast), sma(close, slow), sma(close, exit_slow)

    def above(a: list[float], b: list[float], t: int) -> bool | None:
        if math.isnan(a[t]) or math.isnan(b[t]):
            return None
        return a[t] - b[t] > 1e-12 * abs(close[t])

    def crossed(a: list[float], b: list[float], t: int) -> bool:
        return t > 0 and above(a, b, t) is True and above(a, b, t - 1) is False

    entries, held = [], False
    for t in range(len(close) - 1):
        if held and crossed(x, f, t):  # fast below x: x above fast
            held = False
        elif not held and crossed(f, s, t):
            held = True
            entries.append(open_[t + 1])
    return entries
