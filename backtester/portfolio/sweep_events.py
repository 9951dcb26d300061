"""Portfolio sweep message shapes, in one place: channel layer and websocket.

The layer messages (``portfolio_sweep.*``) go from the control thread
computing a sweep to the consumers in its group. The browser receives the
sweeps' own messages (``sweep_start``, ``cell``, ``sweep_complete``,
``cancelled``), each marked ``"portfolio": true``, so one heatmap script
reads both kinds.
"""

from __future__ import annotations

from typing import Any

from backtester.sweeps import events as sweep_events

LAYER_CELL = "portfolio_sweep.cell"
LAYER_COMPLETE = "portfolio_sweep.complete"
LAYER_CANCELLED = "portfolio_sweep.cancelled"
LAYER_FAILED = "portfolio_sweep.failed"


def group(sweep_id: int) -> str:
    """Return the channel-layer group a portfolio sweep publishes to."""
    return f"backtest.portfolio_sweep.{sweep_id}"


def layer_cell(sweep_id: int, item: dict) -> dict[str, Any]:
    """One finished cell: ``item`` is ``{index, params, metrics}``."""
    return {"type": LAYER_CELL, "sweep_id": sweep_id, "cell": item}


def layer_final(
    sweep_id: int,
    status: str,
    *,
    best: dict | None = None,
    elapsed_s: float = 0.0,
    error: str = "",
) -> dict[str, Any]:
    """The end of a portfolio sweep as a layer message, by its final status."""
    if status == "complete":
        return {
            "type": LAYER_COMPLETE,
            "sweep_id": sweep_id,
            "best": best,
            "elapsed_s": round(elapsed_s or 0.0, 4),
        }
    if status == "cancelled":
        return {"type": LAYER_CANCELLED, "sweep_id": sweep_id}
    return {
        "type": LAYER_FAILED,
        "sweep_id": sweep_id,
        "message": f"the portfolio sweep failed: {error}",
    }


def sweep_start(
    sweep_id: int, combinations: int, skipped: int, total: int, axes: dict, **more
) -> dict[str, Any]:
    return sweep_events.sweep_start(
        sweep_id, combinations, skipped, total, axes, portfolio=True, **more
    )


def cell(sweep_id: int, item: dict, completed: int, combinations: int) -> dict:
    return {
        **sweep_events.cell(sweep_id, item, completed, combinations),
        "portfolio": True,
    }


def sweep_complete(sweep_id: int, best: dict | None, elapsed_s: float) -> dict:
    return {**sweep_events.sweep_complete(sweep_id, best, elapsed_s), "portfolio": True}


def cancelled(sweep_id: int | None) -> dict[str, Any]:
    return {"type": "cancelled", "sweep_id": sweep_id, "portfolio": True}
