"""What executors publish to a job's channel-layer group (executor -> consumer).

Both executors send these shapes, so a consumer cannot tell who computed a
piece. Dots in a type map to consumer methods. The websocket messages the
browser receives are the apps' own (``runs.events``, ``sweeps.events``).
"""

from __future__ import annotations

from typing import Any

# A run's results and its end.
LAYER_RESULTS = "run.results"
LAYER_COMPLETE = "run.complete"
LAYER_FAILED = "run.failed"
LAYER_CANCELLED = "run.cancelled"
# A sweep's finished cells and its end.
LAYER_CELLS = "sweep.cells"
SWEEP_COMPLETE = "sweep.complete"
SWEEP_CANCELLED = "sweep.cancelled"
SWEEP_FAILED = "sweep.failed"
# Something a job's clients should know while it goes on (a worker stopped).
JOB_NOTICE = "job.notice"


def run_group(run_id: int) -> str:
    """Return the channel-layer group a run publishes to."""
    return f"backtest.run.{run_id}"


def sweep_group(sweep_id: int) -> str:
    """Return the channel-layer group a sweep publishes to."""
    return f"backtest.sweep.{sweep_id}"


def run_results(run_id: int, results: list[dict]) -> dict[str, Any]:
    """Numbered results of one piece: ``[{seq, data}]``."""
    return {"type": LAYER_RESULTS, "run_id": run_id, "results": results}


def run_final(
    run_id: int, status: str, *, summary: dict, elapsed_s: float, error: str
) -> dict[str, Any]:
    """The end of a run as a layer message, by its final status."""
    if status == "complete":
        return {
            "type": LAYER_COMPLETE,
            "run_id": run_id,
            "summary": summary,
            "elapsed_s": elapsed_s,
        }
    if status == "cancelled":
        return {"type": LAYER_CANCELLED, "run_id": run_id}
    return {
        "type": LAYER_FAILED,
        "run_id": run_id,
        "message": f"the run failed: {error}",
    }


def sweep_cells(sweep_id: int, cells: list[dict]) -> dict[str, Any]:
    """Many finished cells in one layer message: ``[{index, params, metrics}]``."""
    return {"type": LAYER_CELLS, "sweep_id": sweep_id, "cells": cells}


def sweep_final(
    sweep_id: int, status: str, *, best: dict | None, elapsed_s: float, error: str
) -> dict[str, Any]:
    """The end of a sweep as a layer message, by its final status."""
    if status == "complete":
        return {
            "type": SWEEP_COMPLETE,
            "sweep_id": sweep_id,
            "best": best,
            "elapsed_s": elapsed_s,
        }
    if status == "cancelled":
        return {"type": SWEEP_CANCELLED, "sweep_id": sweep_id}
    return {
        "type": SWEEP_FAILED,
        "sweep_id": sweep_id,
        "message": f"the sweep failed: {error}",
    }


def job_notice(message: str) -> dict[str, Any]:
    """A note for a job's clients while it goes on: ``{message}``."""
    return {"type": JOB_NOTICE, "message": message}
