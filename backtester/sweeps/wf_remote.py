"""Walk-forwards on Celery workers (BACKTEST_EXECUTOR=celery): the web side.

A walk-forward is one task: its folds choose each window's parameters from the
previous ones, so it is one piece. The web process records it (queued), sends
the task by name (importing no task module) and watches the record from a
control thread (``execution.remote``, as for a portfolio run): the job is
counted in admission until the record ends, a cancel (the client's, a closed
socket's or a shutdown's) revokes the task and ends the record, and the job
fails when no worker picked it up within BACKTEST_TASK_PICKUP_TIMEOUT and
none answers a ping. The worker stores and announces the result (wf_pieces.py).
"""

from __future__ import annotations

import logging

from django.db import close_old_connections, connections

from backtester.execution.failures import failure_reason
from backtester.execution.handles import JobHandle
from backtester.execution.pool import get_runner
from backtester.execution.remote import send, watch
from backtester.execution.services import group_send
from backtester.sweeps import events
from backtester.sweeps.models import WalkForwardRun
from backtester.sweeps.walk_forwards import (
    UNFINISHED,
    walk_forward_end,
    walk_forward_task_set,
)

logger = logging.getLogger(__name__)
# The task's name (tasks.py registers it under this).
WALK_FORWARD_TASK = "backtester.walk_forward"
KIND = "walk_forward"


def walk_forward_watch(walk_forward_id: int, request: dict, handle: JobHandle) -> None:
    """Send a recorded walk-forward to a worker and watch its record until it
    ends (a control thread); the handle's job is retired at the end."""
    close_old_connections()
    unfinished = WalkForwardRun.objects.filter(
        pk=walk_forward_id, status__in=UNFINISHED
    )
    group = events.walk_forward_group(walk_forward_id)

    failed: list[str] = []

    def fail(reason: str) -> None:
        if walk_forward_end(walk_forward_id, status="failed", error=reason):
            failed.append(reason)  # told once the job is no longer counted

    try:
        if not handle.should_stop():  # a socket closed while this was queued
            task_id = send(WALK_FORWARD_TASK, walk_forward_id, request)
            walk_forward_task_set(walk_forward_id, task_id)
            watch(
                handle=handle,
                started=lambda: not unfinished.filter(status="queued").exists(),
                finished=lambda: not unfinished.exists(),
                fail=fail,
                task_ids=[task_id],
            )
        if handle.should_stop():
            # A closed socket or a shutdown (a client's cancel recorded it
            # already): the record is the worker's stop flag.
            walk_forward_end(walk_forward_id, status="cancelled")
    except Exception as exc:
        logger.exception("walk-forward %s: could not watch its task", walk_forward_id)
        try:
            fail(failure_reason(exc))
        except Exception:
            logger.exception("could not record walk-forward %s's end", walk_forward_id)
    finally:
        connections.close_all()
        get_runner().retire(handle.job_id, KIND)
        handle.done.set()
    for reason in failed:
        try:
            group_send(
                group, events.layer_walk_forward_end(walk_forward_id, "failed", reason)
            )
        except Exception:
            logger.warning("could not announce walk-forward %s's end", walk_forward_id)
