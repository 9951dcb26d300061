"""The ``portfolio_sweep`` message of the ``ws/backtests/`` socket, as a mixin.

``{"type": "portfolio_sweep", ...}`` (a portfolio request whose ``grid`` may
hold ``max_positions`` beside strategy parameters and stops) starts a stored
portfolio sweep; ``{"type": "attach", "portfolio_sweep_id"}`` follows one
started earlier (its finished cells from the database, then the live ones);
``cancel`` stops the one this socket follows. Like a sweep it goes on without
its socket. A cell already forwarded (an attach read it from the database
and it also came live) is dropped, so ``completed`` counts each once.
"""

from __future__ import annotations

import asyncio
import logging

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone

from backtester.auth import scope_client_ip
from backtester.execution.failures import failure_reason
from backtester.execution.handles import RunnerBusy
from backtester.portfolio import sweep_events as events
from backtester.portfolio.models import PortfolioSweep
from backtester.portfolio.sweep import portfolio_sweep_spec
from backtester.portfolio.sweep_selectors import psweep_attach_state
from backtester.portfolio.sweep_services import (
    KIND,
    psweep_create,
    psweep_finish,
    psweep_handle,
    psweep_start,
    psweeps_mark_stale,
)
from backtester.runs import events as run_events
from backtester.runs.messages import record_id
from backtester.runs.services import run_admit, run_coins
from backtester.runs.validation import RequestError
from backtester.sweeps.validation import sweep_size_check

logger = logging.getLogger(__name__)

# Seconds a finished sweep's last layer event may take before the consumer
# ends the sweep itself from its record (the layer may be gone: Redis down).
END_GRACE = 1.0
# How often that watch looks at the handle.
WATCH_EVERY = 0.2


class PortfolioSweepConsumerMixin:
    """Portfolio sweep handling for an AsyncJsonWebsocketConsumer."""

    psweep_id: int | None = None
    psweep_handle = None
    psweep_combinations = 0
    psweep_seen: set[int] = frozenset()
    psweep_watch: asyncio.Task | None = None

    async def start_portfolio_sweep(self, content: dict, publisher) -> None:
        """Validate, admit, store and start a portfolio sweep; reply
        ``sweep_start`` (or ``error``: a refused request writes nothing)."""
        request = {k: v for k, v in content.items() if k != "type"}
        try:
            spec = portfolio_sweep_spec(request)
            coins = await database_sync_to_async(run_coins)(spec.base.run)
            # Each cell is a pass over every coin: the sweeps' cap on backtests.
            size = sweep_size_check(spec, len(coins), settings.SWEEP_MAX_BACKTESTS)
        except RequestError as exc:
            await self.send_json(run_events.error(exc.message, exc.field))
            return
        user = self.scope.get("user")
        try:
            slot = await database_sync_to_async(run_admit)(
                user=user, address=scope_client_ip(self.scope), kind=KIND,
                size=size, size_limit=settings.SWEEP_MAX_BACKTESTS,
            )  # fmt: skip
        except RunnerBusy as exc:
            await self.send_json(run_events.error(str(exc)))
            return
        try:
            sweep = await database_sync_to_async(psweep_create)(
                spec=spec, coins=coins, user=user
            )
            group = events.group(sweep.pk)
            await self.channel_layer.group_add(group, self.channel_name)
            self.psweep_id, self.psweep_seen = sweep.pk, set()
            self.psweep_combinations = len(spec.combinations)
            publish = publisher(self.channel_layer, group, asyncio.get_running_loop())
            self.psweep_handle = await database_sync_to_async(psweep_start)(
                sweep=sweep, coins=coins, publish=publish, slot=slot
            )
        except Exception as exc:
            slot.release()  # a no-op once the sweep took its place
            await self.forget_portfolio_sweep()
            logger.warning("could not start a portfolio sweep: %r", exc)
            await self.send_json(
                run_events.error(f"could not start the sweep: {failure_reason(exc)}")
            )
            return
        self.watch_portfolio_sweep(sweep.pk)
        await self.send_json(
            events.sweep_start(
                sweep.pk, len(spec.combinations), spec.skipped,
                len(spec.combinations) * len(coins), spec.axes,
            )
        )  # fmt: skip

    async def attach_portfolio_sweep(self, content: dict) -> None:
        """Follow a portfolio sweep started earlier: its finished cells, then
        the live ones, then its end (at once if it has ended)."""
        try:
            sweep_id = record_id(content, "portfolio_sweep_id", "portfolio sweep")
        except RequestError as exc:
            await self.send_json(run_events.error(exc.message, exc.field))
            return
        group = events.group(sweep_id)
        # Join first: a cell finished from now on arrives live, one finished
        # before is read below; repeats are dropped.
        await self.channel_layer.group_add(group, self.channel_name)
        try:
            await database_sync_to_async(psweeps_mark_stale)()
            sweep, items = await database_sync_to_async(psweep_attach_state)(
                sweep_id, user=self.scope.get("user")
            )
        except PortfolioSweep.DoesNotExist:
            await self.channel_layer.group_discard(group, self.channel_name)
            await self.send_json(
                run_events.error(
                    f"portfolio_sweep_id: no portfolio sweep {sweep_id}",
                    "portfolio_sweep_id",
                )
            )
            return
        self.psweep_id, self.psweep_seen = sweep.pk, set()
        self.psweep_combinations = len(sweep.combinations)
        self.psweep_handle = psweep_handle(sweep.pk)
        if not sweep.is_finished:
            self.watch_portfolio_sweep(sweep.pk)
        elapsed = sweep.elapsed_s
        if elapsed is None and sweep.started_at is not None:
            elapsed = (timezone.now() - sweep.started_at).total_seconds()
        await self.send_json(
            events.sweep_start(
                sweep.pk, self.psweep_combinations, sweep.skipped,
                self.psweep_combinations * len(sweep.symbols), sweep.ordered_axes,
                attached=True, status=sweep.status, strategy=sweep.strategy,
                objective=sweep.objective, elapsed_s=round(elapsed or 0.0, 4),
            )
        )  # fmt: skip
        await self.portfolio_sweep_cells(sweep.pk, items)
        if sweep.is_finished:
            await self.end_portfolio_sweep(
                events.layer_final(
                    sweep.pk, sweep.status, best=sweep.best,
                    elapsed_s=sweep.elapsed_s or 0.0, error=sweep.error,
                )
            )  # fmt: skip

    def watch_portfolio_sweep(self, sweep_id: int) -> None:
        """Watch this process's handle of the sweep, in case its end never
        comes through the layer."""
        if self.psweep_handle is not None:
            self.psweep_watch = asyncio.create_task(
                self._watch_portfolio_sweep(sweep_id, self.psweep_handle)
            )

    async def _watch_portfolio_sweep(self, sweep_id: int, handle) -> None:
        """End the sweep from its record if the layer never brings its end:
        the cells stored and not yet sent, then the end the record says."""
        try:
            while not handle.done.is_set():
                await asyncio.sleep(WATCH_EVERY)
            await asyncio.sleep(END_GRACE)
            if self.psweep_id != sweep_id:
                return
            logger.warning("portfolio sweep %s: its end never came", sweep_id)
            sweep, items = await database_sync_to_async(psweep_attach_state)(
                sweep_id, user=self.scope.get("user")
            )
            await self.portfolio_sweep_cells(sweep_id, items)
            await self.end_portfolio_sweep(
                events.layer_final(
                    sweep_id, sweep.status, best=sweep.best,
                    elapsed_s=sweep.elapsed_s or 0.0, error=sweep.error,
                )
            )  # fmt: skip
        except asyncio.CancelledError:
            pass

    async def cancel_portfolio_sweep(self) -> None:
        """Stop the followed sweep; its record says so before the event does."""
        sweep_id, handle = self.psweep_id, self.psweep_handle
        if handle is None:
            await self.send_json(
                run_events.error(
                    "this portfolio sweep is run by another server process and "
                    "cannot be cancelled from this connection"
                )
            )
            return
        handle.cancel()
        final = await database_sync_to_async(psweep_finish)(
            sweep_id, status="cancelled"
        )
        await self.end_portfolio_sweep(final)

    async def end_portfolio_sweep(self, final: dict) -> None:
        """Send a sweep's end from its layer event (complete, cancelled, failed)."""
        handler = {
            events.LAYER_COMPLETE: self.portfolio_sweep_complete,
            events.LAYER_CANCELLED: self.portfolio_sweep_cancelled,
        }.get(final.get("type"), self.portfolio_sweep_failed)
        await handler(final)

    async def forget_portfolio_sweep(self) -> None:
        """Leave the followed sweep's group (the sweep goes on)."""
        watch, self.psweep_watch = self.psweep_watch, None
        if watch is not None and watch is not asyncio.current_task():
            watch.cancel()
        sweep_id = self.psweep_id
        self.psweep_id, self.psweep_handle = None, None
        if sweep_id is not None:
            try:
                await self.channel_layer.group_discard(
                    events.group(sweep_id), self.channel_name
                )
            except Exception as exc:  # the group expires by itself
                logger.info("could not leave portfolio sweep %s: %r", sweep_id, exc)

    async def portfolio_sweep_cells(self, sweep_id: int, items: list[dict]) -> None:
        """Forward cells not forwarded yet, one ``cell`` message each."""
        if sweep_id != self.psweep_id:
            return  # a cancelled sweep's late message
        for item in items:
            if item["index"] in self.psweep_seen:
                continue
            self.psweep_seen.add(item["index"])
            await self.send_json(
                events.cell(
                    sweep_id, item, len(self.psweep_seen), self.psweep_combinations
                )
            )

    # --- channel-layer events from the control thread ---------------------------

    async def portfolio_sweep_cell(self, event: dict) -> None:
        await self.portfolio_sweep_cells(event["sweep_id"], [event["cell"]])

    async def portfolio_sweep_complete(self, event: dict) -> None:
        if event["sweep_id"] == self.psweep_id:
            await self.forget_portfolio_sweep()
            await self.send_json(
                events.sweep_complete(
                    event["sweep_id"], event["best"], event["elapsed_s"]
                )
            )

    async def portfolio_sweep_cancelled(self, event: dict) -> None:
        if event["sweep_id"] == self.psweep_id:
            await self.forget_portfolio_sweep()
            await self.send_json(events.cancelled(event["sweep_id"]))

    async def portfolio_sweep_failed(self, event: dict) -> None:
        if event["sweep_id"] == self.psweep_id:
            await self.forget_portfolio_sweep()
            await self.send_json(
                run_events.error(
                    event["message"], sweep_id=event["sweep_id"], portfolio=True
                )
            )
