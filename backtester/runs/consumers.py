"""The ``ws/backtests/`` websocket: validate, start a run, forward its events.

Every result carries ``seq``, its number in the run. Before a run's last event
(``complete``, ``cancelled`` or the failure's ``error``) the consumer sends
every stored result of the run whose seq it has not forwarded, so a client
always ends with exactly the stored results, whatever the channel layer lost;
a client that still sees a gap can ask with ``{"type": "resend", "run_id",
"seqs": [...]}``. The run's end is also watched in-process: if the layer never
delivers it (Redis went away), the consumer ends the run from the runner's
handle and tells the client which service failed.
"""

from __future__ import annotations

import asyncio
import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from backtester.auth import scope_client_ip
from backtester.execution.failures import failure_reason
from backtester.execution.handles import ResultRow, RunHandle, RunnerBusy
from backtester.execution.pool import get_runner
from backtester.library.checking import SourceRefused, strategy_check
from backtester.portfolio.consumers import PortfolioConsumerMixin
from backtester.runs import events
from backtester.runs.delivery import DeliveryMixin, publisher
from backtester.runs.messages import parse_message, record_id
from backtester.runs.models import BacktestRun
from backtester.runs.replies import StoredResultsMixin
from backtester.runs.selectors import results_by_seq, run_get
from backtester.runs.services import (
    prices_warm,
    run_admit,
    run_cached,
    run_cancel_record,
    run_coins,
    run_create,
    run_discard,
    run_start,
    runs_mark_stale,
)
from backtester.runs.validation import RequestError, run_spec
from backtester.sweeps.consumers import SweepConsumerMixin

logger = logging.getLogger(__name__)

# Seconds a finished run's last layer event may take before the consumer ends
# the run itself from the runner's handle.
END_GRACE = 1.0
# How often the in-process watch looks at a run's handle.
WATCH_EVERY = 0.2


class BacktestConsumer(
    DeliveryMixin,
    StoredResultsMixin,
    PortfolioConsumerMixin,
    SweepConsumerMixin,
    AsyncJsonWebsocketConsumer,
):
    """One socket, at most one active run, sweep or portfolio run; results
    arrive in completion order. Sweeps and portfolio runs are handled by their
    apps' mixins, stored results (cached answers, resends) by replies.py."""

    run_id: int | None = None
    handle: RunHandle | None = None
    total = 0

    async def connect(self) -> None:
        self.seen: set[int] = set()  # seqs of the active run forwarded so far
        self.runs: set[int] = set()  # runs started here (resend may name them)
        self.watch: asyncio.Task | None = None
        self.gone = False  # the client left, or a send to it failed
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
        try:
            await database_sync_to_async(prices_warm)()
        except Exception:  # a warm-up is an optimisation; the log says why
            logger.warning("price cache warm-up not started", exc_info=True)

    async def disconnect(self, code: int) -> None:
        self.gone = True
        # A run or sweep goes on without its socket: a reload or a dropped
        # connection attaches to it again by id (``attach``). Only an explicit
        # cancel stops it.
        await self._forget_run()
        await self.forget_sweep()
        await self.forget_portfolio_sweep()
        self.stop_walk_forward()

    async def send_json(self, content: dict, close: bool = False) -> bool:
        """Send an event; on failure (the client is gone) stop the work, quietly.

        A send can fail under churn ("Attempt to send on a closed protocol");
        raising here would skip the cleanup and leave a run computing for
        nobody. Return whether the event was sent.
        """
        return await self.send_text(await self.encode_json(content), close)

    async def send_text(self, text: str, close: bool = False) -> bool:
        """Send an event already encoded as JSON text, as send_json does."""
        if self.gone:
            return False
        try:
            await self.send(text_data=text, close=close)
        except Exception as exc:
            await self._send_failed(exc)
            return False
        return True

    async def _send_failed(self, exc: Exception) -> None:
        logger.info("websocket send failed (%s); leaving its work", exc)
        self.gone = True
        await self._forget_run()  # the run goes on; its page may attach
        await self.forget_sweep()  # so does a sweep
        await self.forget_portfolio_sweep()  # and a portfolio sweep
        self.stop_walk_forward()

    async def receive(self, text_data: str | None = None, bytes_data=None) -> None:
        if text_data is None:
            await self.send_json(events.error("send JSON text messages, not binary"))
            return
        try:
            content = parse_message(text_data)
        except RequestError as exc:
            await self.send_json(events.error(exc.message, exc.field))
            return
        try:
            await self._dispatch(content)
        except Exception:
            # A defect, not the client's fault: logged in full, the socket stays.
            logger.exception("could not handle a %r message", content.get("type"))
            await self.send_json(
                events.error("the server could not handle that message")
            )

    async def _dispatch(self, content: dict) -> None:
        kind = content.get("type")
        if kind in ("run", "sweep", "portfolio", "portfolio_sweep") and (
            self.handle or self.sweep_id is not None or self.portfolio_active()
        ):
            busy = "a run" if self.handle else "a sweep" if self.sweep_id else "a job"
            await self.send_json(
                events.error(f"{busy} is already active on this connection; cancel it")
            )
        elif await self.dispatch_portfolio(content, publisher):
            pass  # portfolio runs and sweeps: the portfolio app's mixin
        elif kind == "run":
            await self._start_run(content)
        elif kind == "sweep":
            await self.start_sweep(content, publisher)
        elif kind == "walk_forward":
            await self.start_walk_forward(content)
        elif kind == "portfolio":
            await self.start_portfolio(content, publisher)
        elif kind == "cancel" and self.portfolio_id is not None:
            await self.cancel_portfolio()
        elif kind == "cancel" and self.sweep_id is not None:
            await self.cancel_sweep()
        elif kind == "cancel" and self.handle is None and self.walk_forward_active():
            await self.cancel_walk_forward()
        elif kind == "cancel":
            await self._cancel_run()
        elif kind == "check_strategy":
            try:
                await self.send_json(strategy_check(content.get("source")))
            except SourceRefused as exc:
                await self.send_json(events.error(str(exc), "source"))
        elif kind == "resend":
            await self._resend(content)
        elif kind == "attach" and "sweep_id" in content:
            await self.attach_sweep(content)
        elif kind == "attach":
            await self._attach(content)
        else:
            shown = kind if isinstance(kind, str) and len(kind) <= 20 else "..."
            await self.send_json(
                events.error(
                    f"unknown message type {shown!r}; expected 'run', 'sweep', "
                    "'walk_forward', 'portfolio', 'portfolio_sweep', 'cancel', "
                    "'resend', 'attach' or 'check_strategy'",
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
            # Saved strategies are looked up in the database, as the user sees them.
            spec = await database_sync_to_async(run_spec)(
                content, user=self.scope.get("user")
            )
            coins = await database_sync_to_async(run_coins)(spec)
        except RequestError as exc:
            await self.send_json(
                events.error(exc.message, exc.field, errors=exc.errors or None)
                if len(exc.errors) > 1
                else events.error(exc.message, exc.field)
            )
            return
        except Exception as exc:
            await self._fail_request(exc)
            return
        user = self.scope.get("user")
        try:
            # Admission first: a refused request (per-user cap, full server,
            # throttle) writes nothing. A cached answer counts too: a loop of
            # identical requests is throttled like any other.
            slot = await database_sync_to_async(run_admit)(
                user=user, address=scope_client_ip(self.scope)
            )
        except RunnerBusy as exc:
            await self.send_json(events.error(str(exc)))
            return
        except Exception as exc:
            await self._fail_request(exc)
            return
        try:
            cached = await database_sync_to_async(run_cached)(
                spec=spec, coins=coins, user=user
            )
        except Exception as exc:
            slot.release()
            await self._fail_request(exc)
            return
        if cached is not None:
            slot.release()
            await self._answer_cached(cached)
            return
        try:
            run = await database_sync_to_async(run_create)(
                spec=spec, coins=coins, user=user
            )
        except Exception as exc:
            slot.release()
            await self._fail_request(exc)
            return
        group = events.run_group(run.pk)
        # A run this process computes hands this socket its events directly
        # (deliver); the group is for the pages that attach to it. Runs on
        # Celery workers come through the group.
        local = settings.BACKTEST_EXECUTOR == "threads"
        try:
            if not local:
                await self.channel_layer.group_add(group, self.channel_name)
        except Exception as exc:
            slot.release()
            await self._discard(run.pk)
            await self._fail_request(exc)
            return
        self.run_id, self.total, self.seen = run.pk, run.total, set()
        publish = publisher(
            self.channel_layer,
            group,
            asyncio.get_running_loop(),
            deliver=self.deliver if local else None,
        )
        try:
            self.handle = await database_sync_to_async(run_start)(
                run=run, spec=spec, coins=coins, publish=publish, slot=slot
            )
        except RunnerBusy as exc:  # run_start removed the run: nothing written
            await self._forget_run()
            await self.send_json(events.error(str(exc)))
            return
        except Exception as exc:
            slot.release()
            await self._forget_run()
            await self._discard(run.pk)
            await self._fail_request(exc)
            return
        self.runs.add(run.pk)
        self.watch = asyncio.create_task(self._watch(run.pk, self.handle))
        await self.send_json(events.start(run.pk, run.total))

    async def _attach(self, content: dict) -> None:
        """Follow a run started earlier (a reload, a dropped connection): its
        stored results first, then the live ones, then its end."""
        try:
            run_id = record_id(content, "run_id", "run")
        except RequestError as exc:
            await self.send_json(events.error(exc.message, exc.field))
            return
        if self.handle is not None or self.run_id is not None:
            await self.send_json(
                events.error("a run is already active on this connection; cancel it")
            )
            return
        group = events.run_group(run_id)
        # Join first: a result published from now on arrives live, one stored
        # before is read below, and the end sends whatever is still missing.
        try:
            await self.channel_layer.group_add(group, self.channel_name)
            await database_sync_to_async(runs_mark_stale)()
            run = await database_sync_to_async(run_get)(
                run_id, user=self.scope.get("user")
            )
            items = await database_sync_to_async(results_by_seq)(run_id)
        except BacktestRun.DoesNotExist:
            await self.channel_layer.group_discard(group, self.channel_name)
            await self.send_json(events.error(f"run_id: no run {run_id}", "run_id"))
            return
        except Exception as exc:
            await self._fail_request(exc)
            return
        self.run_id, self.total, self.seen = run.pk, run.total, set()
        self.runs.add(run.pk)
        # Cancellable from here when it runs in this process.
        self.handle = get_runner().handle(run.pk)
        await self.send_json(
            events.start(run.pk, run.total, attached=True, status=run.status)
        )
        for item in items:
            if item["seq"] in self.seen:
                continue
            self.seen.add(item["seq"])
            event = events.result(
                item["data"], len(self.seen), self.total, seq=item["seq"], run_id=run.pk
            )
            if not await self.send_json(event):
                return
        if run.is_finished:
            await self._end_run(run.pk, _final_event(run))
        elif self.handle is not None:
            self.watch = asyncio.create_task(self._watch(run.pk, self.handle))

    async def _fail_request(self, exc: Exception) -> None:
        """Tell the client a service failed (its name only; the log has the rest)."""
        logger.warning("could not start a run: %r", exc)
        await self.send_json(
            events.error(f"could not start the run: {failure_reason(exc)}")
        )

    async def _discard(self, run_id: int) -> None:
        try:
            await database_sync_to_async(run_discard)(run_id)
        except Exception:
            logger.warning("could not remove unstarted run %s", run_id, exc_info=True)

    async def _cancel_run(self) -> None:
        if self.handle is None:
            await self.send_json(events.error("no active run to cancel"))
            return
        run_id, handle = self.run_id, self.handle
        handle.cancel()
        # Rows published before the cancel took effect are stored with the
        # run: the client gets those it has not had yet, then ``cancelled``.
        # (Rows computed elsewhere - Celery workers - are read from the database.)
        rows = handle.published() or None
        # The record first, then its event: a page told "cancelled" that opens
        # the history finds the run cancelled (or complete, had it just ended).
        run = await database_sync_to_async(run_cancel_record)(run_id)
        await self._end_run(run_id, _final_event(run), rows=rows)

    async def _stop_run(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
        await self._forget_run()

    async def _forget_run(self) -> None:
        run_id = self.run_id
        self.handle, self.run_id = None, None
        if self.watch is not None and self.watch is not asyncio.current_task():
            self.watch.cancel()
        self.watch = None
        if run_id is not None:
            try:
                await self.channel_layer.group_discard(
                    events.run_group(run_id), self.channel_name
                )
            except Exception as exc:  # the group expires by itself
                logger.info("could not leave run %s's group: %r", run_id, exc)

    async def _end_run(
        self, run_id: int, final: dict, rows: list[ResultRow] | None = None
    ) -> None:
        """Send every stored result the client lacks, then the run's last event.

        The results come from the database, or from ``rows`` (a cancelled run's
        published rows, not all stored yet).
        """
        if run_id != self.run_id:
            return
        seen, self.seen = self.seen, set()
        await self._forget_run()  # from here the layer's late events are ignored
        if rows is not None:
            missing = [
                {"seq": r.seq, "data": r.data} for r in rows if r.seq not in seen
            ]
        else:
            try:
                missing = await database_sync_to_async(results_by_seq)(
                    run_id, exclude=seen
                )
            except Exception as exc:
                logger.warning("could not read run %s's results: %r", run_id, exc)
                missing = []
        if missing:
            logger.warning(
                "run %s: %d results did not arrive through the channel layer; "
                "sent from the database",
                run_id,
                len(missing),
            )
        for item in missing:
            seen.add(item["seq"])
            event = events.result(
                item["data"], len(seen), self.total, seq=item["seq"], run_id=run_id
            )
            if not await self.send_json(event):
                return
        await self.send_json(final)

    async def _watch(self, run_id: int, handle: RunHandle) -> None:
        """End the run from its handle if the layer never brings its last event."""
        try:
            while not handle.done.is_set():
                await asyncio.sleep(WATCH_EVERY)
            await asyncio.sleep(END_GRACE)
            if self.run_id != run_id:
                return
            logger.warning("run %s: its end never came through the layer", run_id)
            await self._end_run(run_id, self._final_from(handle))
        except asyncio.CancelledError:
            pass

    @staticmethod
    def _final_from(handle: RunHandle) -> dict:
        if handle.status == "complete":
            return events.complete(handle.summary, handle.elapsed_s, handle.run_id)
        if handle.status == "cancelled":
            return events.cancelled(handle.run_id)
        return events.error(f"the run failed: {handle.error}", run_id=handle.run_id)


def _final_event(run: BacktestRun) -> dict:
    """Return the event that ended a finished run, as it was sent live."""
    if run.status == BacktestRun.Status.COMPLETE:
        return events.complete(run.summary or {}, run.elapsed_s or 0.0, run.pk)
    if run.status == BacktestRun.Status.CANCELLED:
        return events.cancelled(run.pk)
    return events.error(f"the run failed: {run.error}", run_id=run.pk)
