"""Parameter schemas and their validation."""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np

# A number as text: plain ASCII decimal digits, an optional sign, fraction and
# exponent. Python's int() and float() also take "1_0", other scripts' digits
# and surrounding blanks; a parameter does not.
DECIMAL = re.compile(
    r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII
)
# Longer text is no parameter value (and int() refuses past 4,300 digits).
MAX_NUMBER_TEXT = 64


def parse_decimal(text: str) -> int | float | None:
    """Return the number a plain ASCII decimal string spells, or None."""
    text = text.strip(" \t")
    if len(text) > MAX_NUMBER_TEXT or not DECIMAL.fullmatch(text):
        return None
    try:
        return int(text)
    except ValueError:
        return float(text)


def brief(value: object, limit: int = 40) -> str:
    """Return repr(value) cut to about ``limit`` characters, for messages."""
    text = repr(value) if isinstance(value, str | int | float) else type(value).__name__
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


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
        """Return (value, None) or (None, problem) for a raw value.

        Numbers of either kind and plain ASCII decimal strings (as the command
        line passes them) are accepted; booleans are not numbers here, and an
        integer parameter takes only integral values.
        """
        kind = self.type.__name__
        # bool is an int subclass (and numpy's bool_ is Integral-like): refuse
        # both, so a stray checkbox value never becomes a window of 1.
        if isinstance(value, bool | np.bool_):
            return None, f"expected {kind}, got a boolean"
        if isinstance(value, str):
            number = parse_decimal(value)
            if number is None:
                return None, f"expected {kind}, got {brief(value)}"
            value = number
        if not isinstance(value, numbers.Real):
            return None, f"expected {kind}, got {type(value).__name__}"
        out_of_range = f"must be between {self.min} and {self.max}"
        if isinstance(value, numbers.Integral):
            value = int(value)
            if not self.min <= value <= self.max:  # before float() can overflow
                return None, f"{out_of_range}, got {brief(value)}"
        else:
            value = float(value)
            if not math.isfinite(value):
                return None, "must be a finite number"
            if self.type is int:
                if not value.is_integer():
                    return None, f"expected an integer, got {brief(value)}"
                value = int(value)
        if self.type is float:
            value = float(value)
        if not self.min <= value <= self.max:
            return None, f"{out_of_range}, got {brief(value)}"
        return value, None

    def as_dict(self) -> dict[str, object]:
        """Return the schema entry of this parameter, JSON-serialisable."""
        return {
            "name": self.name,
            "type": self.type.__name__,
            "default": self.default,
            "min": self.min,
            "max": self.max,
            "help": self.help,
        }


class Check(Protocol):
    """A cross-parameter rule: complete, coerced values in, (field, message) out.

    ``as_dict()`` publishes the rule, so a form can apply the very checks the
    server applies before it sends anything.
    """

    def __call__(self, params: Mapping[str, int | float]) -> list[tuple[str, str]]: ...

    def as_dict(self) -> dict[str, object]: ...


@dataclass(frozen=True)
class Ordered:
    """The rule ``low`` < ``high``, strictly (fast < slow, lower < upper)."""

    low: str
    high: str

    def __call__(self, params: Mapping[str, int | float]) -> list[tuple[str, str]]:
        if params[self.low] >= params[self.high]:
            return [(self.low, f"must be less than {self.high} ({params[self.high]})")]
        return []

    def as_dict(self) -> dict[str, object]:
        """Return the schema entry of this rule, JSON-serialisable."""
        return {"rule": "less_than", "low": self.low, "high": self.high}


@dataclass(frozen=True)
class BandReachable:
    """The rule ``std`` < sqrt(``period`` - 1): a band a close can fall below.

    Against the population deviation of its own window a close lies at most
    sqrt(n - 1) deviations from the mean (Samuelson's inequality; the bound is
    reached when the other n - 1 closes are equal), so a band at least that wide
    can never be crossed and the strategy could never enter.
    """

    period: str
    std: str

    def __call__(self, params: Mapping[str, int | float]) -> list[tuple[str, str]]:
        limit = math.sqrt(params[self.period] - 1)
        if params[self.std] >= limit:
            return [
                (
                    self.std,
                    f"must be less than sqrt({self.period} - 1) = {limit:.4g}: "
                    "no close can fall below a wider band",
                )
            ]
        return []

    def as_dict(self) -> dict[str, object]:
        """Return the schema entry of this rule, JSON-serialisable."""
        return {"rule": "below_sqrt_window", "period": self.period, "std": self.std}


def ordered(low: str, high: str) -> Ordered:
    """Return a cross-parameter check that ``low`` < ``high``."""
    return Ordered(low, high)


def validate(
    specs: tuple[ParamSpec, ...],
    params: Mapping[str, object],
    checks: tuple[Check, ...],
) -> dict[str, int | float]:
    """Return complete, coerced parameters or raise ParamError listing every problem."""
    if not isinstance(params, Mapping):
        raise ParamError([("params", "expected a mapping of names to values")])
    known = {spec.name: spec for spec in specs}
    errors = [
        (name, f"unknown parameter; expected one of {', '.join(known)}")
        for name in params
        if name not in known
    ]
    values: dict[str, int | float] = {}
    for spec in specs:
        if spec.name not in params:
            values[spec.name] = spec.default
            continue
        value, problem = spec.coerce(params[spec.name])
        if problem:
            errors.append((spec.name, problem))
        else:
            values[spec.name] = value
    if len(values) == len(specs):
        # Every value is usable, so cross-parameter rules can be judged too
        # (even beside an unknown name), and all problems are reported at once.
        for check in checks:
            errors.extend(check(values))
    if errors:
        raise ParamError(errors)
    return values
