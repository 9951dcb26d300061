"""The ``portfolio`` message of the ``ws/backtests/`` socket, as a consumer mixin.

``BacktestConsumer`` dispatches ``{"type": "portfolio"}`` here, and
``{"type": "cancel"}`` while a portfolio run is active. A portfolio run, like
a run, goes on without its socket and is stored when it ends; only
``cancel`` stops it, before the next coin's signals.
"""

from __future__ import annotations

import asyncio
import logging

from channels.db import database_sync_to_async

from backtester.auth import scope_client_ip
from backtester.execution.failures import failure_reason
from backtester.execution.handles import RunnerBusy
from backtester.portfolio import events
from backtester.portfolio.services import (
    PortfolioHandle,
    portfolio_create,
    portfolio_start,
)
from backtester.portfolio.validation import portfolio_spec
from backtester.runs import events as run_events
from backtester.runs.services import run_admit, run_coins
from backtester.runs.validation import RequestError

logger = logging.getLogger(__name__)


class PortfolioConsumerMixin:
    """Portfolio handling for an AsyncJsonWebsocketConsumer."""

    portfolio_id: int | None = None
    portfolio_handle: PortfolioHandle | None = None

    async def start_portfolio(self, content: dict, publisher) -> None:
        """Validate, admit, store and start a portfolio run; reply ``start``."""
        if (
            self.portfolio_id is not None
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
                user=user, address=scope_client_ip(self.scope)
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
            self.portfolio_id = run.pk
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

    async def cancel_portfolio(self) -> None:
        """Stop the active portfolio run and say so at once."""
        portfolio_id, handle = self.portfolio_id, self.portfolio_handle
        if handle is not None:
            handle.cancel()
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
            await self.send_json(events.portfolio(event))

    async def portfolio_complete(self, event: dict) -> None:
        if event["portfolio_id"] == self.portfolio_id:
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
