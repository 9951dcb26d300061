"""The websocket message shapes, in one place (server -> client)."""

from __future__ import annotations

from typing import Any

# The channel-layer shapes executors publish (executor -> consumer) are
# execution's; the consumer and the command read them under these names.
from backtester.execution.events import (  # noqa: F401
    LAYER_CANCELLED,
    LAYER_COMPLETE,
    LAYER_FAILED,
    LAYER_RESULTS,
    run_group,
)


def start(run_id: int, total: int, **extra: Any) -> dict[str, Any]:
    return {"type": "start", "run_id": run_id, "total": total, **extra}


def result(
    data: dict, completed: int, total: int, *, seq: int | None, run_id: int
) -> dict[str, Any]:
    """Return one result; ``seq`` numbers it in its run (1..total), so a client
    can tell a missing one and ask for it again (``resend``)."""
    return {
        "type": "result",
        "run_id": run_id,
        "seq": seq,
        "data": data,
        "completed": completed,
        "total": total,
    }


def result_text(
    data_json: str, completed: int, total: int, *, seq: int, run_id: int
) -> str:
    """Return the JSON text of ``result`` around data already encoded as JSON
    (stored results are sent without decoding and encoding them again)."""
    return (
        f'{{"type": "result", "run_id": {int(run_id)}, "seq": {int(seq)}, '
        f'"data": {data_json}, "completed": {int(completed)}, "total": {int(total)}}}'
    )


def complete(
    summary: dict, elapsed_s: float, run_id: int, **extra: Any
) -> dict[str, Any]:
    """The run's end; ``cached_from`` when it was answered from stored results."""
    return {
        "type": "complete",
        "run_id": run_id,
        "summary": summary,
        "elapsed_s": round(elapsed_s, 4),
        **extra,
    }


def cancelled(run_id: int | None) -> dict[str, Any]:
    return {"type": "cancelled", "run_id": run_id}


def error(message: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "error", "message": message}
    if field:
        event["field"] = field
    event.update(extra)
    return event


def notice(message: str) -> dict[str, Any]:
    """Something the client should know while its job goes on (a worker stopped)."""
    return {"type": "notice", "message": message}
