"""Portfolio message shapes, in one place: channel layer and websocket.

The layer messages (``portfolio.*``) go from the control thread computing a
run to the consumers in its group; the websocket messages are what the
browser receives: ``start``, ``progress``, ``portfolio``, ``complete`` (or
``cancelled`` / ``error``), each with ``portfolio_id``.
"""

from __future__ import annotations

from typing import Any

LAYER_PROGRESS = "portfolio.progress"
LAYER_RESULT = "portfolio.result"
LAYER_COMPLETE = "portfolio.complete"
LAYER_CANCELLED = "portfolio.cancelled"
LAYER_FAILED = "portfolio.failed"


def group(portfolio_id: int) -> str:
    """Return the channel-layer group a portfolio run publishes to."""
    return f"backtest.portfolio.{portfolio_id}"


def layer_progress(
    portfolio_id: int, symbol: str, completed: int, total: int
) -> dict[str, Any]:
    return {
        "type": LAYER_PROGRESS,
        "portfolio_id": portfolio_id,
        "symbol": symbol,
        "completed": completed,
        "total": total,
    }


def layer_result(
    portfolio_id: int, metrics: dict, equity: dict, contributions: dict
) -> dict[str, Any]:
    return {
        "type": LAYER_RESULT,
        "portfolio_id": portfolio_id,
        "metrics": metrics,
        "equity": equity,
        "contributions": contributions,
    }


def layer_final(
    portfolio_id: int, status: str, *, elapsed_s: float, error: str = ""
) -> dict[str, Any]:
    """The end of a portfolio run as a layer message, by its final status."""
    if status == "complete":
        return {
            "type": LAYER_COMPLETE,
            "portfolio_id": portfolio_id,
            "elapsed_s": round(elapsed_s, 4),
        }
    if status == "cancelled":
        return {"type": LAYER_CANCELLED, "portfolio_id": portfolio_id}
    return {
        "type": LAYER_FAILED,
        "portfolio_id": portfolio_id,
        "message": f"the portfolio run failed: {error}",
    }


def start(portfolio_id: int, total: int, **attached: Any) -> dict[str, Any]:
    """``attached`` (``attach`` to a run started earlier): ``attached=True``
    and the run's ``status``."""
    return {"type": "start", "portfolio_id": portfolio_id, "total": total, **attached}


def progress(event: dict) -> dict[str, Any]:
    return {
        "type": "progress",
        "portfolio_id": event["portfolio_id"],
        "symbol": event["symbol"],
        "completed": event["completed"],
        "total": event["total"],
    }


def portfolio(event: dict) -> dict[str, Any]:
    return {
        "type": "portfolio",
        "portfolio_id": event["portfolio_id"],
        "metrics": event["metrics"],
        "equity": event["equity"],
        "contributions": event["contributions"],
    }


def complete(portfolio_id: int, elapsed_s: float) -> dict[str, Any]:
    return {
        "type": "complete",
        "portfolio_id": portfolio_id,
        "elapsed_s": round(elapsed_s, 4),
    }


def cancelled(portfolio_id: int | None) -> dict[str, Any]:
    return {"type": "cancelled", "portfolio_id": portfolio_id}
