"""Check a rule source as the editor types it: problems and the parameter panel.

Shared by the websocket's ``check_strategy`` message and the editor's JSON
endpoint, so both answer with the compiler's own words.
"""

from __future__ import annotations

from strategies.rules.errors import RuleError
from strategies.rules.language import MAX_SOURCE_BYTES
from strategies.rules.program import compile_program


class SourceRefused(ValueError):
    """A source that is not checked at all (not text, or too large)."""


def source_text(source: object) -> str:
    """Return ``source`` if it is text of at most 8 KB, else raise SourceRefused."""
    if not isinstance(source, str):
        raise SourceRefused("source: expected the strategy's text")
    # Characters never outnumber UTF-8 bytes: encode only a possible near-miss.
    if len(source) > MAX_SOURCE_BYTES or (
        len(source) * 4 > MAX_SOURCE_BYTES
        and len(source.encode("utf-8", "surrogatepass")) > MAX_SOURCE_BYTES
    ):
        raise SourceRefused(
            f"source: larger than {MAX_SOURCE_BYTES // 1024} KB; a strategy may "
            f"have at most {MAX_SOURCE_BYTES:,} bytes"
        )
    return source


def strategy_check(source: object) -> dict:
    """Return the ``strategy_check`` event for a source (SourceRefused if refused).

    ``ok`` with the declared parameters and the directions the rules trade, or
    every problem with its 1-based line and column.
    """
    text = source_text(source)
    try:
        program = compile_program(text)
    except RuleError as exc:
        return {
            "type": "strategy_check",
            "ok": False,
            "errors": exc.errors,
            "params": [],
        }
    return {
        "type": "strategy_check",
        "ok": True,
        "errors": [],
        "params": [p.as_dict() for p in program.params],
        "directions": list(program.directions),
    }
