"""Walk-forwards are jobs like runs and sweeps: admitted under the same caps,
cancellable, and stopped when their socket closes."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from asgiref.sync import sync_to_async
from django.core.cache import cache

from backtester.execution import pool as pool_module
from backtester.execution.pool import Runner
from backtester.runs import services as run_services
from backtester.runs.tests.factories import make_coins, random_walk
from backtester.runs.tests.test_consumer import connect, receive
from backtester.sweeps import walkforward as walkforward_module
from strategies.types import Bars
from strategies.walkforward import Stopped, walk_forward

WALK = {
    "type": "walk_forward", "strategy": "sma_crossover", "symbols": ["AAA"],
    "grid": {"fast": [5, 10], "slow": [20, 40]}, "train_bars": 100, "test_bars": 50,
}  # fmt: skip


class SlowEngine:
    """Stand in for the engine: compute until asked to stop (or 10 s), and
    record each call's end."""

    def __init__(self) -> None:
        self.started = threading.Semaphore(0)
        self.ended: list[threading.Event] = []

    def __call__(self, *args, should_stop=None, **kwargs):
        ended = threading.Event()
        self.ended.append(ended)
        self.started.release()
        try:
            for _ in range(1000):  # 10 s at most: a test never hangs on it
                if should_stop is not None and should_stop():
                    raise Stopped
                threading.Event().wait(0.01)
            raise AssertionError("never asked to stop")
        finally:
            ended.set()


@pytest.fixture
def slow(monkeypatch) -> SlowEngine:
    engine = SlowEngine()
    monkeypatch.setattr(walkforward_module, "walk_forward", engine)
    return engine


@pytest.fixture
def runner(monkeypatch, settings):
    monkeypatch.setattr(run_services, "_clock", lambda: 1_800_000_040.0)
    cache.clear()
    small = Runner(workers=2, max_runs=8)
    monkeypatch.setattr(pool_module, "_runner", small)
    return small


async def _ends(engine: SlowEngine, runner: Runner) -> None:
    def wait() -> None:
        for ended in engine.ended:
            assert ended.wait(10)
        for _ in range(500):
            if runner.active_jobs("walk_forward") == 0:
                return
            threading.Event().wait(0.01)

    await sync_to_async(wait)()
    assert runner.active_jobs("walk_forward") == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_walk_forwards_of_one_user_beyond_the_cap_are_refused(
    settings, runner, slow
):
    await sync_to_async(make_coins)(["AAA"], bars=300)
    settings.BACKTEST_MAX_RUNS_PER_USER = 2
    sockets = [await connect() for _ in range(8)]
    replies = []
    for socket in sockets:
        await socket.send_json_to(WALK)
        replies.append(await receive(socket))
    kinds = [r["type"] for r in replies]
    assert kinds == ["walk_forward_start"] * 2 + ["error"] * 6, kinds
    assert "you already have 2 active walk-forwards" in replies[-1]["message"]
    for socket in sockets:
        await socket.disconnect()
    await _ends(slow, runner)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_cancel_stops_a_walk_forward_at_once(runner, slow):
    await sync_to_async(make_coins)(["AAA"], bars=300)
    socket = await connect()
    await socket.send_json_to(WALK)
    assert (await receive(socket))["type"] == "walk_forward_start"
    assert await sync_to_async(slow.started.acquire)(timeout=10)
    await socket.send_json_to({"type": "cancel"})
    assert (await receive(socket, timeout=1)) == {
        "type": "cancelled",
        "walk_forward": True,
    }
    await _ends(slow, runner)  # its thread is free again, its place too
    # Nothing more arrives for it, and the socket runs the next one.
    assert await socket.receive_nothing(timeout=0.3)
    await socket.send_json_to(WALK)
    assert (await receive(socket))["type"] == "walk_forward_start"
    await socket.disconnect()
    await _ends(slow, runner)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_closing_the_socket_stops_its_walk_forward(runner, slow):
    await sync_to_async(make_coins)(["AAA"], bars=300)
    socket = await connect()
    await socket.send_json_to(WALK)
    assert (await receive(socket))["type"] == "walk_forward_start"
    assert await sync_to_async(slow.started.acquire)(timeout=10)
    assert runner.active_jobs("walk_forward") == 1
    await socket.disconnect()
    await _ends(slow, runner)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_server_shutting_down_stops_walk_forwards(runner, slow):
    """As daphne does at shutdown: the consumer's task is cancelled, with no
    disconnect."""
    await sync_to_async(make_coins)(["AAA"], bars=300)
    socket = await connect()
    await socket.send_json_to(WALK)
    assert (await receive(socket))["type"] == "walk_forward_start"
    assert await sync_to_async(slow.started.acquire)(timeout=10)
    socket.future.cancel()
    await _ends(slow, runner)


def test_the_engine_asks_should_stop_before_every_coin_of_every_fold():
    bars = {s: Bars(*random_walk(400, seed=n)) for n, s in enumerate(("A", "B", "C"))}
    grid = {"fast": [5, 10], "slow": [20, 40]}
    asked = []

    def never() -> bool:
        asked.append(1)
        return False

    plain = walk_forward(bars, "sma_crossover", grid, train_bars=100, test_bars=100)
    watched = walk_forward(bars, "sma_crossover", grid, train_bars=100,
                           test_bars=100, should_stop=never)  # fmt: skip
    folds = len(plain.folds)
    assert folds == 3
    # Once per fold, and once per coin in it.
    assert len(asked) == folds + sum(len(f.coins) for f in plain.folds)
    np.testing.assert_array_equal(
        watched.stitched.mean_equity, plain.stitched.mean_equity
    )

    calls = []

    def on_the_fourth() -> bool:
        calls.append(1)
        return len(calls) == 4

    with pytest.raises(Stopped):
        walk_forward(bars, "sma_crossover", grid, train_bars=100, test_bars=100,
                     should_stop=on_the_fourth)  # fmt: skip
    assert len(calls) == 4
