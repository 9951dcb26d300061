"""Walk-forward validation: pick the best combination on each train window, run
it on the test window that follows, and stitch the out-of-sample results.

Alignment of coins with different histories. The time axis is the sorted union
of every coin's bar times. Folds are cut on that axis in bars: fold k trains on
axis bars [s, s + train_bars) and tests on [s + train_bars, s + train_bars +
test_bars), and the next fold starts test_bars later, so the test windows tile
the end of the range without overlapping (the folds are anchored at the last
bar; what is left over at the start, less than one test window, is not used).
A window stands for the time span from its first to its last axis bar; each
coin's bars are cut from its own series by time (a coin's missing hours are
simply absent from its slice, as the engine takes bars as stored). A coin takes
part in a fold only if its history covers the whole fold, from the train
window's first bar to the test window's last; the others sit the fold out.

Each window is backtested on its own bars, as ``run_backtest`` on that slice
would: indicators start afresh, so a window should be much longer than the
slowest indicator (its first bars hold no position while it warms up).

Stitching. Each coin's out-of-sample equity starts at the initial equity and
each test window continues from where the coin's previous window ended: at the
end of fold k it is the initial equity times the product of the coin's growths
(final / initial equity) over the folds it took part in. The mean across coins
is an equal-weight portfolio rebalanced at every fold: it grows by the mean of
the growths of the fold's coins. Buy & hold is stitched the same way from the
close-to-close moves of the same windows (no fees, as buy_hold_return_pct).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from strategies.engine import INITIAL_EQUITY, _check_bars, _check_costs, run_backtest
from strategies.params import ParamError
from strategies.risk import Risk
from strategies.sweep import (
    OBJECTIVES,
    SWEEP_KEYS,
    AxisSpec,
    Grid,
    aggregate,
    best_index,
    grid_expand,
    split_params,
    sweep_coin,
)
from strategies.types import Bars

__all__ = ["Fold", "Stitched", "Stopped", "WalkForward", "Window", "walk_forward"]


class Stopped(Exception):  # noqa: N818 - it is what happened, not a fault
    """The caller's ``should_stop`` asked the walk-forward to stop."""


def _check(should_stop: Callable[[], bool] | None) -> None:
    """Raise Stopped if the caller asks to stop."""
    if should_stop is not None and should_stop():
        raise Stopped


@dataclass(frozen=True)
class Window:
    """Axis bars [start, end) and the open times of the first and last of them."""

    start: int
    end: int
    start_time: int
    end_time: int

    def as_dict(self) -> dict[str, int]:
        """Return the window, JSON-serialisable."""
        return {
            "start": self.start,
            "end": self.end,
            "start_time": self.start_time,
            "end_time": self.end_time,
        }


@dataclass(frozen=True)
class Fold:
    """One fold: its windows, the coins in it, the chosen combination (None
    when no coin took part or no combination had a value) and the cells of
    that combination in and out of sample, plus each coin's growth (final /
    initial equity) on the test window and buy & hold's."""

    train: Window
    test: Window
    coins: tuple[str, ...]
    params: dict[str, object] | None
    in_sample: dict[str, float | int | None]
    out_of_sample: dict[str, float | int | None]
    growth: dict[str, float]
    buy_hold_growth: dict[str, float]

    def as_dict(self) -> dict[str, object]:
        """Return the fold, JSON-serialisable."""
        return {
            "train": self.train.as_dict(),
            "test": self.test.as_dict(),
            "coins": list(self.coins),
            "params": self.params,
            "in_sample": self.in_sample,
            "out_of_sample": self.out_of_sample,
            "growth": self.growth,
            "buy_hold_growth": self.buy_hold_growth,
        }


@dataclass(frozen=True)
class Stitched:
    """Out-of-sample equity over the test windows, one value per axis bar.

    ``time`` holds the axis bars of every test window in order; per coin
    arrays are NaN over the folds the coin sat out and carry its last value
    over its missing hours; ``mean_*`` are the equal-weight portfolios.
    """

    time: np.ndarray
    equity: dict[str, np.ndarray]
    buy_hold: dict[str, np.ndarray]
    mean_equity: np.ndarray
    mean_buy_hold: np.ndarray


@dataclass(frozen=True)
class WalkForward:
    """A walk-forward run: its settings, the folds and the stitched equity."""

    strategy: str
    objective: str
    train_bars: int
    test_bars: int
    grid: Grid
    folds: list[Fold]
    stitched: Stitched
    initial_equity: float = INITIAL_EQUITY
    final: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """Return the run without per-bar curves, JSON-serialisable."""
        return {
            "strategy": self.strategy,
            "objective": self.objective,
            "train_bars": self.train_bars,
            "test_bars": self.test_bars,
            "combinations": len(self.grid.combinations),
            "skipped": self.grid.skipped,
            "folds": [fold.as_dict() for fold in self.folds],
            "final": self.final,
        }


def _fail(name: str, message: str) -> ParamError:
    return ParamError([(name, message)])


def _bars_count(name: str, value: object) -> int:
    """Return a positive whole number of bars, or raise naming the argument."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise _fail(name, f"expected a whole number of bars, got {value!r}")
    if value < 1:
        raise _fail(name, f"must be at least 1, got {value}")
    return int(value)


def _checked(bars_by_coin: Mapping[str, Bars]) -> dict[str, Bars]:
    """Return every coin's checked bars, or raise naming the coin."""
    if not isinstance(bars_by_coin, Mapping) or not bars_by_coin:
        raise _fail("bars_by_coin", "expected at least one coin's bars")
    out = {}
    for symbol, bars in bars_by_coin.items():
        try:
            checked = _check_bars(bars)
        except ValueError as error:
            raise _fail(str(symbol), str(error)) from None
        if len(checked.time) > 1 and not np.all(checked.time[1:] > checked.time[:-1]):
            raise _fail(str(symbol), "bar times must be strictly increasing")
        out[str(symbol)] = checked
    return out


def _cut(bars: Bars, first: int, last: int) -> Bars:
    """Return the bars whose open time lies in [first, last]."""
    low = int(np.searchsorted(bars.time, first, "left"))
    high = int(np.searchsorted(bars.time, last, "right"))
    return Bars(*(column[low:high] for column in bars))


def _windows(axis: np.ndarray, train: int, test: int, folds: int | None) -> list:
    """Return (train, test) windows anchored at the last axis bar."""
    count = (len(axis) - train) // test
    if folds is not None:
        count = min(count, folds)
    if count < 1:
        # Blame the size that alone cannot fit; when both fit alone, their sum.
        too_big = "test_bars" if test >= len(axis) and train < len(axis) else None
        raise _fail(
            too_big or "train_bars",
            f"{train} train + {test} test bars do not fit in the {len(axis)} bars "
            "of the range",
        )
    first = len(axis) - count * test - train
    out = []
    for k in range(count):
        start = first + k * test
        middle, end = start + train, start + train + test
        out.append(
            (
                Window(start, middle, int(axis[start]), int(axis[middle - 1])),
                Window(middle, end, int(axis[middle]), int(axis[end - 1])),
            )
        )
    return out


def _on_axis(times: np.ndarray, coin_times: np.ndarray, values: np.ndarray,
             before: float) -> np.ndarray:  # fmt: skip
    """Return ``values`` (at ``coin_times``) at every axis time, carrying the
    last value over missing bars and ``before`` ahead of the first."""
    where = np.searchsorted(times, coin_times)
    source = np.full(len(times), -1, dtype=np.intp)
    source[where] = np.arange(len(coin_times))
    np.maximum.accumulate(source, out=source)
    out = np.full(len(times), before)
    known = source >= 0
    out[known] = values[source[known]]
    return out


def walk_forward(
    bars_by_coin: Mapping[str, Bars],
    strategy: str,
    grid: Grid | Mapping[str, AxisSpec],
    *,
    train_bars: int,
    test_bars: int,
    objective: str = "median_return_pct",
    fee: float = 0.001,
    slippage_bps: float = 0.0,
    interval: str = "1h",
    risk: Risk | Mapping[str, object] | None = None,
    folds: int | None = None,
    initial_equity: float = INITIAL_EQUITY,
    should_stop: Callable[[], bool] | None = None,
) -> WalkForward:
    """Return a rolling walk-forward of ``strategy`` over ``grid`` (see the
    module docstring for how folds, coins and the stitching are defined).

    On each fold's train window every combination runs on every coin in the
    fold; the combination whose cell has the best ``objective`` (ties: the
    first in grid order) then runs on the test window. ``folds`` caps the
    number of folds (the most recent ones). Bad arguments raise ParamError
    naming them. ``should_stop`` is asked before every coin of every fold;
    when it answers true the walk-forward raises Stopped.
    """
    data = _checked(bars_by_coin)
    _check_costs(fee, slippage_bps, interval, initial_equity)
    train = _bars_count("train_bars", train_bars)
    test = _bars_count("test_bars", test_bars)
    if folds is not None:
        folds = _bars_count("folds", folds)
    if objective not in OBJECTIVES:
        choices = ", ".join(OBJECTIVES)
        raise _fail("objective", f"expected one of {choices}, got {objective!r}")
    if not isinstance(grid, Grid):
        grid = grid_expand(strategy, grid)
    elif grid.strategy != strategy:
        raise _fail("grid", f"expanded for {grid.strategy!r}, not {strategy!r}")
    costs = {"fee": fee, "slippage_bps": slippage_bps, "interval": interval,
             "initial_equity": initial_equity}  # fmt: skip

    axis = np.unique(np.concatenate([bars.time for bars in data.values()]))
    spans = {s: (int(b.time[0]), int(b.time[-1])) for s, b in data.items()}
    results = []
    for train_window, test_window in _windows(axis, train, test, folds):
        _check(should_stop)
        coins = tuple(
            s
            for s, (first, last) in spans.items()
            if first <= train_window.start_time and last >= test_window.end_time
        )
        results.append(
            _fold(
                data,
                strategy,
                grid,
                coins,
                train_window,
                test_window,
                objective,
                risk,
                costs,
                should_stop,
            )  # fmt: skip
        )
    folds_out = [fold for fold, _ in results]
    stitched = _stitch(axis, data, results, initial_equity)
    final = {
        "equity": float(stitched.mean_equity[-1]),
        "buy_hold": float(stitched.mean_buy_hold[-1]),
    }
    return WalkForward(strategy, objective, train, test, grid, folds_out, stitched,
                       initial_equity, final)  # fmt: skip


def _fold(
    data: dict[str, Bars],
    strategy: str,
    grid: Grid,
    coins: tuple[str, ...],
    train: Window,
    test: Window,
    objective: str,
    risk: Risk | Mapping[str, object] | None,
    costs: dict,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[Fold, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Return one fold and each coin's test window (bar times, equity curve,
    close) for the stitching."""
    if not coins or not grid.combinations:
        empty = aggregate([])
        fold = Fold(train, test, coins, None, empty, empty, {}, {})
        return fold, {}
    per_coin = []
    for s in coins:
        _check(should_stop)
        per_coin.append(
            sweep_coin(
                _cut(data[s], train.start_time, train.end_time),
                strategy,
                grid.combinations,
                risk=risk,
                keys=SWEEP_KEYS,
                **costs,
            )  # fmt: skip
        )
    cells = [aggregate(list(column)) for column in zip(*per_coin, strict=True)]
    chosen = best_index(cells, objective)
    if chosen is None:
        fold = Fold(train, test, coins, None, aggregate([]), aggregate([]), {}, {})
        return fold, {}
    combination = grid.combinations[chosen]
    params, own_risk = split_params(combination)
    settings = {**_risk_dict(risk), **own_risk}
    tested, curves, growth, market = [], {}, {}, {}
    for s in coins:
        bars = _cut(data[s], test.start_time, test.end_time)
        result = run_backtest(bars, strategy, params, risk=settings, **costs)
        tested.append(result.metrics)
        curves[s] = (bars.time, result.equity, bars.close)
        growth[s] = float(result.equity[-1] / costs["initial_equity"])
        market[s] = float(bars.close[-1] / bars.close[0])
    fold = Fold(train, test, coins, dict(combination), cells[chosen],
                aggregate(tested), growth, market)  # fmt: skip
    return fold, curves


def _risk_dict(risk: Risk | Mapping[str, object] | None) -> dict[str, object]:
    if risk is None:
        return {}
    return risk.as_dict() if isinstance(risk, Risk) else dict(risk)


def _stitch(
    axis: np.ndarray,
    data: dict[str, Bars],
    results: list,
    initial_equity: float,
) -> Stitched:
    """Chain the test windows' curves into the out-of-sample equity."""
    spans = [fold.test for fold, _ in results]
    times = np.concatenate([axis[w.start : w.end] for w in spans])
    equity = {s: np.full(len(times), np.nan) for s in data}
    market = {s: np.full(len(times), np.nan) for s in data}
    level = dict.fromkeys(data, initial_equity)
    market_level = dict.fromkeys(data, initial_equity)
    mean_equity = np.empty(len(times))
    mean_market = np.empty(len(times))
    portfolio = market_portfolio = initial_equity
    offset = 0
    for (fold, curves), window in zip(results, spans, strict=True):
        here = slice(offset, offset + window.end - window.start)
        window_times = axis[window.start : window.end]
        offset = here.stop
        if not curves:
            mean_equity[here] = portfolio
            mean_market[here] = market_portfolio
            continue
        ratio = np.zeros(len(window_times))
        market_ratio = np.zeros(len(window_times))
        for symbol, (coin_times, curve, close) in curves.items():
            scaled = _on_axis(window_times, coin_times, curve / initial_equity, 1.0)
            moved = _on_axis(window_times, coin_times, close / close[0], 1.0)
            equity[symbol][here] = level[symbol] * scaled
            market[symbol][here] = market_level[symbol] * moved
            level[symbol] *= fold.growth[symbol]
            market_level[symbol] *= fold.buy_hold_growth[symbol]
            ratio += scaled
            market_ratio += moved
        count = len(curves)
        mean_equity[here] = portfolio * (ratio / count)
        mean_market[here] = market_portfolio * (market_ratio / count)
        portfolio *= sum(fold.growth.values()) / count
        market_portfolio *= sum(fold.buy_hold_growth.values()) / count
    return Stitched(times, equity, market, mean_equity, mean_market)
