"""The rule language's vocabulary: series, functions and their arguments, limits."""

from __future__ import annotations

from typing import NamedTuple

SERIES = ("open", "high", "low", "close", "volume")
SIDES = ("long", "short")
KINDS = ("when", "entry", "exit")

MAX_SOURCE_BYTES = 8 * 1024
MAX_PARAMS = 20
MAX_NODES = 300
MAX_DEPTH = 30
MAX_INDICATORS = 40
MIN_WINDOW, MAX_WINDOW = 1, 10_000
# The largest magnitude a number in a program may have: far beyond any price
# or volume, far below where float64 stops holding integers exactly.
MAX_NUMBER = 1e15
# A number written with more characters than this is refused before parsing.
MAX_NUMBER_TEXT = 30


class Function(NamedTuple):
    """A function: the kind of each argument and what it returns.

    Argument kinds: "x" any numeric expression, "n" a window (an integer
    constant or int parameter, MIN_WINDOW..MAX_WINDOW), "k" a number or
    parameter. Results: "num" a series, "bool" a condition.
    """

    args: tuple[str, ...]
    names: tuple[str, ...]
    result: str = "num"
    indicator: bool = True


FUNCTIONS: dict[str, Function] = {
    "sma": Function(("x", "n"), ("x", "n")),
    "ema": Function(("x", "n"), ("x", "n")),
    "rsi": Function(("x", "n"), ("x", "n")),
    "stdev": Function(("x", "n"), ("x", "n")),
    "bb_upper": Function(("x", "n", "k"), ("x", "n", "k")),
    "bb_lower": Function(("x", "n", "k"), ("x", "n", "k")),
    "macd": Function(("x", "n", "n"), ("x", "fast", "slow")),
    "macd_signal": Function(("x", "n", "n", "n"), ("x", "fast", "slow", "signal")),
    "highest": Function(("x", "n"), ("x", "n")),
    "lowest": Function(("x", "n"), ("x", "n")),
    "atr": Function(("n",), ("n",)),
    "roc": Function(("x", "n"), ("x", "n")),
    "prev": Function(("x", "n"), ("x", "n")),
    "abs": Function(("x",), ("x",), indicator=False),
    "min": Function(("x", "x"), ("a", "b"), indicator=False),
    "max": Function(("x", "x"), ("a", "b"), indicator=False),
    "crosses_above": Function(("x", "x"), ("a", "b"), "bool"),
    "crosses_below": Function(("x", "x"), ("a", "b"), "bool"),
}

RESERVED = frozenset((*SERIES, *FUNCTIONS))
