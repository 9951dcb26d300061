"""What a Celery worker does with a walk-forward (tasks.py calls this).

The worker rebuilds the validated request (the socket checked it for its user
already), loads the coins' bars through the shared price cache, runs the same
engine the thread pool runs, and ends the record with the result, then tells
the walk-forward's group. The record is the stop flag: a cancel ends it, and
the engine asks between coins of every fold whether it has ended. Ending is
conditional (``walk_forward_end``), so a task delivered again after its worker
died, or one that loses to a cancel, changes nothing.
"""

from __future__ import annotations

import logging
import time

from django.db import close_old_connections

from backtester.execution.failures import failure_reason
from backtester.execution.services import group_send
from backtester.runs.services import run_coins
from backtester.runs.validation import RequestError
from backtester.sweeps import events
from backtester.sweeps.models import WalkForwardRun
from backtester.sweeps.validation import walk_forward_spec
from backtester.sweeps.walk_forwards import (
    UNFINISHED,
    walk_forward_begin,
    walk_forward_end,
)
from backtester.sweeps.walkforward import walk_forward_data, walk_forward_run
from strategies.walkforward import Stopped

logger = logging.getLogger(__name__)
# Seconds between looks at the record while computing: a cancel is seen
# within this, and a walk-forward of many coins does not query per coin.
STOP_CHECK_S = 0.2


class RecordStop:
    """Whether the walk-forward's record has ended (a cancel), asked by the
    engine before every coin of every fold and read at most every
    STOP_CHECK_S seconds."""

    def __init__(self, walk_forward_id: int) -> None:
        self.unfinished = WalkForwardRun.objects.filter(
            pk=walk_forward_id, status__in=UNFINISHED
        )
        self.checked = 0.0
        self.ended = False

    def __call__(self) -> bool:
        now = time.monotonic()
        if not self.ended and now - self.checked >= STOP_CHECK_S:
            self.checked = now
            self.ended = not self.unfinished.exists()
        return self.ended


def walk_forward_piece(walk_forward_id: int, request: dict, task_id: str = "") -> str:
    """Compute, store and announce one walk-forward; return how it ended."""
    close_old_connections()
    if not walk_forward_begin(walk_forward_id, task_id):
        return "ended"  # cancelled before it started, or delivered again
    group = events.walk_forward_group(walk_forward_id)
    began = time.perf_counter()
    field = None
    try:
        spec = walk_forward_spec(request, trusted=True)
        result = walk_forward_run(
            spec=spec.sweep,
            coins=run_coins(spec.sweep),
            folds=spec.folds,
            train_bars=spec.train_bars,
            test_bars=spec.test_bars,
            should_stop=RecordStop(walk_forward_id),
        )
        data, status, error = walk_forward_data(result), "complete", ""
    except Stopped:
        return "stopped"  # cancelled: the canceller recorded and announced it
    except RequestError as exc:  # e.g. no coin has bars in the range
        data, status, error, field = None, "failed", exc.message, exc.field
    except Exception as exc:
        logger.exception("walk-forward %s failed on a worker", walk_forward_id)
        data, status = None, "failed"
        error = f"the walk-forward failed: {failure_reason(exc)}"
    elapsed = time.perf_counter() - began
    if not walk_forward_end(
        walk_forward_id, status=status, result=data, elapsed_s=elapsed, error=error
    ):
        return "ended"  # a cancel ended it first, after the last coin
    group_send(
        group, events.layer_walk_forward_end(walk_forward_id, status, error, field)
    )
    return status
