"""Walk-forwards on real Celery workers: the engine's folds and numbers,
computed by the worker (not the web process), and cancelled at once."""

from __future__ import annotations

import math
import re
import time

import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from backtester.runs.tests.factories import make_coins, random_walk
from backtester.runs.tests.test_celery import (  # noqa: F401 - fixtures
    celery_settings,
    collect_until,
    workers,
)
from backtester.runs.tests.test_consumer import connect, receive
from backtester.sweeps import walkforward as walkforward_module
from backtester.sweeps.models import WalkForwardRun
from strategies.types import Bars
from strategies.walkforward import walk_forward

SYMBOLS = ["AAA", "BBB", "CCC"]
GRID = {"fast": [5, 10], "slow": [20, 40]}
WALK = {
    "type": "walk_forward", "strategy": "sma_crossover", "symbols": SYMBOLS,
    "grid": GRID, "train_bars": 100, "test_bars": 50,
}  # fmt: skip
ENDS = ("walk_forward_complete", "cancelled", "error")

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]


def record(pk: int) -> WalkForwardRun:
    """Return the record, closing this thread's connection (the workers'
    database is dropped at the end, which an open one prevents)."""
    try:
        return WalkForwardRun.objects.get(pk=pk)
    finally:
        connection.close()


async def over_socket(message: dict, timeout: float = 60) -> list[dict]:
    communicator = await connect()
    await communicator.send_json_to(message)
    messages = await collect_until(communicator, ENDS, timeout)
    await communicator.disconnect()
    return messages


def reference():
    """The engine on the same random walks make_coins imported (seeds 1..)."""
    bars = {s: Bars(*random_walk(400, seed=i + 1)) for i, s in enumerate(SYMBOLS)}
    return walk_forward(bars, "sma_crossover", GRID, train_bars=100, test_bars=50)


def same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


async def test_a_walk_forward_on_a_worker_is_the_engines(
    settings,
    workers,  # noqa: F811
    monkeypatch,
):
    await sync_to_async(make_coins)(SYMBOLS, bars=400)
    settings.BACKTEST_EXECUTOR = "threads"
    local = await over_socket(WALK)
    assert local[-1]["type"] == "walk_forward_complete", local[-1]

    settings.BACKTEST_EXECUTOR = "celery"

    # This process cannot compute one any more: only a worker can.
    def refuse(*args, **kwargs):
        raise AssertionError("computed by the web process")

    monkeypatch.setattr(walkforward_module, "walk_forward", refuse)
    workers.start("one")
    await sync_to_async(workers.wait_ready)()
    remote = await over_socket(WALK)
    kinds = [m["type"] for m in remote]
    assert kinds == ["walk_forward_start", "walk_forward_complete"], (
        remote, workers.log("one"),
    )  # fmt: skip
    start, end = remote
    assert end["walk_forward_id"] == start["walk_forward_id"]

    expected = reference()
    folds = end["result"]["folds"]
    assert len(folds) == len(expected.folds) >= 3
    for got, fold, there in zip(
        folds, expected.folds, local[-1]["result"]["folds"], strict=True
    ):
        assert got["params"] == fold.params == there["params"]
        assert sorted(got["coins"]) == sorted(fold.coins)
        assert got["out_of_sample"].keys() == fold.out_of_sample.keys()
        for name, value in fold.out_of_sample.items():
            assert same(got["out_of_sample"][name], value), name
            assert got["out_of_sample"][name] == there["out_of_sample"][name]
    growth = (expected.final["equity"] / expected.initial_equity - 1) * 100
    assert same(end["result"]["stitched"]["return_pct"], growth)
    assert end["result"]["stitched"] == local[-1]["result"]["stitched"]

    row = await sync_to_async(record)(start["walk_forward_id"])
    assert row.status == "complete" and row.result == end["result"]
    # The task recorded is the one the worker ran.
    assert row.task_id and f"[{row.task_id}] succeeded" in workers.log("one")


async def test_cancel_on_a_worker_is_recorded_told_and_stops_it(workers):  # noqa: F811
    symbols = [f"K{i:02d}" for i in range(8)]
    await sync_to_async(make_coins)(symbols, bars=3000)
    workers.start("one")
    await sync_to_async(workers.wait_ready)()
    communicator = await connect()
    grid = {"fast": "2:30:1", "slow": "40:200:10"}
    await communicator.send_json_to(
        {**WALK, "symbols": symbols, "grid": grid, "train_bars": 500, "test_bars": 100}
    )
    start = await receive(communicator)
    assert start["type"] == "walk_forward_start", start
    pk = start["walk_forward_id"]
    deadline = time.monotonic() + 30
    while (await sync_to_async(record)(pk)).status != "running":
        assert time.monotonic() < deadline, workers.log("one")
        await sync_to_async(time.sleep)(0.05)
    await communicator.send_json_to({"type": "cancel"})
    sent = time.perf_counter()
    message = await receive(communicator, 1)
    told_ms = (time.perf_counter() - sent) * 1000
    assert message == {"type": "cancelled", "walk_forward": True}
    assert (await sync_to_async(record)(pk)).status == "cancelled"
    # The worker stops at its next coin: its task ends cancelled, long before
    # the walk-forward would have, and nothing more is sent.
    assert await communicator.receive_nothing(2)
    assert "succeeded" in workers.log("one") and "'stopped'" in workers.log("one")
    ran = re.search(r"succeeded in ([0-9.]+)s: 'stopped'", workers.log("one"))
    print(f"cancel told in {told_ms:.0f} ms; the task ran {float(ran[1]):.2f} s")
    row = await sync_to_async(record)(pk)
    assert row.status == "cancelled" and row.result == {}
    await communicator.disconnect()

    # A socket that closes (as every one does at a shutdown) stops its
    # walk-forward too: the watch records it cancelled, the worker stops.
    communicator = await connect()
    await communicator.send_json_to(
        {**WALK, "symbols": symbols, "grid": grid, "train_bars": 500, "test_bars": 100}
    )
    pk = (await receive(communicator))["walk_forward_id"]
    while (await sync_to_async(record)(pk)).status != "running":
        assert time.monotonic() < deadline + 30, workers.log("one")
        await sync_to_async(time.sleep)(0.05)
    await communicator.disconnect()
    while (await sync_to_async(record)(pk)).status == "running":
        assert time.monotonic() < deadline + 35, workers.log("one")
        await sync_to_async(time.sleep)(0.05)
    assert (await sync_to_async(record)(pk)).status == "cancelled"
    await sync_to_async(time.sleep)(1)
    assert workers.log("one").count("'stopped'") == 2, workers.log("one")


async def test_without_a_worker_a_walk_forward_fails_saying_so(celery_settings):  # noqa: F811
    await sync_to_async(make_coins)(SYMBOLS, bars=400)
    celery_settings.BACKTEST_TASK_PICKUP_TIMEOUT = 1
    communicator = await connect()
    await communicator.send_json_to(WALK)
    start = await receive(communicator)
    end = await receive(communicator, 30)
    assert end["type"] == "error" and "no Celery worker" in end["message"], end
    row = await sync_to_async(record)(start["walk_forward_id"])
    assert row.status == "failed" and "no Celery worker" in row.error
    # The connection is free for the next job.
    await communicator.send_json_to(WALK)
    again = await receive(communicator)
    assert again["type"] == "walk_forward_start", again
    await communicator.send_json_to({"type": "cancel"})
    assert (await receive(communicator))["type"] == "cancelled"
    await communicator.disconnect()
