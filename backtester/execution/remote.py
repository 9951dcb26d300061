"""Jobs sent to Celery workers as one task or a few, and watched from here.

A portfolio run or sweep, or a walk-forward, on Celery workers
(BACKTEST_EXECUTOR=celery): the web process sends its tasks by name (importing
no task module) and watches its record from a control thread. It counts the
job in admission until the record ends, revokes the tasks on cancel, and fails
the job when no worker picked it up within BACKTEST_TASK_PICKUP_TIMEOUT and
none answers a ping. The workers store and publish the results themselves.
The task priorities and the ping are also those of the run and sweep executor
(celery.py), which sends a job as many pieces.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.db import close_old_connections, connections

logger = logging.getLogger(__name__)
# Seconds between the watcher's looks at a record.
POLL_S = 0.2
# Task priorities on the Redis broker, where 0 is taken first (the transport's
# priority_steps in settings). A run's pieces (one coin each: small) go ahead
# of every queued sweep piece, so a 1-coin run never waits behind a 10,000-
# combination sweep; a sweep's block k goes at SWEEP_PRIORITY + k, so the first
# cells of a sweep started later overtake the late blocks of an earlier one.
RUN_PRIORITY = 0
SWEEP_PRIORITY = 2
LOWEST_PRIORITY = 9


def sweep_priority(block: int) -> int:
    """Return the task priority of a sweep's ``block``-th block (0 first)."""
    return min(LOWEST_PRIORITY, SWEEP_PRIORITY + block)


def send(name: str, *args: object, block: int | None = None) -> str:
    """Send a task by name at the priority the executor gives its kind (a
    run's pieces, or a sweep's ``block``-th block); return its id."""
    from backtester.celery import app

    priority = RUN_PRIORITY if block is None else sweep_priority(block)
    return app.send_task(name, args=list(args), priority=priority).id


def workers_answer(app=None) -> bool:
    """Return whether any worker of ``app`` (the project's Celery app by
    default) answers a ping within a second; False when the broker cannot be
    reached."""
    if app is None:
        from backtester.celery import app
    try:
        return bool(app.control.ping(timeout=1.0))
    except Exception:  # a broker that cannot be reached has no workers
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
                if not workers_answer():
                    _revoke(task_ids)
                    fail("no Celery worker is running (start one: celery -A "
                         "backtester worker)")  # fmt: skip
                    return
                deadline = time.monotonic() + settings.BACKTEST_TASK_PICKUP_TIMEOUT
            time.sleep(POLL_S)
    finally:
        connections.close_all()
