"""The ``sweep`` message of the ``ws/backtests/`` socket, as a consumer mixin.

``BacktestConsumer`` dispatches ``{"type": "sweep"}`` and ``{"type": "attach",
"sweep_id"}`` here. A sweep, like a run, goes on without its socket (a reload
or a dropped connection attaches to it again: its finished cells from the
database, then the live ones); only ``cancel`` stops it. Cells arrive from the
executor many per channel-layer message and go to the browser one ``cell``
message each; a cell already forwarded (a retried unit of work reports its
block again, or an attach read it from the database) is dropped, so
``completed`` counts each combination once.
"""

from __future__ import annotations

import asyncio
import logging
import time

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import close_old_connections, connections
from django.utils import timezone

from backtester.auth import scope_client_ip
from backtester.execution.executors import sweep_handle
from backtester.execution.handles import JobHandle, RunnerBusy
from backtester.execution.pool import get_runner
from backtester.runs import events as run_events
from backtester.runs.messages import record_id
from backtester.runs.services import run_admit, run_coins
from backtester.runs.validation import RequestError
from backtester.sweeps import events
from backtester.sweeps.models import Sweep
from backtester.sweeps.selectors import sweep_attach_state
from backtester.sweeps.services import (
    sweep_create,
    sweep_finish,
    sweep_start,
    sweeps_mark_stale,
)
from backtester.sweeps.validation import (
    sweep_size_check,
    sweep_spec,
    walk_forward_spec,
)
from backtester.sweeps.walk_forwards import walk_forward_store
from backtester.sweeps.walkforward import walk_forward_data, walk_forward_run
from backtester.sweeps.wf_consumers import RemoteWalkForwardMixin
from strategies.walkforward import Stopped

logger = logging.getLogger(__name__)

# Seconds a finished sweep's last layer event may take before the consumer
# ends the sweep itself from the handle (the layer may be gone: Redis down).
END_GRACE = 1.0
# How often that watch looks at the handle.
WATCH_EVERY = 0.2


class SweepConsumerMixin(RemoteWalkForwardMixin):
    """Sweep handling for an AsyncJsonWebsocketConsumer with ``publisher``."""

    sweep_id: int | None = None
    sweep_handle = None
    sweep_combinations = 0
    sweep_seen: set[int]
    walk_forward_task: asyncio.Task | None = None
    walk_forward_handle: JobHandle | None = None
    sweep_watch: asyncio.Task | None = None

    async def __call__(self, scope, receive, send) -> None:
        """Run the consumer; however it ends, stop its walk-forward.

        At shutdown daphne cancels every application instance without a
        disconnect: the walk-forward's thread would go on, and the process
        would wait for it before it exits.
        """
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.stop_walk_forward()

    async def start_sweep(self, content: dict, publisher) -> None:
        """Validate, store and start a sweep; reply ``sweep_start`` or ``error``."""
        try:
            spec = await database_sync_to_async(sweep_spec)(
                content, user=self.scope.get("user")
            )
            coins = await database_sync_to_async(run_coins)(spec)
            size = sweep_size_check(spec, len(coins), settings.SWEEP_MAX_BACKTESTS)
        except RequestError as exc:
            await self.send_json(run_events.error(exc.message, exc.field))
            return
        slot = await self.admit_job("sweep", size)
        if slot is None:
            return
        try:
            sweep = await database_sync_to_async(sweep_create)(
                spec=spec, coins=coins, user=self.scope.get("user")
            )
        except BaseException:
            slot.release()
            raise
        group = events.group(sweep.pk)
        await self.channel_layer.group_add(group, self.channel_name)
        self.sweep_id, self.sweep_seen = sweep.pk, set()
        self.sweep_combinations = len(spec.combinations)
        publish = publisher(self.channel_layer, group, asyncio.get_running_loop())
        try:
            self.sweep_handle = await database_sync_to_async(sweep_start)(
                sweep=sweep, coins=coins, publish=publish, slot=slot
            )
        except RunnerBusy as exc:  # sweep_start removed the sweep
            await self.forget_sweep()
            await self.send_json(run_events.error(str(exc)))
            return
        except BaseException:
            slot.release()  # a no-op once the executor took its place
            raise
        self.watch_sweep(sweep.pk)
        await self.send_json(
            events.sweep_start(
                sweep.pk, len(spec.combinations), spec.skipped, sweep.total, spec.axes
            )
        )

    def watch_sweep(self, sweep_id: int) -> None:
        """Watch this process's handle of the sweep, in case its end never
        comes through the layer."""
        if self.sweep_handle is not None:
            self.sweep_watch = asyncio.create_task(
                self._watch_sweep(sweep_id, self.sweep_handle)
            )

    async def _watch_sweep(self, sweep_id: int, handle) -> None:
        """End the sweep from its handle if the layer never brings its end:
        the cells stored and not yet sent (from the database), then the end
        its record says."""
        try:
            while not handle.done.is_set():
                await asyncio.sleep(WATCH_EVERY)
            await asyncio.sleep(END_GRACE)
            if self.sweep_id != sweep_id:
                return
            logger.warning("sweep %s: its end never came through the layer", sweep_id)
            try:
                _, items = await database_sync_to_async(sweep_attach_state)(
                    sweep_id, user=self.scope.get("user")
                )
            except Exception as exc:  # the end is told all the same
                logger.warning("could not read sweep %s's cells: %r", sweep_id, exc)
                items = []
            await self.sweep_cells({"sweep_id": sweep_id, "cells": items})
            await self.end_sweep(handle.final)
        except asyncio.CancelledError:
            pass

    async def end_sweep(self, final: dict) -> None:
        """Send a sweep's end from its layer event (complete, cancelled, failed)."""
        handler = {
            "sweep.complete": self.sweep_complete,
            "sweep.cancelled": self.sweep_cancelled,
        }.get(final.get("type"), self.sweep_failed)
        await handler(final)

    async def admit_job(self, kind: str, size: int = 0):
        """Return a place for a job of ``kind`` and ``size`` backtests of this
        socket's user (the count and throttle runs use, and the user's cap on
        backtests), or send the refusal and return None."""
        try:
            # Before anything is written; in a thread, as the first job creates
            # the runner, whose signal reads the database.
            return await database_sync_to_async(run_admit)(
                user=self.scope.get("user"),
                address=scope_client_ip(self.scope),
                kind=kind,
                size=size,
                size_limit=settings.SWEEP_MAX_BACKTESTS,
            )
        except RunnerBusy as exc:
            await self.send_json(run_events.error(str(exc)))
            return None

    def walk_forward_active(self) -> bool:
        """Return whether this socket's walk-forward is still computing."""
        if self.walk_forward_id is not None:  # on a worker, until its end is told
            return True
        return self.walk_forward_task is not None and not self.walk_forward_task.done()

    async def start_walk_forward(self, content: dict) -> None:
        """Validate a walk-forward, admit it as a job (the caps and throttle of
        runs and sweeps) and compute it on the control threads; the result (or
        an error) arrives as one message when it is done."""
        if self.walk_forward_active():
            await self.send_json(
                run_events.error("a walk-forward is already running on this connection")
            )
            return
        try:
            spec = await database_sync_to_async(walk_forward_spec)(
                content, user=self.scope.get("user")
            )
            coins = await database_sync_to_async(run_coins)(spec.sweep)
            # Each fold sweeps the grid on its train window.
            size = sweep_size_check(
                spec.sweep, len(coins), settings.SWEEP_MAX_BACKTESTS
            )
        except RequestError as exc:
            await self.send_json(run_events.error(exc.message, exc.field))
            return
        slot = await self.admit_job("walk_forward", size)
        if slot is None:
            return
        handle = JobHandle("walk_forward")
        runner = get_runner()
        runner.admit(handle, slot, kind="walk_forward", job_id=handle.job_id)
        self.walk_forward_handle = handle
        start = events.walk_forward_start(
            len(spec.sweep.combinations), spec.sweep.skipped, spec.sweep.axes
        )
        if settings.BACKTEST_EXECUTOR == "celery":  # on a worker (wf_consumers.py)
            wf_id = await self.start_remote_walk_forward(spec, content, handle)
            await self.send_json({**start, "walk_forward_id": wf_id})
            return
        self.walk_forward_task = asyncio.create_task(
            self._walk_forward(spec, coins, handle)
        )
        await self.send_json(start)

    async def _walk_forward(self, spec, coins, handle: JobHandle) -> None:
        began = time.perf_counter()
        runner = get_runner()

        def compute() -> dict | None:
            close_old_connections()
            try:
                return walk_forward_data(
                    walk_forward_run(
                        spec=spec.sweep,
                        coins=coins,
                        folds=spec.folds,
                        train_bars=spec.train_bars,
                        test_bars=spec.test_bars,
                        should_stop=handle.should_stop,
                    )
                )
            except Stopped:
                return None
            finally:
                connections.close_all()
                # Counted until its thread is free again, cancelled or not.
                runner.retire(handle.job_id, "walk_forward")
                handle.done.set()

        def never_ran(future) -> None:
            if future.cancelled():  # cancelled while queued: compute never ran
                runner.retire(handle.job_id, "walk_forward")
                handle.done.set()

        try:
            # The control threads, not the consumer's: a walk-forward may take
            # seconds and the socket stays responsive meanwhile.
            future = runner.submit_control(compute)
        except Exception:
            runner.retire(handle.job_id, "walk_forward")
            raise
        future.add_done_callback(never_ran)
        try:
            data = await asyncio.wrap_future(future)
        except RequestError as exc:
            await self.send_json(run_events.error(exc.message, exc.field))
            return
        except Exception as exc:  # the request fails, the socket stays
            logger.exception("walk-forward failed")
            await self.send_json(
                run_events.error(
                    f"the walk-forward failed: {type(exc).__name__}: {exc}"
                )
            )
            return
        if data is None:  # stopped: ``cancel`` has answered already
            return
        elapsed = time.perf_counter() - began
        try:
            # Stored, so leaving the page loses nothing; the result is sent
            # even if storing fails.
            saved = await database_sync_to_async(walk_forward_store)(
                spec=spec, result=data, elapsed_s=elapsed, user=self.scope.get("user")
            )
            saved_id = saved.pk
        except Exception:
            logger.exception("could not store the walk-forward")
            saved_id = None
        await self.send_json(events.walk_forward_complete(data, elapsed, saved_id))

    async def attach_sweep(self, content: dict) -> None:
        """Follow a sweep started earlier: its finished cells, then the live
        ones, then its end (at once if it has ended)."""
        try:
            sweep_id = record_id(content, "sweep_id", "sweep")
        except RequestError as exc:
            await self.send_json(run_events.error(exc.message, exc.field))
            return
        if self.sweep_id is not None:
            await self.send_json(
                run_events.error("a sweep is already active on this connection")
            )
            return
        group = events.group(sweep_id)
        # Join first: a cell finished from now on arrives live, one finished
        # before is read below; the consumer handles one message at a time,
        # so the live ones queue until these are sent, and repeats are dropped.
        await self.channel_layer.group_add(group, self.channel_name)
        try:
            await database_sync_to_async(sweeps_mark_stale)()
            sweep, items = await database_sync_to_async(sweep_attach_state)(
                sweep_id, user=self.scope.get("user")
            )
        except Sweep.DoesNotExist:
            await self.channel_layer.group_discard(group, self.channel_name)
            await self.send_json(
                run_events.error(f"sweep_id: no sweep {sweep_id}", "sweep_id")
            )
            return
        self.sweep_id, self.sweep_seen = sweep.pk, set()
        self.sweep_combinations = len(sweep.combinations)
        # Cancellable from here when this process computes or watches it.
        self.sweep_handle = sweep_handle(sweep.pk)
        if sweep.status in (Sweep.Status.QUEUED, Sweep.Status.RUNNING):
            self.watch_sweep(sweep.pk)
        elapsed = sweep.elapsed_s
        if elapsed is None and sweep.started_at is not None:
            elapsed = (timezone.now() - sweep.started_at).total_seconds()
        await self.send_json(
            events.sweep_start(
                sweep.pk, self.sweep_combinations, sweep.skipped, sweep.total,
                sweep.axes, attached=True, status=sweep.status,
                strategy=sweep.strategy, elapsed_s=round(elapsed or 0.0, 4),
            )
        )  # fmt: skip
        await self.sweep_cells({"sweep_id": sweep.pk, "cells": items})
        if sweep.status == Sweep.Status.COMPLETE:
            await self.sweep_complete(
                {"sweep_id": sweep.pk, "best": sweep.best,
                 "elapsed_s": sweep.elapsed_s or 0.0}
            )  # fmt: skip
        elif sweep.status == Sweep.Status.CANCELLED:
            await self.sweep_cancelled({"sweep_id": sweep.pk})
        elif sweep.status == Sweep.Status.FAILED:
            await self.sweep_failed(
                {"sweep_id": sweep.pk, "message": f"the sweep failed: {sweep.error}"}
            )

    async def cancel_sweep(self) -> None:
        sweep_id = self.sweep_id
        if self.sweep_handle is None:
            # Attached to a sweep another server process computes or watches.
            await self.send_json(
                run_events.error(
                    "this sweep is run by another server process and cannot be "
                    "cancelled from this connection"
                )
            )
            return
        self.sweep_handle.cancel()
        # The record first, then its event, as every end: a page told
        # "cancelled" that opens the history finds the sweep cancelled there
        # (or complete, had it just ended; the executor keeps that record).
        final = await database_sync_to_async(sweep_finish)(sweep_id, status="cancelled")
        await self.end_sweep(final)

    async def cancel_walk_forward(self) -> None:
        """Stop this socket's walk-forward and say so at once (its thread ends
        at the next coin it would start)."""
        if self.walk_forward_id is not None:
            await self.cancel_remote_walk_forward()
            return
        self.stop_walk_forward()
        await self.send_json(events.walk_forward_cancelled())

    def stop_walk_forward(self) -> None:
        """Stop a walk-forward and drop its answer (cancelled, or the socket
        closed: nobody is left to read it)."""
        if self.walk_forward_handle is not None:
            self.walk_forward_handle.cancel()
        if self.walk_forward_task is not None:
            self.walk_forward_task.cancel()

    async def stop_sweep(self) -> None:
        if self.sweep_handle is not None:
            self.sweep_handle.cancel()
        await self.forget_sweep()

    async def forget_sweep(self) -> None:
        if self.sweep_watch is not None and self.sweep_watch is not (
            asyncio.current_task()
        ):
            self.sweep_watch.cancel()
        self.sweep_watch = None
        sweep_id = self.sweep_id
        self.sweep_handle, self.sweep_id = None, None
        if sweep_id is not None:
            try:
                await self.channel_layer.group_discard(
                    events.group(sweep_id), self.channel_name
                )
            except Exception as exc:  # the group expires by itself
                logger.info("could not leave sweep %s's group: %r", sweep_id, exc)

    # --- channel-layer events from the executor ---------------------------------

    async def sweep_cells(self, event: dict) -> None:
        if event["sweep_id"] != self.sweep_id:
            return  # a cancelled sweep's late message
        for item in event["cells"]:
            if item["index"] in self.sweep_seen:
                continue
            self.sweep_seen.add(item["index"])
            await self.send_json(
                events.cell(
                    self.sweep_id,
                    item,
                    len(self.sweep_seen),
                    self.sweep_combinations,
                )
            )

    async def sweep_complete(self, event: dict) -> None:
        if event["sweep_id"] != self.sweep_id:
            return
        await self.forget_sweep()
        await self.send_json(
            events.sweep_complete(event["sweep_id"], event["best"], event["elapsed_s"])
        )

    async def sweep_cancelled(self, event: dict) -> None:
        if event["sweep_id"] != self.sweep_id:
            return
        await self.forget_sweep()
        await self.send_json(events.cancelled(event["sweep_id"]))

    async def sweep_failed(self, event: dict) -> None:
        if event["sweep_id"] != self.sweep_id:
            return
        await self.forget_sweep()
        await self.send_json(
            run_events.error(event["message"], sweep_id=event["sweep_id"])
        )
