"""The ``portfolio`` message of the ``ws/backtests/`` socket, as a consumer mixin.

``BacktestConsumer`` hands every message to ``dispatch_portfolio`` first:
``{"type": "portfolio"}``, ``{"type": "portfolio_sweep"}`` (sweep_consumers.py),
``{"type": "attach", "portfolio_id"}`` or ``"portfolio_sweep_id"`` (a reloaded
page follows its job again), and ``{"type": "cancel"}`` while one is active. A
portfolio run, like a run, goes on without its socket and is stored when it
ends; only ``cancel`` stops it, before the next coin's signals.
"""

from __future__ import annotations

import asyncio
import logging

from channels.db import database_sync_to_async

from backtester.auth import scope_client_ip
from backtester.execution.failures import failure_reason
from backtester.execution.handles import RunnerBusy
from backtester.portfolio import events
from backtester.portfolio.curve import curve_data
from backtester.portfolio.models import PortfolioRun
from backtester.portfolio.selectors import portfolio_get
from backtester.portfolio.services import (
    KIND,
    PortfolioHandle,
    portfolio_cancel_record,
    portfolio_create,
    portfolio_handle,
    portfolio_start,
    portfolios_mark_stale,
)
from backtester.portfolio.sweep_consumers import PortfolioSweepConsumerMixin
from backtester.portfolio.validation import portfolio_spec
from backtester.runs import events as run_events
from backtester.runs.messages import record_id
from backtester.runs.services import run_admit, run_coins
from backtester.runs.validation import RequestError

logger = logging.getLogger(__name__)


class PortfolioConsumerMixin(PortfolioSweepConsumerMixin):
    """Portfolio handling for an AsyncJsonWebsocketConsumer."""

    portfolio_id: int | None = None
    portfolio_handle: PortfolioHandle | None = None
    # Whether the followed run's result went out on this socket.
    portfolio_result_sent: bool = False

    def portfolio_active(self) -> bool:
        """Return whether this socket follows a portfolio run or sweep."""
        return self.portfolio_id is not None or self.psweep_id is not None

    async def dispatch_portfolio(self, content: dict, publisher) -> bool:
        """Handle the portfolio messages; return False for any other message."""
        kind = content.get("type")
        if kind == "portfolio_sweep":
            await self.start_portfolio_sweep(content, publisher)
        elif kind == "cancel" and self.psweep_id is not None:
            await self.cancel_portfolio_sweep()
        elif kind == "attach" and "portfolio_sweep_id" in content:
            if await self.refuse_if_busy():
                return True
            await self.attach_portfolio_sweep(content)
        elif kind == "attach" and "portfolio_id" in content:
            if await self.refuse_if_busy():
                return True
            await self.attach_portfolio(content)
        else:
            return False
        return True

    async def refuse_if_busy(self) -> bool:
        """Send an error and return True when a job is active on this socket."""
        if (
            self.portfolio_active()
            or getattr(self, "handle", None) is not None
            or getattr(self, "sweep_id", None) is not None
        ):
            await self.send_json(
                run_events.error("a job is already active on this connection")
            )
            return True
        return False

    async def start_portfolio(self, content: dict, publisher) -> None:
        """Validate, admit, store and start a portfolio run; reply ``start``."""
        if (
            self.portfolio_active()
            or getattr(self, "handle", None) is not None
            or getattr(self, "sweep_id", None) is not None
        ):
            await self.send_json(
                run_events.error(
                    "a job is already active on this connection; cancel it"
                )
            )
            return
        try:
            spec = portfolio_spec(content)
            coins = await database_sync_to_async(run_coins)(spec.run)
        except RequestError as exc:
            await self.send_json(run_events.error(exc.message, exc.field))
            return
        user = self.scope.get("user")
        try:
            # Admission first: a refused request writes nothing.
            slot = await database_sync_to_async(run_admit)(
                user=user, address=scope_client_ip(self.scope), kind=KIND
            )
        except RunnerBusy as exc:
            await self.send_json(run_events.error(str(exc)))
            return
        try:
            run = await database_sync_to_async(portfolio_create)(
                spec=spec, coins=coins, user=user
            )
            group = events.group(run.pk)
            await self.channel_layer.group_add(group, self.channel_name)
            self.portfolio_id, self.portfolio_result_sent = run.pk, False
            publish = publisher(self.channel_layer, group, asyncio.get_running_loop())
            self.portfolio_handle = await database_sync_to_async(portfolio_start)(
                run=run, coins=coins, publish=publish, slot=slot
            )
        except Exception as exc:
            slot.release()  # a no-op once the run took its place
            await self.forget_portfolio()
            logger.warning("could not start a portfolio run: %r", exc)
            await self.send_json(
                run_events.error(f"could not start the run: {failure_reason(exc)}")
            )
            return
        await self.send_json(events.start(run.pk, run.total))

    async def attach_portfolio(self, content: dict) -> None:
        """Follow a portfolio run started earlier: ``start``, its progress so
        far, then its end (at once, with its result, if it has ended)."""
        try:
            portfolio_id = record_id(content, "portfolio_id", "portfolio run")
        except RequestError as exc:
            await self.send_json(run_events.error(exc.message, exc.field))
            return
        group = events.group(portfolio_id)
        # Join first: an end from now on arrives live; one before is read below.
        await self.channel_layer.group_add(group, self.channel_name)
        try:
            await database_sync_to_async(portfolios_mark_stale)()
            run = await database_sync_to_async(portfolio_get)(
                portfolio_id, user=self.scope.get("user")
            )
        except PortfolioRun.DoesNotExist:
            await self.channel_layer.group_discard(group, self.channel_name)
            await self.send_json(
                run_events.error(
                    f"portfolio_id: no portfolio run {portfolio_id}", "portfolio_id"
                )
            )
            return
        self.portfolio_id, self.portfolio_result_sent = run.pk, False
        self.portfolio_handle = portfolio_handle(run.pk)
        await self.send_json(
            events.start(run.pk, run.total, attached=True, status=run.status)
        )
        if not run.is_finished:
            await self.send_json(
                events.progress(
                    {"portfolio_id": run.pk, "symbol": "", "total": run.total,
                     "completed": run.completed}
                )
            )  # fmt: skip
        elif run.status == PortfolioRun.Status.COMPLETE:
            await self.portfolio_result(
                events.layer_result(
                    run.pk, run.metrics, curve_data(run.curve) if run.curve else {},
                    run.contributions or {},
                )
            )  # fmt: skip
            await self.portfolio_complete(
                {"portfolio_id": run.pk, "elapsed_s": run.elapsed_s or 0.0}
            )
        elif run.status == PortfolioRun.Status.CANCELLED:
            await self.portfolio_cancelled({"portfolio_id": run.pk})
        else:
            await self.portfolio_failed(
                {"portfolio_id": run.pk,
                 "message": f"the portfolio run failed: {run.error}"}
            )  # fmt: skip

    async def cancel_portfolio(self) -> None:
        """Stop the active portfolio run and say so at once."""
        portfolio_id, handle = self.portfolio_id, self.portfolio_handle
        if handle is None:
            # Attached to a run another server process computes.
            await self.send_json(
                run_events.error(
                    "this portfolio run is run by another server process and "
                    "cannot be cancelled from this connection"
                )
            )
            return
        handle.cancel()
        # The record first, then its event: a page told "cancelled" that opens
        # the history finds the run cancelled there.
        status = await database_sync_to_async(portfolio_cancel_record)(portfolio_id)
        if status != PortfolioRun.Status.CANCELLED:
            return  # it ended first: its own end is on its way through the layer
        await self.forget_portfolio()
        await self.send_json(events.cancelled(portfolio_id))

    async def forget_portfolio(self) -> None:
        if self.portfolio_id is not None:
            await self.channel_layer.group_discard(
                events.group(self.portfolio_id), self.channel_name
            )
        self.portfolio_id, self.portfolio_handle = None, None

    # --- channel-layer events from the control thread ---------------------------

    async def portfolio_progress(self, event: dict) -> None:
        if event["portfolio_id"] == self.portfolio_id:
            await self.send_json(events.progress(event))

    async def portfolio_result(self, event: dict) -> None:
        if event["portfolio_id"] == self.portfolio_id:
            self.portfolio_result_sent = True
            await self.send_json(events.portfolio(event))

    async def portfolio_complete(self, event: dict) -> None:
        if event["portfolio_id"] == self.portfolio_id:
            if not self.portfolio_result_sent:
                # Attached after the result went out but before the run was
                # saved complete: the result is in the record, not the group.
                run = await PortfolioRun.objects.aget(pk=event["portfolio_id"])
                if run.metrics is not None:
                    await self.portfolio_result(
                        events.layer_result(
                            run.pk, run.metrics,
                            curve_data(run.curve) if run.curve else {},
                            run.contributions or {},
                        )
                    )  # fmt: skip
            await self.forget_portfolio()
            await self.send_json(
                events.complete(event["portfolio_id"], event["elapsed_s"])
            )

    async def portfolio_cancelled(self, event: dict) -> None:
        if event["portfolio_id"] == self.portfolio_id:
            await self.forget_portfolio()
            await self.send_json(events.cancelled(event["portfolio_id"]))

    async def portfolio_failed(self, event: dict) -> None:
        if event["portfolio_id"] == self.portfolio_id:
            await self.forget_portfolio()
            await self.send_json(
                run_events.error(event["message"], portfolio_id=event["portfolio_id"])
            )
