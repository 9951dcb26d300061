"""The one rule for coin symbols, shared by the model, the importers and requests.

A symbol is what every page, export and cache key shows: upper-case ASCII
letters and digits only, 1 to 20 characters. Anything else (``=CMD``, markup,
an empty name, Arabic-Indic digits) is refused where it would be created or
accepted, never escaped later.
"""

from __future__ import annotations

import re

SYMBOL_MAX_LENGTH = 20
_SYMBOL = re.compile(rf"[A-Z0-9]{{1,{SYMBOL_MAX_LENGTH}}}", re.ASCII)
SYMBOL_RULE = f"must be 1 to {SYMBOL_MAX_LENGTH} upper-case ASCII letters or digits"


def symbol_problem(symbol: object) -> str | None:
    """Return why ``symbol`` is not a valid coin symbol, or None when it is."""
    if not isinstance(symbol, str) or _SYMBOL.fullmatch(symbol) is None:
        return f"symbol {str(symbol)[:40]!r} {SYMBOL_RULE}"
    return None
