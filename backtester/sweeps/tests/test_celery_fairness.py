"""Fair sharing on Celery workers: a small run does not wait behind a large
sweep's queued tasks (task priorities on the Redis broker), and a large sweep
never has more than BACKTEST_TASKS_IN_FLIGHT pieces queued or running. Needs
PostgreSQL, Redis and a worker process: the real-server pass."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model

from backtester.asgi import application
from backtester.execution.remote import LOWEST_PRIORITY, sweep_priority
from backtester.runs.tests.factories import make_coins
from backtester.runs.tests.test_celery import (  # noqa: F401 - fixtures
    celery_settings,
    wait_idle,
    workers,
)
from backtester.runs.tests.test_consumer import HEADERS, connect, receive
from backtester.sweeps.models import Sweep

SYMBOLS = ["AAA", "BBB", "CCC", "DDD"]


def test_a_sweeps_later_blocks_go_after_its_first_ones():
    assert [sweep_priority(k) for k in range(3)] == [2, 3, 4]
    assert sweep_priority(10_000) == LOWEST_PRIORITY


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_one_coin_run_overtakes_a_large_sweeps_queued_tasks(
    settings,
    workers,  # noqa: F811
):
    await sync_to_async(make_coins)(SYMBOLS, bars=1500)
    settings.BACKTEST_MAX_RUNS_PER_USER = 4
    settings.BACKTEST_RUNS_PER_MINUTE = 0
    # Blocks of two combinations, one task per block of every coin: 99 tasks.
    settings.SWEEP_FIRST_BLOCK = 2
    settings.SWEEP_BLOCK = 2
    settings.SWEEP_TASK_COINS = len(SYMBOLS)
    workers.start("one", concurrency=1)
    await sync_to_async(workers.wait_ready)()
    sweep_socket, run_socket = await connect(), await connect()
    await sweep_socket.send_json_to(
        {"type": "sweep", "strategy": "sma_crossover",
         "grid": {"fast": "2:199:1", "slow": [200]}}
    )  # fmt: skip
    start = await receive(sweep_socket)
    assert start["type"] == "sweep_start", start
    # The worker is at the sweep's tasks when the run arrives.
    assert (await receive(sweep_socket, 60))["type"] == "cell"
    await run_socket.send_json_to(
        {"type": "run", "strategy": "sma_crossover", "symbols": ["AAA"]}
    )
    while (message := await receive(run_socket, 60))["type"] != "complete":
        assert message["type"] in ("start", "result"), message
    # The run is done while most of the sweep is still queued behind it.
    sweep = await Sweep.objects.aget(pk=start["sweep_id"])
    assert sweep.status == "running", sweep.status
    assert sweep.completed < start["combinations"] // 2, sweep.completed
    print(
        f"\nfair sharing: the 1-coin run completed with {sweep.completed} of the "
        f"sweep's {start['combinations']} cells done"
    )
    await sweep_socket.send_json_to({"type": "cancel"})
    while (await receive(sweep_socket, 60))["type"] == "cell":
        pass
    await sweep_socket.disconnect()
    await run_socket.disconnect()
    await wait_idle()


def queued_tasks(broker_url: str) -> int:
    """Return the tasks waiting in the broker's default queue, every priority
    level counted (the Redis transport keeps a list per level)."""
    client = redis.Redis.from_url(broker_url)
    try:
        return sum(client.llen(key) for key in client.scan_iter(b"celery*"))
    finally:
        client.close()


async def connect_as(user) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, "/ws/backtests/", headers=HEADERS)
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    assert connected
    return communicator


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_large_sweep_keeps_few_pieces_queued_and_another_users_run_goes_first(
    settings,
    workers,  # noqa: F811
):
    await sync_to_async(make_coins)(SYMBOLS, bars=1500)
    users = get_user_model().objects
    alice = await users.acreate_user("alice", password="pw-alice-0123")
    bob = await users.acreate_user("bob", password="pw-bob-0123")
    settings.BACKTEST_RUNS_PER_MINUTE = 0
    settings.BACKTEST_TASKS_IN_FLIGHT = bound = 3
    # Blocks of two combinations, one coin a task: 396 tasks.
    settings.SWEEP_FIRST_BLOCK = 2
    settings.SWEEP_BLOCK = 2
    settings.SWEEP_TASK_COINS = 1
    workers.start("one", concurrency=1)
    await sync_to_async(workers.wait_ready)()
    sweep_socket, run_socket = await connect_as(alice), await connect_as(bob)
    await sweep_socket.send_json_to(
        {"type": "sweep", "strategy": "sma_crossover",
         "grid": {"fast": "2:199:1", "slow": [200]}}
    )  # fmt: skip
    start = await receive(sweep_socket)
    assert start["type"] == "sweep_start", start
    assert (await receive(sweep_socket, 60))["type"] == "cell"
    # While the sweep runs, the broker never holds more than ``bound`` of its
    # pieces (before the bound: all 396 were queued at once).
    depths = []
    for _ in range(10):
        depths.append(await sync_to_async(queued_tasks)(settings.CELERY_BROKER_URL))
        await asyncio.sleep(0.05)
    assert max(depths) <= bound, depths
    sent_at = time.perf_counter()
    await run_socket.send_json_to(
        {"type": "run", "strategy": "sma_crossover", "symbols": ["AAA"]}
    )
    first_result_s = None
    while (message := await receive(run_socket, 60))["type"] != "complete":
        assert message["type"] in ("start", "result"), message
        if message["type"] == "result" and first_result_s is None:
            first_result_s = time.perf_counter() - sent_at
    # Bob's run is done while most of Alice's sweep is still to come.
    sweep = await Sweep.objects.aget(pk=start["sweep_id"])
    assert sweep.status == "running", sweep.status
    assert sweep.completed < start["combinations"] // 2, sweep.completed
    print(
        f"\nfair sharing, {bound} pieces in flight: queued {max(depths)} at most; "
        f"the other user's first result in {first_result_s:.3f} s, its run done "
        f"with {sweep.completed} of {start['combinations']} cells"
    )
    await sweep_socket.send_json_to({"type": "cancel"})
    while (await receive(sweep_socket, 60))["type"] == "cell":
        pass
    await sweep_socket.disconnect()
    await run_socket.disconnect()
    await wait_idle()
