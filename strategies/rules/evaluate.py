"""Evaluate compiled rule trees on one coin's bars, vectorized.

Parameters are substituted first (``resolve``), so a tree names exactly the
computation it stands for: indicator calls are memoized in the coin's
``IndicatorCache`` under that tree, and two rules, or two parameter
combinations of a sweep with the same resolved window, share one array.
Indicators of the close that the built-ins also use (sma, ema, rsi, bands,
macd) come from the cache's own entries, bit for bit the built-ins' values.

Conditions are three-valued (true, false, unknown where a NaN is involved).
A condition is evaluated as the mask of the bars where it is true, or where
it is false, whichever is asked for: ``not`` swaps the two, ``and`` of true
masks is their intersection, ``and`` of false masks their union, and so on;
a bar in neither mask is unknown. A comparison a > b is true where
a - b > TIE_TOLERANCE |close| and false where a - b <= that (both False where
a NaN makes the difference NaN); a < b is b > a; a >= b is not (a < b).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from strategies import indicators as ind
from strategies.kernels import Windows, empty
from strategies.rules import series
from strategies.rules.syntax import Node
from strategies.signals import IndicatorCache

CLOSE: Node = ("series", "close")
# Memo keys of rule indicators start with this, apart from the built-ins' names.
_PREFIX = "rules"
_FLIPPED = {">=": "<", "<=": ">"}


def resolve(node: Node, params: Mapping[str, int | float]) -> Node:
    """Return ``node`` with parameters replaced by their values and constant
    arithmetic folded (x / 0 is NaN)."""
    kind = node[0]
    if kind == "param":
        return ("num", params[node[1]])
    if kind in ("num", "series"):
        return node
    if kind == "neg":
        inner = resolve(node[1], params)
        return ("num", -inner[1]) if inner[0] == "num" else ("neg", inner)
    if kind in ("bin", "cmp"):
        a, b = resolve(node[2], params), resolve(node[3], params)
        if kind == "bin" and a[0] == "num" and b[0] == "num":
            return ("num", _arithmetic(node[1], float(a[1]), float(b[1])))
        return (kind, node[1], a, b)
    if kind == "call":
        return ("call", node[1], tuple(resolve(arg, params) for arg in node[2]))
    if kind == "not":
        return ("not", resolve(node[1], params))
    return (kind, tuple(resolve(item, params) for item in node[1]))


def _arithmetic(op: str, a: float | np.ndarray, b: float | np.ndarray):
    """Return a op b; division by zero gives NaN, as a NaN input does."""
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if isinstance(b, np.ndarray):
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.divide(a, b)
        out[b == 0.0] = np.nan
        return out
    if b == 0.0:
        return np.full(np.shape(a), np.nan) if np.ndim(a) else np.nan
    return a / b


def _shifted(mask: np.ndarray) -> np.ndarray:
    """Return the mask one bar later (False on the first bar)."""
    out = np.zeros(len(mask), dtype=np.bool_)
    out[1:] = mask[:-1]
    return out


class Evaluator:
    """Evaluate resolved trees on the bars of one IndicatorCache."""

    def __init__(self, cache: IndicatorCache) -> None:
        self.cache = cache
        self.size = len(cache.bars.close)
        self.local: dict[tuple, object] = {}

    def value(self, node: Node) -> float | np.ndarray:
        """Return a numeric tree's value: a number or a float64 array."""
        kind = node[0]
        if kind == "num":
            return node[1]
        if kind == "series":
            return getattr(self.cache.bars, node[1])
        key = ("value", node)
        if key not in self.local:
            if kind == "neg":
                found = np.negative(self.value(node[1]))
            elif kind == "bin":
                found = _arithmetic(node[1], self.value(node[2]), self.value(node[3]))
            else:
                found = self.call(node[1], node[2], node)
            self.local[key] = found
        return self.local[key]

    def array(self, node: Node) -> np.ndarray:
        """Return a numeric tree's value as an array of the bars' length."""
        found = self.value(node)
        if isinstance(found, np.ndarray):
            return found
        return np.full(self.size, float(found))

    def windows(self, node: Node) -> Windows:
        """Return the doubling levels of a series (the close's are shared)."""
        if node == CLOSE:
            return self.cache.windows
        return self.cache.remember(
            (_PREFIX, "windows", node), lambda: Windows(self.array(node))
        )

    def call(self, name: str, args: tuple, node: Node) -> float | np.ndarray:
        """Return a function's value; indicators are memoized in the cache."""
        if name == "abs":
            return np.abs(self.value(args[0]))
        if name in ("min", "max"):
            op = np.minimum if name == "min" else np.maximum
            return op(self.value(args[0]), self.value(args[1]))
        return self.cache.remember((_PREFIX, node), lambda: self.indicator(name, args))

    def indicator(self, name: str, args: tuple) -> np.ndarray:
        """Return a fresh indicator array (the cache keeps it)."""
        x = args[0]
        numbers = [a[1] for a in args[1:]]
        if name == "atr":
            bars = self.cache.bars
            return series.atr(bars.high, bars.low, bars.close, int(x[1]))
        n = int(numbers[0])
        close = x == CLOSE
        if name in ("sma", "ema", "rsi") and close:
            return self.cache.get(name, n)
        if name in ("bb_upper", "bb_lower"):
            k = float(numbers[1])
            if close:
                bands = self.cache.get("bbands", n, k)
            else:
                bands = ind.bbands(self.array(x), n, k, windows=self.windows(x))
            return bands.upper if name == "bb_upper" else bands.lower
        if name == "macd":
            fast = self.value(("call", "ema", (x, args[1])))
            slow = self.value(("call", "ema", (x, args[2])))
            return np.subtract(fast, slow)
        if name == "macd_signal":
            if close:
                return self.cache.get("macd", *map(int, numbers)).signal
            line = self.array(("call", "macd", args[:3]))
            return ind.ema(line, int(numbers[2]))
        if name == "sma":
            return ind.sma(self.array(x), n, windows=self.windows(x))
        if name == "stdev":
            return series.stdev(self.array(x), n, windows=self.windows(x))
        kernel = {
            "ema": ind.ema,
            "rsi": ind.rsi,
            "highest": ind.rolling_max,
            "lowest": ind.rolling_min,
            "roc": series.roc,
            "prev": series.prev,
        }[name]
        return kernel(self.array(x), n)

    def truth(self, node: Node, want: bool = True) -> np.ndarray:
        """Return the mask of bars where a condition is ``want`` (True or
        False); bars in neither mask are unknown."""
        key = ("truth", node, want)
        if key in self.local:
            return self.local[key]
        kind = node[0]
        if kind == "not":
            return self.truth(node[1], not want)
        if kind == "cmp" and node[1] in _FLIPPED:
            return self.truth(("cmp", _FLIPPED[node[1]], *node[2:]), not want)
        if kind == "cmp":
            a, b = (node[2], node[3]) if node[1] == ">" else (node[3], node[2])
            found = self.compare(a, b, want)
        elif kind in ("and", "or"):
            masks = [self.truth(item, want) for item in node[1]]
            op = np.logical_and if (kind == "and") == want else np.logical_or
            found = empty(self.size, np.bool_)
            op(masks[0], masks[1], out=found)
            for mask in masks[2:]:
                op(found, mask, out=found)
        else:  # crosses_above(a, b) / crosses_below(a, b)
            a, b = node[2]
            now = ("cmp", ">" if node[1] == "crosses_above" else "<", a, b)
            if want:
                found = self.truth(now) & _shifted(self.truth(now, False))
            else:
                found = self.truth(now, False) | _shifted(self.truth(now))
        self.local[key] = found
        return found

    def compare(self, a: Node, b: Node, want: bool) -> np.ndarray:
        """Return where a > b is true (want) or false (not want)."""
        key = ("diff", a, b)
        if key not in self.local:
            # Scratch memory inside the engine: already mapped, so cheaper to
            # write than a fresh array (see kernels.scratch).
            gap = empty(self.size)
            np.subtract(self.value(a), self.value(b), out=gap)
            self.local[key] = gap
        gap, tolerance = self.local[key], self.cache.get("tolerance")
        out = empty(self.size, np.bool_)
        (np.greater if want else np.less_equal)(gap, tolerance, out=out)
        return out
