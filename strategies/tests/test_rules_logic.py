"""Rule values: three-valued logic by hand, functions against plain loops."""

from __future__ import annotations

import math

import numpy as np
import pytest

from strategies.rules.evaluate import Evaluator, resolve
from strategies.rules.program import compile_program
from strategies.signals import IndicatorCache
from strategies.types import Bars

T, F, U = "T", "F", "?"


def bars_of(close, high=None, low=None, volume=None) -> Bars:
    close = np.asarray(close, dtype=float)
    n = len(close)
    return Bars(
        np.arange(n, dtype=np.int64) * 3600,
        close.copy(),
        close if high is None else np.asarray(high, float),
        close if low is None else np.asarray(low, float),
        close,
        np.ones(n) if volume is None else np.asarray(volume, float),
    )


def states(bars: Bars, condition: str, **params) -> list[str]:
    """Return T, F or ? per bar for ``condition``, from its two masks."""
    lines = [f"param {k}: int = {v} in 1..100" for k, v in params.items()]
    program = compile_program("\n".join([*lines, f"long when: {condition}"]))
    tree = resolve(program.rules[("long", "when")], params)
    evaluator = Evaluator(IndicatorCache(bars))
    true, false = evaluator.truth(tree, True), evaluator.truth(tree, False)
    assert not np.any(true & false), "a bar cannot be both true and false"
    return [T if t else F if f else U for t, f in zip(true, false, strict=True)]


def values(bars: Bars, expression: str) -> np.ndarray:
    """Return the numeric value of ``expression`` on every bar."""
    program = compile_program(f"long when: {expression} > 0")
    tree = resolve(program.rules[("long", "when")], {})[2]
    return Evaluator(IndicatorCache(bars)).array(tree)


CLOSE = [10.0, 11.0, 12.0, 11.0, 10.0, 9.0]


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("prev(close, 1) < close", [U, T, T, F, F, F]),
        ("not prev(close, 1) < close", [U, F, F, T, T, T]),
        ("prev(close, 1) >= close", [U, F, F, T, T, T]),
        ("prev(close, 1) <= close", [U, T, T, F, F, F]),
        # true or unknown = true; false or unknown = unknown
        ("prev(close, 1) < close or close > 10.5", [U, T, T, T, F, F]),
        ("prev(close, 1) < close or close > 5", [T, T, T, T, T, T]),
        # false and unknown = false; true and unknown = unknown
        ("prev(close, 1) < close and close > 100", [F, F, F, F, F, F]),
        ("prev(close, 1) < close and close > 5", [U, T, T, F, F, F]),
        ("not (prev(close, 1) < close and close > 5)", [U, F, F, T, T, T]),
        ("10 < close < 12", [F, T, F, T, F, F]),
        ("10 <= close <= 11", [T, T, F, T, T, F]),
        ("crosses_above(close, 10.5)", [F, T, F, F, F, F]),
        ("crosses_below(close, 11.5)", [U, F, F, T, F, F]),
        ("crosses_above(close, prev(close, 1) + 0.5)", [U, U, F, F, F, F]),
        # x / 0 is NaN: unknown, and so is its negation
        ("close / (close - close) > 1", [U, U, U, U, U, U]),
        ("not close / (close - close) > 1", [U, U, U, U, U, U]),
        # SMA(3) from bar 2: 11, 11.33, 11, 10
        ("sma(close, 3) > 10.5", [U, U, T, T, T, F]),
        ("sma(close, n) > 10.5", [U, U, T, T, T, F]),
    ],
)
def test_three_valued_logic_by_hand(condition, expected):
    assert (
        states(bars_of(CLOSE), condition, **({"n": 3} if "n)" in condition else {}))
        == expected
    )


def test_crosses_above_is_unknown_after_an_unknown_close():
    # Close 10, 12, 9, 12 against prev(close, 2): bars 0-1 unknown, so bar 2
    # (9 > 10: false) is false and bar 3 (12 > 12: tie, false) too.
    assert states(bars_of([10, 12, 9, 13]), "crosses_above(close, prev(close, 2))") == [
        U,
        U,
        F,
        T,
    ]


def test_comparisons_have_the_close_tie_tolerance():
    # The tolerance is 1e-12 |close| = 1 at a close of 1e12.
    bars = bars_of([1e12, 1e12])
    assert states(bars, "close + 0.5 > close") == [F, F]
    assert states(bars, "close + 2 > close") == [T, T]
    assert states(bars, "close < close + 0.5") == [F, F]
    assert states(bars, "close < close + 2") == [T, T]
    # >= is "not <": a tie within the tolerance holds both ways.
    assert states(bars, "close >= close + 0.5") == [T, T]
    assert states(bars, "close + 0.5 >= close") == [T, T]
    assert states(bars, "close >= close + 2") == [F, F]
    assert states(bars, "close <= close - 0.5") == [T, T]


def test_arithmetic_and_nan():
    bars = bars_of([2.0, 4.0, 8.0])
    np.testing.assert_array_equal(
        values(bars, "close * 2 - 1 + -close / 2"), [2, 5, 11]
    )
    np.testing.assert_array_equal(values(bars, "abs(1 - close)"), [1, 3, 7])
    np.testing.assert_array_equal(
        values(bars, "max(close, 5) + min(close, 3)"), [7, 8, 11]
    )
    got = values(bars, "close / (close - 4)")
    assert math.isnan(got[1]) and got[0] == -1.0 and got[2] == 2.0
    assert np.isnan(values(bars, "close / 0")).all()
    assert np.isnan(values(bars, "1 / 0 + close")).all()
    np.testing.assert_array_equal(
        values(bars, "min(prev(close, 1), 3)"), [np.nan, 2, 3]
    )


# -- functions against plain loops ------------------------------------------------


def random_bars(n: int = 400, seed: int = 5) -> Bars:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    high = close * (1 + rng.uniform(0, 0.02, n))
    low = close * (1 - rng.uniform(0, 0.02, n))
    return Bars(np.arange(n) * 3600, close, high, low, close, rng.uniform(1, 9, n))


def loop_atr(high, low, close, n):
    out = [math.nan] * len(close)
    ranges = [math.nan] + [
        max(high[t] - low[t], abs(high[t] - close[t - 1]), abs(low[t] - close[t - 1]))
        for t in range(1, len(close))
    ]
    if len(close) > n:
        average = sum(ranges[1 : n + 1]) / n
        out[n] = average
        for t in range(n + 1, len(close)):
            average = (average * (n - 1) + ranges[t]) / n
            out[t] = average
    return out


def loop_window(values, n, reduce):
    return [
        math.nan if t < n - 1 else reduce(values[t - n + 1 : t + 1])
        for t in range(len(values))
    ]


@pytest.mark.parametrize("n", [1, 2, 14, 50])
def test_functions_match_plain_loops(n):
    bars = random_bars()
    high, low, close, volume = (list(map(float, c)) for c in bars[2:])
    size = len(close)
    close_ago = [math.nan] * n + close[: size - n]
    expected = {
        f"atr({n})": loop_atr(high, low, close, n),
        f"roc(close, {n})": [
            math.nan if t < n else 100 * (close[t] / close[t - n] - 1)
            for t in range(size)
        ],
        f"prev(close, {n})": close_ago,
        f"highest(high, {n})": loop_window(high, n, max),
        f"lowest(low, {n})": loop_window(low, n, min),
        f"sma(volume, {n})": loop_window(volume, n, lambda w: sum(w) / len(w)),
        f"stdev(volume, {n})": loop_window(
            volume, n, lambda w: math.sqrt(sum((x - sum(w) / n) ** 2 for x in w) / n)
        ),
    }
    for expression, want in expected.items():
        got = values(bars, expression)
        np.testing.assert_allclose(
            got, want, rtol=1e-10, atol=1e-12, err_msg=expression
        )


def test_crosses_against_a_plain_loop():
    bars = random_bars(300, seed=9)
    a = values(bars, "sma(close, 5)")
    b = values(bars, "sma(close, 20)")
    tolerance = 1e-12 * np.abs(bars.close)
    above = [
        None if math.isnan(x - y) else (x - y) > tol
        for x, y, tol in zip(a, b, tolerance, strict=True)
    ]
    below = [
        None if math.isnan(x - y) else (y - x) > tol
        for x, y, tol in zip(a, b, tolerance, strict=True)
    ]

    def crossing(now):
        out = [F if now[0] is False else U]
        for t in range(1, len(now)):
            if now[t] is None:
                out.append(U)
            elif not now[t]:
                out.append(F)
            else:
                out.append({True: F, False: T, None: U}[now[t - 1]])
        return out

    rule_up = states(bars, "crosses_above(sma(close, 5), sma(close, 20))")
    rule_down = states(bars, "crosses_below(sma(close, 5), sma(close, 20))")
    assert rule_up == crossing(above) and rule_down == crossing(below)
    assert rule_up.count(T) > 3 and rule_down.count(T) > 3


def test_indicators_are_computed_once_per_resolved_call():
    source = """\
param fast: int = 5 in 2..50
param slow: int = 20 in 3..200
long when: sma(high, fast) > sma(high, slow) and rsi(close, 14) > 30
"""
    from strategies.rules.program import compile_strategy

    spec = compile_strategy(source)
    bars = random_bars()
    cache = IndicatorCache(bars)
    first = spec.signal(cache, fast=5, slow=20)
    second = spec.signal(cache, fast=5, slow=30)
    third = spec.signal(cache, fast=5, slow=20)
    np.testing.assert_array_equal(first, third)
    assert not np.array_equal(first, second)
    memo = cache._memo
    rule_calls = sorted(
        k[1][2][1][1] for k in memo if k[0] == "rules" and k[1][1] == "sma"
    )
    assert rule_calls == [5, 20, 30]  # sma(high, 5) once for both combinations
    assert ("rsi", 14) in memo  # the close's RSI is the built-ins' own entry
