"""The vectorized backtest engine.

Execution model: the target position is decided on the close of bar t and filled
at the open of bar t+1, moved against the trader by the slippage. Long-only,
all-in with fractional units: an entry with equity E at fill price p buys
E / (p (1 + fee)) units, an exit of u units at p returns u p (1 - fee). A target
on the last bar has no next open and is ignored. A position still open on the
last bar is closed at that bar's close (no slippage, fee charged): the last
point of the equity curve and ``final_equity`` are after that fee, and the trade
is flagged ``closed_at_end``.

No Python loop runs over bars: indicators and signals are array operations;
positions, fills and the equity curve come from one compiled loop
(``fused.long_path``), the curve's metrics from another (``fused.curve_summary``),
and trades stay column-wise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from strategies.bartime import PERIODS_PER_YEAR, calendar_of, trade_gaps
from strategies.execution import simulate_risk
from strategies.fused import long_path
from strategies.kernels import frame, scratch
from strategies.metrics import compute_metrics
from strategies.registry import StrategySpec, get_strategy, validate_params
from strategies.risk import Risk, validate_risk
from strategies.signals import IndicatorCache
from strategies.types import BacktestResult, Bars

INITIAL_EQUITY = 10_000.0


def _check_bars(bars: Bars) -> Bars:
    """Return bars as int64/float64 arrays, or raise ValueError naming the problem.

    Open, high, low and close must be positive finite prices with high >= low
    on every bar; the error names the first malformed bar. (Fills and equity
    divide by open and close, and a high below the low lets a Donchian breakout
    and its exit fire on the same bar.) Volume is not used and not checked.
    """
    if not isinstance(bars, Bars):
        try:
            bars = Bars(*bars)
        except TypeError:
            raise ValueError(
                "bars: expected time, open, high, low, close, volume"
            ) from None
    n = len(bars.time)
    if n == 0:
        raise ValueError("bars: empty")
    columns = [np.asarray(c, dtype=np.float64) for c in bars[1:]]
    if any(c.ndim != 1 or len(c) != n for c in columns):
        raise ValueError("bars: every column must be 1-D and of the same length")
    open_, high, low, close = columns[:4]
    # A few reductions, no per-bar Python: min and max propagate NaN and NaN
    # fails every comparison. High and low need one bound each, since
    # high >= low > 0 and low <= high < inf.
    if not (
        open_.min() > 0
        and open_.max() < math.inf
        and close.min() > 0
        and close.max() < math.inf
        and low.min() > 0
        and high.max() < math.inf
        and np.all(high >= low)
    ):
        _raise_bad_bar(open_, high, low, close)
    return Bars(np.asarray(bars.time, dtype=np.int64), *columns)


def _raise_bad_bar(
    open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray
) -> None:
    """Raise ValueError for the earliest malformed bar (the slow path)."""
    problems = []
    names = ("open", "high", "low", "close")
    for name, column in zip(names, (open_, high, low, close), strict=True):
        bad = np.flatnonzero(~((column > 0) & (column < math.inf)))
        if len(bad):
            index = int(bad[0])
            message = (
                f"bars: every {name} must be a positive finite price; "
                f"bar {index} has {name}={float(column[index])!r}"
            )
            problems.append((index, message))
    bad = np.flatnonzero(high < low)
    if len(bad):
        index = int(bad[0])
        message = (
            f"bars: high must not be below low; bar {index} has "
            f"high={float(high[index])!r} < low={float(low[index])!r}"
        )
        problems.append((index, message))
    if problems:
        # The earliest bar; on a tie the first column, then high < low.
        raise ValueError(min(problems, key=lambda problem: problem[0])[1])


def _number(name: str, value: object) -> float:
    """Return value as a float, or raise ValueError naming the argument."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise ValueError(f"{name}: expected a number, got {value!r}")
    return float(value)


def _check_costs(
    fee: object, slippage_bps: object, interval: object, initial_equity: object
) -> None:
    """Raise ValueError naming the first invalid cost or setting."""
    if not 0.0 <= _number("fee", fee) < 1.0:
        raise ValueError(f"fee: must be in [0, 1), got {fee!r}")
    if not 0.0 <= _number("slippage_bps", slippage_bps) < 10_000.0:
        raise ValueError(f"slippage_bps: must be in [0, 10000), got {slippage_bps!r}")
    if not isinstance(interval, str) or interval not in PERIODS_PER_YEAR:
        choices = ", ".join(PERIODS_PER_YEAR)
        raise ValueError(f"interval: must be one of {choices}, got {interval!r}")
    if not 0.0 < _number("initial_equity", initial_equity) < math.inf:
        raise ValueError(f"initial_equity: must be positive, got {initial_equity!r}")


def simulate(
    bars: Bars,
    target: np.ndarray,
    *,
    fee: float,
    slippage_bps: float,
    initial_equity: float = INITIAL_EQUITY,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Return (equity, position, trade table) for a 0/1 target at each close."""
    return _simulate(bars, target, fee=fee, slippage_bps=slippage_bps,
                     initial_equity=initial_equity)[:3]  # fmt: skip


def _simulate(
    bars: Bars,
    target: np.ndarray,
    *,
    fee: float,
    slippage_bps: float,
    initial_equity: float,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], tuple]:
    """Return simulate's three and the curve's figures (fused.curve_summary)."""
    # One compiled loop over the bars (fused.long_path) lays out the position,
    # the fills and the equity curve together, and sums up the curve.
    (
        equity,
        position,
        entries,
        exit_index,
        entry_price,
        exit_price,
        units,
        growth,
        curve,
    ) = (  # fmt: skip
        # Floats and a contiguous boolean target whatever the caller passed:
        # one compiled signature.
        long_path(
            np.ascontiguousarray(target, dtype=np.bool_),
            bars.open,
            bars.close,
            float(fee),
            slippage_bps / 10_000.0,
            float(initial_equity),
        )
    )
    n, count = len(position), len(entries)
    open_at_end = bool(count) and bool(position[n - 1])
    closed_at_end = np.zeros(len(entries), dtype=bool)
    closed_at_end[-1:] = open_at_end
    # Every trade but one still open at the end left on a signal (a filled
    # array costs less than np.where's pick between two strings).
    reasons = np.full(count, "signal")
    if open_at_end:
        reasons[-1] = "end"
    trades = {
        "entry_index": entries,
        "exit_index": exit_index,
        "entry_time": bars.time[entries],
        "exit_time": bars.time[exit_index],
        "entry_price": entry_price,
        "exit_price": exit_price,
        "units": units,
        "return_pct": (growth - 1.0) * 100.0,
        # Bars during which the position is held: the exit bar counts only for
        # a position closed at the last bar's close (a signal exit fills at the
        # exit bar's open). So the trades' bars_held add up to exposure's bars.
        "bars_held": exit_index - entries + closed_at_end,
        "fees": units * (entry_price + exit_price) * fee,
        "closed_at_end": closed_at_end,
        "side": np.full(count, "long"),
        "exit_reason": reasons,
    }
    return equity, position, trades, curve


def run_backtest(
    bars: Bars,
    strategy: str | StrategySpec,
    params: Mapping[str, object] | None = None,
    *,
    fee: float = 0.001,
    slippage_bps: float = 0.0,
    interval: str = "1h",
    initial_equity: float = INITIAL_EQUITY,
    risk: Risk | Mapping[str, object] | None = None,
) -> BacktestResult:
    """Backtest one strategy on one coin's bars.

    ``params`` are validated (ParamError lists every problem); bad bars, fee,
    slippage, interval or initial equity raise ValueError naming the argument.
    A position still open on the last bar is sold at its close with the fee
    charged, so ``final_equity`` and the last equity point are net of that fee.
    ``risk`` (a Risk, or raw settings for ``validate_risk``) adds stops,
    targets, short positions and sizing; None is today's all-in long execution.
    """
    return run_many(
        bars,
        [(strategy, params)],
        fee=fee,
        slippage_bps=slippage_bps,
        interval=interval,
        initial_equity=initial_equity,
        risk=risk,
    )[0]


def run_many(
    bars: Bars,
    jobs: Sequence[tuple[str | StrategySpec, Mapping[str, object] | None]],
    *,
    fee: float = 0.001,
    slippage_bps: float = 0.0,
    interval: str = "1h",
    initial_equity: float = INITIAL_EQUITY,
    risk: Risk | Mapping[str, object] | None = None,
) -> list[BacktestResult]:
    """Backtest several (strategy, params) jobs on one coin, sharing indicators.

    A strategy is a built-in's key or a StrategySpec (a compiled rule program).

    Everything is validated before any work starts (bad risk settings raise
    ParamError naming each field). The results share one read-only
    ``buy_hold_equity`` array.
    """
    bars = _check_bars(bars)
    _check_costs(fee, slippage_bps, interval, initial_equity)
    risk = validate_risk(risk)
    checked = [
        (get_strategy(key), validate_params(key, params or {})) for key, params in jobs
    ]
    buy_hold = bars.close * (initial_equity / bars.close[0])
    buy_hold.flags.writeable = False
    # What depends on the bars alone is worked out once for all the jobs.
    calendar = calendar_of(bars.time, len(bars.close), interval)
    results = []
    with scratch():
        cache = IndicatorCache(bars)
        for spec, params in checked:
            if risk.is_default:
                # Today's execution, kept as its own path: bit for bit as before.
                target = spec.signal(cache, **params)
            else:
                sides = spec.sides(cache, risk.direction, **params)
            with frame():
                curve = None
                if risk.is_default:
                    equity, position, trades, curve = _simulate(
                        bars,
                        target,
                        fee=fee,
                        slippage_bps=slippage_bps,
                        initial_equity=initial_equity,
                    )
                else:
                    equity, position, trades = simulate_risk(
                        bars,
                        sides,
                        risk,
                        fee=fee,
                        slippage_bps=slippage_bps,
                        initial_equity=initial_equity,
                    )
                # Bars missing while a trade was held: flagged in its "gap"
                # column (the trade list shows it). Where no two bars of the
                # range are more than an interval apart, no trade can be.
                if calendar.longest_gap_hours:
                    trades["gap"] = trade_gaps(
                        trades["entry_time"],
                        trades["exit_time"],
                        trades["bars_held"],
                        trades["closed_at_end"],
                        interval,
                    )
                else:
                    trades["gap"] = np.zeros(len(trades["entry_time"]), np.bool_)
                metrics = compute_metrics(
                    equity,
                    trades,
                    position,
                    bars.close,
                    interval=interval,
                    time=bars.time,
                    calendar=calendar,
                    curve=curve,
                )
            results.append(
                BacktestResult(
                    strategy=spec.key,
                    params=params,
                    equity=equity,
                    position=position,
                    trade_table=trades,
                    metrics=metrics,
                    buy_hold_equity=buy_hold,
                    risk=risk,
                )
            )
    return results
