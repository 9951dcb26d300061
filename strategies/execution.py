"""Execution with risk settings: stops, targets, trailing stops, short
positions, reversals and position sizing (the rules are in the README's
"Strategies and execution" section and in DESIGN.md).

The strategy's rules give, on every close, each side's entry and exit
condition (``Sides``, NumPy-vectorized). Which of them are traded depends on
every stop, target and trailing exit before, so the traded path and its money
are worked out in one compiled pass over the bars (``strategies.paths``);
this module turns them into the engine's equity, position and trade table.
"""

from __future__ import annotations

import numpy as np

from strategies.risk import Risk
from strategies.signals import Sides
from strategies.types import Bars

__all__ = ["REASONS", "simulate_risk"]

REASONS = ("signal", "stop_loss", "take_profit", "trailing_stop", "end", "liquidation")
SIDE_NAMES = np.array(["short", "", "long"])  # indexed by side + 1
REASON_NAMES = np.array(REASONS)


def simulate_risk(
    bars: Bars,
    sides: Sides,
    risk: Risk,
    *,
    fee: float,
    slippage_bps: float,
    initial_equity: float,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Return (equity, position, trade table) under the risk settings.

    ``position`` is +1 / -1 on every bar a long / short is held at the open
    (the bar of a stop exit included), 0 when flat.
    """
    # Compiled on first use: runs without risk settings never load Numba.
    from strategies.paths import mark_to_market, trade_path

    slip = slippage_bps / 10_000.0
    size = risk.position_size
    nothing = np.zeros(0, dtype=np.bool_)
    has_long, has_short = sides.long_entry is not None, sides.short_entry is not None

    def flags(values: np.ndarray | None) -> np.ndarray:
        return nothing if values is None else np.ascontiguousarray(values, np.bool_)

    def fraction(value: float | None) -> float:
        return np.nan if value is None else value

    # One compiled variant serves every call: contiguous float64 and bool arrays.
    open_, high, low, close = (
        np.ascontiguousarray(values, np.float64)
        for values in (bars.open, bars.high, bars.low, bars.close)
    )
    side, start, entry, exit_bar, exit_price, reason, stopped, at_end = trade_path(
        open_, high, low, close,
        flags(sides.long_entry), flags(sides.long_exit),
        flags(sides.short_entry), flags(sides.short_exit),
        has_long, has_short,
        fraction(risk.stop_loss), fraction(risk.take_profit),
        fraction(risk.trailing_stop), size, fee, slip,
    )  # fmt: skip

    equity, position, units, trade_return, held_end = mark_to_market(
        close, side, start, entry, exit_bar, exit_price, reason, stopped,
        at_end, size, fee, initial_equity,
    )  # fmt: skip
    trades = {
        "entry_index": start,
        "exit_index": exit_bar,
        "entry_time": bars.time[start],
        "exit_time": bars.time[exit_bar],
        "entry_price": entry,
        "exit_price": exit_price,
        "units": units,
        "return_pct": trade_return * 100.0,
        # The bars the position column marks held: the exit bar too when the
        # trade ends within it or at its close (see engine.simulate).
        "bars_held": held_end - start,
        "fees": units * (entry + exit_price) * fee,
        "closed_at_end": at_end,
        "side": SIDE_NAMES[side + 1],
        "exit_reason": REASON_NAMES[reason],
    }
    return equity, position, trades
