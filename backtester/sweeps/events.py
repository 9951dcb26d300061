"""Sweep message shapes, in one place: channel layer and websocket."""

from __future__ import annotations

from typing import Any

# Channel-layer types (executor -> consumer); dots map to consumer methods.
LAYER_CELLS = "sweep.cells"
LAYER_COMPLETE = "sweep.complete"
LAYER_CANCELLED = "sweep.cancelled"
LAYER_FAILED = "sweep.failed"


def group(sweep_id: int) -> str:
    """Return the channel-layer group a sweep publishes to."""
    return f"backtest.sweep.{sweep_id}"


def layer_cells(sweep_id: int, cells: list[dict]) -> dict[str, Any]:
    """Many finished cells in one layer message: ``[{index, params, metrics}]``."""
    return {"type": LAYER_CELLS, "sweep_id": sweep_id, "cells": cells}


def layer_final(
    sweep_id: int, status: str, *, best: dict | None, elapsed_s: float, error: str
) -> dict[str, Any]:
    """The end of a sweep as a layer message, by its final status."""
    if status == "complete":
        return {
            "type": LAYER_COMPLETE,
            "sweep_id": sweep_id,
            "best": best,
            "elapsed_s": elapsed_s,
        }
    if status == "cancelled":
        return {"type": LAYER_CANCELLED, "sweep_id": sweep_id}
    return {
        "type": LAYER_FAILED,
        "sweep_id": sweep_id,
        "message": f"the sweep failed: {error}",
    }


def sweep_start(
    sweep_id: int,
    combinations: int,
    skipped: int,
    total: int,
    axes: dict,
    **attached: Any,
) -> dict[str, Any]:
    """``attached`` (``attach`` to a sweep started earlier): ``attached=True``,
    ``status``, ``strategy`` and ``elapsed_s`` since it started."""
    return {
        "type": "sweep_start",
        "sweep_id": sweep_id,
        "combinations": combinations,
        "skipped": skipped,
        "total": total,
        "axes": axes,
        **attached,
    }


def cell(
    sweep_id: int, item: dict, completed: int, combinations: int
) -> dict[str, Any]:
    return {
        "type": "cell",
        "sweep_id": sweep_id,
        "index": item["index"],
        "params": item["params"],
        "metrics": item["metrics"],
        "completed": completed,
        "combinations": combinations,
    }


def sweep_complete(sweep_id: int, best: dict | None, elapsed_s: float) -> dict:
    return {
        "type": "sweep_complete",
        "sweep_id": sweep_id,
        "best": best,
        "elapsed_s": round(elapsed_s, 4),
    }


def cancelled(sweep_id: int) -> dict[str, Any]:
    return {"type": "cancelled", "sweep_id": sweep_id}


def walk_forward_start(combinations: int, skipped: int, axes: dict) -> dict:
    return {
        "type": "walk_forward_start",
        "combinations": combinations,
        "skipped": skipped,
        "axes": axes,
    }


def walk_forward_complete(result: dict, elapsed_s: float) -> dict:
    return {
        "type": "walk_forward_complete",
        "result": result,
        "elapsed_s": round(elapsed_s, 4),
    }
