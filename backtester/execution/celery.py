"""The Celery executor: a run becomes one task per coin, run by worker processes.

The web process sends the tasks and watches the run from a control thread: it
wakes when a piece starts or ends (state.wait), counts the rows stored in the
database, and ends the run when all are stored (complete), when the client
cancels (the tasks are revoked and a stop flag makes running ones drop their
work), when a piece fails, or when no worker has started any task within
BACKTEST_TASK_PICKUP_TIMEOUT seconds and none answers a ping (failed, saying
so). Workers publish results to the run's group themselves; the final event
comes from here, through the consumer's ``publish``, after the run is saved.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import close_old_connections, connections

from backtester.execution import services, state
from backtester.execution.messages import spec_dump
from backtester.runner import (
    Hook,
    Publish,
    ResultRow,
    RunHandle,
    Runner,
    Slot,
    failure_reason,
    get_runner,
    summarize,
)
from backtester.validation import RunSpec
from prices.models import Cryptocurrency

logger = logging.getLogger(__name__)

# Seconds between looks at a run's progress when nothing wakes the monitor; a
# cancel is noticed within this time.
POLL_S = 0.2
# Seconds to wait, once every piece is stored, for the last pieces to be
# published by their workers. A worker that died between storing and publishing
# would leave its results unsent (its task, redelivered after the broker's
# visibility timeout, finds them stored and stores nothing): after this grace the
# monitor publishes them from the database. Should that worker have got its
# message out just before dying, the client receives the results twice, and the
# consumer drops the second copy.
PUBLISH_GRACE_S = 2.0


class RunFailed(RuntimeError):
    """The run cannot complete; the message says why, for the client."""


class CeleryExecutor:
    """Send runs to Celery workers and watch them from control threads."""

    def __init__(self, max_runs: int = 8) -> None:
        # Importing the tasks creates the Celery app and registers them.
        from backtester.execution import tasks

        self._tasks = tasks
        self._control = ThreadPoolExecutor(max_runs, "backtest-celery")
        self._active: dict[int, RunHandle] = {}
        self._lock = threading.Lock()

    @property
    def active_runs(self) -> int:
        with self._lock:
            return len(self._active)

    def submit(
        self,
        *,
        run_id: int,
        spec: RunSpec,
        coins: Sequence[Cryptocurrency],
        publish: Publish,
        on_rows: Callable[[RunHandle, list[ResultRow]], None] | None = None,
        on_finish: Hook | None = None,
        on_beat: Hook | None = None,
        slot: Slot | None = None,
    ) -> RunHandle:
        """Start a run's tasks in the background; RunnerBusy when full.

        ``on_rows`` is not called: the workers store the rows themselves.
        """
        handle = RunHandle(run_id=run_id, total=len(coins) * len(spec.jobs))
        # Admission (the process's limit, each user's cap) is the runner's,
        # whichever executor computes the run.
        get_runner().admit(handle, slot)
        with self._lock:
            self._active[run_id] = handle
        self._control.submit(
            self._drive, handle, spec, list(coins), publish, on_finish, on_beat
        )
        return handle

    def _drive(
        self,
        handle: RunHandle,
        spec: RunSpec,
        coins: list[Cryptocurrency],
        publish: Publish,
        on_finish: Hook | None,
        on_beat: Hook | None,
    ) -> None:
        began = time.perf_counter()
        close_old_connections()
        run_id = handle.run_id
        task_ids: list[str] = []
        try:
            state.reset(run_id)
            payload = spec_dump(spec)
            for coin in coins:
                # Unique per sending, so a revoke never reaches another run's.
                task_id = f"btlab-run-{run_id}-{coin.pk}-{uuid.uuid4().hex[:12]}"
                self._tasks.run_piece.apply_async(
                    kwargs={"run_id": run_id, "coin_id": coin.pk, "spec": payload},
                    task_id=task_id,
                )
                task_ids.append(task_id)
            handle.status = self._watch(handle, coins, on_beat)
        except Exception as exc:  # the run fails, the server goes on
            if isinstance(exc, RunFailed):
                logger.warning("backtest run %s failed: %s", run_id, exc)
                handle.error = str(exc)
            else:
                logger.exception("backtest run %s failed", run_id)
                handle.error = failure_reason(exc)
            handle.cancelled.set()
            handle.status = "failed"
        self._stop_tasks(run_id, task_ids, revoke=handle.status != "complete")
        handle.elapsed_s = time.perf_counter() - began
        try:
            # No task stores into the run from here on; its rows are final.
            services.run_close(run_id, handle.status)
            handle.rows = services.results_rows(run_id)
            handle.stored = len(handle.rows)
            if handle.status == "complete":
                handle.summary = summarize([row.data for row in handle.rows])
            handle.summary["elapsed_s"] = round(handle.elapsed_s, 4)
            if on_finish:
                on_finish(handle)
        except Exception:
            logger.exception("could not save run %s", run_id)
        logger.info(
            "run %s %s on workers: %d results in %.3fs",
            run_id,
            handle.status,
            len(handle.rows),
            handle.elapsed_s,
        )
        # As the thread pool does: stop counting the run, then announce its end.
        connections.close_all()
        get_runner().retire(run_id)
        with self._lock:
            self._active.pop(run_id, None)
        try:
            publish(Runner._final_event(handle))
        except Exception:
            logger.exception("could not announce the end of run %s", run_id)
        finally:
            handle.done.set()

    def _watch(
        self, handle: RunHandle, coins: list[Cryptocurrency], on_beat: Hook | None
    ) -> str:
        """Wait for the run to end; return its status (RunFailed if it cannot)."""
        run_id, total = handle.run_id, handle.total
        pickup = settings.BACKTEST_TASK_PICKUP_TIMEOUT
        deadline = time.monotonic() + pickup
        beat_every = settings.BACKTEST_HEARTBEAT
        next_beat = time.monotonic() + beat_every
        all_stored_at: float | None = None
        while True:
            if handle.cancelled.is_set():
                return "cancelled"
            now = time.monotonic()
            if on_beat and now >= next_beat:
                Runner._beat(handle, on_beat)
                next_beat = now + beat_every
            started, _ended, failure = state.progress(run_id)
            if failure:
                raise RunFailed(f"a worker could not compute a coin: {failure}")
            if services.results_stored(run_id) >= total:
                all_stored_at = all_stored_at or now
                sent = state.published(run_id)
                unsent = [c for c in coins if str(c.pk) not in sent]
                if not unsent:
                    return "complete"
                if now - all_stored_at >= PUBLISH_GRACE_S:
                    self._publish_stored(run_id, unsent)
                    return "complete"
            elif not started and now >= deadline:
                if not self._workers_answer():
                    raise RunFailed(
                        f"no worker picked up the tasks within {pickup:g} s; "
                        "is a worker running?"
                    )
                logger.warning("run %s: workers are busy, its tasks wait", run_id)
                deadline = now + pickup
            state.wait(run_id, POLL_S)

    @staticmethod
    def _publish_stored(run_id: int, coins: list[Cryptocurrency]) -> None:
        """Publish from the database the stored results no worker published."""
        logger.warning(
            "run %s: publishing %d stored coins whose worker did not",
            run_id,
            len(coins),
        )
        for coin in coins:
            rows = services.results_rows(run_id, [coin.symbol])
            services.results_publish(run_id, rows)
        state.pieces_published(run_id, [str(c.pk) for c in coins])

    def _workers_answer(self) -> bool:
        try:
            return bool(self._tasks.app.control.ping(timeout=1.0))
        except Exception:  # a broker that cannot be reached has no workers
            logger.warning("could not ping the workers", exc_info=True)
            return False

    def _stop_tasks(self, run_id: int, task_ids: list[str], *, revoke: bool) -> None:
        """Stop the run's remaining tasks: running ones see the flag before
        storing, queued ones are revoked (and skip on the flag if a worker that
        missed the revoke takes them)."""
        try:
            state.stop(run_id)
            if revoke and task_ids:
                self._tasks.app.control.revoke(task_ids)
        except Exception:
            logger.warning("could not stop the tasks of run %s", run_id, exc_info=True)
