"""The rule language's error: every problem found, each with its place."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import TypedDict


class Problem(TypedDict):
    """One problem: 1-based line and column of the source, and what is wrong."""

    line: int
    col: int
    message: str


class RuleError(ValueError):
    """A rule program that cannot be compiled; ``errors`` lists each problem."""

    def __init__(self, errors: Iterable[Problem]) -> None:
        self.errors: list[Problem] = list(errors)
        super().__init__(
            "; ".join(
                f"line {e['line']}, col {e['col']}: {e['message']}" for e in self.errors
            )
        )


def problem(line: int, col: int, message: str) -> Problem:
    """Return one problem at ``line``, ``col`` (both 1-based)."""
    return {"line": line, "col": col, "message": message}


def suggest(name: str, choices: Iterable[str]) -> str:
    """Return " (did you mean 'x'?)" for the closest choice, or ""."""
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
