"""How a run's events reach its sockets, and the run events a socket handles.

A run this process computes hands the socket that started it each event
in-process (``deliver``), its results encoded as JSON text by the run's
publishing thread; the same event then goes to the run's channel-layer group,
which the pages that attached to the run follow. A socket handles its events
one at a time, whichever way they came.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from channels.consumer import get_handler_name

from backtester import jsontext
from backtester.runs import events


class DeliveryMixin:
    """Ordered handling of a socket's events and its run's layer events (needs
    the consumer's ``send_json``, ``send_text``, ``_end_run``, ``run_id``,
    ``seen`` and ``total``)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Handlers run one at a time, whether their event came through the
        # channel layer or straight from a run this process computes (deliver).
        self._order = asyncio.Lock()

    @classmethod
    async def encode_json(cls, content: dict) -> str:
        return jsontext.dumps(content)

    async def dispatch(self, message: dict) -> None:
        async with self._order:
            await super().dispatch(message)

    async def deliver(self, event: dict) -> None:
        """Handle an event of this socket's own run, handed over in-process by
        its publisher (see publisher), in turn with the socket's other events."""
        async with self._order:
            await getattr(self, get_handler_name(event))(event)

    async def run_results(self, event: dict) -> None:
        if event["run_id"] != self.run_id:
            return  # a cancelled run's late message
        for item in event["results"]:
            if item["seq"] in self.seen:
                continue  # delivered twice by the layer
            self.seen.add(item["seq"])
            # Encoded by the publishing thread when handed over (deliver).
            text = item.get("text") or jsontext.dumps(item["data"])
            sent = await self.send_text(
                events.result_text(
                    text,
                    len(self.seen),
                    self.total,
                    seq=item["seq"],
                    run_id=event["run_id"],
                )
            )
            if not sent:
                return

    async def run_complete(self, event: dict) -> None:
        await self._end_run(
            event["run_id"],
            events.complete(event["summary"], event["elapsed_s"], event["run_id"]),
        )

    async def run_cancelled(self, event: dict) -> None:
        await self._end_run(event["run_id"], events.cancelled(event["run_id"]))

    async def run_failed(self, event: dict) -> None:
        await self._end_run(
            event["run_id"], events.error(event["message"], run_id=event["run_id"])
        )

    async def job_notice(self, event: dict) -> None:
        """Forward a note on this socket's run or sweep (a worker stopped)."""
        await self.send_json(events.notice(event["message"]))


def publisher(
    layer,
    group: str,
    loop: asyncio.AbstractEventLoop,
    deliver: Callable[[dict], Awaitable[None]] | None = None,
):
    """Return a thread-safe publish(event) that group_sends on the server loop.

    With ``deliver`` (the socket that started a job this process computes),
    each event is handed to it first, its results encoded as JSON text by the
    publishing thread, and then sent to the group for the pages that attached.
    Through the channel layer a result was packed, sent to Redis, read back
    and unpacked on the event loop, which shares the GIL with the engine's
    threads; handed over, the loop only writes text to the socket.
    """

    async def both(event: dict) -> None:
        await deliver(_encoded(event))
        await layer.group_send(group, event)

    def publish(event: dict) -> None:
        send = both(event) if deliver is not None else layer.group_send(group, event)
        future = asyncio.run_coroutine_threadsafe(send, loop)
        # Waiting keeps this run's events in order and applies back-pressure.
        # A publish that times out raises: the runner stores the rows all the
        # same and the client gets them from the database before the end.
        future.result(timeout=30)

    return publish


def _encoded(event: dict) -> dict:
    """Return a results event with each result's data also as JSON text."""
    if event.get("type") != events.LAYER_RESULTS:
        return event
    results = [
        {**item, "text": jsontext.dumps(item["data"])} for item in event["results"]
    ]
    return {**event, "results": results}
