"""Sweep message shapes, in one place: channel layer and websocket."""

from __future__ import annotations

from typing import Any

# The channel-layer shapes executors publish (executor -> consumer) are
# execution's; the consumer and the command read them under these names.
from backtester.execution.events import LAYER_CELLS  # noqa: F401
from backtester.execution.events import SWEEP_CANCELLED as LAYER_CANCELLED  # noqa: F401
from backtester.execution.events import SWEEP_COMPLETE as LAYER_COMPLETE  # noqa: F401
from backtester.execution.events import SWEEP_FAILED as LAYER_FAILED  # noqa: F401
from backtester.execution.events import sweep_cells as layer_cells  # noqa: F401
from backtester.execution.events import sweep_final as layer_final  # noqa: F401
from backtester.execution.events import sweep_group as group  # noqa: F401


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


def walk_forward_cancelled() -> dict[str, Any]:
    return {"type": "cancelled", "walk_forward": True}


def walk_forward_complete(
    result: dict, elapsed_s: float, walk_forward_id: int | None = None
) -> dict:
    event = {
        "type": "walk_forward_complete",
        "result": result,
        "elapsed_s": round(elapsed_s, 4),
    }
    if walk_forward_id is not None:
        event["walk_forward_id"] = walk_forward_id  # stored: /sweeps/walk-forward/<id>/
    return event


# The channel-layer event of a walk-forward computed on a Celery worker: its
# record has ended (``status``); a failure says why (``message``, ``field``).
LAYER_WALK_FORWARD_END = "walk_forward.end"


def walk_forward_group(walk_forward_id: int) -> str:
    return f"walk_forward_{walk_forward_id}"


def layer_walk_forward_end(
    walk_forward_id: int, status: str, message: str = "", field: str | None = None
) -> dict[str, Any]:
    return {
        "type": LAYER_WALK_FORWARD_END,
        "walk_forward_id": walk_forward_id,
        "status": status,
        "message": message,
        "field": field,
    }
