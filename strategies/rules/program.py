"""Compile a rule program into a strategy the engine runs like a built-in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from strategies.params import ParamError, ParamSpec
from strategies.registry import StrategySpec
from strategies.rules.errors import RuleError, problem
from strategies.rules.evaluate import Evaluator, resolve
from strategies.rules.language import FUNCTIONS, MAX_INDICATORS, SIDES
from strategies.rules.reader import ParamLine, read
from strategies.rules.syntax import Node, compile_rule
from strategies.signals import IndicatorCache, Sides, enter_exit


@dataclass(frozen=True)
class RuleParam(ParamSpec):
    """A declared parameter: a ParamSpec with the step a form or sweep offers."""

    step: int | float | None = None

    def as_dict(self) -> dict[str, object]:
        """Return the schema entry of this parameter, JSON-serialisable."""
        return {**super().as_dict(), "step": self.step}


class Program:
    """A compiled rule program: its parameters and each rule's condition tree.

    ``rules`` maps (side, kind) to a tree, kind being "when", "entry" or
    "exit"; ``directions`` are the run directions it supports.
    """

    def __init__(
        self, source: str, params: tuple[RuleParam, ...], rules: dict[tuple, Node]
    ) -> None:
        self.source = source
        self.params = params
        self.rules = rules
        sides = [side for side in SIDES if self.has(side)]
        self.directions = tuple(sides) + (("both",) if len(sides) == 2 else ())

    def has(self, side: str) -> bool:
        """Return whether the program trades ``side`` ("long" or "short")."""
        return (side, "when") in self.rules or (side, "entry") in self.rules

    def _side(
        self, evaluator: Evaluator, side: str, params: Mapping[str, int | float]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return a side's (entry, exit) at each close.

        A "when" rule enters where its condition becomes true and exits where
        it is not true (false or unknown), as the built-in crossovers do; an
        entry without an exit rule never exits on a signal.
        """
        when = self.rules.get((side, "when"))
        if when is not None:
            held = evaluator.truth(resolve(when, params))
            rising = np.empty(len(held), dtype=np.bool_)
            rising[:1] = held[:1]
            np.greater(held[1:], held[:-1], out=rising[1:])
            return rising, np.logical_not(held)
        entry = evaluator.truth(resolve(self.rules[(side, "entry")], params))
        exit_rule = self.rules.get((side, "exit"))
        if exit_rule is None:
            return entry, np.zeros(len(entry), dtype=np.bool_)
        return entry, evaluator.truth(resolve(exit_rule, params))

    def _require(self, direction: str) -> None:
        """Raise ParamError naming a side the run asks for and the program lacks."""
        wanted = SIDES if direction == "both" else (direction,)
        for side in wanted:
            if not self.has(side):
                raise ParamError(
                    [
                        (
                            "direction",
                            f"the strategy has no {side} rules; it can run "
                            f"{' or '.join(self.directions)}",
                        )
                    ]
                )

    def signal(self, cache: IndicatorCache, /, **params: int | float) -> np.ndarray:
        """Return the long target at each close (runs without risk settings)."""
        self._require("long")
        evaluator = Evaluator(cache)
        when = self.rules.get(("long", "when"))
        if when is not None:
            return evaluator.truth(resolve(when, params))
        return enter_exit(*self._side(evaluator, "long", params))

    def sides(
        self, cache: IndicatorCache, direction: str, /, **params: int | float
    ) -> Sides:
        """Return each traded side's entry and exit conditions at each close."""
        self._require(direction)
        evaluator = Evaluator(cache)
        found: dict[str, tuple] = {}
        for side in SIDES:
            if direction in (side, "both"):
                found[side] = self._side(evaluator, side, params)
            else:
                found[side] = (None, None)
        return Sides(*found["long"], *found["short"])


def _indicator_calls(tree: Node, into: set) -> None:
    """Add every indicator call in ``tree`` (as written) to ``into``."""
    if not isinstance(tree, tuple):
        return
    if tree and tree[0] == "call" and FUNCTIONS[tree[1]].indicator:
        into.add(tree)
    for part in tree[1:]:
        if isinstance(part, tuple):
            if part and isinstance(part[0], str):
                _indicator_calls(part, into)
            else:
                for item in part:
                    _indicator_calls(item, into)


def _spec(line: ParamLine) -> RuleParam:
    """Return the parameter schema entry of a declared parameter."""
    kind = line.type.__name__
    text = line.help or f"{kind} from {line.low} to {line.high}"
    return RuleParam(
        line.name, line.type, line.default, line.low, line.high, text, line.step
    )


def compile_program(source: object) -> Program:
    """Return the compiled program, or raise RuleError listing every problem."""
    read_ = read(source)
    declared = {line.name: line for line in read_.params}
    errors, rules = [], {}
    for key, rule in read_.rules.items():
        found = compile_rule(rule, declared)
        if isinstance(found, list):
            errors.extend(found)
        else:
            rules[key] = found
    if not errors:
        calls: set = set()
        for tree in rules.values():
            _indicator_calls(tree, calls)
        if len(calls) > MAX_INDICATORS:
            errors.append(
                problem(
                    1,
                    1,
                    f"{len(calls)} distinct indicator calls; a program "
                    f"may have at most {MAX_INDICATORS}",
                )
            )
    if errors:
        raise RuleError(sorted(errors, key=lambda e: (e["line"], e["col"])))
    params = tuple(_spec(line) for line in read_.params)
    return Program(source, params, rules)


def compile_strategy(
    source: object, *, key: str = "custom", name: str = "", description: str = ""
) -> StrategySpec:
    """Return a StrategySpec for a rule program, or raise RuleError.

    The spec runs wherever a built-in's key does (``run_backtest``,
    ``run_many``, ``sweep_coin``, ``grid_expand``); its ``program`` attribute
    is reachable as ``spec.signal.__self__``.
    """
    program = compile_program(source)
    return StrategySpec(
        key=key,
        name=name or key,
        description=description,
        params=program.params,
        signal=program.signal,
        sides=program.sides,
        # The language's "long when" holds while true, as the built-in
        # crossovers do (the portfolio pass re-arms such a rule after a stop).
        rule="while" if ("long", "when") in program.rules else "when",
    )
