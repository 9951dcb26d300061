"""Parameter sweeps: a grid of one strategy's parameters run on many coins.

A grid maps parameter names to axes (``"start:stop:step"``, inclusive, a
``{"start", "stop", "step"}`` mapping or a list of values). ``grid_expand``
turns it into the valid combinations (full parameters, defaults filled) and a
count of the skipped ones (fast >= slow and the like); ``sweep_coin`` runs
combinations on one coin's bars and returns the same metrics ``run_backtest``
gives (bit for bit, except that Sharpe and the maximum drawdown of a
``keys=SWEEP_KEYS`` sweep agree to rounding, see below); ``aggregate``
reduces one combination's metrics across coins to a cell and ``best_index``
picks the best cell by an objective::

    grid = grid_expand("sma_crossover", {"fast": "5:50:5", "slow": "20:200:10"})
    per_coin = [sweep_coin(bars, "sma_crossover", grid.combinations,
                           keys=SWEEP_KEYS) for bars in coins]
    cells = [aggregate(list(column)) for column in zip(*per_coin)]

Any slice of ``grid.combinations`` gives the same numbers as the whole (a
worker can take a block of combinations for one coin). ``keys=SWEEP_KEYS``
computes only what a cell reads, from each backtest's trades and tables of the
coin's closes built once (``strategies.segments``), without an equity curve:
several times faster than all the metrics. Trade counts, total and buy & hold
returns stay bit for bit those of ``run_backtest``; Sharpe and the maximum
drawdown are the same quantities summed in another order (about 1e-13
relative apart; the tests hold them to 1e-9).

The grids themselves (axes, combinations, the risk settings as axes) are in
``strategies.grid``; their names are exported here too.
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Collection, Mapping, Sequence

from strategies import batch
from strategies.engine import INITIAL_EQUITY, _check_bars, _check_costs, run_many
from strategies.grid import (
    MAX_COMBINATIONS,
    RISK_KEYS,
    AxisSpec,
    Grid,
    grid_expand,
    parse_axis,
    split_params,
)
from strategies.metrics import METRIC_KEYS
from strategies.params import ParamError
from strategies.registry import StrategySpec, get_strategy, validate_params
from strategies.risk import DEFAULT_RISK, Risk, validate_risk
from strategies.types import Bars, Metrics

__all__ = [
    "AGGREGATE_KEYS",
    "AxisSpec",
    "MAX_COMBINATIONS",
    "OBJECTIVES",
    "RISK_KEYS",
    "SWEEP_KEYS",
    "Grid",
    "aggregate",
    "best_index",
    "grid_expand",
    "parse_axis",
    "split_params",
    "sweep_coin",
]

# What a cell reports, and for each objective whether more is better.
AGGREGATE_KEYS = (
    "median_return_pct",
    "mean_return_pct",
    "mean_sharpe",
    "beat_buy_hold",
    "median_max_drawdown_pct",
    "trades",
    "coins",
)
OBJECTIVES: dict[str, bool] = {
    "median_return_pct": True,
    "mean_return_pct": True,
    "mean_sharpe": True,
    "beat_buy_hold": True,
    "median_max_drawdown_pct": False,
}

# What aggregate reads: a sweep computes only these unless asked for more.
SWEEP_KEYS = (
    "total_return_pct",
    "buy_hold_return_pct",
    "sharpe",
    "max_drawdown_pct",
    "num_trades",
)


def _fail(name: str, message: str) -> ParamError:
    """Return the error for field ``name`` (a ValueError naming it)."""
    return ParamError([(name, message)])


# -- running -------------------------------------------------------------------


def _risk_settings(risk: Risk | Mapping[str, object] | None) -> dict[str, object]:
    """Return the risk settings given as a Risk or a mapping (None: none)."""
    if risk is None:
        return {}
    if isinstance(risk, Risk):
        return risk.as_dict()
    if not isinstance(risk, Mapping):
        raise _fail("risk", "expected a mapping of risk settings")
    return dict(risk)


def _validated(
    strategy: str | StrategySpec, params: Mapping[str, object]
) -> dict[str, int | float]:
    """Return validate_params(strategy, params), remembering recent answers (a
    sweep asks the same combinations for every coin)."""
    try:
        # The type too: True == 1 and 5 == 5.0 must not share an answer.
        key = (strategy, tuple((k, type(v), v) for k, v in params.items()))
        return dict(_validated_cached(key))
    except TypeError:  # an unhashable value: validate_params names it
        return validate_params(strategy, params)


@functools.lru_cache(maxsize=20_000)
def _validated_cached(key: tuple) -> tuple:
    strategy, items = key
    params = {name: value for name, _, value in items}
    return tuple(validate_params(strategy, params).items())


def _checked_keys(keys: Collection[str] | None) -> tuple[str, ...]:
    """Return the metric keys to compute, in METRIC_KEYS order."""
    if keys is None:
        return METRIC_KEYS
    unknown = [k for k in keys if k not in METRIC_KEYS]
    if unknown:
        raise _fail("keys", f"unknown metrics {', '.join(map(repr, unknown))}")
    return tuple(k for k in METRIC_KEYS if k in keys)


def sweep_coin(
    bars: Bars,
    strategy: str | StrategySpec,
    combinations: Sequence[Mapping[str, object]],
    *,
    fee: float = 0.001,
    slippage_bps: float = 0.0,
    interval: str = "1h",
    risk: Risk | Mapping[str, object] | None = None,
    keys: Collection[str] | None = None,
    initial_equity: float = INITIAL_EQUITY,
) -> list[Metrics]:
    """Return the metrics of every combination on one coin, in order.

    Each dict equals ``run_backtest(bars, strategy, params, ...).metrics`` for
    that combination, restricted to ``keys`` if given (a sweep needs
    SWEEP_KEYS only, and skips the work of the rest): to the last bit, except
    Sharpe and the maximum drawdown when every key asked for is a cell metric
    (see ``strategies.segments``; they agree to about 1e-13 relative).
    ``risk`` (a mapping or a Risk) applies to every combination; risk settings inside a
    combination override it. Indicators are computed once per coin and shared
    by every combination; the backtests run in blocks (see ``batch``).
    """
    bars = _check_bars(bars)
    _check_costs(fee, slippage_bps, interval, initial_equity)
    wanted = _checked_keys(keys)
    spec = get_strategy(strategy)
    base_risk = _risk_settings(risk)
    plain: list[tuple[int, dict[str, int | float]]] = []
    risky: dict[Risk, list[tuple[int, dict[str, int | float]]]] = {}
    for index, combination in enumerate(combinations):
        params, own_risk = split_params(combination)
        job = (index, _validated(strategy, params))
        settings = (
            validate_risk({**base_risk, **own_risk})
            if base_risk or own_risk
            else DEFAULT_RISK
        )
        if settings.is_default:
            plain.append(job)
        else:
            risky.setdefault(settings, []).append(job)
    out: list[Metrics] = [{}] * len(combinations)
    costs = {"fee": fee, "slippage_bps": slippage_bps, "interval": interval,
             "initial_equity": initial_equity}  # fmt: skip
    if plain:
        found = batch.run_block(bars, spec, [p for _, p in plain], keys=wanted,
                                **costs)  # fmt: skip
        for (index, _), metrics in zip(plain, found, strict=True):
            out[index] = metrics
    for settings, jobs in risky.items():
        # Stops, targets and shorts run through the engine's own path.
        for start in range(0, len(jobs), 32):
            block = jobs[start : start + 32]
            results = run_many(
                bars, [(strategy, p) for _, p in block], risk=settings, **costs
            )
            for (index, _), result in zip(block, results, strict=True):
                out[index] = {k: result.metrics[k] for k in wanted}
    return out


# -- cells ---------------------------------------------------------------------


def _values(per_coin: Sequence[Metrics], key: str) -> list[float]:
    """Return the non-null values of metric ``key`` across coins."""
    return [float(m[key]) for m in per_coin if m.get(key) is not None]


def aggregate(per_coin: Sequence[Metrics]) -> dict[str, float | int | None]:
    """Return one combination's cell: its metrics reduced across coins.

    median_return_pct        median of total_return_pct
    mean_return_pct          mean of total_return_pct
    mean_sharpe              mean of the Sharpe ratios that are defined
    beat_buy_hold            coins whose total return beat buy & hold with at
                             least one trade (a coin that never traded did not
                             beat the market, even when it fell)
    median_max_drawdown_pct  median of max_drawdown_pct
    trades                   sum of num_trades
    coins                    number of coins

    Null metrics are left out of the statistic; a statistic with no values
    at all is None.
    """
    returns = _values(per_coin, "total_return_pct")
    sharpes = _values(per_coin, "sharpe")
    drawdowns = _values(per_coin, "max_drawdown_pct")
    beat = 0
    for m in per_coin:
        total, market = m.get("total_return_pct"), m.get("buy_hold_return_pct")
        if (
            total is not None
            and market is not None
            and total > market
            and (m.get("num_trades") or 0) > 0
        ):
            beat += 1
    return {
        "median_return_pct": statistics.median(returns) if returns else None,
        "mean_return_pct": statistics.fmean(returns) if returns else None,
        "mean_sharpe": statistics.fmean(sharpes) if sharpes else None,
        "beat_buy_hold": beat,
        "median_max_drawdown_pct": statistics.median(drawdowns) if drawdowns else None,
        "trades": sum(int(m.get("num_trades") or 0) for m in per_coin),
        "coins": len(per_coin),
    }


def best_index(cells: Sequence[Mapping[str, object]], objective: str) -> int | None:
    """Return the index of the best cell by ``objective`` (the first on a tie).

    Higher is better except for ``median_max_drawdown_pct``; a cell whose
    objective is None never wins. None when no cell has a value.
    """
    if objective not in OBJECTIVES:
        raise _fail(
            "objective", f"expected one of {', '.join(OBJECTIVES)}, got {objective!r}"
        )
    sign = 1.0 if OBJECTIVES[objective] else -1.0
    best, best_value = None, -math.inf
    for index, cell in enumerate(cells):
        value = cell.get(objective)
        if value is None:
            continue
        if best is None or sign * float(value) > best_value:
            best, best_value = index, sign * float(value)
    return best
