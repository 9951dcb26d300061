"""Portfolio sweeps: check a grid request (``sweep_run.py`` computes it).

A portfolio sweep is a grid of a strategy's parameters, its stop settings and
``max_positions`` (an axis like any parameter), each combination one portfolio
run over the same basket, range and costs. The basket, range, costs and rank
are checked by the portfolio run's own rules (``portfolio_spec``), the strategy
axes by the engine's ``grid_expand``, so a value means the same everywhere;
invalid combinations (fast >= slow, ...) are skipped and counted as in a sweep.
The command line computes a sweep in ``sweep_run.py``; the websocket stores
it (``sweep_services``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from backtester.portfolio.validation import (
    REFUSED,
    STOP_FIELDS,
    PortfolioSpec,
    _max_positions,
    portfolio_spec,
)
from backtester.runs.validation import RequestError
from strategies.grid import MAX_COMBINATIONS, grid_expand, parse_axis, split_params
from strategies.params import ParamError, brief
from strategies.portfolio_sweep import MAX_POSITIONS_KEY
from strategies.registry import validate_params
from strategies.risk import validate_risk

# What "best" can mean for a portfolio sweep, and whether more is better.
PORTFOLIO_OBJECTIVES: dict[str, bool] = {
    "total_return_pct": True,
    "cagr_pct": True,
    "sharpe": True,
    "sortino": True,
    "calmar": True,
    "profit_factor": True,
    "win_rate_pct": True,
    "max_drawdown_pct": False,
}
DEFAULT_OBJECTIVE = "total_return_pct"
SWEEP_FIELDS = {
    *STOP_FIELDS, "strategy", "grid", "params", "symbols", "start", "end",
    "interval", "fee", "slippage_bps", "max_positions", "rank", "objective",
}  # fmt: skip
# Fields portfolio_spec checks as they are (the rest are axes or parameters).
SPEC_FIELDS = ("strategy", "symbols", "start", "end", "interval", "fee")
SPEC_FIELDS += ("slippage_bps", "rank")


@dataclass(frozen=True)
class PortfolioSweepSpec:
    """A validated portfolio sweep: the shared settings and the combinations."""

    base: PortfolioSpec
    grid: dict
    axes: dict[str, list]
    combinations: tuple[dict, ...]
    skipped: int
    base_params: dict
    objective: str = DEFAULT_OBJECTIVE


def _refuse(name: str, within: str = "") -> None:
    """Refuse what a portfolio cannot do, named where it was given."""
    if name in REFUSED:
        where = f"{within}.{name}" if within else name
        raise RequestError(f"{where}: not for a portfolio; {REFUSED[name]}", where)


def _positions_axis(axis: object) -> list[int]:
    """Return the max_positions axis' values, or raise RequestError."""
    where = f"grid.{MAX_POSITIONS_KEY}"
    try:
        values = parse_axis(MAX_POSITIONS_KEY, axis)
    except (ParamError, ValueError) as exc:
        text = exc.errors[0][1] if isinstance(exc, ParamError) else str(exc)
        raise RequestError(f"{where}: {text}", where) from None
    checked = []
    for value in values:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        try:
            checked.append(_max_positions(value))
        except RequestError as exc:
            text = exc.message.removeprefix(MAX_POSITIONS_KEY + ": ")
            raise RequestError(f"{where}: {text}", where) from None
    if len(set(checked)) != len(checked):
        raise RequestError(f"{where}: a value is given twice", where)
    return checked


def _where(name: str, grid: Mapping, params: Mapping) -> str:
    """Return the request field a setting came from (a stop may be top level)."""
    if name in grid:
        return f"grid.{name}"
    if name in params:
        return f"params.{name}"
    return name if name in STOP_FIELDS else "grid"


def _strategy_combinations(
    strategy: str, grid: Mapping, params: Mapping, stops: Mapping
) -> tuple[dict[str, list], list[dict], int]:
    """Return the strategy axes, their valid combinations and the skipped count."""
    fixed = {**stops, **params}
    if grid:
        try:
            expanded = grid_expand(strategy, grid, fixed)
        except ParamError as exc:
            name, message = exc.errors[0]
            where = _where(name, grid, params)
            raise RequestError(f"{where}: {message}", where) from None
        except ValueError as exc:
            raise RequestError(f"grid: {exc}", "grid") from None
        axes = {k: list(v) for k, v in expanded.axes.items()}
        return axes, [dict(c) for c in expanded.combinations], int(expanded.skipped)
    # Only max_positions varies: the fixed settings are the one combination,
    # so a rule they break is an error, not a skipped cell.
    params, risk = split_params(fixed)
    try:
        full = validate_params(strategy, params)
        risk = {k: getattr(validate_risk(risk), k) for k in risk}
    except ParamError as exc:
        name, message = exc.errors[0]
        where = _where(name, grid, params)
        raise RequestError(f"{where}: {message}", where) from None
    except ValueError as exc:
        raise RequestError(f"params: {exc}", "params") from None
    return {}, [{**full, **risk}], 0


def portfolio_sweep_spec(data: Mapping) -> PortfolioSweepSpec:
    """Return the PortfolioSweepSpec of a request mapping or raise RequestError."""
    if not isinstance(data, Mapping):
        raise RequestError("expected a JSON object")
    for name in data:
        _refuse(name)
    unknown = sorted(set(data) - SWEEP_FIELDS, key=str)
    if unknown:
        name = brief(unknown[0]).strip("'")
        raise RequestError(f"{name}: unknown field", name)
    grid = data.get("grid")
    if not isinstance(grid, Mapping) or not grid:
        raise RequestError(
            "grid: expected at least one axis, e.g. max_positions=1:10:1", "grid"
        )
    params = data.get("params") or {}
    if not isinstance(params, Mapping):
        raise RequestError("params: expected an object", "params")
    for name in grid:
        _refuse(name, "grid")
    for name in params:
        _refuse(name, "params")
    objective = data.get("objective")
    if objective is None:
        objective = DEFAULT_OBJECTIVE
    # Only a name: a false value is no default, an object no key.
    if not isinstance(objective, str) or objective not in PORTFOLIO_OBJECTIVES:
        raise RequestError(
            f"objective: must be one of {', '.join(PORTFOLIO_OBJECTIVES)}, "
            f"got {brief(objective)}",
            "objective",
        )
    request = {k: data[k] for k in SPEC_FIELDS if data.get(k) is not None}
    if MAX_POSITIONS_KEY not in grid and data.get(MAX_POSITIONS_KEY) is not None:
        request[MAX_POSITIONS_KEY] = data[MAX_POSITIONS_KEY]
    base = portfolio_spec(request)

    if MAX_POSITIONS_KEY in grid:
        positions = _positions_axis(grid[MAX_POSITIONS_KEY])
    else:
        positions = [base.max_positions]
    stops = {k: data[k] for k in STOP_FIELDS if data.get(k) is not None}
    fixed = {**stops, **params}
    rest = {k: v for k, v in grid.items() if k != MAX_POSITIONS_KEY}
    axes, combos, skipped = _strategy_combinations(base.strategy, rest, params, stops)
    total = len(positions) * (len(combos) + skipped)
    if total > MAX_COMBINATIONS:
        raise RequestError(
            f"grid: {total:,} combinations; a grid may have at most "
            f"{MAX_COMBINATIONS:,}",
            "grid",
        )
    if not combos:
        raise RequestError(
            f"grid: none of its {total} combinations is valid "
            "(for example fast must be less than slow)",
            "grid",
        )
    # The first axis given runs slowest, as in a sweep's grid.
    if MAX_POSITIONS_KEY in grid and next(iter(grid)) == MAX_POSITIONS_KEY:
        pairs = [(c, m) for m in positions for c in combos]
    else:
        pairs = [(c, m) for c in combos for m in positions]
    combinations = tuple({**c, MAX_POSITIONS_KEY: m} for c, m in pairs)
    if MAX_POSITIONS_KEY in grid:
        axes[MAX_POSITIONS_KEY] = positions
    ordered = {k: axes[k] for k in grid if k in axes}
    return PortfolioSweepSpec(
        base=base,
        grid=dict(grid),
        axes=ordered,
        combinations=combinations,
        skipped=skipped * len(positions),
        base_params={k: v for k, v in fixed.items() if k not in grid},
        objective=objective,
    )
