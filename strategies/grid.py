"""Parameter grids: axes from their specs, and the valid combinations.

An axis is ``"start:stop:step"`` (inclusive, the command line; ``"a,b,c"`` or
one value also work), a ``{"start", "stop", "step"}`` mapping or a list of
values. ``grid_expand`` coerces every value to its parameter, refuses values
outside the parameter's limits and unknown names (ParamError naming them), and
skips and counts the combinations that break a cross-parameter rule. The risk
settings are axes like any parameter.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, DecimalException, localcontext

from strategies.params import ParamError, ParamSpec, brief, parse_decimal
from strategies.registry import StrategySpec, get_strategy, validate_params
from strategies.risk import validate_risk

__all__ = [
    "MAX_COMBINATIONS",
    "RISK_KEYS",
    "AxisSpec",
    "Grid",
    "grid_expand",
    "parse_axis",
    "split_params",
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

AxisSpec = str | Mapping[str, object] | Sequence[object]

# No parameter or risk setting reaches this: a larger bound is a typo, and
# refusing it up front keeps the decimal arithmetic below finite.
MAX_MAGNITUDE = Decimal(10) ** 15
_SPECIAL = {"nan", "snan", "inf", "infinity"}


# -- axes ----------------------------------------------------------------------


def _fail(name: str, message: str) -> ParamError:
    """Return the error for axis ``name`` (a ValueError naming it)."""
    return ParamError([(name, message)])


def _decimal(name: str, part: str, value: object) -> Decimal:
    """Return ``value`` as an exact decimal, or raise naming the axis and part."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real | str):
        raise _fail(name, f"{part} must be a number, got {brief(value)}")
    if isinstance(value, str):
        # Plain ASCII decimals only: Decimal() also reads "1_0", other
        # scripts' digits and "NaN".
        if parse_decimal(value) is None:
            special = value.strip().lower().lstrip("+-") in _SPECIAL
            kind = "a finite number" if special else "a number"
            raise _fail(name, f"{part} must be {kind}, got {brief(value)}")
        text = value.strip(" \t")
    elif isinstance(value, numbers.Integral):
        if abs(int(value)) > MAX_MAGNITUDE:  # before str() of 5,000 digits
            raise _fail(name, f"{part} must be at most {MAX_MAGNITUDE:.0e} in size")
        text = str(int(value))
    elif not math.isfinite(float(value)):
        raise _fail(name, f"{part} must be a finite number, got {brief(value)}")
    else:
        # repr of a float is its shortest round-trip form: 0.1 -> Decimal("0.1").
        text = repr(float(value))
    number = Decimal(text)
    if number.copy_abs() > MAX_MAGNITUDE:  # abs() would round: Overflow
        raise _fail(name, f"{part} must be at most {MAX_MAGNITUDE:.0e} in size")
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
        raise _fail(name, f"step must be positive, got {brief(step)}")
    if last < first:
        raise _fail(
            name, f"stop ({brief(stop)}) must not be below start ({brief(start)})"
        )
    too_many = _fail(
        name, f"too many values; a grid may have at most {MAX_COMBINATIONS:,}"
    )
    # Compared before dividing: a step of 1e-300 makes the quotient too long
    # for any decimal context (DivisionImpossible).
    if last - first >= size * MAX_COMBINATIONS:
        raise too_many
    try:
        with localcontext() as context:
            context.prec = 60  # exact for bounded values and a bounded count
            count = int((last - first) // size) + 1
            values = [first + size * i for i in range(count)]
    except DecimalException:  # a guard: the bounds above keep this finite
        raise too_many from None
    if count > MAX_COMBINATIONS:
        raise too_many
    if all(v == v.to_integral_value() for v in (first, size)):
        return [int(v) for v in values]
    return [float(v) for v in values]


def _scalar(text: str) -> int | float | str:
    """Return a command-line value as an int, a float or the text itself."""
    text = text.strip()
    # int() and float() would also read "1_0" and other scripts' digits.
    number = parse_decimal(text)
    return text if number is None else number


def parse_axis(name: str, spec: AxisSpec) -> list:
    """Return the values of axis ``name`` from its spec, or raise ParamError.

    ``spec`` is ``"start:stop:step"`` (the command line; ``"a,b,c"`` or one
    value also work), a ``{"start", "stop", "step"}`` mapping or a list of
    values (None in a list is "off", for the risk settings). Ranges include
    ``stop`` when the steps land on it; integral ranges stay ints. An empty
    axis, a step that is not positive, duplicates or more than
    MAX_COMBINATIONS values are errors naming the axis.
    """
    if isinstance(spec, str):
        parts = spec.split(":")
        if len(parts) == 3:
            return _range(name, *parts)
        if len(parts) != 1 or not spec.strip():
            raise _fail(
                name,
                "expected start:stop:step or a comma-separated list, got "
                + brief(spec),
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
        # None is "off" for a risk setting (a parameter refuses it later).
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Real | str):
            raise _fail(name, f"expected numbers or names, got {brief(value)}")
        if isinstance(value, str) and not value:
            raise _fail(name, "an empty value")
    _check_unique(name, values)
    return values


def _check_unique(name: str, values: list) -> None:
    """Raise ParamError naming the axis if a value repeats."""
    seen: set = set()
    for value in values:
        if value in seen:
            raise _fail(name, f"value {brief(value)} appears twice")
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

    strategy: str | StrategySpec
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
        raise _fail(spec.name, f"{problem} (value {brief(value)})")
    return coerced


def grid_expand(
    strategy: str | StrategySpec,
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
