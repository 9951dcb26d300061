"""The Celery executor: a run becomes one task per coin, a sweep one task per
block of combinations and group of SWEEP_TASK_COINS coins, run by worker
processes.

The web process sends the tasks and watches the run from a control thread: it
wakes when a piece starts or ends (state.wait), counts the rows stored in the
database, and ends the job when all are stored (complete), when the client
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
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connections

from backtester.execution import events, services, state
from backtester.execution.failures import failure_reason
from backtester.execution.feeding import Feeder
from backtester.execution.handles import (
    Hook,
    JobSpec,
    Publish,
    ResultRow,
    RunHandle,
    Slot,
    SweepHandle,
)
from backtester.execution.messages import spec_dump
from backtester.execution.pool import Runner, get_runner
from backtester.execution.remote import RUN_PRIORITY, sweep_priority, workers_answer
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
# Seconds beyond the broker's visibility timeout without any piece starting or
# ending after which the pieces not ended are sent again (see _watch).
STALL_MARGIN_S = 5.0
# Seconds between looks at the heartbeats of the workers holding a job's pieces.
LIVENESS_EVERY_S = 1.0


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
        self._sweeps: dict[int, SweepHandle] = {}
        self._lock = threading.Lock()

    @property
    def active_runs(self) -> int:
        """Runs and sweeps this executor is watching."""
        with self._lock:
            return len(self._active) + len(self._sweeps)

    def submit(
        self,
        *,
        run_id: int,
        spec: JobSpec,
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
        spec: JobSpec,
        coins: list[Cryptocurrency],
        publish: Publish,
        on_finish: Hook | None,
        on_beat: Hook | None,
    ) -> None:
        began = time.perf_counter()
        close_old_connections()
        run_id, job = handle.run_id, state.run_job(handle.run_id)
        feeder: Feeder | None = None

        def all_stored() -> bool:
            return services.results_stored(run_id) >= handle.total

        def unsent() -> list[Cryptocurrency]:
            sent = state.published(job)
            return [c for c in coins if str(c.pk) not in sent]

        def publish_unsent(missing: list[Cryptocurrency]) -> None:
            for coin in missing:
                rows = services.results_rows(run_id, [coin.symbol])
                services.results_publish(run_id, rows)
            state.pieces_published(job, [str(c.pk) for c in missing])

        try:
            state.reset(job)
            payload = spec_dump(spec)
            pieces = {
                str(coin.pk): (
                    self._tasks.run_piece,
                    f"run-{run_id}-{coin.pk}",
                    {"run_id": run_id, "coin_id": coin.pk, "spec": payload},
                    RUN_PRIORITY,
                )
                for coin in coins
            }
            feeder = self._feeder(job, pieces)
            handle.status = self._watch(
                handle,
                feeder,
                all_stored,
                unsent,
                publish_unsent,
                on_beat,
                events.run_group(run_id),
            )
        except Exception as exc:  # the run fails, the server goes on
            handle.error = self._failure(f"backtest run {run_id}", exc)
            handle.cancelled.set()
            handle.status = "failed"
        self._stop_tasks(job, feeder, revoke=handle.status != "complete")
        handle.elapsed_s = time.perf_counter() - began
        try:
            # No task stores into the run from here on; its rows are final.
            services.run_close(run_id, handle.status)
            handle.rows = services.results_rows(run_id)
            handle.stored = len(handle.rows)
            if handle.status == "complete":
                handle.summary = services.results_summary(handle.rows)
            handle.summary["elapsed_s"] = round(handle.elapsed_s, 4)
            if on_finish:
                on_finish(handle)
        except Exception as exc:
            logger.exception("could not save run %s", run_id)
            # As the thread pool does: the client is told the run failed, and
            # the record says so once the database is back (the next page read
            # or run saves it, its count taken from the rows stored).
            if handle.status != "failed":
                handle.status, handle.error = "failed", failure_reason(exc)
            if on_finish:
                get_runner().keep_unsaved(handle)
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
            publish(handle.final_event())
        except Exception:
            logger.exception("could not announce the end of run %s", run_id)
        finally:
            handle.done.set()

    # --- sweeps ---------------------------------------------------------------

    def submit_sweep(
        self,
        *,
        plan: Any,
        coins: Sequence[Cryptocurrency],
        publish: Publish,
        slot: Slot | None = None,
    ) -> SweepHandle:
        """Start a sweep's tasks (one per block of combinations and group of
        SWEEP_TASK_COINS coins) in the background, in the place ``slot`` held;
        RunnerBusy when the process has BACKTEST_MAX_QUEUED_RUNS jobs."""
        handle = SweepHandle(plan.sweep_id)
        # Admission is the runner's, one count for every kind of job.
        get_runner().admit(handle, slot, kind="sweep", job_id=plan.sweep_id)
        with self._lock:
            self._sweeps[plan.sweep_id] = handle
        self._control.submit(self._drive_sweep, handle, plan, list(coins), publish)
        return handle

    def sweep_handle(self, sweep_id: int) -> SweepHandle | None:
        """Return the handle of a sweep this process watches, or None."""
        with self._lock:
            return self._sweeps.get(sweep_id)

    def _drive_sweep(
        self,
        handle: SweepHandle,
        plan: Any,
        coins: list[Cryptocurrency],
        publish: Publish,
    ) -> None:
        began = time.perf_counter()
        close_old_connections()
        sweep_id, job = plan.sweep_id, state.sweep_job(plan.sweep_id)
        blocks = plan.blocks()
        feeder: Feeder | None = None

        def all_stored() -> bool:
            return services.sweep_pending_cells(sweep_id) == 0

        def unsent() -> list[range]:
            sent = state.published(job)
            return [b for b in blocks if services.block_published(b.start) not in sent]

        def publish_unsent(missing: list[range]) -> None:
            services.sweep_cells_publish(sweep_id, missing)
            state.pieces_published(
                job, [services.block_published(b.start) for b in missing]
            )

        try:
            state.reset(job)
            # Block by block across the coins: the first cells complete first.
            # A task takes SWEEP_TASK_COINS coins of one block.
            size = max(1, settings.SWEEP_TASK_COINS)
            groups = [
                [c.symbol for c in coins[i : i + size]]
                for i in range(0, len(coins), size)
            ]
            pieces = {
                services.block_piece(block.start, group): (
                    self._tasks.sweep_piece,
                    f"sweep-{sweep_id}-{block.start}-{number}",
                    {"sweep_id": sweep_id, "symbols": group, "first": block.start},
                    sweep_priority(order),
                )
                for order, block in enumerate(blocks)
                for number, group in enumerate(groups)
            }
            feeder = self._feeder(job, pieces)
            handle.status = self._watch(
                handle,
                feeder,
                all_stored,
                unsent,
                publish_unsent,
                None,
                events.sweep_group(sweep_id),
            )
        except Exception as exc:  # the sweep fails, the server goes on
            handle.error = self._failure(f"sweep {sweep_id}", exc)
            handle.cancelled.set()
            handle.status = "failed"
        self._stop_tasks(job, feeder, revoke=handle.status != "complete")
        handle.elapsed_s = time.perf_counter() - began
        handle.record_end()
        logger.info(
            "sweep %s %s on workers in %.3fs", sweep_id, handle.status, handle.elapsed_s
        )
        connections.close_all()
        get_runner().retire(sweep_id, "sweep")
        with self._lock:
            self._sweeps.pop(sweep_id, None)
        try:
            publish(handle.final)
        except Exception:
            logger.exception("could not announce the end of sweep %s", sweep_id)
        finally:
            handle.done.set()

    # --- shared by runs and sweeps ----------------------------------------------

    def _feeder(self, job: str, pieces: dict[str, tuple]) -> Feeder:
        """Return the job's feeder, with its first pieces sent."""
        feeder = Feeder(job, pieces, self._send_all, settings.BACKTEST_TASKS_IN_FLIGHT)
        feeder.top_up(0)
        return feeder

    @staticmethod
    def _send_all(pieces: dict[str, tuple]) -> list[str]:
        """Queue a task per piece, in order; return their ids (unique per
        sending, so a revoke never reaches a task of another job)."""
        task_ids = []
        for task, name, kwargs, priority in pieces.values():
            task_id = f"btlab-{name}-{uuid.uuid4().hex[:12]}"
            task.apply_async(kwargs=kwargs, task_id=task_id, priority=priority)
            task_ids.append(task_id)
        return task_ids

    @staticmethod
    def _failure(what: str, exc: Exception) -> str:
        """Log why a job failed; return the reason its client is told."""
        if isinstance(exc, RunFailed):
            logger.warning("%s failed: %s", what, exc)
            return str(exc)
        logger.exception("%s failed", what)
        # The client reads the service at fault, never the exception's text.
        return failure_reason(exc)

    def _watch(
        self,
        handle: RunHandle | SweepHandle,
        feeder: Feeder,
        all_stored: Callable[[], bool],
        unsent: Callable[[], list],
        publish_unsent: Callable[[list], None],
        on_beat: Hook | None,
        group: str,
    ) -> str:
        """Wait for a job to end; return its status (RunFailed if it cannot).

        It is complete when ``all_stored()`` (what the database holds, never a
        count of messages) and every piece was published: by its worker, or,
        ``PUBLISH_GRACE_S`` later, by ``publish_unsent`` from the database.

        Pieces go out ``feeder.bound`` at a time, more as they end. A piece
        whose worker process stopped beating (killed) is sent again at once,
        and the job's group is told that a worker stopped. When nothing has
        started or ended for longer than the broker's visibility timeout (plus
        its restore interval) while pieces are left, a task was lost (a worker
        killed between taking a message and recording it as unacknowledged):
        the pieces not ended are sent again. Storing is idempotent, so neither
        stores anything twice.
        """
        job = feeder.job
        pickup = settings.BACKTEST_TASK_PICKUP_TIMEOUT
        deadline = time.monotonic() + pickup
        beat_every = settings.BACKTEST_HEARTBEAT
        next_beat = time.monotonic() + beat_every
        all_stored_at: float | None = None
        seen_ended = 0
        stall = settings.BACKTEST_TASK_VISIBILITY_TIMEOUT + STALL_MARGIN_S
        seen, moved_at = (0, 0), time.monotonic()
        next_look = time.monotonic() + LIVENESS_EVERY_S
        while True:
            if handle.cancelled.is_set():
                return "cancelled"
            now = time.monotonic()
            if on_beat and now >= next_beat:
                Runner._beat(handle, on_beat)
                next_beat = now + beat_every
            started, ended, failure = state.progress(job)
            if (started, ended) != seen:
                seen, moved_at = (started, ended), now
            if failure:
                raise RunFailed(f"a worker could not compute a piece: {failure}")
            if ended > seen_ended:
                seen_ended = ended
                feeder.top_up(ended)
            if now >= next_look:
                next_look = now + LIVENESS_EVERY_S
                feeder.resend_lost(group)
            if all_stored():
                all_stored_at = all_stored_at or now
                missing = unsent()
                if not missing:
                    return "complete"
                if now - all_stored_at >= PUBLISH_GRACE_S:
                    logger.warning(
                        "%s: publishing %d stored pieces their workers did not",
                        job,
                        len(missing),
                    )
                    publish_unsent(missing)
                    return "complete"
            elif not started and now >= deadline:
                if not workers_answer(self._tasks.app):
                    raise RunFailed(
                        f"no worker picked up the tasks within {pickup:g} s; "
                        "is a worker running?"
                    )
                logger.warning("%s: the workers are busy, its tasks wait", job)
                deadline = now + pickup
            elif started and now - moved_at >= stall:
                lost = feeder.not_ended()
                logger.warning(
                    "%s: no progress in %.0f s; sending %d pieces again",
                    job,
                    now - moved_at,
                    len(lost),
                )
                feeder.resend(lost)
                moved_at = now
            state.wait(job, POLL_S)

    def _stop_tasks(self, job: str, feeder: Feeder | None, *, revoke: bool) -> None:
        """Stop a job's remaining tasks: running ones see the flag before
        storing, queued ones are revoked (and skip on the flag if a worker that
        missed the revoke takes them)."""
        task_ids = feeder.task_ids if feeder else []
        try:
            state.stop(job)
            if revoke and task_ids:
                self._tasks.app.control.revoke(task_ids)
        except Exception:
            logger.warning("could not stop the tasks of %s", job, exc_info=True)
