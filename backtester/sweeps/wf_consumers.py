"""A walk-forward computed on a Celery worker, as a consumer mixin.

``SweepConsumerMixin.start_walk_forward`` hands a walk-forward here once it is
admitted when BACKTEST_EXECUTOR is ``celery``: it is recorded, joined by its
group and watched from a control thread (wf_remote.py); the worker's
``walk_forward.end`` event brings its end, read from the record. A cancel ends
the record first, then says ``cancelled`` (or ``walk_forward_complete`` if the
worker had stored it just before).
"""

from __future__ import annotations

import logging

from channels.db import database_sync_to_async

from backtester.execution.handles import JobHandle
from backtester.execution.pool import get_runner
from backtester.runs import events as run_events
from backtester.sweeps import events
from backtester.sweeps.models import WalkForwardRun
from backtester.sweeps.walk_forwards import walk_forward_end as record_end
from backtester.sweeps.walk_forwards import walk_forward_open
from backtester.sweeps.wf_remote import KIND, walk_forward_watch

logger = logging.getLogger(__name__)


def _record(walk_forward_id: int) -> WalkForwardRun:
    return WalkForwardRun.objects.get(pk=walk_forward_id)


class RemoteWalkForwardMixin:
    """Walk-forwards on workers for an AsyncJsonWebsocketConsumer."""

    walk_forward_id: int | None = None

    async def start_remote_walk_forward(
        self, spec, request: dict, handle: JobHandle
    ) -> int:
        """Record the admitted walk-forward and start watching its task;
        return its id."""
        runner = get_runner()
        record = None
        try:
            record = await database_sync_to_async(walk_forward_open)(
                spec=spec, user=self.scope.get("user")
            )
            group = events.walk_forward_group(record.pk)
            await self.channel_layer.group_add(group, self.channel_name)
            self.walk_forward_id = record.pk
            # Nothing awaits the watch: it ends the record and retires the
            # job whatever this socket does; the end comes through the group.
            runner.submit_control(walk_forward_watch, record.pk, dict(request), handle)
        except BaseException:
            runner.retire(handle.job_id, KIND)
            self.walk_forward_id = None
            if record is not None:  # never sent: no record left queued
                await database_sync_to_async(record_end)(
                    record.pk, status="failed", error="could not start"
                )
            raise
        return record.pk

    async def forget_remote_walk_forward(self) -> None:
        walk_forward_id, self.walk_forward_id = self.walk_forward_id, None
        if walk_forward_id is None:
            return
        try:
            await self.channel_layer.group_discard(
                events.walk_forward_group(walk_forward_id), self.channel_name
            )
        except Exception as exc:  # the group expires by itself
            logger.info(
                "could not leave walk-forward %s's group: %r", walk_forward_id, exc
            )

    async def send_remote_end(self, record: WalkForwardRun) -> None:
        """Send a walk-forward's end as its record says."""
        if record.status == WalkForwardRun.Status.COMPLETE:
            await self.send_json(
                events.walk_forward_complete(
                    record.result, record.elapsed_s or 0.0, record.pk
                )
            )
        elif record.status == WalkForwardRun.Status.FAILED:
            await self.send_json(run_events.error(record.error))
        else:
            await self.send_json(events.walk_forward_cancelled())

    async def cancel_remote_walk_forward(self) -> None:
        """End the record as cancelled (the worker stops at its next coin),
        then say how it ended."""
        walk_forward_id = self.walk_forward_id
        if self.walk_forward_handle is not None:
            self.walk_forward_handle.cancel()  # the watch revokes the task
        await self.forget_remote_walk_forward()
        await database_sync_to_async(record_end)(walk_forward_id, status="cancelled")
        record = await database_sync_to_async(_record)(walk_forward_id)
        await self.send_remote_end(record)

    # --- channel-layer event from the worker (or the watch) ----------------------

    async def walk_forward_end(self, event: dict) -> None:
        if event["walk_forward_id"] != self.walk_forward_id:
            return  # a cancelled walk-forward's late message
        await self.forget_remote_walk_forward()
        if event["status"] == "failed":
            # The message as the thread pool words it, with the field at fault.
            await self.send_json(run_events.error(event["message"], event["field"]))
            return
        record = await database_sync_to_async(_record)(event["walk_forward_id"])
        await self.send_remote_end(record)
