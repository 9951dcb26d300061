"""The repaired Redis channel layer: no message lost to a departing receiver."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from channels_redis.core import RedisChannelLayer as StockLayer
from django.conf import settings
from redis.asyncio import Redis

from backtester.layers import RedisChannelLayer

pytestmark = [pytest.mark.redis, pytest.mark.asyncio]


async def lost_when_the_lock_holder_leaves(layer_class, monkeypatch) -> bool:
    """Return whether a message is lost when the consumer that popped it for
    another consumer is cancelled before the pop's backup is written.

    Two consumers of one process wait; B holds the receive lock, so B pops
    the message sent to A. The backup write is slowed down so that B's client
    leaves exactly in the window between the pop and its backup.
    """
    layer = layer_class(
        hosts=[settings.REDIS_URL], prefix=f"btlab-layer-{uuid.uuid4().hex[:8]}"
    )
    a, b = await layer.new_channel(), await layer.new_channel()
    receive_b = asyncio.ensure_future(layer.receive(b))
    await asyncio.sleep(0.2)  # B holds the lock, blocked in its pop
    receive_a = asyncio.ensure_future(layer.receive(a))
    await asyncio.sleep(0.05)
    popped = asyncio.Event()
    zadd = Redis.zadd

    async def slow_zadd(self, name, mapping, *args, **kwargs):
        if name.endswith("$inflight"):
            popped.set()
            await asyncio.sleep(0.3)
        return await zadd(self, name, mapping, *args, **kwargs)

    monkeypatch.setattr(Redis, "zadd", slow_zadd)
    try:
        await layer.send(a, {"type": "test.message", "n": 1})
        await asyncio.wait_for(popped.wait(), 5)
        receive_b.cancel()  # B's client disconnects mid-pop
        try:
            message = await asyncio.wait_for(receive_a, 3)
        except TimeoutError:
            return True
        assert message == {"type": "test.message", "n": 1}
        return False
    finally:
        monkeypatch.setattr(Redis, "zadd", zadd)
        for task in (receive_a, receive_b):
            task.cancel()
        await asyncio.gather(receive_a, receive_b, return_exceptions=True)
        await layer.flush()
        await layer.close_pools()


async def test_stock_layer_loses_the_message(monkeypatch):
    """The cause of the lost result batches, shown on channels-redis itself."""
    assert await lost_when_the_lock_holder_leaves(StockLayer, monkeypatch)


async def test_repaired_layer_delivers_it(monkeypatch):
    assert not await lost_when_the_lock_holder_leaves(RedisChannelLayer, monkeypatch)
