"""Turn a sweep request (websocket message or CLI flags) into a checked SweepSpec.

The common fields (strategy, coins, range, interval, costs) are checked by the
run validation, so a sweep refuses exactly what a run refuses; the grid is
expanded by the engine's ``grid_expand``, whose errors name the axis or fixed
parameter at fault and are reported here as ``grid.<axis>`` or
``params.<name>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from backtester.library.selectors import strategy_or_key
from backtester.runs.validation import RISK_FIELDS, RequestError, run_spec
from strategies.params import brief, parse_decimal
from strategies.registry import ParamError
from strategies.sweep import OBJECTIVES, grid_expand

# Risk settings may be given top-level (as in a run) or inside params: either
# way they are fixed for every combination unless an axis varies them.
SWEEP_FIELDS = {
    *RISK_FIELDS, "type", "strategy", "version", "grid", "params", "symbols",
    "start", "end", "interval", "fee", "slippage_bps", "objective",
}  # fmt: skip


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: one strategy, its grid expanded, coins and a range."""

    strategy: str
    grid: dict
    axes: dict[str, list]
    combinations: tuple[dict, ...]
    skipped: int
    base_params: dict = field(default_factory=dict)
    symbols: tuple[str, ...] | None = None  # None: every active coin
    start: datetime | None = None
    end: datetime | None = None  # exclusive
    interval: str = "1h"
    fee: float = 0.001
    slippage_bps: float = 0.0
    objective: str = "median_return_pct"
    # The saved strategy version swept (its id), None for a built-in.
    version: int | None = None

    @property
    def engine_strategy(self):
        """Return what the engine runs: the key, or the saved version's spec."""
        return strategy_or_key(self.strategy, {self.strategy: self.version})


def _grid_error(
    exc: ParamError, grid: Mapping, params: Mapping, top: Mapping | None = None
) -> RequestError:
    """Return the request error for the engine's first grid problem (a risk
    setting given top-level, as in a run, is named as a run names it)."""
    name, message = exc.errors[0]
    if len(name) > 40:  # an unknown name is echoed back, so only its start
        name = brief(name).strip("'")
    if name in grid:
        where = f"grid.{name}"
    elif top and name in top:
        where = name
    elif name in params:
        where = f"params.{name}"
    else:
        where = "grid"
    return RequestError(f"{where}: {message}", where)


def sweep_spec(
    data: Mapping, *, user: object = None, trusted: bool = False
) -> SweepSpec:
    """Return the SweepSpec for a request mapping or raise RequestError.

    A saved strategy must be one ``user`` may see (``trusted``: any).
    """
    if not isinstance(data, Mapping):
        raise RequestError("expected a JSON object")
    unknown = sorted(set(data) - SWEEP_FIELDS)
    if unknown:
        name = brief(unknown[0]).strip("'")
        raise RequestError(f"{name}: unknown field", name)
    strategy = data.get("strategy")
    if not isinstance(strategy, str) or strategy == "all":
        raise RequestError(
            f"strategy: expected one strategy key, got {brief(strategy)}", "strategy"
        )
    # The fields a run has too, checked the way a run checks them.
    common = {
        key: data[key]
        for key in ("symbols", "start", "end", "interval", "fee", "slippage_bps")
        if key in data
    }
    if data.get("version") is not None:
        common["version"] = data["version"]
    # The strategy too: a built-in's key or a saved one the user may see.
    run = run_spec({"strategy": strategy, **common}, user=user, trusted=trusted)
    version = run.versions.get(strategy)
    engine = strategy_or_key(strategy, run.versions)
    # Absent or null is the default; anything else must name an objective
    # (false or {} is a mistake, not a request for the default).
    objective = data.get("objective")
    if objective is None:
        objective = "median_return_pct"
    if not isinstance(objective, str) or objective not in OBJECTIVES:
        raise RequestError(
            f"objective: must be one of {', '.join(OBJECTIVES)}", "objective"
        )
    grid = data.get("grid")
    if not isinstance(grid, Mapping) or not grid:
        raise RequestError(
            'grid: expected an object of axes, e.g. {"fast": {"start": 5, '
            '"stop": 50, "step": 5}}',
            "grid",
        )
    params = data.get("params") or {}
    if not isinstance(params, Mapping):
        raise RequestError("params: expected an object", "params")
    risk = {k: data[k] for k in RISK_FIELDS if data.get(k) is not None}
    top = {k: v for k, v in risk.items() if k not in params}
    params = {**risk, **params}
    try:
        expanded = grid_expand(engine, grid, params)
    except ParamError as exc:
        raise _grid_error(exc, grid, params, top) from None
    except ValueError as exc:
        raise RequestError(f"grid: {exc}", "grid") from None
    if not expanded.combinations:
        raise RequestError(
            f"grid: none of its {expanded.skipped} combinations is valid "
            "(for example fast must be less than slow)",
            "grid",
        )
    return SweepSpec(
        strategy=strategy,
        grid=dict(grid),
        axes={k: list(v) for k, v in expanded.axes.items()},
        combinations=tuple(dict(c) for c in expanded.combinations),
        skipped=int(expanded.skipped),
        base_params={k: v for k, v in params.items() if k not in grid},
        symbols=run.symbols,
        start=run.start,
        end=run.end,
        interval=run.interval,
        fee=run.fee,
        slippage_bps=run.slippage_bps,
        objective=objective,
        version=version,
    )


# A fold size or count past this is a typo: ten million hourly bars are over
# a thousand years.
MAX_BARS = 10_000_000


def sweep_size_check(spec: SweepSpec, coins: int, limit: int) -> int:
    """Return the sweep's backtests (combinations x coins), or raise
    RequestError on ``grid`` when they pass ``limit`` (0: no limit)."""
    size = len(spec.combinations) * coins
    if limit > 0 and size > limit:
        raise RequestError(
            f"grid: {len(spec.combinations):,} combinations x {coins:,} coins is "
            f"{size:,} backtests; at most {limit:,} at a time (fewer values or "
            "fewer coins)",
            "grid",
        )
    return size


@dataclass(frozen=True)
class WalkForwardSpec:
    """A validated walk-forward: a sweep's grid plus its fold sizes."""

    sweep: SweepSpec
    train_bars: int
    test_bars: int
    folds: int | None = None


def _whole(data: Mapping, name: str, *, required: bool) -> int | None:
    """Return field ``name`` as a whole number in [1, MAX_BARS], or None."""
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise RequestError(f"{name}: required", name)
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise RequestError(f"{name}: expected a whole number", name)
    if isinstance(value, str):
        # Plain ASCII decimals, as a run's fields: not "1_0" nor "\uff11\uff10".
        parsed = parse_decimal(value)
        if parsed is None:
            raise RequestError(f"{name}: {brief(value)} is not a number", name)
        value = parsed
    # Compared before any float(): a 401-digit integer overflows a float.
    if not 1 <= value <= MAX_BARS or (
        isinstance(value, float) and not value.is_integer()
    ):
        raise RequestError(
            f"{name}: must be a whole number from 1 to {MAX_BARS:,}", name
        )
    return int(value)


def walk_forward_spec(
    data: Mapping, *, user: object = None, trusted: bool = False
) -> WalkForwardSpec:
    """Return the WalkForwardSpec of a ``walk_forward`` message or raise
    RequestError naming the field."""
    if not isinstance(data, Mapping):
        raise RequestError("expected a JSON object")
    sizes = {"train_bars", "test_bars", "folds"}
    spec = sweep_spec(
        {k: v for k, v in data.items() if k not in sizes}, user=user, trusted=trusted
    )
    return WalkForwardSpec(
        sweep=spec,
        train_bars=_whole(data, "train_bars", required=True),
        test_bars=_whole(data, "test_bars", required=True),
        folds=_whole(data, "folds", required=False),
    )
