"""Indicators against hand-computed values and the plain-loop reference."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies import indicators as ind
from strategies import kernels
from strategies.tests import reference as ref

NAN = np.nan


def assert_same(got, want, rtol=1e-12):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=rtol, atol=0)


def prices(seed: int, n: int, flat: tuple[int, int] | None = (100, 112)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    if flat and n > flat[1]:
        close[flat[0] : flat[1]] = close[flat[0] - 1]
    return close


def test_sma_by_hand():
    assert_same(ind.sma(np.array([1.0, 2, 3, 4]), 2), [NAN, 1.5, 2.5, 3.5])
    assert_same(ind.sma(np.array([2.0, 4, 6]), 3), [NAN, NAN, 4.0])
    assert_same(ind.sma(np.array([2.0, 4, 6, 8, 1]), 1), [2.0, 4, 6, 8, 1])
    assert_same(ind.sma(np.array([5.0, 7]), 3), [NAN, NAN])
    # 7 = 4 + 2 + 1: three runs merged.
    assert_same(ind.sma(np.arange(1.0, 10.0), 7), [NAN] * 6 + [4.0, 5.0, 6.0])


def test_ema_by_hand():
    # n=3: alpha = 0.5, seed = mean(1, 2, 3) = 2 at index 2.
    got = ind.ema(np.array([1.0, 2, 3, 6, 0]), 3)
    assert_same(got, [NAN, NAN, 2.0, 4.0, 2.0])
    assert_same(ind.ema(np.array([3.0, 1, 4]), 1), [3.0, 1, 4])


def test_rsi_by_hand():
    # Changes: +1, +1, -1, +2; n=2: first averages gain 1, loss 0 -> RSI 100;
    # then gain (1*1 + 0)/2 = 0.5, loss (0 + 1)/2 = 0.5 -> 50;
    # then gain (0.5 + 2)/2 = 1.25, loss (0.5 + 0)/2 = 0.25 -> 100 - 100/6.
    got = ind.rsi(np.array([1.0, 2, 3, 2, 4]), 2)
    assert_same(got, [NAN, NAN, 100.0, 50.0, 100 - 100 / 6])
    assert_same(ind.rsi(np.array([5.0, 4, 3, 2]), 2), [NAN, NAN, 0.0, 0.0])


def test_bbands_by_hand():
    bands = ind.bbands(np.array([1.0, 3, 5]), 2, 2.0)
    # Windows (1, 3) and (3, 5): mean 2 and 4, population std 1.
    assert_same(bands.middle, [NAN, 2.0, 4.0])
    assert_same(bands.upper, [NAN, 4.0, 6.0])
    assert_same(bands.lower, [NAN, 0.0, 2.0])
    # Three values 2, 4, 9: mean 5, population variance (9 + 1 + 16) / 3.
    bands = ind.bbands(np.array([2.0, 4, 9]), 3, 1.0)
    assert_same(bands.upper, [NAN, NAN, 5 + np.sqrt(26 / 3)])


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
    channel = ind.donchian(high, high - 1, 1)
    assert_same(channel.upper, [NAN, 1.0, 5.0, 2.0, 3.0])
    assert_same(channel.lower, [NAN, 0.0, 4.0, 1.0, 2.0])
    assert_same(ind.rolling_max(high, 2), [NAN, 5.0, 5.0, 3.0, 9.0])
    assert_same(ind.rolling_min(high, 2), [NAN, 1.0, 2.0, 2.0, 3.0])


@pytest.mark.parametrize("n", [1, 2, 3, 7, 16, 20, 33, 50, 64])
def test_against_the_loop_reference(n):
    close = prices(n, 500)
    values = close.tolist()
    assert_same(ind.sma(close, n), ref.sma(values, n))
    assert_same(ind.ema(close, n), ref.ema(values, n))
    if n > 1:
        assert_same(ind.rsi(close, n), ref.rsi(values, n), rtol=1e-11)
    for k in (0.5, 2.0):
        upper, middle, lower = ref.bbands(values, n, k)
        bands = ind.bbands(close, n, k)
        assert_same(bands.middle, middle)
        assert_same(bands.upper, upper)
        assert_same(bands.lower, lower)
    assert_same(ind.donchian_high(close, n), ref.previous_high(values, n), rtol=0)
    assert_same(ind.donchian_low(close, n), ref.previous_low(values, n), rtol=0)
    fast = max(n // 2, 1)
    line, signal = ref.macd(values, fast, n + 1, 3)
    got = ind.macd(close, fast, n + 1, 3)
    # The line is a small difference of two large averages: compare it on the
    # scale of the price, where its rounding lives.
    np.testing.assert_allclose(got.macd, line, rtol=0, atol=1e-12 * close.max())
    np.testing.assert_allclose(got.signal, signal, rtol=0, atol=1e-12 * close.max())


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    values=st.lists(
        st.sampled_from([1.0, 2.0, 3.0]) | st.floats(0.5, 5.0), min_size=0, max_size=80
    ),
    n=st.integers(1, 40),
)
def test_windows_match_the_reference_on_any_values(values, n):
    """Short, repetitive series: flat windows, ties and lengths below n."""
    close = np.array(values, dtype=np.float64)
    assert_same(ind.sma(close, n), ref.sma(values, n))
    upper, middle, lower = ref.bbands(values, n, 1.5)
    bands = ind.bbands(close, n, 1.5)
    assert_same(bands.middle, middle)
    np.testing.assert_allclose(bands.upper, upper, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(bands.lower, lower, rtol=1e-12, atol=1e-12)
    assert_same(ind.rolling_max(close, n), [
        NAN if i < n - 1 else max(values[i - n + 1 : i + 1]) for i in range(len(values))
    ], rtol=0)  # fmt: skip
    assert_same(ind.ema(close, n), ref.ema(values, n))
    assert_same(ind.rsi(close, n), ref.rsi(values, n), rtol=1e-11)


def test_recursions_stay_exact_over_five_years_of_hourly_bars():
    """43,800 BTC-like closes: the recursions track the plain loop."""
    rng = np.random.default_rng(42)
    close = 30_000 * np.exp(np.cumsum(rng.normal(0, 0.01, 43_800)))
    values = close.tolist()
    # From 105 short chunks (n=2) to three of the longest (n=500, 1000).
    for n in (2, 9, 26, 200, 500, 1000):
        np.testing.assert_allclose(ind.ema(close, n), ref.ema(values, n), rtol=1e-13)
    for n in (2, 14, 500):
        # RSI(2) often sits near 0 or 100: compare it on its 0..100 scale too.
        got, want = ind.rsi(close, n), ref.rsi(values, n)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-10)
    for fast, slow, signal in ((2, 3, 2), (500, 1000, 200)):
        got = ind.macd(close, fast, slow, signal)
        line, signal_line = ref.macd(values, fast, slow, signal)
        scale = 1e-12 * close.max()  # a difference of averages: the price's scale
        np.testing.assert_allclose(got.macd, line, rtol=0, atol=scale)
        np.testing.assert_allclose(got.signal, signal_line, rtol=0, atol=scale)
    window = 50
    sums = np.convolve(close, np.ones(window), "valid") / window
    np.testing.assert_allclose(ind.sma(close, window)[window - 1 :], sums, rtol=1e-14)


@pytest.mark.parametrize("decay", [0.5, 0.9, 12 / 13, 13 / 14, 0.998])
@pytest.mark.parametrize("n", [1, 2, 40, 5_000, 43_800])
def test_paired_recursions_are_two_single_ones_bit_for_bit(decay, n):
    """RSI runs its gains and losses side by side: each as alone, to the bit."""
    rng = np.random.default_rng(n)
    pair = {"x": (rng.normal(0, 1, n), 1.5), "y": (rng.uniform(0, 2, n), -0.5)}
    got = {name: np.empty(n) for name in pair}
    (x, x0), (y, y0) = pair.values()
    kernels.linear_recursion_pair(x, y, decay, x0, y0, got["x"], got["y"])
    for name, (values, start) in pair.items():
        alone = np.empty(n)
        kernels.linear_recursion(values, decay, start, alone)
        assert got[name].tobytes() == alone.tobytes()
        loop = [start]
        for value in values[1:].tolist():
            loop.append((1 - decay) * value + decay * loop[-1])
        # The compiled loop runs the plain loop's operations in its order.
        assert got[name].tolist() == loop[:n]


def test_flat_prices_without_warnings_or_infinities():
    flat = np.full(100, 42.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = ind.rsi(flat, 14)
        bands = ind.bbands(flat, 20)
        average = ind.sma(flat, 20)
        e = ind.ema(flat, 10)
        m = ind.macd(flat)
    assert np.all(r[14:] == 50.0)
    assert np.all(bands.upper[19:] == 42.1) and np.all(bands.lower[19:] == 42.1)
    assert np.all(average[19:] == 42.1)
    np.testing.assert_allclose(e[9:], 42.1, rtol=1e-14)
    np.testing.assert_allclose(m.macd[25:], 0.0, atol=1e-12)
    assert np.all(ind.rsi(np.arange(1.0, 40.0), 14)[14:] == 100.0)


def test_a_flat_window_inside_moving_prices_is_exact():
    close = prices(3, 200, flat=(60, 90))
    for n in (2, 5, 13, 30):
        average = ind.sma(close, n)
        bands = ind.bbands(close, n)
        inside = slice(60 + n - 1, 90)
        assert np.all(average[inside] == close[60])
        assert np.all(bands.upper[inside] == close[60])
        assert np.all(bands.lower[inside] == close[60])


def test_nan_gaps():
    x = np.arange(1.0, 21.0)
    x[4] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = ind.sma(x, 3)
        high = ind.rolling_max(x, 2)
        bands = ind.bbands(x, 3)
        e = ind.ema(x, 3)
        r = ind.rsi(x, 3)
        channel = ind.donchian_high(x, 2)
    # Windows holding the gap are NaN; the rest are defined.
    assert np.isnan(got[4:7]).all() and not np.isnan(got[7:]).any()
    assert_same(got, ref.sma(x.tolist(), 3))  # the reference agrees
    assert_same(bands.upper, ref.bbands(x.tolist(), 3, 2.0)[0])
    assert np.isnan(high[4:6]).all() and not np.isnan(high[6:]).any()
    assert np.isnan(bands.upper[4:7]).all() and not np.isnan(bands.upper[7:]).any()
    assert np.isnan(channel[5:7]).all() and not np.isnan(channel[7:]).any()
    # Recursive averages cannot step over a hole: NaN from there on.
    assert not np.isnan(e[2:4]).any() and np.isnan(e[4:]).all()
    assert np.isnan(r[4:]).all()
    # Leading NaNs are skipped: the EMA seeds on the first n defined values.
    lead = np.r_[np.nan, np.nan, 1.0, 2.0, 3.0, 6.0]
    assert_same(ind.ema(lead, 3), [NAN, NAN, NAN, NAN, 2.0, 4.0])


def test_inputs_are_not_mutated_and_lengths_kept():
    x = np.random.default_rng(0).normal(100, 1, 50)
    before = x.copy()
    outputs = [
        ind.sma(x, 5), ind.ema(x, 5), ind.rsi(x, 5), *ind.bbands(x, 5),
        *ind.macd(x, 3, 6, 2), ind.donchian_high(x, 4), ind.donchian_low(x, 4),
        ind.rolling_max(x, 3), ind.rolling_min(x, 3),
    ]  # fmt: skip
    for out in outputs:
        assert out.shape == x.shape and out.dtype == np.float64
        assert not np.shares_memory(out, x)
    np.testing.assert_array_equal(x, before)


def test_integer_and_list_input():
    assert_same(ind.sma([1, 2, 3, 4], 2), [NAN, 1.5, 2.5, 3.5])


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "3", None])
def test_bad_window(bad):
    for function in (ind.sma, ind.ema, ind.rsi, ind.rolling_max, ind.donchian_low):
        with pytest.raises(ValueError, match="window"):
            function(np.ones(5), bad)
    with pytest.raises(ValueError, match="slow"):
        ind.macd(np.ones(5), 3, bad)


def test_two_dimensional_input_is_refused():
    with pytest.raises(ValueError, match="1-D"):
        ind.sma(np.ones((3, 3)), 2)


def test_short_and_empty_input():
    for length in (0, 3):
        values = np.ones(length)
        outputs = [
            ind.sma(values, 5), ind.ema(values, 5), ind.rsi(values, 5),
            ind.bbands(values, 5).upper, ind.macd(values).signal,
            ind.donchian_high(values, 5), ind.rolling_min(values, 5),
        ]  # fmt: skip
        for out in outputs:
            assert len(out) == length and np.isnan(out).all()
    assert np.isnan(ind.rsi(np.ones(5), 5)).all()  # needs n changes: n + 1 values
    assert ind.rsi(np.ones(6), 5)[5] == 50.0


def test_scratch_arrays_are_reused_only_inside_the_block():
    def block():
        with kernels.scratch():
            first, second = kernels.empty(10), kernels.empty(10, np.int8)
            assert not np.shares_memory(first, second)
            return first

    block()  # sizes the per-thread buffer
    # The next block reuses it; outside a block arrays are ordinary.
    assert np.shares_memory(block(), block())
    assert not np.shares_memory(kernels.empty(10), block())


def test_a_frame_hands_its_scratch_to_the_next_one():
    with kernels.scratch():
        kept = kernels.empty(10)
        with kernels.frame():
            first = kernels.empty(10)
        with kernels.frame():
            second = kernels.empty(10)
        assert np.shares_memory(first, second)
        assert not np.shares_memory(kept, second)
