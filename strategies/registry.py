"""The six strategies: keys, names, descriptions and parameter schemas."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from strategies import signals
from strategies.params import (
    BandReachable,
    Check,
    ParamError,
    ParamSpec,
    ordered,
    validate,
)

__all__ = [
    "STRATEGIES",
    "ParamError",
    "ParamSpec",
    "StrategySpec",
    "get_strategy",
    "is_builtin",
    "register",
    "schema",
    "validate_params",
]


@dataclass(frozen=True)
class StrategySpec:
    """A strategy: its key, label, rule, parameter schema and signal function.

    ``signal(cache, **params)`` returns the boolean target position at each
    close; ``sides(cache, direction, **params)`` each side's entry and exit
    conditions, for runs with risk settings; ``checks`` are cross-parameter
    rules such as fast < slow, published with the schema so that forms apply
    the same ones. ``rule`` says how the long side reads: "while" (held on
    every close where its condition is true, so a flat position enters on any
    such close; ``sides`` then gives the condition's negation as the exit) or
    "when" (separate entry and exit conditions).
    """

    key: str
    name: str
    description: str
    params: tuple[ParamSpec, ...]
    signal: Callable[..., np.ndarray]
    checks: tuple[Check, ...] = ()
    sides: Callable[..., signals.Sides] | None = None
    rule: str = "when"

    def as_dict(self) -> dict[str, object]:
        """Return the schema entry of this strategy, JSON-serialisable."""
        return {
            "key": self.key,
            "name": self.name,
            "description": self.description,
            "params": [p.as_dict() for p in self.params],
            "checks": [c.as_dict() for c in self.checks],
        }


def _window(
    name: str, default: int, help: str, low: int = 2, high: int = 500
) -> ParamSpec:
    """Return an integer window length parameter."""
    return ParamSpec(name, int, default, low, high, help)


STRATEGIES: dict[str, StrategySpec] = {
    spec.key: spec
    for spec in (
        StrategySpec(
            "sma_crossover",
            "SMA crossover",
            "Long while the fast simple moving average is above the slow one.",
            (
                _window("fast", 20, "Fast SMA length in bars."),
                _window("slow", 50, "Slow SMA length in bars.", high=1000),
            ),
            signals.sma_crossover,
            (ordered("fast", "slow"),),
            signals.sma_sides,
            "while",
        ),
        StrategySpec(
            "ema_crossover",
            "EMA crossover",
            "Long while the fast exponential moving average is above the slow one.",
            (
                _window("fast", 12, "Fast EMA length in bars."),
                _window("slow", 26, "Slow EMA length in bars.", high=1000),
            ),
            signals.ema_crossover,
            (ordered("fast", "slow"),),
            signals.ema_sides,
            "while",
        ),
        StrategySpec(
            "rsi_reversion",
            "RSI mean reversion",
            "Buy when Wilder's RSI falls below the lower level, sell above the upper.",
            (
                _window("period", 14, "RSI length in bars."),
                ParamSpec("lower", float, 30.0, 1.0, 99.0, "Enter below this RSI."),
                ParamSpec("upper", float, 70.0, 1.0, 99.0, "Exit above this RSI."),
            ),
            signals.rsi_reversion,
            (ordered("lower", "upper"),),
            signals.rsi_sides,
        ),
        StrategySpec(
            "bollinger_reversion",
            "Bollinger mean reversion",
            "Buy when the close falls below the lower band, sell above the middle.",
            (
                _window("period", 20, "Band length in bars."),
                ParamSpec(
                    "std", float, 2.0, 0.1, 10.0, "Band width in standard deviations."
                ),
            ),
            signals.bollinger_reversion,
            (BandReachable("period", "std"),),
            signals.bollinger_sides,
        ),
        StrategySpec(
            "macd_crossover",
            "MACD crossover",
            "Long while the MACD line is above its signal line.",
            (
                _window("fast", 12, "Fast EMA length in bars."),
                _window("slow", 26, "Slow EMA length in bars.", high=1000),
                # A 1-bar signal line is the MACD line itself: never above it.
                _window("signal", 9, "Signal EMA length in bars."),
            ),
            signals.macd_crossover,
            (ordered("fast", "slow"),),
            signals.macd_sides,
            "while",
        ),
        StrategySpec(
            "donchian_breakout",
            "Donchian breakout",
            "Buy above the highest high of the previous bars, sell below the lowest "
            "low.",
            (
                _window("entry", 20, "Breakout window in bars.", low=1),
                _window("exit", 10, "Exit window in bars.", low=1),
            ),
            signals.donchian_breakout,
            (),
            signals.donchian_sides,
        ),
    )
}


def get_strategy(key: str | StrategySpec) -> StrategySpec:
    """Return the strategy for ``key`` or raise ParamError naming the choices.

    A StrategySpec is returned as it is: a strategy compiled from the rule
    language (``strategies.rules``) runs wherever a built-in's key does.
    """
    if isinstance(key, StrategySpec):
        return key
    try:
        return STRATEGIES[key]
    except (KeyError, TypeError):
        choices = ", ".join(STRATEGIES)
        raise ParamError(
            [("strategy", f"unknown strategy {key!r}; choose one of {choices}")]
        ) from None


def validate_params(
    key: str | StrategySpec, params: Mapping[str, object] | None = None
) -> dict[str, int | float]:
    """Return the strategy's complete parameters or raise ParamError (all problems)."""
    spec = get_strategy(key)
    return validate(spec.params, params or {}, spec.checks)


def is_builtin(spec: StrategySpec) -> bool:
    """Return whether ``spec`` is one of the built-ins (not a look-alike key)."""
    return STRATEGIES.get(spec.key) is spec


def register(spec: StrategySpec) -> StrategySpec:
    """Add a Python strategy to the registry under its key and return it.

    Registering the same spec again is harmless (a module imported twice);
    another spec under a taken key raises ValueError.
    """
    if not isinstance(spec, StrategySpec):
        raise ValueError(f"register: expected a StrategySpec, got {type(spec)!r}")
    if not isinstance(spec.key, str) or not spec.key or spec.key == "all":
        raise ValueError(f"register: {spec.key!r} is not a usable strategy key")
    taken = STRATEGIES.get(spec.key)
    if taken is not None and taken is not spec:
        raise ValueError(f"register: the key {spec.key!r} is already taken")
    STRATEGIES[spec.key] = spec
    return spec


def schema() -> list[dict]:
    """Return every strategy with its parameter schema, JSON-serialisable."""
    return [spec.as_dict() for spec in STRATEGIES.values()]
