"""Whatever the channel layer loses, a client ends with exactly the stored results."""
# ruff: noqa: F811 - pytest fixtures imported from test_consumer

from __future__ import annotations

import pytest
from channels.layers import get_channel_layer

from backtester.runs import events
from backtester.runs.models import BacktestResult
from backtester.runs.tests.test_consumer import (  # noqa: F401 - fixtures
    _drain_runs,
    coins,
    collect_until_end,
    connect,
    layer,
    receive,
    wait_done,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def drop(monkeypatch, kind: str, which: int = 1) -> list[dict]:
    """Make the layer lose the ``which``-th message of ``kind``; return it."""
    channel_layer = get_channel_layer()
    group_send = channel_layer.group_send
    seen, lost = [], []

    async def lossy(group: str, message: dict) -> None:
        if message["type"] == kind:
            seen.append(message)
            if len(seen) == which:
                lost.append(message)
                return
        await group_send(group, message)

    monkeypatch.setattr(channel_layer, "group_send", lossy)
    return lost


async def stored_seqs(run_id: int) -> list[int]:
    return sorted([r.seq async for r in BacktestResult.objects.filter(run_id=run_id)])


async def test_a_lost_batch_of_results_is_sent_before_complete(
    coins,
    layer,
    monkeypatch,  # noqa: F811
):
    lost = drop(monkeypatch, events.LAYER_RESULTS, which=2)
    communicator = await connect()
    await communicator.send_json_to({"type": "run", "strategies": "all"})
    start = await receive(communicator)
    messages = await collect_until_end(communicator)
    await communicator.disconnect()
    assert lost, "the layer lost nothing"
    assert messages[-1]["type"] == "complete"
    results = [m for m in messages if m["type"] == "result"]
    await wait_done(start["run_id"])
    stored = await stored_seqs(start["run_id"])
    assert len(stored) == start["total"] == len(coins) * 6
    assert sorted(r["seq"] for r in results) == stored
    # The lost batch is among them, and each is counted once.
    assert {i["seq"] for i in lost[0]["results"]} <= {r["seq"] for r in results}
    assert [r["completed"] for r in results] == list(range(1, len(stored) + 1))


async def test_a_lost_end_of_run_still_ends_it(coins, layer, monkeypatch):  # noqa: F811
    lost = drop(monkeypatch, events.LAYER_COMPLETE)
    communicator = await connect()
    await communicator.send_json_to({"type": "run", "strategy": "sma_crossover"})
    start = await receive(communicator)
    messages = await collect_until_end(communicator, timeout=10)
    await communicator.disconnect()
    assert lost and messages[-1]["type"] == "complete"
    assert messages[-1]["summary"]["results"] == len(coins)
    results = [m for m in messages if m["type"] == "result"]
    assert sorted(r["seq"] for r in results) == await stored_seqs(start["run_id"])


async def test_resend_sends_the_stored_results_asked_for(coins, layer):  # noqa: F811
    communicator = await connect()
    await communicator.send_json_to({"type": "run", "strategy": "sma_crossover"})
    start = await receive(communicator)
    messages = await collect_until_end(communicator)
    by_seq = {m["seq"]: m["data"] for m in messages if m["type"] == "result"}
    await communicator.send_json_to(
        {"type": "resend", "run_id": start["run_id"], "seqs": [2, 4]}
    )
    again = [await receive(communicator), await receive(communicator)]
    assert [(m["seq"], m["data"]) for m in again] == [(2, by_seq[2]), (4, by_seq[4])]
    # Only runs of this connection.
    await communicator.send_json_to(
        {"type": "resend", "run_id": start["run_id"] + 1000, "seqs": [1]}
    )
    reply = await receive(communicator)
    assert reply["type"] == "error" and reply["field"] == "run_id"
    await communicator.disconnect()


async def test_a_send_to_a_closed_socket_does_not_raise(coins, monkeypatch):  # noqa: F811
    """'Attempt to send on a closed protocol' under churn: the consumer stops
    sending and lets go of the run instead of raising out of its handler."""
    from channels.generic.websocket import AsyncJsonWebsocketConsumer

    from backtester.runs.consumers import BacktestConsumer

    communicator = await connect()
    await communicator.send_json_to({"type": "run", "strategy": "sma_crossover"})
    start = await receive(communicator)
    assert BacktestConsumer.send_json is not AsyncJsonWebsocketConsumer.send_json

    async def closed(self, text_data=None, bytes_data=None, close=False):
        raise RuntimeError("Attempt to send on a closed protocol")

    # The frame send under every event (JSON or pre-encoded text) fails.
    monkeypatch.setattr(AsyncJsonWebsocketConsumer, "send", closed)
    await wait_done(start["run_id"])
    # The consumer task did not die with the exception: it still answers.
    await communicator.send_to(text_data='{"type": "cancel"}')
    assert await communicator.receive_nothing(timeout=0.5)  # sends are off now
    await communicator.disconnect()
