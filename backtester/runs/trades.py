"""How stored trades record their side and exit reason: one int8 code each.

A result stores its latest trades as packed NumPy columns (see fields.py), which
hold numbers only; a code is the index of the name in the tuples below, so the
order of each tuple is part of the stored format: append, never reorder.
Trades stored before these columns existed were all long and left on a signal
or at the end (``closed_at_end``), which is what :func:`trade_labels` reports
for them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

SIDES = ("long", "short")
EXIT_REASONS = (
    "signal", "stop_loss", "take_profit", "trailing_stop", "end", "liquidation",
)  # fmt: skip


def encode(values: Sequence | np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """Return the int8 codes of names (or of codes already, checked)."""
    array = np.asarray(values)
    if array.dtype.kind in "iu":
        if len(array) and not (array.min() >= 0 and array.max() < len(names)):
            raise ValueError(f"codes outside 0..{len(names) - 1}")
        return array.astype(np.int8)
    index = {name: code for code, name in enumerate(names)}
    try:
        return np.array([index[str(v)] for v in array.tolist()], dtype=np.int8)
    except KeyError as exc:
        raise ValueError(
            f"unknown value {exc.args[0]!r}; expected one of {names}"
        ) from None


def trade_labels(trades: Mapping[str, np.ndarray]) -> tuple[list[str], list[str]]:
    """Return the side and exit reason of each stored trade, as names."""
    count = len(trades.get("entry_time", ()))
    if "side" in trades:
        sides = [SIDES[code] for code in trades["side"].tolist()]
    else:
        sides = ["long"] * count
    if "exit_reason" in trades:
        reasons = [EXIT_REASONS[code] for code in trades["exit_reason"].tolist()]
    else:
        at_end = trades.get("closed_at_end", np.zeros(count, bool)).tolist()
        reasons = ["end" if end else "signal" for end in at_end]
    return sides, reasons
