"""Runs on the real Redis channel layer and with the Redis cache going away."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.test import override_settings

from backtester.tests.factories import make_coins
from backtester.tests.test_consumer import (  # noqa: F401 - fixture
    _drain_runs,
    collect_until_end,
    connect,
    receive,
)
from prices import cache as price_cache
from strategies.registry import STRATEGIES

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

SYMBOLS = [f"C{i:02d}" for i in range(48)]


@pytest.mark.redis
@pytest.mark.parametrize("capacity", [100, None])
async def test_all_288_results_arrive_through_the_redis_layer(settings, capacity):
    """6 strategies x 48 coins: no event lost, even at channels-redis' default
    capacity of 100 messages per channel."""
    await sync_to_async(make_coins)(SYMBOLS, bars=200)
    layers = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [settings.REDIS_URL],
                "prefix": "btlab-test",
                **({"capacity": capacity} if capacity else {}),
            },
        }
    }
    with override_settings(CHANNEL_LAYERS=layers):
        assert type(get_channel_layer()).__name__ == "RedisChannelLayer"
        communicator = await connect()
        await communicator.send_json_to({"type": "run", "strategies": "all"})
        start = await receive(communicator)
        assert start["total"] == 288
        messages = await collect_until_end(communicator, timeout=60)
        results = [m for m in messages if m["type"] == "result"]
        assert messages[-1]["type"] == "complete"
        assert len(results) == 288
        assert len({(r["data"]["symbol"], r["data"]["strategy"]) for r in results}) == (
            288
        )
        assert {r["data"]["strategy"] for r in results} == set(STRATEGIES)
        await communicator.disconnect()


async def test_run_completes_when_the_redis_cache_goes_down(private_redis):
    server, caches = private_redis
    await sync_to_async(make_coins)(["AAA", "BBB"], bars=300)
    layers = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    with override_settings(CACHES=caches, CHANNEL_LAYERS=layers):

        async def one_run() -> list[dict]:
            communicator = await connect()
            await communicator.send_json_to(
                {"type": "run", "strategy": "sma_crossover"}
            )
            assert (await receive(communicator))["type"] == "start"
            messages = await collect_until_end(communicator)
            await communicator.disconnect()
            assert messages[-1]["type"] == "complete"
            return sorted((m["data"] for m in messages[:-1]), key=lambda d: d["symbol"])

        first = await one_run()  # fills the cache
        second = await one_run()  # served from it
        assert price_cache.stats.snapshot()["hits"] >= 2
        errors_before = price_cache.stats.snapshot()["errors"]
        server.stop()
        third = await one_run()  # Redis is gone: read the database
        assert price_cache.stats.snapshot()["errors"] > errors_before
        assert first == second == third
