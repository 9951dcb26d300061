"""Portfolio runs and sweeps on Celery workers (BACKTEST_EXECUTOR=celery).

A portfolio run is one task: its account pass needs every coin's signals at
once, so the whole run is one piece. A portfolio sweep is one task per block
of combinations sharing their strategy parameters (at most BLOCK_CELLS), so a
block computes its coins' signals once, as the thread pool does. Workers
store and publish each result themselves (pieces.py). The web process sends
the tasks by name (importing no task module) and watches the record from a
control thread: it counts the job in admission until the record ends, ends
a sweep when every cell is stored, revokes the tasks on cancel, and fails the
job when no worker picked it up within BACKTEST_TASK_PICKUP_TIMEOUT and none
answers a ping.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.db import close_old_connections, connections

from strategies.grid import split_params
from strategies.portfolio_sweep import MAX_POSITIONS_KEY

logger = logging.getLogger(__name__)
# The tasks' names (tasks.py registers them under these).
RUN_TASK = "backtester.portfolio_run"
SWEEP_TASK = "backtester.portfolio_sweep_block"
# Cells per sweep task at most: small enough that several workers share a
# sweep of one strategy setting, large enough that a task is not all overhead.
BLOCK_CELLS = 16
# Seconds between the watcher's looks at a record.
POLL_S = 0.2


def send(name: str, *args: object, block: int | None = None) -> str:
    """Send a task by name at the priority the executor gives its kind (a
    run's pieces, or a sweep's ``block``-th block); return its id."""
    from backtester.celery import app
    from backtester.execution.celery import RUN_PRIORITY, sweep_priority

    priority = RUN_PRIORITY if block is None else sweep_priority(block)
    return app.send_task(name, args=list(args), priority=priority).id


def sweep_blocks(combinations: list[dict]) -> list[list[int]]:
    """Return the sweep's tasks: indexes sharing strategy parameters, in
    blocks of at most BLOCK_CELLS, in the order the combinations come."""
    groups: dict[tuple, list[int]] = {}
    for index, combination in enumerate(combinations):
        chosen = {k: v for k, v in combination.items() if k != MAX_POSITIONS_KEY}
        params, _risk = split_params(chosen)
        groups.setdefault(tuple(sorted(params.items())), []).append(index)
    return [
        indexes[i : i + BLOCK_CELLS]
        for indexes in groups.values()
        for i in range(0, len(indexes), BLOCK_CELLS)
    ]


def _workers_answer() -> bool:
    from backtester.celery import app

    try:
        return bool(app.control.ping(timeout=1.0))
    except Exception:
        logger.warning("could not ping the workers", exc_info=True)
        return False


def _revoke(task_ids: list[str]) -> None:
    from backtester.celery import app

    try:
        app.control.revoke(task_ids)
    except Exception:  # a revoked task finds its record ended and stops anyway
        logger.warning("could not revoke %d tasks", len(task_ids), exc_info=True)


def watch(
    *,
    handle,
    started: Callable[[], bool],
    finished: Callable[[], bool],
    fail: Callable[[str], None],
    task_ids: list[str],
) -> None:
    """Wait (a control thread) until the job's record ends, the handle is
    cancelled (revoke), or no worker takes it (``fail`` with the reason)."""
    close_old_connections()
    deadline = time.monotonic() + settings.BACKTEST_TASK_PICKUP_TIMEOUT
    try:
        while not finished():
            if handle.cancelled.is_set():
                _revoke(task_ids)
                return
            if time.monotonic() > deadline and not started():
                if not _workers_answer():
                    _revoke(task_ids)
                    fail("no Celery worker is running (start one: celery -A "
                         "backtester worker)")  # fmt: skip
                    return
                deadline = time.monotonic() + settings.BACKTEST_TASK_PICKUP_TIMEOUT
            time.sleep(POLL_S)
    finally:
        connections.close_all()
