"""Parameter sweeps: a grid of one strategy's parameters run on many coins.

A grid maps parameter names to axes (``"start:stop:step"``, inclusive, a
``{"start", "stop", "step"}`` mapping or a list of values). ``grid_expand``
turns it into the valid combinations (full parameters, defaults filled) and a
count of the skipped ones (fast >= slow and the like); ``sweep_coin`` runs
combinations on one coin's bars and returns the same metrics ``run_backtest``
gives, bit for bit; ``aggregate`` reduces one combination's metrics across
coins to a cell and ``best_index`` picks the best cell by an objective::

    grid = grid_expand("sma_crossover", {"fast": "5:50:5", "slow": "20:200:10"})
    per_coin = [sweep_coin(bars, "sma_crossover", grid.combinations,
                           keys=SWEEP_KEYS) for bars in coins]
    cells = [aggregate(list(column)) for column in zip(*per_coin)]

Any slice of ``grid.combinations`` gives the same numbers as the whole (a
worker can take a block of combinations for one coin). ``keys=SWEEP_KEYS``
computes only what a cell reads, much faster than all the metrics.

The risk settings (stops, targets, direction, sizing) are axes like any
parameter; a combination carries them beside the strategy's parameters.
"""

from __future__ import annotations

import functools
import itertools
import math
import numbers
import statistics
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from strategies import batch
from strategies.engine import INITIAL_EQUITY, _check_bars, _check_costs, run_many
from strategies.metrics import METRIC_KEYS
from strategies.params import ParamError, ParamSpec
from strategies.registry import get_strategy, validate_params
from strategies.risk import DEFAULT_RISK, Risk, validate_risk
from strategies.types import Bars, Metrics

__all__ = [
    "AGGREGATE_KEYS",
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

# A grid larger than this is refused before anything runs: 10,000 combinations
# on 48 coins is already half a million backtests.
MAX_COMBINATIONS = 10_000

# The settings every strategy takes besides its own parameters.
RISK_KEYS = (
    "stop_loss_pct",
    "take_profit_pct",
    "trailing_stop_pct",
    "direction",
    "position_size",
)

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
AxisSpec = str | Mapping[str, object] | Sequence[object]


# -- axes ----------------------------------------------------------------------


def _fail(name: str, message: str) -> ParamError:
    """Return the error for axis ``name`` (a ValueError naming it)."""
    return ParamError([(name, message)])


def _decimal(name: str, part: str, value: object) -> Decimal:
    """Return ``value`` as an exact decimal, or raise naming the axis and part."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real | str):
        raise _fail(name, f"{part} must be a number, got {value!r}")
    # repr of a float is its shortest round-trip form: 0.1 -> Decimal("0.1").
    if isinstance(value, str):
        text = value.strip()
    elif isinstance(value, numbers.Integral):
        text = str(int(value))
    else:
        text = repr(float(value))
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise _fail(name, f"{part} must be a number, got {value!r}") from None
    if not number.is_finite():
        raise _fail(name, f"{part} must be a finite number, got {value!r}")
    return number


def _range(name: str, start: object, stop: object, step: object) -> list:
    """Return start, start + step, ... up to stop inclusive, without float drift.

    The arithmetic is exact (decimal), so 0.1:0.3:0.1 gives 0.1, 0.2, 0.3 and
    every value is the float nearest its decimal; all-integral bounds and step
    give ints.
    """
    first = _decimal(name, "start", start)
    last = _decimal(name, "stop", stop)
    size = _decimal(name, "step", step)
    if size <= 0:
        raise _fail(name, f"step must be positive, got {step!r}")
    if last < first:
        raise _fail(name, f"stop ({stop!r}) must not be below start ({start!r})")
    count = int((last - first) // size) + 1
    if count > MAX_COMBINATIONS:
        raise _fail(
            name, f"{count:,} values; a grid may have at most {MAX_COMBINATIONS:,}"
        )
    values = [first + size * i for i in range(count)]
    if all(v == v.to_integral_value() for v in (first, size)):
        return [int(v) for v in values]
    return [float(v) for v in values]


def _scalar(text: str) -> int | float | str:
    """Return a command-line value as an int, a float or the text itself."""
    text = text.strip()
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_axis(name: str, spec: AxisSpec) -> list:
    """Return the values of axis ``name`` from its spec, or raise ParamError.

    ``spec`` is ``"start:stop:step"`` (the command line; ``"a,b,c"`` or one
    value also work), a ``{"start", "stop", "step"}`` mapping or a list of
    values. Ranges include ``stop`` when the steps land on it; integral ranges
    stay ints. An empty axis, a step that is not positive, duplicates or more
    than MAX_COMBINATIONS values are errors naming the axis.
    """
    if isinstance(spec, str):
        parts = spec.split(":")
        if len(parts) == 3:
            return _range(name, *parts)
        if len(parts) != 1 or not spec.strip():
            raise _fail(
                name,
                f"expected start:stop:step or a comma-separated list, got {spec!r}",
            )
        values = [_scalar(part) for part in spec.split(",")]
    elif isinstance(spec, Mapping):
        keys = set(spec)
        if keys != {"start", "stop", "step"}:
            raise _fail(
                name,
                "expected the keys start, stop and step, got "
                + (", ".join(sorted(map(str, keys))) or "none"),
            )
        return _range(name, spec["start"], spec["stop"], spec["step"])
    elif isinstance(spec, Sequence):
        values = list(spec)
    else:
        raise _fail(
            name,
            f"expected start:stop:step, a start/stop/step mapping or a list, "
            f"got {type(spec).__name__}",
        )
    if not values:
        raise _fail(name, "an axis needs at least one value")
    if len(values) > MAX_COMBINATIONS:
        raise _fail(
            name,
            f"{len(values):,} values; a grid may have at most {MAX_COMBINATIONS:,}",
        )
    for value in values:
        if isinstance(value, bool) or not isinstance(value, numbers.Real | str):
            raise _fail(name, f"expected numbers or names, got {value!r}")
        if isinstance(value, str) and not value:
            raise _fail(name, "an empty value")
    _check_unique(name, values)
    return values


def _check_unique(name: str, values: list) -> None:
    """Raise ParamError naming the axis if a value repeats."""
    seen: set = set()
    for value in values:
        if value in seen:
            raise _fail(name, f"value {value!r} appears twice")
        seen.add(value)


# -- risk settings -------------------------------------------------------------


def _check_risk_value(name: str, value: object) -> object:
    """Return a valid value of risk setting ``name``, or raise ParamError."""
    return getattr(validate_risk({name: value}), name)


def split_params(
    combination: Mapping[str, object],
) -> tuple[dict[str, object], dict[str, object]]:
    """Return (strategy parameters, risk settings) of one combination."""
    params = {k: v for k, v in combination.items() if k not in RISK_KEYS}
    risk = {k: v for k, v in combination.items() if k in RISK_KEYS}
    return params, risk


# -- the grid ------------------------------------------------------------------


@dataclass(frozen=True)
class Grid:
    """The valid combinations of a grid, in grid order, and what was skipped.

    ``axes`` holds each axis' values, coerced to the parameter's type; the
    combinations run through them with the first axis slowest (so a 2-D grid
    is row by row). Each combination is the strategy's complete, validated
    parameters followed by any risk settings the grid or the base sets.
    """

    strategy: str
    axes: dict[str, list]
    combinations: list[dict[str, object]]
    skipped: int

    @property
    def total(self) -> int:
        """Return the number of combinations, valid or not."""
        return len(self.combinations) + self.skipped


def _coerce(spec: ParamSpec, value: object) -> int | float:
    """Return ``value`` coerced to the parameter, or raise ParamError naming it."""
    coerced, problem = spec.coerce(value)
    if problem:
        raise _fail(spec.name, f"{problem} (value {value!r})")
    return coerced


def grid_expand(
    strategy: str,
    grid: Mapping[str, AxisSpec],
    base_params: Mapping[str, object] | None = None,
) -> Grid:
    """Return the grid's valid combinations and the number skipped.

    ``base_params`` fixes the parameters (and risk settings) that are not
    axes; an axis overrides a base value of the same name. A value outside its
    parameter's limits or an unknown name is an error naming it; a combination
    that breaks a cross-parameter rule (fast >= slow, ...) is skipped and
    counted. More than MAX_COMBINATIONS combinations is an error.
    """
    spec = get_strategy(strategy)
    params = {p.name: p for p in spec.params}
    known = ", ".join([*params, *RISK_KEYS])
    if not isinstance(grid, Mapping) or not grid:
        raise _fail("grid", "expected at least one axis")
    base = dict(base_params or {})
    for name in [*grid, *base]:
        if name not in params and name not in RISK_KEYS:
            raise _fail(name, f"unknown parameter; expected one of {known}")

    axes: dict[str, list] = {}
    for name, axis in grid.items():
        values = parse_axis(name, axis)
        if name in params:
            values = [_coerce(params[name], v) for v in values]
        else:
            values = [_check_risk_value(name, v) for v in values]
        _check_unique(name, values)
        axes[name] = values
    total = math.prod(len(values) for values in axes.values())
    if total > MAX_COMBINATIONS:
        raise _fail(
            "grid",
            f"{total:,} combinations; a grid may have at most {MAX_COMBINATIONS:,}",
        )

    fixed: dict[str, object] = {}
    for name, value in base.items():
        if name in axes:
            continue
        if name in params:
            fixed[name] = _coerce(params[name], value)
        else:
            fixed[name] = _check_risk_value(name, value)
    risk_names = [k for k in RISK_KEYS if k in axes or k in fixed]

    combinations = []
    skipped = 0
    names = list(axes)
    for values in itertools.product(*axes.values()):
        chosen = {**fixed, **dict(zip(names, values, strict=True))}
        strategy_params, risk = split_params(chosen)
        try:
            full = validate_params(strategy, strategy_params)
        except ParamError:
            skipped += 1
            continue
        combinations.append({**full, **{k: risk[k] for k in risk_names}})
    return Grid(strategy, axes, combinations, skipped)


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


def _validated(strategy: str, params: Mapping[str, object]) -> dict[str, int | float]:
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
    strategy: str,
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
    that combination, to the last bit, restricted to ``keys`` if given (a sweep
    needs SWEEP_KEYS only, and skips the work of the rest). ``risk`` (a mapping
    or a Risk) applies to every combination; risk settings inside a
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
