"""Indicators against hand-computed values and the plain-loop reference."""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

import numpy as np
import pytest

from strategies import indicators as ind
from strategies.tests import reference as ref

NAN = np.nan


def assert_same(got, want, rtol=1e-12):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=rtol, atol=1e-12)


def test_sma_by_hand():
    assert_same(ind.sma(np.array([1.0, 2, 3, 4]), 2), [NAN, 1.5, 2.5, 3.5])
    assert_same(ind.sma(np.array([2.0, 4, 6]), 3), [NAN, NAN, 4.0])
    assert_same(ind.sma(np.array([5.0, 7]), 3), [NAN, NAN])


def test_ema_by_hand():
    # n=3: alpha = 0.5, seed = mean(1, 2, 3) = 2 at index 2.
    got = ind.ema(np.array([1.0, 2, 3, 6, 0]), 3)
    assert_same(got, [NAN, NAN, 2.0, 4.0, 2.0])


def test_rsi_by_hand():
    # Changes: +1, +1, -1, +2; n=2: first averages gain 1, loss 0 -> RSI 100;
    # then gain (1*1 + 0)/2 = 0.5, loss (0 + 1)/2 = 0.5 -> 50;
    # then gain (0.5 + 2)/2 = 1.25, loss (0.5 + 0)/2 = 0.25 -> 100 - 100/6.
    got = ind.rsi(np.array([1.0, 2, 3, 2, 4]), 2)
    assert_same(got, [NAN, NAN, 100.0, 50.0, 100 - 100 / 6])


def test_bbands_by_hand():
    bands = ind.bbands(np.array([1.0, 3, 5]), 2, 2.0)
    # Windows (1, 3) and (3, 5): mean 2 and 4, population std 1.
    assert_same(bands.middle, [NAN, 2.0, 4.0])
    assert_same(bands.upper, [NAN, 4.0, 6.0])
    assert_same(bands.lower, [NAN, 0.0, 2.0])


def test_macd_by_hand():
    close = np.array([1.0, 2, 3, 4, 5, 6])
    out = ind.macd(close, 2, 3, 2)
    # EMA2 (alpha 2/3) seeded 1.5 at i=1: 1.5, 2.5, 3.5, 4.5, 5.5.
    # EMA3 (alpha 1/2) seeded 2 at i=2: 2, 3, 4, 5. Line from i=2: 0.5 each.
    assert_same(out.macd, [NAN, NAN, 0.5, 0.5, 0.5, 0.5])
    assert_same(out.signal, [NAN, NAN, NAN, 0.5, 0.5, 0.5])
    assert_same(out.hist, [NAN, NAN, NAN, 0.0, 0.0, 0.0])


def test_donchian_excludes_the_current_bar():
    high = np.array([1.0, 5, 2, 3, 9])
    assert_same(ind.donchian_high(high, 2), [NAN, NAN, 5.0, 5.0, 3.0])
    assert_same(ind.donchian_low(high, 3), [NAN, NAN, NAN, 1.0, 2.0])


@pytest.mark.parametrize("n", [1, 2, 3, 7, 20, 50])
def test_against_the_loop_reference(n):
    rng = np.random.default_rng(n)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, 400)))
    close[100:110] = close[99]  # a flat stretch
    values = close.tolist()
    assert_same(ind.sma(close, n), ref.sma(values, n))
    assert_same(ind.ema(close, n), ref.ema(values, n), rtol=1e-11)
    if n > 1:
        assert_same(ind.rsi(close, n), ref.rsi(values, n), rtol=1e-10)
    upper, middle, lower = ref.bbands(values, n, 2.0)
    bands = ind.bbands(close, n, 2.0)
    assert_same(bands.upper, upper, rtol=1e-10)
    assert_same(bands.lower, lower, rtol=1e-10)
    assert_same(ind.donchian_high(close, n), ref.prev_high(values, n))
    assert_same(ind.donchian_low(close, n), ref.prev_low(values, n))
    line, signal = ref.macd(values, max(n // 2, 1), n + 1, 3)
    got = ind.macd(close, max(n // 2, 1), n + 1, 3)
    assert_same(got.macd, line, rtol=1e-9)
    assert_same(got.signal, signal, rtol=1e-9)


def test_flat_prices_without_warnings_or_infinities():
    flat = np.full(100, 42.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = ind.rsi(flat, 14)
        bands = ind.bbands(flat, 20)
        avg = ind.sma(flat, 20)
        e = ind.ema(flat, 10)
    assert np.all(r[14:] == 50.0)
    assert np.all(bands.upper[19:] == 42.0) and np.all(bands.lower[19:] == 42.0)
    assert np.all(avg[19:] == 42.0)
    assert np.allclose(e[9:], 42.0, rtol=1e-14)
    rising = np.arange(1.0, 40.0)
    assert np.all(ind.rsi(rising, 14)[14:] == 100.0)


def test_nan_gaps_propagate_to_windows_that_contain_them():
    x = np.arange(1.0, 11.0)
    x[4] = np.nan
    got = ind.sma(x, 3)
    assert np.isnan(got[4:7]).all() and not np.isnan(got[7:]).any()
    assert np.isnan(ind.rolling_max(x, 2)[4:6]).all()


def test_inputs_are_not_mutated_and_lengths_kept():
    x = np.random.default_rng(0).normal(100, 1, 50)
    before = x.copy()
    for out in (ind.sma(x, 5), ind.ema(x, 5), ind.rsi(x, 5), *ind.bbands(x, 5),
                *ind.macd(x, 3, 6, 2), ind.donchian_high(x, 4)):  # fmt: skip
        assert len(out) == len(x)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_bad_window(bad):
    with pytest.raises(ValueError, match="window"):
        ind.sma(np.ones(5), bad)


def test_short_input_is_all_nan():
    assert np.isnan(ind.ema(np.ones(3), 5)).all()
    assert np.isnan(ind.rsi(np.ones(3), 5)).all()
    assert np.isnan(ind.bbands(np.ones(3), 5).upper).all()


def test_strategies_package_never_imports_django():
    root = Path(__file__).resolve().parents[1]
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n.split(".")[0] == "django" for n in names), path
