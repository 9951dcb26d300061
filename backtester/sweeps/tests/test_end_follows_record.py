"""A job's last event follows its saved record: a page that hears
``cancelled`` and at once opens the history finds the job cancelled there.

No timing: the work is held mid-way, and the database is read the moment the
event arrives."""

from __future__ import annotations

import threading

import pytest
from asgiref.sync import sync_to_async

from backtester.runs import compute as compute_module
from backtester.runs.models import BacktestRun
from backtester.runs.tests.factories import make_coins
from backtester.runs.tests.test_consumer import connect, receive
from backtester.sweeps import services as sweep_services
from backtester.sweeps.models import Sweep
from backtester.sweeps.tests.test_consumer import _drain_sweeps  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@pytest.fixture
def hold(monkeypatch):
    """Hold every run coin and sweep block until the event is set."""
    gate = threading.Event()
    compute, block = compute_module.compute_coin, sweep_services.sweep_block_run

    def held_coin(*args, **kwargs):
        gate.wait(10)
        return compute(*args, **kwargs)

    def held_block(*args, **kwargs):
        gate.wait(10)
        return block(*args, **kwargs)

    monkeypatch.setattr(compute_module, "compute_coin", held_coin)
    monkeypatch.setattr(sweep_services, "sweep_block_run", held_block)
    yield gate
    gate.set()


async def test_a_cancelled_sweep_is_saved_before_its_cancelled_event(hold):
    await sync_to_async(make_coins)(["AAA", "BBB"], bars=300)
    socket = await connect()
    await socket.send_json_to(
        {"type": "sweep", "strategy": "sma_crossover", "grid": {"fast": [5, 10]}}
    )
    start = await receive(socket)
    assert start["type"] == "sweep_start"
    await socket.send_json_to({"type": "cancel"})
    while (message := await receive(socket))["type"] == "cell":
        pass
    assert message == {"type": "cancelled", "sweep_id": start["sweep_id"]}
    sweep = await Sweep.objects.aget(pk=start["sweep_id"])
    assert sweep.status == "cancelled"
    hold.set()
    await socket.disconnect()


async def test_a_cancelled_run_is_saved_before_its_cancelled_event(hold):
    await sync_to_async(make_coins)(["AAA", "BBB"], bars=300)
    socket = await connect()
    await socket.send_json_to({"type": "run", "strategy": "sma_crossover"})
    start = await receive(socket)
    assert start["type"] == "start"
    await socket.send_json_to({"type": "cancel"})
    while (message := await receive(socket))["type"] == "result":
        pass
    assert message["type"] == "cancelled", message
    run = await BacktestRun.objects.aget(pk=start["run_id"])
    assert run.status == "cancelled"
    hold.set()
    await socket.disconnect()


async def test_a_sweep_whose_layer_is_gone_still_ends_for_its_client(monkeypatch):
    """Redis went away mid-sweep: no event reaches the group any more, yet the
    client gets the sweep's end (naming the service, no address) and the
    record says the same."""
    import redis

    from backtester.runs import consumers as run_consumers

    def broken(layer, group, loop):
        def publish(event: dict) -> None:
            raise redis.exceptions.ConnectionError(
                "Error 111 connecting to 127.0.0.1:6379. Connection refused."
            )

        return publish

    monkeypatch.setattr(run_consumers, "publisher", broken)
    await sync_to_async(make_coins)(["AAA", "BBB"], bars=300)
    socket = await connect()
    await socket.send_json_to(
        {"type": "sweep", "strategy": "sma_crossover", "grid": {"fast": [5, 10]}}
    )
    start = await receive(socket)
    assert start["type"] == "sweep_start"
    messages = []
    while (message := await receive(socket, timeout=15))["type"] == "cell":
        messages.append(message)
    assert message["type"] == "error" and message["sweep_id"] == start["sweep_id"]
    assert "Redis is unavailable" in message["message"]
    assert "127.0.0.1" not in message["message"]
    sweep = await Sweep.objects.aget(pk=start["sweep_id"])
    assert sweep.status == "failed" and sweep.error == "Redis is unavailable"
    # Whatever was stored reached the client, from the database.
    assert len(messages) == sweep.completed
    await socket.disconnect()
