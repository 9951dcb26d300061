"""The ``ws/backtests/`` websocket: validate, start a run, forward its events."""

from __future__ import annotations

import asyncio
import json
import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from backtester import events
from backtester.runner import RunnerBusy
from backtester.services import (
    prices_warm,
    run_admit,
    run_coins,
    run_create,
    run_start,
)
from backtester.sweeps.consumers import SweepConsumerMixin
from backtester.validation import RequestError, run_spec

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024


class BacktestConsumer(SweepConsumerMixin, AsyncJsonWebsocketConsumer):
    """One socket, at most one active run or sweep; results arrive in
    completion order. Sweeps are handled by the mixin (backtester.sweeps)."""

    run_id: int | None = None
    handle = None
    total = 0
    completed = 0

    async def connect(self) -> None:
        await self.accept()
        user = self.scope.get("user")
        if settings.BACKTESTS_REQUIRE_LOGIN and not getattr(
            user, "is_authenticated", False
        ):
            await self.send_json(events.error("log in to run backtests"))
            await self.close(code=4401)
            return
        # The page has just opened: by the time its form is sent, the prices
        # of the default request are in the cache.
        await database_sync_to_async(prices_warm)()

    async def disconnect(self, code: int) -> None:
        await self._stop_run()
        await self.stop_sweep()
        self.stop_walk_forward()

    async def receive(self, text_data: str | None = None, bytes_data=None) -> None:
        if text_data is None:
            await self.send_json(events.error("send JSON text messages, not binary"))
            return
        if len(text_data) > MAX_MESSAGE_BYTES:
            await self.send_json(
                events.error(f"message too large (limit {MAX_MESSAGE_BYTES} bytes)")
            )
            return
        try:
            content = json.loads(text_data)
        except ValueError as exc:
            await self.send_json(events.error(f"malformed JSON: {exc}"))
            return
        if not isinstance(content, dict):
            await self.send_json(events.error("expected a JSON object"))
            return
        kind = content.get("type")
        if kind in ("run", "sweep") and (self.handle or self.sweep_handle):
            busy = "a run" if self.handle else "a sweep"
            await self.send_json(
                events.error(f"{busy} is already active on this connection; cancel it")
            )
        elif kind == "run":
            await self._start_run(content)
        elif kind == "sweep":
            await self.start_sweep(content, _publisher)
        elif kind == "walk_forward":
            await self.start_walk_forward(content)
        elif kind == "cancel" and self.sweep_handle is not None:
            await self.cancel_sweep()
        elif kind == "cancel":
            await self._cancel_run()
        else:
            await self.send_json(
                events.error(
                    f"unknown message type {kind!r}; expected 'run', 'sweep', "
                    "'walk_forward' or 'cancel'",
                    "type",
                )
            )

    async def _start_run(self, content: dict) -> None:
        if self.handle is not None:
            await self.send_json(
                events.error("a run is already active on this connection; cancel it")
            )
            return
        try:
            spec = run_spec(content)
            coins = await database_sync_to_async(run_coins)(spec)
        except RequestError as exc:
            await self.send_json(
                events.error(exc.message, exc.field, errors=exc.errors or None)
                if len(exc.errors) > 1
                else events.error(exc.message, exc.field)
            )
            return
        user = self.scope.get("user")
        try:
            # Admission first: a refused request (per-user cap, full server,
            # throttle) writes nothing.
            slot = await database_sync_to_async(run_admit)(
                user=user, address=(self.scope.get("client") or [None])[0]
            )
        except RunnerBusy as exc:
            await self.send_json(events.error(str(exc)))
            return
        try:
            run = await database_sync_to_async(run_create)(
                spec=spec, coins=coins, user=user
            )
        except BaseException:
            slot.release()
            raise
        group = events.run_group(run.pk)
        await self.channel_layer.group_add(group, self.channel_name)
        self.run_id, self.total, self.completed = run.pk, run.total, 0
        self.received: set[tuple] = set()
        publish = _publisher(self.channel_layer, group, asyncio.get_running_loop())
        try:
            self.handle = await database_sync_to_async(run_start)(
                run=run, spec=spec, coins=coins, publish=publish, slot=slot
            )
        except RunnerBusy as exc:
            await self._forget_run()
            await self.send_json(events.error(str(exc)))
            return
        await self.send_json(events.start(run.pk, run.total))

    async def _cancel_run(self) -> None:
        if self.handle is None:
            await self.send_json(events.error("no active run to cancel"))
            return
        run_id = self.run_id
        await self._stop_run()
        await self.send_json(events.cancelled(run_id))

    async def _stop_run(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
        await self._forget_run()

    async def _forget_run(self) -> None:
        if self.run_id is not None:
            await self.channel_layer.group_discard(
                events.run_group(self.run_id), self.channel_name
            )
        self.handle, self.run_id = None, None

    # --- channel-layer events from the runner's worker threads -----------------

    async def run_results(self, event: dict) -> None:
        if event["run_id"] != self.run_id:
            return  # a cancelled run's late message
        for data in event["results"]:
            # A result may come twice when a Celery worker died right after
            # publishing it (see execution/celery.py): count it once.
            key = (
                data["symbol"],
                data["strategy"],
                json.dumps(data["params"], sort_keys=True),
            )
            if key in self.received:
                continue
            self.received.add(key)
            self.completed += 1
            await self.send_json(events.result(data, self.completed, self.total))

    async def run_complete(self, event: dict) -> None:
        if event["run_id"] != self.run_id:
            return
        await self._forget_run()
        await self.send_json(
            events.complete(event["summary"], event["elapsed_s"], event["run_id"])
        )

    async def run_cancelled(self, event: dict) -> None:
        if event["run_id"] != self.run_id:
            return
        await self._forget_run()
        await self.send_json(events.cancelled(event["run_id"]))

    async def run_failed(self, event: dict) -> None:
        if event["run_id"] != self.run_id:
            return
        await self._forget_run()
        await self.send_json(events.error(event["message"], run_id=event["run_id"]))


def _publisher(layer, group: str, loop: asyncio.AbstractEventLoop):
    """Return a thread-safe publish(event) that group_sends on the server loop."""

    def publish(event: dict) -> None:
        future = asyncio.run_coroutine_threadsafe(layer.group_send(group, event), loop)
        # Waiting keeps this run's events in order and applies back-pressure.
        future.result(timeout=30)

    return publish
