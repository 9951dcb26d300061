"""Who may start a run: per-user caps, a share for others, a throttle; a refused
request writes nothing."""

from __future__ import annotations

import threading

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.db import connections

from backtester.asgi import application
from backtester.execution import pool as pool_module
from backtester.execution.handles import RunnerBusy
from backtester.execution.pool import Runner
from backtester.runs import compute as compute_module
from backtester.runs import services
from backtester.runs.models import BacktestRun
from backtester.runs.services import RunsThrottled, run_admit
from backtester.runs.tests.factories import make_coins

HEADERS = [(b"origin", b"http://localhost"), (b"host", b"localhost")]


@pytest.fixture(autouse=True)
def _one_throttle_window(monkeypatch):
    """Keep the whole test inside one throttle window (20 s before its end)."""
    monkeypatch.setattr(services, "_clock", lambda: 1_800_000_040.0)


def test_one_user_never_takes_every_slot(settings):
    settings.BACKTEST_MAX_RUNS_PER_USER = 5  # more than the process has
    runner = Runner(workers=1, max_runs=3)
    held = [runner.reserve("user:1"), runner.reserve("user:1")]
    with pytest.raises(RunnerBusy, match=r"you already have 2 active runs \(at most 2"):
        runner.reserve("user:1")
    other = runner.reserve("user:2")  # the slot kept for somebody else
    with pytest.raises(RunnerBusy, match="the server is busy with 3 runs"):
        runner.reserve("user:3")
    held[0].release()
    runner.reserve("user:3")  # a released place is free again
    other.release()


def test_the_per_user_cap_is_a_setting(settings):
    settings.BACKTEST_MAX_RUNS_PER_USER = 1
    runner = Runner(workers=1, max_runs=8)
    runner.reserve("anon:10.0.0.1")
    with pytest.raises(RunnerBusy, match=r"1 active run \(at most 1"):
        runner.reserve("anon:10.0.0.1")
    runner.reserve("anon:10.0.0.2")  # another address is another visitor


@pytest.mark.django_db
def test_run_creation_is_throttled_per_user(settings, monkeypatch):
    settings.BACKTEST_RUNS_PER_MINUTE = 3
    monkeypatch.setattr(pool_module, "_runner", Runner(workers=1, max_runs=8))
    User = get_user_model()
    alice, bob = (User.objects.create_user(n) for n in ("alice", "bob"))
    for _ in range(3):
        run_admit(user=alice).release()
    with pytest.raises(
        RunsThrottled, match=r"too many runs: at most 3 a minute; try again in 20 s"
    ):
        run_admit(user=alice)
    run_admit(user=bob).release()  # counted per user
    run_admit(address="10.0.0.9").release()  # and per anonymous address


# --- through the websocket ---------------------------------------------------------


@pytest.fixture
def held(monkeypatch):
    """Hold every coin's computation until the event is set."""
    gate = threading.Event()
    compute = compute_module.compute_coin

    def waiting(*args, **kwargs):
        gate.wait(20)
        return compute(*args, **kwargs)

    monkeypatch.setattr(compute_module, "compute_coin", waiting)
    yield gate
    gate.set()


async def _connect() -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, "/ws/backtests/", headers=HEADERS)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def _until_end(communicator) -> dict:
    while True:
        message = await communicator.receive_json_from(timeout=20)
        if message["type"] in ("complete", "cancelled", "error"):
            return message


async def _drain(runner: Runner) -> None:
    def wait() -> None:
        import time

        deadline = time.monotonic() + 20
        while runner.active_runs and time.monotonic() < deadline:
            time.sleep(0.02)
        connections.close_all()

    await sync_to_async(wait)()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_sockets_of_one_user_beyond_the_cap_are_refused_writing_nothing(
    settings, monkeypatch, held
):
    await sync_to_async(make_coins)(["AAA"], bars=200)
    settings.BACKTEST_MAX_RUNS_PER_USER = 1
    runner = Runner(workers=1, max_runs=4)
    monkeypatch.setattr(pool_module, "_runner", runner)
    run = {"type": "run", "strategy": "sma_crossover", "symbols": ["AAA"]}
    first, second = await _connect(), await _connect()
    await first.send_json_to(run)
    assert (await first.receive_json_from(timeout=10))["type"] == "start"
    for _ in range(40):  # hammering from a second socket of the same visitor
        await second.send_json_to(run)
        message = await second.receive_json_from(timeout=10)
        assert message["type"] == "error"
        assert "you already have 1 active run" in message["message"]
    assert await BacktestRun.objects.acount() == 1  # no row for any refusal
    held.set()
    assert (await _until_end(first))["type"] == "complete"
    # Once it is over, the visitor may run again at once.
    await second.send_json_to(run)
    assert (await second.receive_json_from(timeout=10))["type"] == "start"
    assert (await _until_end(second))["type"] == "complete"
    await first.disconnect()
    await second.disconnect()
    await _drain(runner)
    assert await BacktestRun.objects.filter(status="complete").acount() == 2
    assert await BacktestRun.objects.acount() == 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_socket_starting_runs_in_a_loop_is_throttled(settings, monkeypatch):
    await sync_to_async(make_coins)(["AAA"], bars=200)
    settings.BACKTEST_RUNS_PER_MINUTE = 3
    runner = Runner(workers=1, max_runs=4)
    monkeypatch.setattr(pool_module, "_runner", runner)
    run = {"type": "run", "strategy": "sma_crossover", "symbols": ["AAA"]}
    socket = await _connect()
    outcomes = []
    for _ in range(10):
        await socket.send_json_to(run)
        first = await socket.receive_json_from(timeout=10)
        if first["type"] == "start":
            first = await _until_end(socket)
        outcomes.append(first["type"])
        last = first
    assert outcomes == ["complete"] * 3 + ["error"] * 7
    assert "too many runs: at most 3 a minute" in last["message"]
    await socket.disconnect()
    await _drain(runner)
    assert await BacktestRun.objects.acount() == 3
