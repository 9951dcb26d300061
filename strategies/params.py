"""Parameter schemas and their validation."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass


class ParamError(ValueError):
    """Invalid strategy parameters; ``errors`` lists every (field, message)."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(f"{name}: {message}" for name, message in errors))


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: its type, default, inclusive limits and help text."""

    name: str
    type: type
    default: int | float
    min: int | float
    max: int | float
    help: str

    def coerce(self, value: object) -> tuple[int | float | None, str | None]:
        """Return (value, None) or (None, problem) for a raw value."""
        if isinstance(value, bool):
            return None, f"expected {self.type.__name__}, got a boolean"
        if isinstance(value, str):
            text = value.strip()
            try:
                value = int(text) if self.type is int else float(text)
            except ValueError:
                try:
                    value = float(text)
                except ValueError:
                    return None, f"expected {self.type.__name__}, got {value!r}"
        if not isinstance(value, int | float):
            return None, f"expected {self.type.__name__}, got {type(value).__name__}"
        if isinstance(value, float) and not math.isfinite(value):
            return None, "must be a finite number"
        if self.type is int:
            if isinstance(value, float):
                if not value.is_integer():
                    return None, f"expected an integer, got {value!r}"
                value = int(value)
        else:
            value = float(value)
        if not self.min <= value <= self.max:
            return None, f"must be between {self.min} and {self.max}, got {value}"
        return value, None

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "type": self.type.__name__,
            "default": self.default,
            "min": self.min,
            "max": self.max,
            "help": self.help,
        }


Check = Callable[[dict], list[tuple[str, str]]]


def fast_below_slow(fast: str = "fast", slow: str = "slow") -> Check:
    """Return a cross-parameter check that ``fast`` < ``slow``."""

    def check(params: dict) -> list[tuple[str, str]]:
        if params[fast] >= params[slow]:
            return [(fast, f"must be less than {slow} ({params[slow]})")]
        return []

    return check


def ordered(low: str, high: str) -> Check:
    """Return a cross-parameter check that ``low`` < ``high``."""

    def check(params: dict) -> list[tuple[str, str]]:
        if params[low] >= params[high]:
            return [(low, f"must be less than {high} ({params[high]})")]
        return []

    return check


def validate(
    specs: tuple[ParamSpec, ...],
    params: Mapping[str, object],
    checks: tuple[Check, ...],
) -> dict:
    """Return complete, coerced parameters or raise ParamError listing every problem."""
    if not isinstance(params, Mapping):
        raise ParamError([("params", "expected a mapping of names to values")])
    known = {spec.name: spec for spec in specs}
    errors = [
        (name, f"unknown parameter; expected one of {', '.join(known)}")
        for name in params
        if name not in known
    ]
    values: dict = {}
    for spec in specs:
        if spec.name not in params:
            values[spec.name] = spec.default
            continue
        value, problem = spec.coerce(params[spec.name])
        if problem:
            errors.append((spec.name, problem))
        else:
            values[spec.name] = value
    if not errors:
        for check in checks:
            errors.extend(check(values))
    if errors:
        raise ParamError(errors)
    return values
