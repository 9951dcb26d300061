"""The five risk settings every strategy takes: stop-loss, take-profit,
trailing stop, direction and position size, with their schema and validation.

Percentages are given as users write them (5 means 5%); ``Risk`` keeps them so
and offers the fractions the engine works with. ``None`` means off. The
defaults (off, off, off, long, 1.0) are today's all-in long execution.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from strategies.params import ParamError, brief, parse_decimal

__all__ = [
    "DEFAULT_RISK",
    "DIRECTIONS",
    "RISK_PARAMS",
    "ParamError",
    "Risk",
    "RiskSpec",
    "risk_schema",
    "validate_risk",
]

DIRECTIONS = ("long", "short", "both")


@dataclass(frozen=True)
class RiskSpec:
    """One risk setting: its type, default, limits, help text and unit.

    Numbers have a lower and an upper limit, each exclusive or inclusive as
    ``min_exclusive`` / ``max_exclusive`` say; a default of None means the
    setting is off unless given. A ``str`` setting takes one of ``choices``.
    """

    name: str
    type: type
    default: float | str | None
    min: float | None
    max: float | None
    help: str
    unit: str
    min_exclusive: bool = True
    max_exclusive: bool = False
    choices: tuple[str, ...] = ()

    def limits(self) -> str:
        """Return the allowed range in words, e.g. "0 < value <= 1"."""
        low = "<" if self.min_exclusive else "<="
        high = "<" if self.max_exclusive else "<="
        return f"{self.min:g} {low} value {high} {self.max:g}"

    def coerce(self, value: object) -> tuple[float | str | None, str | None]:
        """Return (value, None) or (None, problem) for a raw value.

        None and an empty string mean "not given" (the default). Numbers and
        numeric strings (as the command line passes them) are accepted;
        booleans, NaN and infinities are not.
        """
        if value is None or (isinstance(value, str) and not value.strip()):
            return self.default, None
        if self.type is str:
            if isinstance(value, str) and value.strip().lower() in self.choices:
                return value.strip().lower(), None
            return None, f"must be one of {', '.join(self.choices)}, got {brief(value)}"
        if isinstance(value, bool | np.bool_):
            return None, "expected a number, got a boolean"
        if isinstance(value, str):
            # Plain ASCII decimals only: float() would also read "1_0" and
            # other scripts' digits, which a run's fields refuse.
            parsed = parse_decimal(value)
            if parsed is None:
                return None, f"expected a number, got {brief(value)}"
            value = parsed
        if not isinstance(value, numbers.Real):
            return None, f"expected a number, got {type(value).__name__}"
        if isinstance(value, numbers.Integral) and abs(int(value)) > 10**300:
            # float() of a 400-digit integer raises OverflowError.
            return None, "must be a finite number"
        value = float(value)
        if not math.isfinite(value):
            return None, "must be a finite number"
        low_ok = value > self.min if self.min_exclusive else value >= self.min
        high_ok = value < self.max if self.max_exclusive else value <= self.max
        if not (low_ok and high_ok):
            return None, f"must satisfy {self.limits()}, got {value:g}"
        return value, None

    def as_dict(self) -> dict[str, object]:
        """Return the schema entry of this setting, JSON-serialisable."""
        entry: dict[str, object] = {
            "name": self.name,
            "type": "choice" if self.type is str else self.type.__name__,
            "default": self.default,
            "min": self.min,
            "max": self.max,
            "min_exclusive": self.min_exclusive,
            "max_exclusive": self.max_exclusive,
            "help": self.help,
            "unit": self.unit,
        }
        if self.choices:
            entry["choices"] = list(self.choices)
        return entry


RISK_PARAMS: tuple[RiskSpec, ...] = (
    RiskSpec(
        "stop_loss_pct", float, None, 0.0, 100.0,
        "Exit when the price moves this far against the entry fill.", "%",
        max_exclusive=True,
    ),
    RiskSpec(
        "take_profit_pct", float, None, 0.0, 1000.0,
        "Exit when the price moves this far in favour of the entry fill.", "%",
    ),
    RiskSpec(
        "trailing_stop_pct", float, None, 0.0, 100.0,
        "Exit this far below the best price since entry (above, for a short).",
        "%", max_exclusive=True,
    ),
    RiskSpec(
        "direction", str, "long", None, None,
        "Trade long only, short only, or both sides with reversals.", "",
        min_exclusive=False, choices=DIRECTIONS,
    ),
    RiskSpec(
        "position_size", float, 1.0, 0.0, 1.0,
        "Share of current equity committed to each entry; the rest stays cash.",
        "fraction of equity",
    ),
)  # fmt: skip

_SPECS = {spec.name: spec for spec in RISK_PARAMS}


def risk_schema() -> list[dict[str, object]]:
    """Return the risk settings' schema, JSON-serialisable, in form order."""
    return [spec.as_dict() for spec in RISK_PARAMS]


@dataclass(frozen=True)
class Risk:
    """Validated risk settings; percentages as users give them (5 = 5%).

    Constructing one checks every field (ParamError naming each bad one), so a
    Risk is always usable; ``validate_risk`` also coerces strings and Nones.
    """

    stop_loss_pct: float | None = None
    take_profit_pct: float | None = None
    trailing_stop_pct: float | None = None
    direction: str = "long"
    position_size: float = 1.0

    def __post_init__(self) -> None:
        errors = []
        for spec in RISK_PARAMS:
            value = getattr(self, spec.name)
            if value is None and spec.default is not None:
                errors.append((spec.name, "must not be None"))
                continue
            if spec.type is str and value not in spec.choices:
                # No coercion here: "Long" is refused, as a typo would be.
                choices = ", ".join(spec.choices)
                errors.append(
                    (spec.name, f"must be one of {choices}, got {brief(value)}")
                )
                continue
            coerced, problem = spec.coerce(value)
            if problem:
                errors.append((spec.name, problem))
            elif isinstance(value, str) and spec.type is not str:
                errors.append((spec.name, f"expected a number, got {brief(value)}"))
            elif coerced is not None and spec.type is float:
                object.__setattr__(self, spec.name, float(coerced))
        if errors:
            raise ParamError(errors)

    @property
    def is_default(self) -> bool:
        """Return True for (off, off, off, long, 1.0): today's execution."""
        return self == DEFAULT_RISK

    @property
    def stop_loss(self) -> float | None:
        """Return the stop distance as a fraction of the entry fill, or None."""
        return None if self.stop_loss_pct is None else self.stop_loss_pct / 100.0

    @property
    def take_profit(self) -> float | None:
        """Return the target distance as a fraction of the entry fill, or None."""
        return None if self.take_profit_pct is None else self.take_profit_pct / 100.0

    @property
    def trailing_stop(self) -> float | None:
        """Return the trailing distance as a fraction of the best price, or None."""
        if self.trailing_stop_pct is None:
            return None
        return self.trailing_stop_pct / 100.0

    def as_dict(self) -> dict[str, float | str | None]:
        """Return the five settings, JSON-serialisable (None for off)."""
        return {spec.name: getattr(self, spec.name) for spec in RISK_PARAMS}


DEFAULT_RISK = Risk()


def validate_risk(values: Mapping[str, object] | Risk | None) -> Risk:
    """Return the Risk for raw settings or raise ParamError listing every problem.

    Absent keys, None and empty strings mean off (the default); unknown keys
    are errors. Numeric strings are accepted, as the command line passes them.
    """
    if values is None:
        return DEFAULT_RISK
    if isinstance(values, Risk):
        return values
    if not isinstance(values, Mapping):
        raise ParamError([("risk", "expected a mapping of risk settings")])
    errors = [
        (str(name), f"unknown risk setting; expected one of {', '.join(_SPECS)}")
        for name in values
        if name not in _SPECS
    ]
    coerced: dict[str, object] = {}
    for spec in RISK_PARAMS:
        value, problem = spec.coerce(values.get(spec.name))
        if problem:
            errors.append((spec.name, problem))
        else:
            coerced[spec.name] = value
    if errors:
        raise ParamError(errors)
    return Risk(**coerced)
