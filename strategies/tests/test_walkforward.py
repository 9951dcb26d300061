"""Walk-forward: fold layout, the choice per fold against a brute-force search
with run_backtest, coin alignment and the stitched equity."""

from __future__ import annotations

import math

import numpy as np
import pytest

from strategies.engine import run_backtest
from strategies.params import ParamError
from strategies.tests.realdata import load_bars
from strategies.tests.test_engine import make_bars
from strategies.types import Bars
from strategies.walkforward import walk_forward

GRID = {"fast": [5, 10, 20], "slow": [30, 50, 100]}
COMBINATIONS = [
    {"fast": f, "slow": s} for f in GRID["fast"] for s in GRID["slow"] if f < s
]


def cut(bars: Bars, first: int, last: int) -> Bars:
    """The bars with first <= time <= last, by a plain mask."""
    keep = (bars.time >= first) & (bars.time <= last)
    return Bars(*(column[keep] for column in bars))


def shifted(bars: Bars, hours: int) -> Bars:
    """The same bars starting ``hours`` later."""
    return bars._replace(time=bars.time + 3600 * hours)


def plain_median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


@pytest.fixture(scope="module")
def real():
    # Module scope (the walk-forward runs once for several tests), so the
    # location is read as the real_data_dir fixture reads it.
    from conftest import REAL_DATA_DIR as directory

    if not directory.is_dir():
        pytest.skip(f"real data not found at {directory}")
    # Different histories: AAVE's last 9,000 bars start later than the others'.
    return {
        "BTC": load_bars(directory, "BTC", last=12_000),
        "ETH": load_bars(directory, "ETH", last=12_000),
        "AAVE": load_bars(directory, "AAVE", last=9_000),
    }


@pytest.fixture(scope="module")
def real_run(real):
    return walk_forward(
        real, "sma_crossover", GRID, train_bars=3_000, test_bars=1_500, fee=0.001
    )


def test_folds_tile_the_end_of_the_range_without_overlap(real, real_run):
    axis = np.unique(np.concatenate([b.time for b in real.values()]))
    folds = real_run.folds
    assert len(folds) == (len(axis) - 3_000) // 1_500 == 6
    assert folds[-1].test.end == len(axis)
    for fold in folds:
        assert fold.train.end - fold.train.start == 3_000
        assert fold.test.end - fold.test.start == 1_500
        assert fold.train.end == fold.test.start
        assert fold.train.start_time == axis[fold.train.start]
        assert fold.train.end_time == axis[fold.train.end - 1]
        assert fold.test.start_time == axis[fold.test.start]
        assert fold.test.end_time == axis[fold.test.end - 1]
    for before, after in zip(folds, folds[1:], strict=False):
        # Test windows follow each other with no gap and no shared bar.
        assert after.test.start == before.test.end
        assert after.test.start_time > before.test.end_time
        assert after.train.start == before.train.start + 1_500
    assert len(real_run.stitched.time) == 6 * 1_500


def test_a_coin_takes_part_only_in_folds_its_history_covers(real, real_run):
    for fold in real_run.folds:
        for symbol, bars in real.items():
            covers = (
                bars.time[0] <= fold.train.start_time
                and bars.time[-1] >= fold.test.end_time
            )
            assert (symbol in fold.coins) == covers, (symbol, fold.test)
    # The three histories differ: AAVE starts late, BTC's file ends early.
    assert "AAVE" not in real_run.folds[0].coins
    assert "AAVE" in real_run.folds[-1].coins
    assert "BTC" in real_run.folds[0].coins
    # Sitting a fold out is NaN in the stitched curve, not a made-up value.
    assert np.isnan(real_run.stitched.equity["AAVE"][:1_500]).all()


def test_the_choice_is_the_brute_force_argmax(real, real_run):
    for fold in real_run.folds:
        best, best_value = None, -math.inf
        for combination in COMBINATIONS:
            returns = [
                run_backtest(
                    cut(real[s], fold.train.start_time, fold.train.end_time),
                    "sma_crossover", combination, fee=0.001,
                ).metrics["total_return_pct"]
                for s in fold.coins
            ]  # fmt: skip
            value = plain_median(returns)
            if value > best_value:  # strictly: the first wins a tie
                best, best_value = combination, value
        assert fold.params == best
        assert fold.in_sample["median_return_pct"] == best_value
        tested = [
            run_backtest(
                cut(real[s], fold.test.start_time, fold.test.end_time),
                "sma_crossover", best, fee=0.001,
            ).metrics
            for s in fold.coins
        ]  # fmt: skip
        assert fold.out_of_sample["median_return_pct"] == plain_median(
            [m["total_return_pct"] for m in tested]
        )
        for s, metrics in zip(fold.coins, tested, strict=True):
            assert fold.growth[s] == pytest.approx(
                metrics["final_equity"] / 10_000, rel=1e-12
            )


def test_stitched_equity_is_the_product_of_the_window_growths(real_run):
    stitched = real_run.stitched
    for symbol in ("BTC", "ETH", "AAVE"):
        level = market = 10_000.0
        offset = 0
        for fold in real_run.folds:
            offset += fold.test.end - fold.test.start
            if symbol not in fold.coins:
                continue
            level *= fold.growth[symbol]
            market *= fold.buy_hold_growth[symbol]
            # The window ends where the product of the growths so far says.
            assert stitched.equity[symbol][offset - 1] == pytest.approx(
                level, rel=1e-12
            )
            assert stitched.buy_hold[symbol][offset - 1] == pytest.approx(
                market, rel=1e-12
            )
    portfolio = market = 10_000.0
    offset = 0
    for fold in real_run.folds:
        portfolio *= sum(fold.growth.values()) / len(fold.growth)
        market *= sum(fold.buy_hold_growth.values()) / len(fold.buy_hold_growth)
        offset += fold.test.end - fold.test.start
        assert stitched.mean_equity[offset - 1] == pytest.approx(portfolio, rel=1e-12)
        assert stitched.mean_buy_hold[offset - 1] == pytest.approx(market, rel=1e-12)
    assert real_run.final["equity"] == pytest.approx(portfolio, rel=1e-12)
    # Each window starts from the previous one's end: no jump at a boundary
    # beyond one bar's move (the first bar of a window is flat, so exactly
    # equal for the equity).
    boundary = real_run.folds[0].test.end - real_run.folds[0].test.start
    for symbol in real_run.folds[0].coins:
        curve = stitched.equity[symbol]
        assert curve[boundary] == pytest.approx(curve[boundary - 1], rel=1e-12)


def test_synthetic_alignment_by_time_and_a_lower_is_better_objective():
    base = make_bars(3, 1_200)
    late = shifted(make_bars(4, 900), 300)  # starts 300 hours after the others
    data = {"A": base, "B": make_bars(5, 1_200), "C": late}
    run = walk_forward(
        data, "sma_crossover", {"fast": [3, 8], "slow": [12, 40]},
        train_bars=400, test_bars=200, objective="median_max_drawdown_pct",
    )  # fmt: skip
    assert [f.test.start for f in run.folds] == [400, 600, 800, 1000]
    # C starts at hour 300: it covers the folds training from 400 and 600.
    assert [f.coins for f in run.folds] == [("A", "B")] * 2 + [("A", "B", "C")] * 2
    for fold in run.folds:
        drawdowns = {}
        for fast, slow in ((3, 12), (3, 40), (8, 12), (8, 40)):
            combination = {"fast": fast, "slow": slow}
            values = [
                run_backtest(
                    cut(data[s], fold.train.start_time, fold.train.end_time),
                    "sma_crossover", combination,
                ).metrics["max_drawdown_pct"]
                for s in fold.coins
            ]  # fmt: skip
            drawdowns[tuple(combination.values())] = plain_median(values)
        lowest = min(drawdowns.values())
        first = next(k for k, v in drawdowns.items() if v == lowest)
        assert tuple(fold.params.values()) == first


def test_folds_argument_keeps_the_most_recent():
    data = {"A": make_bars(1, 1_000)}
    every = walk_forward(data, "sma_crossover", {"fast": [3]}, train_bars=300,
                         test_bars=100)  # fmt: skip
    last_two = walk_forward(data, "sma_crossover", {"fast": [3]}, train_bars=300,
                            test_bars=100, folds=2)  # fmt: skip
    assert len(every.folds) == 7 and len(last_two.folds) == 2
    assert [f.test for f in last_two.folds] == [f.test for f in every.folds[-2:]]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"train_bars": 900, "test_bars": 200}, "train_bars"),
        ({"train_bars": 0, "test_bars": 200}, "train_bars"),
        ({"train_bars": 100, "test_bars": 2.5}, "test_bars"),
        (
            {"train_bars": 100, "test_bars": 100, "objective": "final_equity"},
            "objective",
        ),  # fmt: skip
        ({"train_bars": 100, "test_bars": 100, "folds": 0}, "folds"),
    ],
)
def test_bad_arguments_name_the_field(kwargs, field):
    with pytest.raises(ParamError) as caught:
        walk_forward({"A": make_bars(1, 1_000)}, "sma_crossover", {"fast": [3]},
                     **kwargs)  # fmt: skip
    assert caught.value.errors[0][0] == field


def test_bad_bars_name_the_coin():
    bars = make_bars(1, 500)
    backwards = bars._replace(time=bars.time[::-1].copy())
    with pytest.raises(ParamError) as caught:
        walk_forward({"A": bars, "B": backwards}, "sma_crossover", {"fast": [3]},
                     train_bars=100, test_bars=100)  # fmt: skip
    assert caught.value.errors[0][0] == "B"
