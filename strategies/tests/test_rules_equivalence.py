"""The six built-ins written in the rule language trade exactly as the
built-ins on the real candles: every trade, every metric, with and without
risk settings."""

from __future__ import annotations

import numpy as np
import pytest

from strategies.engine import run_many
from strategies.registry import STRATEGIES
from strategies.rules.examples import BUILTINS
from strategies.rules.program import compile_strategy
from strategies.sweep import SWEEP_KEYS, grid_expand, sweep_coin
from strategies.tests.realdata import load_bars

RISKS = [
    None,
    {"stop_loss_pct": 3.0, "take_profit_pct": 6.0},
    {"trailing_stop_pct": 2.0},
    {"direction": "both", "position_size": 0.5},
]
COMPILED = {key: compile_strategy(source, key=key) for key, source in BUILTINS.items()}


def test_every_builtin_has_its_rule_program():
    assert set(BUILTINS) == set(STRATEGIES)
    for key, spec in COMPILED.items():
        limits = [(p.name, p.type, p.default, p.min, p.max) for p in spec.params]
        assert limits == [
            (p.name, p.type, p.default, p.min, p.max) for p in STRATEGIES[key].params
        ]


def assert_same(expected, got, label):
    assert expected.metrics == got.metrics, label
    assert expected.trade_table.keys() == got.trade_table.keys(), label
    for column, values in expected.trade_table.items():
        np.testing.assert_array_equal(values, got.trade_table[column], err_msg=label)
    np.testing.assert_array_equal(expected.equity, got.equity, err_msg=label)
    np.testing.assert_array_equal(expected.position, got.position, err_msg=label)


def test_builtins_in_the_language_trade_as_the_builtins(real_data_dir):
    paths = sorted(real_data_dir.glob("*USDT.csv.gz"))
    assert len(paths) >= 48
    trades = 0
    for path in paths:
        bars = load_bars(real_data_dir, path.name.removesuffix("USDT.csv.gz"))
        for risk in RISKS:
            expected = run_many(bars, [(key, {}) for key in COMPILED], risk=risk)
            got = run_many(bars, [(spec, {}) for spec in COMPILED.values()], risk=risk)
            for a, b in zip(expected, got, strict=True):
                assert a.strategy == b.strategy
                assert_same(a, b, f"{path.name} {a.strategy} {risk}")
                trades += a.metrics["num_trades"]
    assert trades > 100_000  # the comparison covers real trading


@pytest.mark.parametrize("key", ["sma_crossover", "bollinger_reversion"])
def test_a_sweep_of_the_program_matches_the_builtins(real_data_dir, key):
    bars = load_bars(real_data_dir, "ETH", last=8_000)
    axes = (
        {"fast": "5:30:5", "slow": "20:60:20"}
        if key == "sma_crossover"
        else {"period": "10:30:10", "std": [1.5, 2.0]}
    )
    builtin = grid_expand(key, axes)
    program = grid_expand(COMPILED[key], axes)
    # The built-in skips fast >= slow; the program has no such rule.
    assert program.total >= builtin.total
    combos = builtin.combinations
    for keys in (SWEEP_KEYS, None):
        expected = sweep_coin(bars, key, combos, keys=keys)
        got = sweep_coin(bars, COMPILED[key], combos, keys=keys)
        assert expected == got
