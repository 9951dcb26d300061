"""Sweeps: axes, grid expansion, per-coin metrics against run_backtest, cells."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from strategies.engine import run_backtest
from strategies.params import ParamError
from strategies.risk import Risk
from strategies.sweep import (
    AGGREGATE_KEYS,
    MAX_COMBINATIONS,
    SWEEP_KEYS,
    aggregate,
    best_index,
    grid_expand,
    parse_axis,
    split_params,
    sweep_coin,
)
from strategies.tests.realdata import load_bars
from strategies.tests.test_engine import make_bars

# -- axes ----------------------------------------------------------------------


def test_range_includes_stop_and_keeps_ints():
    values = parse_axis("fast", "5:50:5")
    assert values == [5, 10, 15, 20, 25, 30, 35, 40, 45, 50]
    assert all(type(v) is int for v in values)
    assert parse_axis("slow", {"start": 20, "stop": 200, "step": 10}) == list(
        range(20, 201, 10)
    )
    # A stop the steps do not land on is not exceeded.
    assert parse_axis("fast", "5:12:5") == [5, 10]
    assert parse_axis("fast", "7:7:1") == [7]


def test_float_range_has_no_drift():
    # Adding 0.1 repeatedly gives 0.30000000000000004; the axis must not.
    assert parse_axis("std", "0.1:0.5:0.1") == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert parse_axis("std", {"start": 1.5, "stop": 3, "step": 0.25}) == [
        1.5, 1.75, 2.0, 2.25, 2.5, 2.75, 3.0,
    ]  # fmt: skip
    values = parse_axis("lower", {"start": 20, "stop": 21, "step": 0.1})
    assert len(values) == 11 and values[-1] == 21.0 and values[3] == 20.3
    assert all(type(v) is float for v in values)


def test_lists_and_command_line_lists():
    assert parse_axis("fast", [5, 8, 13]) == [5, 8, 13]
    assert parse_axis("fast", "5,8,13") == [5, 8, 13]
    assert parse_axis("std", "2.5") == [2.5]
    assert parse_axis("direction", "long,short") == ["long", "short"]


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("5:50:0", "step must be positive"),
        ("5:50:-5", "step must be positive"),
        ("50:5:5", "must not be below start"),
        ("a:10:1", "start must be a number"),
        ("5:50", "start:stop:step"),
        ("1:nan:1", "finite"),
        ({"start": 1, "stop": 5}, "start, stop and step"),
        ({"start": 1, "stop": 5, "step": 1, "extra": 2}, "start, stop and step"),
        ([], "at least one value"),
        ([5, 5], "appears twice"),
        ([5, True], "expected numbers"),
        (42, "expected start:stop:step"),
        ("1:20000:1", "at most 10,000"),
    ],
)
def test_bad_axes_name_the_axis(spec, words):
    with pytest.raises(ValueError) as caught:
        parse_axis("fast", spec)
    assert str(caught.value).startswith("fast: ")
    assert words in str(caught.value)
    assert caught.value.errors[0][0] == "fast"


# -- the grid ------------------------------------------------------------------


def test_sweep_s_has_174_valid_combinations_in_grid_order():
    grid = grid_expand("sma_crossover", {"fast": "5:50:5", "slow": "20:200:10"})
    # Counted by hand: fast >= slow for slow 20 (fast 20..50: 7), 30 (5),
    # 40 (3) and 50 (1) -> 16 of 10 x 19 = 190.
    assert grid.skipped == 16 and len(grid.combinations) == 174
    assert grid.total == 190
    expected = [
        {"fast": f, "slow": s}
        for f in range(5, 51, 5)
        for s in range(20, 201, 10)
        if f < s
    ]
    assert grid.combinations == expected
    assert grid.axes == {
        "fast": list(range(5, 51, 5)),
        "slow": list(range(20, 201, 10)),
    }


def test_defaults_and_base_params_fill_every_parameter():
    grid = grid_expand("macd_crossover", {"signal": [5, 9]}, {"fast": 8})
    assert grid.combinations == [
        {"fast": 8, "slow": 26, "signal": 5},
        {"fast": 8, "slow": 26, "signal": 9},
    ]
    # An axis overrides a base value of the same name.
    grid = grid_expand("sma_crossover", {"fast": [3]}, {"fast": 40, "slow": 10})
    assert grid.combinations == [{"fast": 3, "slow": 10}]
    # Float parameters hold floats even from integral specs.
    grid = grid_expand("bollinger_reversion", {"std": "1:3:1"})
    assert grid.axes["std"] == [1.0, 2.0, 3.0]
    assert all(type(c["std"]) is float for c in grid.combinations)
    # std >= sqrt(period - 1) is a skipped combination, not an error.
    grid = grid_expand("bollinger_reversion", {"period": [5, 20], "std": [1.5, 3.0]})
    assert grid.skipped == 1  # period 5: sqrt(4) = 2 <= 3.0
    assert {"period": 5, "std": 3.0} not in grid.combinations


@pytest.mark.parametrize(
    ("grid", "base", "field", "words"),
    [
        ({"fats": [5]}, None, "fats", "unknown parameter"),
        ({"fast": [5]}, {"slwo": 9}, "slwo", "unknown parameter"),
        ({"fast": [1, 5]}, None, "fast", "between 2 and 500"),
        ({"fast": [5.5]}, None, "fast", "integer"),
        ({"fast": [5]}, {"slow": 0}, "slow", "between"),
        ({}, None, "grid", "at least one axis"),
        ({"fast": "2:500:1", "slow": "2:1000:25"}, None, "grid", "at most"),
        ({"fast": [5], "direction": ["long", "up"]}, None, "direction", "short"),
    ],
)
def test_bad_grids_name_the_field(grid, base, field, words):
    with pytest.raises(ParamError) as caught:
        grid_expand("sma_crossover", grid, base)
    assert caught.value.errors[0][0] == field
    assert words in str(caught.value)


def test_unknown_strategy_is_an_error():
    with pytest.raises(ValueError, match="strategy"):
        grid_expand("sma_cross", {"fast": [5]})


def test_risk_axes_ride_along_with_the_parameters():
    grid = grid_expand(
        "sma_crossover",
        {"fast": [5, 10], "direction": ["long", "short"]},
        {"slow": 30, "stop_loss_pct": 5},
    )
    assert grid.combinations[0] == {
        "fast": 5, "slow": 30, "stop_loss_pct": 5, "direction": "long",
    }  # fmt: skip
    assert [c["direction"] for c in grid.combinations] == ["long", "short"] * 2


def test_the_cap_counts_combinations_before_skipping():
    side = math.isqrt(MAX_COMBINATIONS) + 1
    with pytest.raises(ParamError, match="combinations"):
        grid_expand(
            "sma_crossover",
            {"fast": list(range(2, 2 + side)), "slow": list(range(3, 3 + side))},
        )


# -- per coin ------------------------------------------------------------------

SMALL_GRID = {"fast": [5, 12, 20, 50], "slow": [20, 30, 100]}


@pytest.mark.parametrize("symbol", ["BTC", "DOGE"])
def test_sweep_coin_equals_run_backtest_on_real_data(real_data_dir, symbol):
    bars = load_bars(real_data_dir, symbol, last=8_000)
    grid = grid_expand("sma_crossover", SMALL_GRID)
    cells = sweep_coin(
        bars, "sma_crossover", grid.combinations, fee=0.001, slippage_bps=5,
        interval="1h",
    )  # fmt: skip
    assert len(cells) == len(grid.combinations) == 9
    for combination, metrics in zip(grid.combinations, cells, strict=True):
        expected = run_backtest(
            bars, "sma_crossover", combination, fee=0.001, slippage_bps=5
        ).metrics
        assert metrics == expected, combination


@pytest.mark.parametrize(
    ("strategy", "grid"),
    [
        ("ema_crossover", {"fast": [3, 9], "slow": [12, 40]}),
        ("rsi_reversion", {"period": [7, 14], "lower": [25.0, 35.0]}),
        ("donchian_breakout", {"entry": [10, 30], "exit": [5, 20]}),
    ],
)
def test_sweep_coin_other_strategies(strategy, grid):
    bars = make_bars(7, 3_000)
    combinations = grid_expand(strategy, grid).combinations
    cells = sweep_coin(bars, strategy, combinations, interval="1h")
    for combination, metrics in zip(combinations, cells, strict=True):
        assert metrics == run_backtest(bars, strategy, combination).metrics


def test_sweep_coin_of_nothing_is_empty():
    assert sweep_coin(make_bars(1, 200), "sma_crossover", []) == []


# -- cells ---------------------------------------------------------------------


def test_aggregate_by_hand_with_nulls():
    coins = [
        # beats buy & hold with trades
        {"total_return_pct": 10.0, "buy_hold_return_pct": 5.0, "sharpe": 1.0,
         "max_drawdown_pct": 20.0, "num_trades": 3},
        # above buy & hold but never traded: does not count
        {"total_return_pct": 0.0, "buy_hold_return_pct": -30.0, "sharpe": None,
         "max_drawdown_pct": 0.0, "num_trades": 0},
        # below buy & hold
        {"total_return_pct": -4.0, "buy_hold_return_pct": 50.0, "sharpe": -0.5,
         "max_drawdown_pct": 40.0, "num_trades": 7},
        # beats it
        {"total_return_pct": 30.0, "buy_hold_return_pct": 29.0, "sharpe": 2.0,
         "max_drawdown_pct": 10.0, "num_trades": 1},
    ]  # fmt: skip
    cell = aggregate(coins)
    assert list(cell) == list(AGGREGATE_KEYS)
    assert cell == {
        "median_return_pct": 5.0,  # (0 + 10) / 2
        "mean_return_pct": 9.0,  # 36 / 4
        "mean_sharpe": 2.5 / 3,  # the null left out
        "beat_buy_hold": 2,
        "median_max_drawdown_pct": 15.0,
        "trades": 11,
        "coins": 4,
    }


def test_aggregate_all_null_and_empty():
    coin = {"total_return_pct": None, "buy_hold_return_pct": None, "sharpe": None,
            "max_drawdown_pct": None, "num_trades": 0}  # fmt: skip
    assert aggregate([coin, coin]) == {
        "median_return_pct": None, "mean_return_pct": None, "mean_sharpe": None,
        "beat_buy_hold": 0, "median_max_drawdown_pct": None, "trades": 0,
        "coins": 2,
    }  # fmt: skip
    assert aggregate([])["coins"] == 0


def test_aggregate_equals_a_plain_loop_over_real_backtests():
    datasets = [make_bars(seed, 2_000) for seed in range(5)]
    params = {"fast": 10, "slow": 40}
    per_coin = [sweep_coin(bars, "sma_crossover", [params])[0] for bars in datasets]
    # The plain loop: sort and pick, sum and divide.
    returns = sorted(m["total_return_pct"] for m in per_coin)
    sharpes = [m["sharpe"] for m in per_coin if m["sharpe"] is not None]
    drawdowns = sorted(m["max_drawdown_pct"] for m in per_coin)
    beat = 0
    trades = 0
    for m in per_coin:
        trades += m["num_trades"]
        if m["num_trades"] and m["total_return_pct"] > m["buy_hold_return_pct"]:
            beat += 1
    cell = aggregate(per_coin)
    assert cell["median_return_pct"] == returns[2]
    assert cell["median_max_drawdown_pct"] == drawdowns[2]
    assert cell["mean_return_pct"] == pytest.approx(sum(returns) / 5, rel=1e-12)
    assert cell["mean_sharpe"] == pytest.approx(sum(sharpes) / len(sharpes), rel=1e-12)
    assert cell["beat_buy_hold"] == beat and cell["trades"] == trades
    assert cell["coins"] == 5


def test_best_index_ties_nulls_and_direction():
    cells = [
        {"median_return_pct": None, "median_max_drawdown_pct": 30.0},
        {"median_return_pct": 4.0, "median_max_drawdown_pct": 10.0},
        {"median_return_pct": 4.0, "median_max_drawdown_pct": 10.0},
        {"median_return_pct": -1.0, "median_max_drawdown_pct": None},
    ]
    assert best_index(cells, "median_return_pct") == 1
    assert best_index(cells, "median_max_drawdown_pct") == 1  # lower is better
    assert best_index([cells[0]], "median_return_pct") is None
    with pytest.raises(ValueError, match="objective"):
        best_index(cells, "final_equity")


def test_median_of_even_count_uses_both_middle_values():
    # Guards against an off-by-one median: statistics.median is the reference.
    values = list(np.random.default_rng(3).normal(size=8))
    coins = [{"total_return_pct": v, "num_trades": 1} for v in values]
    assert aggregate(coins)["median_return_pct"] == statistics.median(values)


# -- the block engine against run_backtest, bit for bit -------------------------

STRESS_GRIDS = {
    "sma_crossover": {"fast": [2, 3, 5, 9], "slow": [3, 6, 20, 60]},
    "ema_crossover": {"fast": [2, 4], "slow": [5, 30]},
    "rsi_reversion": {"period": [3, 14], "upper": [60.0, 80.0]},
    "bollinger_reversion": {"period": [5, 20], "std": [1.0, 2.0]},
    "macd_crossover": {"fast": [3, 12], "signal": [2, 9]},
    "donchian_breakout": {"entry": [3, 20], "exit": [2, 10]},
}


@pytest.mark.parametrize("seed", range(12))
def test_every_metric_equals_run_backtest_exactly(seed):
    # Lengths around the drawdown block (256) and tiny series; flat stretches
    # (ties, zero returns); costs on and off.
    rng = np.random.default_rng(seed)
    n = int(rng.choice([1, 2, 3, 10, 255, 256, 257, 513, 700, 3000]))
    bars = make_bars(seed, n, flat_runs=int(rng.integers(0, 5)))
    fee = float(rng.choice([0.0, 0.001, 0.01]))
    slippage = float(rng.choice([0.0, 5.0, 30.0]))
    for strategy, grid in STRESS_GRIDS.items():
        combinations = grid_expand(strategy, grid).combinations
        found = sweep_coin(bars, strategy, combinations, fee=fee, slippage_bps=slippage)
        for combination, metrics in zip(combinations, found, strict=True):
            expected = run_backtest(
                bars, strategy, combination, fee=fee, slippage_bps=slippage
            ).metrics
            assert metrics == expected, (n, strategy, combination)
            assert list(metrics) == list(expected)


def test_a_subset_of_metrics_is_the_same_numbers():
    bars = make_bars(5, 4_000, flat_runs=3)
    combinations = grid_expand("sma_crossover", SMALL_GRID).combinations
    full = sweep_coin(bars, "sma_crossover", combinations)
    for keys in (("num_trades",), ("sortino", "final_equity")):
        part = sweep_coin(bars, "sma_crossover", combinations, keys=keys)
        assert part == [{k: m[k] for k in keys} for m in full]
    # The cell metrics come from the trades alone (strategies.segments): the
    # same quantities summed in another order, so Sharpe and the drawdown
    # agree to rounding (test_segments checks them on real data).
    part = sweep_coin(bars, "sma_crossover", combinations, keys=SWEEP_KEYS)
    for found, every in zip(part, full, strict=True):
        assert list(found) == list(SWEEP_KEYS)
        assert found == {k: pytest.approx(every[k], rel=1e-9) for k in SWEEP_KEYS}
    with pytest.raises(ValueError, match="keys"):
        sweep_coin(bars, "sma_crossover", combinations, keys=("sharp",))


def test_more_combinations_than_a_block_and_a_ragged_last_block():
    bars = make_bars(11, 2_500)
    grid = grid_expand("sma_crossover", {"fast": "2:40:1", "slow": [41]})
    assert len(grid.combinations) == 39  # several blocks, the last one short
    found = sweep_coin(bars, "sma_crossover", grid.combinations, fee=0.002)
    for combination, metrics in zip(grid.combinations, found, strict=True):
        assert (
            metrics
            == run_backtest(bars, "sma_crossover", combination, fee=0.002).metrics
        )


def test_sweep_coin_rejects_bad_input_like_the_engine():
    bars = make_bars(1, 300)
    with pytest.raises(ValueError, match="fee"):
        sweep_coin(bars, "sma_crossover", [{"fast": 5, "slow": 9}], fee=-1)
    with pytest.raises(ValueError, match="fast"):
        sweep_coin(bars, "sma_crossover", [{"fast": 9, "slow": 5}])
    with pytest.raises(ValueError, match="interval"):
        sweep_coin(bars, "sma_crossover", [{}], interval="2h")


def test_risk_axes_and_risk_argument_equal_run_backtest():
    bars = make_bars(21, 3_000)
    grid = grid_expand(
        "sma_crossover",
        {"fast": [5, 10], "stop_loss_pct": [2.0, 5.0], "direction": ["long", "both"]},
        {"slow": 30},
    )
    found = sweep_coin(bars, "sma_crossover", grid.combinations, fee=0.001)
    for combination, metrics in zip(grid.combinations, found, strict=True):
        params, risk = split_params(combination)
        expected = run_backtest(bars, "sma_crossover", params, fee=0.001, risk=risk)
        assert metrics == expected.metrics, combination
    # A sweep-wide risk applies to every combination; a combination's own wins.
    combinations = [
        {"fast": 5, "slow": 30},
        {"fast": 5, "slow": 30, "direction": "long"},
    ]
    found = sweep_coin(bars, "sma_crossover", combinations, risk={"direction": "short"})
    short = run_backtest(
        bars, "sma_crossover", combinations[0], risk=Risk(direction="short")
    )
    assert found[0] == short.metrics
    assert found[1] == run_backtest(bars, "sma_crossover", combinations[0]).metrics
    assert found[0] != found[1]


def test_validation_is_not_fooled_by_equal_values_of_another_type():
    bars = make_bars(2, 300)
    with pytest.raises(ValueError, match="between"):
        sweep_coin(bars, "sma_crossover", [{"fast": 1, "slow": 20}])
    with pytest.raises(ValueError, match="boolean"):
        sweep_coin(bars, "sma_crossover", [{"fast": True, "slow": 20}])
    assert sweep_coin(bars, "sma_crossover", [{"fast": 5.0, "slow": 20}]) == (
        sweep_coin(bars, "sma_crossover", [{"fast": 5, "slow": 20}])
    )


def test_blocks_of_combinations_give_the_whole_grids_numbers():
    # Workers run a block of combinations per task: any split gives the same.
    bars = make_bars(8, 2_000)
    combinations = grid_expand("sma_crossover", SMALL_GRID).combinations
    whole = sweep_coin(bars, "sma_crossover", combinations, keys=SWEEP_KEYS)
    pieces = [
        sweep_coin(bars, "sma_crossover", combinations[i : i + 4], keys=SWEEP_KEYS)
        for i in range(0, len(combinations), 4)
    ]
    assert [m for piece in pieces for m in piece] == whole
    reversed_order = sweep_coin(
        bars, "sma_crossover", combinations[::-1], keys=SWEEP_KEYS
    )
    assert reversed_order == whole[::-1]


def test_a_risk_axis_may_include_off():
    grid = grid_expand("sma_crossover", {"stop_loss_pct": [None, 2, 5]}, {"fast": 5})
    assert grid.axes["stop_loss_pct"] == [None, 2.0, 5.0]
    assert [c["stop_loss_pct"] for c in grid.combinations] == [None, 2.0, 5.0]
    with pytest.raises(ParamError) as caught:
        grid_expand("sma_crossover", {"fast": [None, 5]})
    assert caught.value.errors[0][0] == "fast"
    bars = make_bars(4, 1_500)
    found = sweep_coin(bars, "sma_crossover", grid.combinations)
    # "Off" is the plain engine.
    assert found[0] == run_backtest(bars, "sma_crossover", {"fast": 5}).metrics
    assert (
        found[1]
        == run_backtest(
            bars, "sma_crossover", {"fast": 5}, risk={"stop_loss_pct": 2}
        ).metrics
    )
