"""The ``portfolio`` message of ``ws/backtests/`` end to end through the ASGI app."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from backtester.execution.pool import get_runner
from backtester.portfolio.models import PortfolioRun
from backtester.runs.tests.factories import make_coins, random_walk
from backtester.runs.tests.test_consumer import connect, layer, receive  # noqa: F401
from strategies import portfolio as engine
from strategies.portfolio import run_portfolio
from strategies.types import Bars

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]
SYMBOLS = ["AAA", "BBB", "CCC", "DDD"]
REQUEST = {
    "type": "portfolio",
    "strategy": "sma_crossover",
    "params": {"fast": 5, "slow": 20},
    "max_positions": 2,
    "rank": "roc_24",
    "stop_loss_pct": 3,
}


@pytest.fixture
def coins():
    make_coins(SYMBOLS, bars=400)


@pytest.fixture(autouse=True)
async def _drain():
    yield

    def drain() -> None:
        deadline = time.monotonic() + 20
        while get_runner().active_jobs() and time.monotonic() < deadline:
            time.sleep(0.02)
        connections.close_all()

    await sync_to_async(drain)()


async def until_end(communicator, timeout: float = 20) -> list[dict]:
    messages = []
    while True:
        message = await receive(communicator, timeout)
        messages.append(message)
        if message["type"] in ("complete", "cancelled", "error"):
            return messages


async def test_start_progress_portfolio_complete(coins, layer):  # noqa: F811
    communicator = await connect()
    await communicator.send_json_to(REQUEST)
    start = await receive(communicator)
    assert start["type"] == "start" and start["total"] == len(SYMBOLS)
    messages = await until_end(communicator)
    kinds = [m["type"] for m in messages]
    assert kinds == ["progress"] * len(SYMBOLS) + ["portfolio", "complete"]
    progress = messages[: len(SYMBOLS)]
    assert [m["completed"] for m in progress] == [1, 2, 3, 4]
    assert [m["symbol"] for m in progress] == sorted(SYMBOLS)
    result = messages[-2]
    pid = start["portfolio_id"]
    assert {m["portfolio_id"] for m in messages} == {pid}
    # The same account computed straight from the seeded bars (the factory's
    # walks, seeds 1..4), outside the app.
    bars = {s: Bars(*random_walk(400, seed=i + 1)) for i, s in enumerate(SYMBOLS)}
    direct = run_portfolio(
        bars, "sma_crossover", {"fast": 5, "slow": 20}, max_positions=2,
        rank="roc_24", risk={"stop_loss_pct": 3},
    )  # fmt: skip
    assert result["metrics"]["final_equity"] == pytest.approx(
        direct.metrics["final_equity"], rel=1e-12
    )
    assert result["metrics"]["num_trades"] == len(direct.trades["pnl"]) > 0
    assert result["contributions"] == pytest.approx(direct.contributions)
    # Contributions add up to the account's gain.
    assert sum(result["contributions"].values()) == pytest.approx(
        direct.metrics["final_equity"] - 10_000.0
    )
    equity = result["equity"]
    assert len(equity["time"]) == 400 and len(equity["equity"]) == 400
    assert equity["equity"][-1] == pytest.approx(direct.equity[-1])
    assert max(equity["positions"]) <= 2
    run = await PortfolioRun.objects.aget(pk=pid)
    assert run.status == "complete" and run.completed == len(SYMBOLS)
    assert run.metrics == result["metrics"] and run.rank == "roc_24"
    assert run.stop_loss_pct == 3.0 and run.max_positions == 2
    await communicator.disconnect()


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"max_positions": 0}, "max_positions", "between 1 and 100"),
        ({"max_positions": 101}, "max_positions", "between 1 and 100"),
        ({"max_positions": 2.5}, "max_positions", "whole number"),
        ({"rank": "volume"}, "rank", "symbol, roc_24, rsi_14, volume_24"),
        ({"direction": "both"}, "direction", "long only"),
        ({"position_size": 0.5}, "position_size", "stakes"),
        ({"strategy": "all"}, "strategy", "one strategy"),
        ({"symbols": ["AAA", "ZZZ"]}, "symbols", "ZZZ"),
        ({"stop_loss_pct": 150}, "stop_loss_pct", "stop_loss_pct"),
        ({"fee": 1}, "fee", "between"),
        ({"start": "2030-01-01"}, "start", "no prices"),
        ({"params": {"fast": 50, "slow": 20}}, "params.fast", "fast"),
        ({"leverage": 3}, "leverage", "unknown field"),
    ],
)
async def test_bad_requests_get_an_error_and_the_socket_stays(
    coins, change, field, words
):
    communicator = await connect()
    await communicator.send_json_to({**REQUEST, **change})
    error = await receive(communicator)
    assert error["type"] == "error" and error["field"] == field
    assert words in error["message"]
    assert await PortfolioRun.objects.acount() == 0
    # Still open: a good request runs.
    await communicator.send_json_to(REQUEST)
    assert (await receive(communicator))["type"] == "start"
    assert (await until_end(communicator))[-1]["type"] == "complete"
    await communicator.disconnect()


async def test_cancel_stops_between_coins_within_a_second(coins, monkeypatch):
    entered, release = threading.Event(), threading.Event()
    signals = engine.coin_signals

    def held(bars, spec, params):
        # The second coin's signals wait until the test lets them go.
        if entered.is_set():
            release.wait(20)
        entered.set()
        return signals(bars, spec, params)

    monkeypatch.setattr(engine, "coin_signals", held)
    communicator = await connect()
    await communicator.send_json_to(REQUEST)
    start = await receive(communicator)
    assert (await receive(communicator))["type"] == "progress"
    began = time.monotonic()
    await communicator.send_json_to({"type": "cancel"})
    cancelled = await receive(communicator, timeout=1)
    assert cancelled == {"type": "cancelled", "portfolio_id": start["portfolio_id"]}
    assert time.monotonic() - began < 1
    release.set()
    for _ in range(500):
        run = await PortfolioRun.objects.aget(pk=start["portfolio_id"])
        if run.is_finished:
            break
        await asyncio.sleep(0.02)
    assert run.status == "cancelled" and run.metrics is None
    # Nothing more arrives for it; a new job may start on this socket.
    await communicator.send_json_to(REQUEST)
    assert (await receive(communicator))["type"] == "start"
    assert (await until_end(communicator))[-1]["type"] == "complete"
    await communicator.disconnect()


async def test_one_job_at_a_time_per_socket(coins, monkeypatch):
    release = threading.Event()
    signals = engine.coin_signals
    monkeypatch.setattr(
        engine, "coin_signals", lambda *a: (release.wait(20), signals(*a))[1]
    )
    communicator = await connect()
    await communicator.send_json_to(REQUEST)
    assert (await receive(communicator))["type"] == "start"
    await communicator.send_json_to(REQUEST)
    busy = await receive(communicator)
    assert busy["type"] == "error" and "already active" in busy["message"]
    release.set()
    assert (await until_end(communicator))[-1]["type"] == "complete"
    await communicator.disconnect()
