"""Every coin of the shared real candles, every strategy, each direction and
several risk settings, against the frozen pre-risk engine and the plain-loop
reference.

The reference is slow (Python loops, windows recomputed at each bar), so by
default it runs on the last ``REFERENCE_BARS`` bars of each coin; with
BTLAB_FULL_REFERENCE=1 it runs on each coin's whole history (several minutes).
The bit-for-bit check of the default path always uses the whole history.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from strategies.engine import run_many
from strategies.registry import STRATEGIES, get_strategy, validate_params
from strategies.risk import Risk
from strategies.signals import IndicatorCache
from strategies.tests import legacy
from strategies.tests import reference as ref
from strategies.tests.test_engine import check_against_reference
from strategies.tests.test_execution import (
    check_risk_against_reference,
    reference_rules,
)
from strategies.types import Bars

FULL = os.environ.get("BTLAB_FULL_REFERENCE") == "1"
REFERENCE_BARS = 1500
JOBS = [(key, {}) for key in STRATEGIES]
FEE, SLIPPAGE = 0.001, 2.0
# Each direction, stops, targets, trailing stops and sizes, alone and together.
SETTINGS = [
    Risk(direction="short"),
    Risk(direction="both"),
    Risk(stop_loss_pct=3.0),
    Risk(
        take_profit_pct=5.0, trailing_stop_pct=2.0, direction="short", position_size=0.5
    ),  # fmt: skip
    Risk(5.0, 10.0, 3.0, "both"),
    Risk(trailing_stop_pct=1.0, direction="both", position_size=0.3),
    Risk(1.0, 1.0, None, "both"),
]


def coin_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*USDT.csv.gz"))


@functools.cache
def load(path: Path) -> Bars:
    frame = pd.read_csv(path)
    time = pd.to_datetime(frame["timestamp"], utc=True).astype("int64") // 10**9
    columns = (frame[name].to_numpy(float) for name in Bars._fields[1:])
    return Bars(time.to_numpy(np.int64), *columns)


def tail(bars: Bars, count: int) -> Bars:
    return Bars(*(column[-count:] for column in bars))


def test_there_are_48_coins(real_data_dir):
    assert len(coin_files(real_data_dir)) == 48


def test_defaults_are_bit_for_bit_the_engine_before_risk_settings(real_data_dir):
    """All 48 coins x 6 strategies, whole histories: equity, positions and the
    trade table exactly as the frozen copy of the earlier execution gives them,
    with risk=None and with the default Risk spelled out."""
    checked = 0
    for path in coin_files(real_data_dir):
        bars = load(path)
        plain = run_many(bars, JOBS, fee=FEE, slippage_bps=SLIPPAGE)
        spelled = run_many(bars, JOBS, fee=FEE, slippage_bps=SLIPPAGE, risk=Risk())
        cache = IndicatorCache(bars)
        for (key, _), a, b in zip(JOBS, plain, spelled, strict=True):
            target = get_strategy(key).signal(cache, **validate_params(key, {}))
            equity, position, trades = legacy.simulate(
                bars, target, fee=FEE, slippage_bps=SLIPPAGE
            )
            for result in (a, b):
                assert np.array_equal(result.equity, equity), (path.name, key)
                assert np.array_equal(result.position, position), (path.name, key)
                for name, column in trades.items():
                    assert np.array_equal(result.trade_table[name], column), name
                assert set(result.trade_table["side"].tolist()) <= {"long"}
            assert a.metrics == b.metrics
            checked += 1
    assert checked == 48 * 6


@pytest.mark.timeout(7200 if FULL else 300)
def test_defaults_match_the_reference(real_data_dir):
    """All 48 coins x 6 strategies: the default path against the reference's
    original long-only simulator, metrics included."""
    count = 0
    for path in coin_files(real_data_dir):
        bars = load(path)
        bars = bars if FULL else tail(bars, REFERENCE_BARS)
        for key in STRATEGIES:
            check_against_reference(bars, key, {}, FEE, SLIPPAGE)
            count += 1
    assert count == 48 * 6


@pytest.mark.slow
@pytest.mark.timeout(7200 if FULL else 300)
def test_risk_settings_match_the_reference_on_every_coin(real_data_dir):
    """All 48 coins x 6 strategies x the settings above (each direction, fee
    and slippage on): identical trade lists (bars, side, exit reason), prices,
    equity curve, final equity and every metric within 1e-9 relative."""
    runs = trades = 0
    reasons: dict[str, int] = {}
    for path in coin_files(real_data_dir):
        bars = load(path)
        bars = bars if FULL else tail(bars, REFERENCE_BARS)
        for key in STRATEGIES:
            rules = reference_rules(bars, key, {})
            for risk in [Risk(), *SETTINGS]:
                done = check_risk_against_reference(
                    bars, key, {}, risk, FEE, SLIPPAGE, rules=rules
                )
                runs += 1
                trades += len(done)
                for trade in done:
                    reasons[trade["exit_reason"]] = (
                        reasons.get(trade["exit_reason"], 0) + 1
                    )
        if FULL:  # progress, for a run of many minutes (pytest -s shows it)
            print(f"{path.name}: {runs} runs, {trades} trades so far", flush=True)
    assert runs == 48 * 6 * (len(SETTINGS) + 1)
    # Every exit reason but liquidation occurs on real data (a short's
    # liquidation needs the price to double within one trade).
    assert {"signal", "stop_loss", "take_profit", "trailing_stop"} <= set(reasons)
    print(f"{runs} runs, {trades} trades compared; exits by reason: {reasons}")


def test_the_reference_rules_are_shared_by_both_simulators(real_data_dir):
    """The reference's side rules give the long-only targets of its original
    rules, so the two reference simulators describe one strategy."""
    bars = tail(load(coin_files(real_data_dir)[0]), 600)
    high, low, close = (column.tolist() for column in bars[2:5])
    for key in STRATEGIES:
        params = validate_params(key, {})
        rules = ref.side_rules(key, params, high, low, close)
        _, position, _ = ref.simulate_risk(
            rules, bars.open.tolist(), high, low, close, fee=FEE,
            slippage_bps=SLIPPAGE,
        )  # fmt: skip
        target = ref.targets(key, params, high, low, close)
        _, expected, _ = ref.simulate(target, bars.open.tolist(), close, fee=FEE,
                                      slippage_bps=SLIPPAGE)  # fmt: skip
        assert position == expected, key
