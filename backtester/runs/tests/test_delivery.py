"""A run this process computes hands its own socket the events directly.

The socket that started a run on the thread pool gets each result from the
run's publishing thread, already encoded as JSON text, without the round trip
through the channel layer; pages that attach to the run still follow it
through the layer (test_consumer.py's attach tests), and so does a socket
whose run goes to Celery workers.
"""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.layers import InMemoryChannelLayer

from backtester.layers import RedisChannelLayer
from backtester.runs import consumers as consumers_module
from backtester.runs.events import run_group
from backtester.runs.selectors import results_by_seq
from backtester.runs.tests.test_consumer import (  # noqa: F401  (fixtures)
    _drain_runs,
    coins,
    collect_until_end,
    connect,
    layer,
    receive,
    wait_done,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@pytest.fixture
def joined(monkeypatch) -> list[str]:
    """Record every group a socket joins, on either layer."""
    groups: list[str] = []
    for cls in (InMemoryChannelLayer, RedisChannelLayer):
        original = cls.group_add

        async def group_add(self, group, channel, original=original):
            groups.append(group)
            return await original(self, group, channel)

        monkeypatch.setattr(cls, "group_add", group_add)
    return groups


@pytest.fixture
def handled(monkeypatch) -> list[dict]:
    """Record the results events the consumer handles."""
    events: list[dict] = []
    original = consumers_module.BacktestConsumer.run_results

    async def run_results(self, event):
        events.append(event)
        return await original(self, event)

    monkeypatch.setattr(consumers_module.BacktestConsumer, "run_results", run_results)
    return events


async def test_own_socket_skips_the_layer(coins, layer, joined, handled):  # noqa: F811
    communicator = await connect()
    await communicator.send_json_to({"type": "run", "strategies": "all"})
    start = await receive(communicator)
    messages = await collect_until_end(communicator)
    assert messages[-1]["type"] == "complete"
    results = [m for m in messages if m["type"] == "result"]
    assert sorted(m["seq"] for m in results) == list(range(1, start["total"] + 1))
    # Never a member of its own run's group: nothing came through the layer.
    assert run_group(start["run_id"]) not in joined
    assert handled and all("text" in item for e in handled for item in e["results"])
    await communicator.disconnect()


async def test_results_sent_as_text_are_the_stored_results(coins, layer):  # noqa: F811
    communicator = await connect()
    await communicator.send_json_to(
        {"type": "run", "strategies": "all", "stop_loss_pct": 3}
    )
    start = await receive(communicator)
    messages = await collect_until_end(communicator)
    await wait_done(start["run_id"])
    sent = {m["seq"]: m["data"] for m in messages if m["type"] == "result"}
    stored = await sync_to_async(results_by_seq)(start["run_id"])
    assert len(sent) == len(stored) == start["total"]
    # The stored rows are read back from the database: another encoding of
    # the same numbers, which must agree with what the socket was sent.
    assert {item["seq"]: item["data"] for item in stored} == sent
    await communicator.disconnect()
