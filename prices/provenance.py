"""The import rule: incoming bars may add to a coin, never silently change it.

Pure functions over arrays (no database): compare incoming bars with the stored
ones of the same coin and interval, and word the refusal when they conflict.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from prices.types import COLUMNS, PriceSeries

_VALUES = COLUMNS[1:]


@dataclass(frozen=True)
class Comparison:
    """How incoming bars relate to the stored ones, bar by bar."""

    new: np.ndarray  # bool per incoming bar: no stored bar at its time
    changed: np.ndarray  # bool per incoming bar: a stored bar with other values
    first_change: tuple[int, str, float, float] | None  # time, column, stored, incoming

    @property
    def new_count(self) -> int:
        return int(self.new.sum())

    @property
    def changed_count(self) -> int:
        return int(self.changed.sum())

    @property
    def unchanged_count(self) -> int:
        return len(self.new) - self.new_count - self.changed_count


class ImportConflict(ValueError):
    """An import refused because it would change or mix a coin's bars."""


def bars_compare(stored: PriceSeries, incoming: PriceSeries) -> Comparison:
    """Return which incoming bars are new, unchanged or changed against stored ones.

    Both series are sorted by time with unique times. Values are compared
    exactly: a stored float8 reads back bit for bit.
    """
    count = len(incoming.time)
    at = np.searchsorted(stored.time, incoming.time)
    inside = at < len(stored.time)
    found = np.zeros(count, dtype=bool)
    found[inside] = stored.time[at[inside]] == incoming.time[inside]
    new = ~found
    changed = np.zeros(count, dtype=bool)
    first_change = None
    if found.any():
        mine, theirs = np.flatnonzero(found), at[found]
        differs = np.zeros(len(mine), dtype=bool)
        for name in _VALUES:
            differs |= getattr(stored, name)[theirs] != getattr(incoming, name)[mine]
        changed[mine[differs]] = True
        if differs.any():
            i = int(np.argmax(differs))
            first_change = next(
                (int(incoming.time[mine[i]]), name, float(old), float(value))
                for name in _VALUES
                if (old := getattr(stored, name)[theirs[i]])
                != (value := getattr(incoming, name)[mine[i]])
            )
    return Comparison(new=new, changed=changed, first_change=first_change)


def time_text(epoch: int) -> str:
    """Return epoch seconds as ISO-8601 UTC to the minute."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%MZ")


def change_problem(symbol: str, interval: str, comparison: Comparison) -> str | None:
    """Return why importing would change stored bars, or None when it would not."""
    if comparison.first_change is None:
        return None
    when, column, old, value = comparison.first_change
    return (
        f"{symbol}: {comparison.changed_count:,} stored {interval} bar(s) would "
        f"change, the first at {time_text(when)} ({column} stored {old!r}, "
        f"incoming {value!r})"
    )


def mix_problem(symbol: str, stored: str, incoming: str, detail: str) -> str | None:
    """Return why importing would mix two sources of bars, or None when it would not.

    An empty stored source (a coin without recorded origin) adopts the incoming one.
    """
    if not stored or stored == incoming:
        return None
    origin = f" ({detail})" if detail else ""
    return (
        f"{symbol}: its bars come from {stored}{origin}, these from {incoming}, "
        "and one coin never mixes sources"
    )


def detail_merge(old: str, new: str, *, limit: int) -> str:
    """Return ``old`` with ``new`` added to its comma-separated list, within limit."""
    parts = [p for p in old.split(", ") if p] if old else []
    if new and new not in parts:
        parts.append(new)
    text = ", ".join(parts)
    # Keep the latest names: they say what the bars were last read from.
    return text if len(text) <= limit else "\u2026" + text[-(limit - 1) :]
