"""Reading a page's query string: text a database can hold, JSON a parser can
read. A bad value is the client's mistake (a 400 naming it), never a 500."""

from __future__ import annotations

import json


class QueryError(ValueError):
    """A query-string value no view can use; ``field`` names it."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message, self.field = message, field


def query_text(query, name: str) -> str:
    """Return the query's ``name`` stripped ("" if absent); QueryError on NUL."""
    value = query.get(name, "").strip()
    # PostgreSQL text cannot hold NUL: a filter on it raises, a 500.
    if "\x00" in value:
        raise QueryError(f"{name}: contains a NUL character", name)
    return value


def query_json(raw: str, name: str) -> object:
    """Return the JSON value of a query's ``name``; QueryError if not JSON."""
    try:
        return json.loads(raw)
    except RecursionError:  # "[" x 3,000: Python's parser recurses per level
        raise QueryError(f"{name}: nested too deeply", name) from None
    except ValueError:
        raise QueryError(f"{name}: not valid JSON", name) from None
