"""Runs on the real Redis channel layer and with the Redis cache going away."""

from __future__ import annotations

import copy
import threading
import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.test import override_settings

from backtester.execution import pool as pool_module
from backtester.runs import events
from backtester.runs.tests.factories import make_coins
from backtester.runs.tests.test_consumer import (  # noqa: F401 - fixture
    _drain_runs,
    collect_until_end,
    connect,
    receive,
)
from prices import cache as price_cache
from strategies.registry import STRATEGIES

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

SYMBOLS = [f"C{i:02d}" for i in range(48)]
IN_MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.mark.redis
@pytest.mark.parametrize("capacity", ["100", "configured"])
async def test_all_288_results_arrive_through_the_redis_layer(
    settings, monkeypatch, capacity
):
    """6 strategies x 48 coins: no event lost, with channels-redis' default
    capacity of 100 messages per channel and with the project's setting."""
    await sync_to_async(make_coins)(SYMBOLS, bars=200)
    config = copy.deepcopy(settings.CHANNEL_LAYERS["default"])
    assert config["BACKEND"] == "backtester.layers.RedisChannelLayer"
    config["CONFIG"]["prefix"] = f"btlab-test-{uuid.uuid4().hex[:8]}"
    if capacity == "100":
        config["CONFIG"]["capacity"] = 100
    expected_capacity = config["CONFIG"].get("capacity", 100)
    with override_settings(CHANNEL_LAYERS={"default": config}):
        layer = get_channel_layer()
        assert type(layer).__name__ == "RedisChannelLayer"
        assert layer.capacity == expected_capacity
        # Count what the runner puts on the layer: each message carries the
        # results of every coin finished since the last (one coin or more),
        # which is what keeps a 288-result run under 100.
        sent: list[str] = []
        carried: list[int] = []
        group_send = layer.group_send

        async def counting(group: str, message: dict) -> None:
            sent.append(message["type"])
            carried.extend(item["seq"] for item in message.get("results", ()))
            await group_send(group, message)

        monkeypatch.setattr(layer, "group_send", counting)
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
        assert 1 <= sent.count(events.LAYER_RESULTS) <= len(SYMBOLS)
        assert len(sent) <= len(SYMBOLS) + 1 < 100
        assert sorted(carried) == list(range(1, 289))  # each published once
        await communicator.disconnect()


async def one_run(symbols: list[str]) -> list[dict]:
    """Run sma_crossover over the websocket (computed, never answered from an
    identical stored run); return the results by symbol."""
    communicator = await connect()
    await communicator.send_json_to(
        {"type": "run", "strategy": "sma_crossover", "no_cache": True}
    )
    assert (await receive(communicator))["type"] == "start"
    messages = await collect_until_end(communicator)
    await communicator.disconnect()
    assert messages[-1]["type"] == "complete"
    results = sorted((m["data"] for m in messages[:-1]), key=lambda d: d["symbol"])
    assert [r["symbol"] for r in results] == symbols
    return results


async def test_run_completes_when_the_redis_cache_stops_mid_run(
    private_redis, settings, monkeypatch
):
    """Redis goes away while a run is loading: the chunks still to load read the
    database, and the run completes with the same results."""
    server, caches = private_redis
    symbols = ["AAA", "BBB", "CCC", "DDD", "EEE", "FFF"]
    await sync_to_async(make_coins)(symbols, bars=300)
    # Three chunks of two coins: the first is loaded from Redis, the other two
    # are held until Redis has been stopped.
    settings.BACKTEST_FIRST_CHUNK = 2
    settings.BACKTEST_CHUNK = 2
    with override_settings(CACHES=caches, CHANNEL_LAYERS=IN_MEMORY):
        warm = await one_run(symbols)  # from the database; fills the cache
        assert await one_run(symbols) == warm  # from the cache

        release = threading.Event()
        loads: list[list[str]] = []
        bars_load = pool_module.bars_load

        def held(*, coins, **kwargs):
            loads.append([c.symbol for c in coins])
            if len(loads) > 1:
                assert release.wait(20), "never released"
            return bars_load(coins=coins, **kwargs)

        monkeypatch.setattr(pool_module, "bars_load", held)
        before = price_cache.stats.snapshot()
        communicator = await connect()
        try:
            await communicator.send_json_to(
                {"type": "run", "strategy": "sma_crossover", "no_cache": True}
            )
            assert (await receive(communicator))["type"] == "start"
            first = await receive(communicator)
            assert first["type"] == "result"
            assert first["data"]["symbol"] in loads[0]
            server.stop()
        finally:
            release.set()
        messages = await collect_until_end(communicator)
        await communicator.disconnect()
        assert messages[-1]["type"] == "complete"
        after = price_cache.stats.snapshot()
        assert len(loads) == 3
        # The first chunk came from Redis; each later one found it gone (a
        # failed read and a failed write) and read the database instead.
        assert after["hits"] - before["hits"] == 2
        assert after["errors"] - before["errors"] >= 2
        results = [first["data"]] + [m["data"] for m in messages[:-1]]
        assert sorted(results, key=lambda d: d["symbol"]) == warm
        # And with Redis gone for good, a new run reads the database throughout.
        monkeypatch.setattr(pool_module, "bars_load", bars_load)
        assert await one_run(symbols) == warm
