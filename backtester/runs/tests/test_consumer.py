"""The websocket protocol end to end through the ASGI application."""

from __future__ import annotations

import asyncio
import copy
import json
import threading
import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections

from backtester.asgi import application
from backtester.execution import pool as pool_module
from backtester.execution.pool import Runner, get_runner
from backtester.runs import compute as compute_module
from backtester.runs.models import BacktestResult, BacktestRun
from backtester.runs.tests.factories import crash_engine_on, make_coins
from prices.models import Cryptocurrency
from strategies.registry import STRATEGIES

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

HEADERS = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
SYMBOLS = ["AAA", "BBB", "CCC", "DDD"]


@pytest.fixture(
    params=["memory", pytest.param("redis", marks=pytest.mark.redis)],
)
def layer(request, settings) -> str:
    """Run the test on the in-memory channel layer and on the real Redis one.

    The Redis case uses the project's configured layer (capacity, expiry) under a
    prefix of its own, so nothing a previous test left in Redis can reach it.
    """
    if request.param == "memory":
        config = {"BACKEND": "channels.layers.InMemoryChannelLayer"}
    else:
        config = copy.deepcopy(settings.CHANNEL_LAYERS["default"])
        assert config["BACKEND"] == "backtester.layers.RedisChannelLayer"
        config["CONFIG"]["prefix"] = f"btlab-test-{uuid.uuid4().hex[:8]}"
    settings.CHANNEL_LAYERS = {"default": config}
    return request.param


@pytest.fixture
def coins():
    make_coins(SYMBOLS, bars=300)
    return SYMBOLS


@pytest.fixture(autouse=True)
async def _drain_runs():
    """Let runs a test left behind finish before the database is torn down.

    This runs in asgiref's thread for sync code, so it also closes the database
    connection the test's async ORM calls (``aget``) opened there; left open, it
    keeps PostgreSQL from dropping the test database.
    """
    yield

    def drain_and_close() -> None:
        drain_runs()
        connections.close_all()

    await sync_to_async(drain_and_close)()


def drain_runs(timeout: float = 20, runner: Runner | None = None) -> None:
    import time

    runner = runner or get_runner()
    deadline = time.monotonic() + timeout
    while runner.active_runs and time.monotonic() < deadline:
        time.sleep(0.02)


async def connect() -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, "/ws/backtests/", headers=HEADERS)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def receive(communicator, timeout: float = 10) -> dict:
    return await communicator.receive_json_from(timeout=timeout)


async def collect_until_end(communicator, timeout: float = 20) -> list[dict]:
    messages = []
    while True:
        message = await receive(communicator, timeout)
        messages.append(message)
        if message["type"] in ("complete", "cancelled", "error"):
            return messages


async def wait_done(run_id: int, timeout: float = 10) -> None:
    """Wait until the runner has finished (and saved) the run."""
    for _ in range(int(timeout / 0.02)):
        if run_id not in get_runner()._active:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"run {run_id} did not finish")


class Gate:
    """Let the first coin through ``compute_coin``; hold the others until set()."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        # Every coin that entered compute_coin, in order (held ones included).
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def set(self) -> None:
        self.opened.set()

    async def reached(self, count: int, timeout: float = 10) -> None:
        """Wait until ``count`` coins have entered compute_coin."""
        for _ in range(int(timeout / 0.01)):
            if len(self.calls) >= count:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"only {self.calls} reached the gate")

    def wrap(self, compute):
        def gated(symbol, series, spec):
            with self._lock:
                self.calls.append(symbol)
                first = len(self.calls) == 1
            if not first:
                assert self.opened.wait(20), "gate never opened"
            return compute(symbol, series, spec)

        return gated


@pytest.fixture
def gate(monkeypatch):
    """Hold every coin after the first until the test opens the gate."""
    held = Gate()
    monkeypatch.setattr(
        compute_module, "compute_coin", held.wrap(compute_module.compute_coin)
    )
    yield held
    held.set()


@pytest.fixture
def one_worker(monkeypatch):
    """Run on a runner of one compute thread, so later coins wait in its queue."""
    small = Runner(workers=1, max_runs=2)
    monkeypatch.setattr(pool_module, "_runner", small)
    yield small
    drain_runs(runner=small)


async def test_full_run_streams_start_results_complete(coins, layer):
    communicator = await connect()
    await communicator.send_json_to(
        {"type": "run", "strategy": "sma_crossover", "params": {"fast": 5, "slow": 20}}
    )
    start = await receive(communicator)
    assert start["type"] == "start"
    assert start["total"] == len(coins)
    messages = await collect_until_end(communicator)
    results = [m for m in messages if m["type"] == "result"]
    assert [m["type"] for m in messages[-1:]] == ["complete"]
    assert sorted(r["data"]["symbol"] for r in results) == sorted(coins)
    assert [r["completed"] for r in results] == list(range(1, len(coins) + 1))
    assert all(r["total"] == len(coins) for r in results)
    for r in results:
        data = r["data"]
        assert data["strategy"] == "sma_crossover"
        assert data["params"] == {"fast": 5, "slow": 20}
        assert data["bars"] == 300
        assert data["first_bar"] == "2024-01-01T00:00:00Z"
        assert set(data["metrics"]) >= {"total_return_pct", "sharpe", "final_equity"}
    summary = messages[-1]["summary"]
    assert summary["results"] == len(coins)
    returns = sorted(r["data"]["metrics"]["total_return_pct"] for r in results)
    assert summary["best"]["total_return_pct"] == returns[-1]
    assert summary["worst"]["total_return_pct"] == returns[0]
    await wait_done(start["run_id"])
    run = await BacktestRun.objects.aget(pk=start["run_id"])
    assert run.status == "complete"
    assert await BacktestResult.objects.filter(run=run).acount() == len(coins)
    await communicator.disconnect()


async def test_results_arrive_before_the_run_completes(coins, layer, gate):
    communicator = await connect()
    await communicator.send_json_to({"type": "run", "strategy": "rsi_reversion"})
    start = await receive(communicator)
    first = await receive(communicator)
    # Every other coin is still held at the gate, so this result was streamed
    # while the run was in progress, not batched at the end.
    assert first["type"] == "result" and first["completed"] == 1
    assert start["run_id"] in get_runner()._active
    assert await communicator.receive_nothing(timeout=0.2)
    gate.set()
    rest = await collect_until_end(communicator)
    assert rest[-1]["type"] == "complete"
    assert len([m for m in rest if m["type"] == "result"]) == len(coins) - 1
    await communicator.disconnect()


async def test_several_strategies_at_once(coins):
    communicator = await connect()
    await communicator.send_json_to(
        {"type": "run", "strategies": list(STRATEGIES), "symbols": ["AAA", "BBB"]}
    )
    start = await receive(communicator)
    assert start["total"] == 2 * len(STRATEGIES)
    messages = await collect_until_end(communicator)
    pairs = {(m["data"]["symbol"], m["data"]["strategy"]) for m in messages[:-1]}
    assert pairs == {(s, k) for s in ("AAA", "BBB") for k in STRATEGIES}
    assert set(messages[-1]["summary"]["by_strategy"]) == set(STRATEGIES)
    await communicator.disconnect()


async def test_cancel_mid_run(coins, layer, gate, one_worker):
    communicator = await connect()
    await communicator.send_json_to({"type": "run", "strategy": "sma_crossover"})
    start = await receive(communicator)
    assert (await receive(communicator))["type"] == "result"
    # One worker: the first coin is done, the second is held at the gate inside
    # compute_coin, the other two are still queued in the pool.
    await gate.reached(2)
    await communicator.send_json_to({"type": "cancel"})
    assert await receive(communicator) == {
        "type": "cancelled",
        "run_id": start["run_id"],
    }
    gate.set()
    await wait_done(start["run_id"])
    assert await communicator.receive_nothing(timeout=0.3)
    # The queued coins never started; only the two begun before the cancel ran.
    assert len(gate.calls) == 2
    assert set(gate.calls) < set(coins)
    run = await BacktestRun.objects.aget(pk=start["run_id"])
    assert run.status == "cancelled"
    assert run.completed == 1
    # The result the client saw is stored with the cancelled run.
    stored = [r.symbol async for r in BacktestResult.objects.filter(run=run)]
    assert stored == [gate.calls[0]]
    # The socket stays usable for the next run.
    await communicator.send_json_to(
        {"type": "run", "strategy": "sma_crossover", "symbols": ["AAA"]}
    )
    assert (await receive(communicator))["type"] == "start"
    assert (await collect_until_end(communicator))[-1]["type"] == "complete"
    await communicator.disconnect()


async def test_a_crashing_run_is_stored_as_failed(coins, layer, monkeypatch):
    compute = compute_module.compute_coin
    crash_engine_on(monkeypatch, "CCC")
    communicator = await connect()
    await communicator.send_json_to({"type": "run", "strategy": "sma_crossover"})
    start = await receive(communicator)
    messages = await collect_until_end(communicator)
    failed = messages[-1]
    assert failed["type"] == "error"
    assert failed["run_id"] == start["run_id"]
    # The client and the record say what failed, never the exception's text
    # (the log has it).
    assert "internal error" in failed["message"]
    assert "blew up" not in failed["message"]
    sent = {m["data"]["symbol"] for m in messages[:-1]}
    assert "CCC" not in sent
    await wait_done(start["run_id"])
    run = await BacktestRun.objects.aget(pk=start["run_id"])
    assert run.status == "failed"
    assert "internal error" in run.error and "blew up" not in run.error
    assert run.finished_at is not None
    # What the client was sent is exactly what is stored and counted.
    stored = {r.symbol async for r in BacktestResult.objects.filter(run=run)}
    assert stored == sent and run.completed == len(stored)
    # The failure ended that run, not the connection.
    monkeypatch.setattr(compute_module, "compute_coin", compute)
    await communicator.send_json_to(
        {"type": "run", "strategy": "sma_crossover", "symbols": ["CCC"]}
    )
    assert (await receive(communicator))["type"] == "start"
    assert (await collect_until_end(communicator))[-1]["type"] == "complete"
    await communicator.disconnect()


async def test_disconnect_mid_run_lets_it_finish(coins, layer, gate):
    """A reload or a dropped connection does not stop a run: only cancel does."""
    communicator = await connect()
    await communicator.send_json_to({"type": "run", "strategy": "sma_crossover"})
    start = await receive(communicator)
    await receive(communicator)
    await communicator.disconnect()
    gate.set()
    await wait_done(start["run_id"])
    run = await BacktestRun.objects.aget(pk=start["run_id"])
    assert run.status == "complete"
    assert run.completed == len(coins)


async def test_attach_mid_run_gets_stored_then_live_results(coins, layer, gate):
    communicator = await connect()
    await communicator.send_json_to({"type": "run", "strategy": "sma_crossover"})
    start = await receive(communicator)
    first = await receive(communicator)
    for _ in range(500):  # the first result is stored; the rest wait at the gate
        if await BacktestResult.objects.filter(run_id=start["run_id"]).acount():
            break
        await asyncio.sleep(0.02)
    await communicator.disconnect()
    # The page reloads: a new socket attaches by run id.
    again = await connect()
    await again.send_json_to({"type": "attach", "run_id": start["run_id"]})
    attached = await receive(again)
    assert attached == {
        "type": "start", "run_id": start["run_id"], "total": len(coins),
        "attached": True, "status": "running",
    }  # fmt: skip
    stored = await receive(again)
    assert stored["data"] == first["data"] and stored["completed"] == 1
    gate.set()
    messages = await collect_until_end(again)
    results = [m for m in messages if m["type"] == "result"]
    assert messages[-1]["type"] == "complete"
    assert [m["completed"] for m in results] == list(range(2, len(coins) + 1))
    symbols = [stored["data"]["symbol"]] + [m["data"]["symbol"] for m in results]
    assert sorted(symbols) == sorted(coins)  # each once
    await again.disconnect()


async def test_attach_to_a_finished_run_replays_it_and_its_end(coins, layer):
    communicator = await connect()
    await communicator.send_json_to({"type": "run", "strategy": "sma_crossover"})
    live = await collect_until_end(communicator)
    await communicator.disconnect()
    run_id = live[0]["run_id"]
    again = await connect()
    await again.send_json_to({"type": "attach", "run_id": run_id})
    replay = await collect_until_end(again)
    assert replay[0]["status"] == "complete"
    assert sorted(m["data"]["symbol"] for m in replay if m["type"] == "result") == (
        sorted(coins)
    )
    assert replay[-1]["type"] == "complete"
    assert replay[-1]["summary"] == live[-1]["summary"]
    # Bad or unknown ids: an error naming run_id, and the socket stays open.
    await again.send_json_to({"type": "attach", "run_id": "7"})
    assert (await receive(again))["field"] == "run_id"
    await again.send_json_to({"type": "attach", "run_id": run_id + 1000})
    error = await receive(again)
    assert error["field"] == "run_id" and "no run" in error["message"]
    await again.send_json_to({"type": "attach", "run_id": run_id})
    assert (await receive(again))["type"] == "start"
    await again.disconnect()


async def test_two_clients_see_only_their_own_results(coins, layer):
    one, two = await connect(), await connect()
    await one.send_json_to(
        {"type": "run", "strategy": "sma_crossover", "symbols": ["AAA", "BBB"]}
    )
    await two.send_json_to(
        {"type": "run", "strategy": "ema_crossover", "symbols": ["CCC", "DDD"]}
    )
    start_one, start_two = await receive(one), await receive(two)
    assert start_one["run_id"] != start_two["run_id"]
    got_one = await collect_until_end(one)
    got_two = await collect_until_end(two)
    assert {m["data"]["symbol"] for m in got_one[:-1]} == {"AAA", "BBB"}
    assert {m["data"]["symbol"] for m in got_two[:-1]} == {"CCC", "DDD"}
    assert {m["data"]["strategy"] for m in got_two[:-1]} == {"ema_crossover"}
    await one.disconnect()
    await two.disconnect()


async def test_second_run_on_the_same_socket_is_refused(coins, gate):
    communicator = await connect()
    await communicator.send_json_to({"type": "run", "strategy": "sma_crossover"})
    await receive(communicator)
    await communicator.send_json_to({"type": "run", "strategy": "sma_crossover"})
    message = await receive(communicator)
    while message["type"] == "result":
        message = await receive(communicator)
    assert message["type"] == "error"
    assert "already active" in message["message"]
    gate.set()
    assert (await collect_until_end(communicator))[-1]["type"] == "complete"
    await communicator.disconnect()


BAD_MESSAGES = [
    ("{not json", None, "malformed JSON"),
    ('["run"]', None, "JSON object"),
    ('{"type": "fly"}', "type", "unknown message type"),
    ('{"type": "run", "strategy": "moon"}', "strategy", "unknown strategy"),
    ('{"type": "run"}', "strategy", "required"),
    ('{"type": "run", "strategy": "sma_crossover", "symbols": ["ZZZ"]}', "symbols",
     "ZZZ"),
    ('{"type": "run", "strategy": "sma_crossover", "start": "2024-13-45"}', "start",
     "not a date"),
    ('{"type": "run", "strategy": "sma_crossover", "start": "2024-02-01", '
     '"end": "2024-01-01"}', "end", "after start"),
    ('{"type": "run", "strategy": "sma_crossover", "params": {"fast": 0}}',
     "params.fast", "fast"),
    ('{"type": "run", "strategy": "sma_crossover", "params": {"fast": 60, '
     '"slow": 50}}', "params.fast", "slow"),
    ('{"type": "run", "strategy": "sma_crossover", "params": {"speed": 3}}',
     "params.speed", "speed"),
    ('{"type": "run", "strategy": "sma_crossover", "interval": "5m"}', "interval",
     "interval"),
    ('{"type": "run", "strategy": "sma_crossover", "fee": -1}', "fee", "fee"),
    ('{"type": "run", "strategy": "sma_crossover", "colour": "red"}', "colour",
     "unknown field"),
    ("{}", "type", "unknown message type"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "field", "needle"), BAD_MESSAGES)
async def test_bad_input_gets_an_error_and_the_socket_stays_open(
    coins, layer, text, field, needle
):
    communicator = await connect()
    await communicator.send_to(text_data=text)
    message = await receive(communicator)
    assert message["type"] == "error"
    assert message.get("field") == field
    assert needle in message["message"]
    await communicator.send_json_to(
        {"type": "run", "strategy": "sma_crossover", "symbols": ["AAA"]}
    )
    assert (await receive(communicator))["type"] == "start"
    assert (await collect_until_end(communicator))[-1]["type"] == "complete"
    await communicator.disconnect()


async def test_oversized_and_binary_messages_are_refused(coins):
    communicator = await connect()
    await communicator.send_to(
        text_data=json.dumps({"type": "run", "pad": "x" * 100_000})
    )
    message = await receive(communicator)
    assert message["type"] == "error" and "too large" in message["message"]
    await communicator.send_to(bytes_data=b"\x00\x01")
    message = await receive(communicator)
    assert message["type"] == "error" and "binary" in message["message"]
    await communicator.send_json_to({"type": "cancel"})
    message = await receive(communicator)
    assert message["type"] == "error" and "no active run" in message["message"]
    await communicator.disconnect()


async def test_unknown_origin_is_rejected(coins):
    communicator = WebsocketCommunicator(
        application, "/ws/backtests/", headers=[(b"origin", b"http://evil.example")]
    )
    connected, _ = await communicator.connect()
    assert not connected
    await communicator.disconnect()


async def test_login_required_on_the_socket_when_configured(settings, coins):
    settings.BACKTESTS_REQUIRE_LOGIN = True
    communicator = await connect()
    message = await receive(communicator)
    assert message["type"] == "error" and "log in" in message["message"]
    closed = await communicator.receive_output(timeout=2)
    assert closed["type"] == "websocket.close" and closed["code"] == 4401
    await communicator.disconnect()


async def test_a_full_runner_refuses_new_runs(coins, gate, monkeypatch):
    small = Runner(workers=1, max_runs=1)
    monkeypatch.setattr(pool_module, "_runner", small)
    one, two = await connect(), await connect()
    await one.send_json_to({"type": "run", "strategy": "sma_crossover"})
    start = await receive(one)
    assert start["type"] == "start"
    await two.send_json_to({"type": "run", "strategy": "sma_crossover"})
    message = await receive(two)
    assert message["type"] == "error" and "busy" in message["message"]
    gate.set()
    assert (await collect_until_end(one))[-1]["type"] == "complete"
    # Once the first run is done the second client can run.
    await two.send_json_to(
        {"type": "run", "strategy": "sma_crossover", "symbols": ["AAA"]}
    )
    start_two = await receive(two)
    assert start_two["type"] == "start"
    assert (await collect_until_end(two))[-1]["type"] == "complete"
    await one.disconnect()
    await two.disconnect()
    await wait_done(start["run_id"])
    await wait_done(start_two["run_id"])
    # The refused request wrote nothing: only the two started runs exist.
    assert await BacktestRun.objects.acount() == 2
    assert await BacktestRun.objects.filter(status="failed").acount() == 0


async def test_opening_the_socket_warms_the_price_cache(
    coins, layer, settings, monkeypatch
):
    """The socket opening starts loading the default request's prices; a run
    sent at once shares those loads instead of reading the bars twice, and later
    runs read none."""
    from prices import selectors

    settings.PRICE_CACHE_WARM = True
    settings.BACKTEST_FIRST_CHUNK = settings.BACKTEST_CHUNK = 1  # a chunk a coin
    # One loading thread: a run's loads would queue behind a held warm-up load
    # if they shared threads.
    runner = Runner(workers=1, max_runs=2, loaders=1)
    monkeypatch.setattr(pool_module, "_runner", runner)
    fetch, release, read = selectors.bars_fetch, threading.Event(), []
    first_coin = await Cryptocurrency.objects.aget(symbol=coins[0])

    def held_fetch(coin_ids, **kwargs):
        if list(coin_ids) != [first_coin.id]:
            release.wait(10)
        read.extend(coin_ids)
        return fetch(coin_ids, **kwargs)

    monkeypatch.setattr(selectors, "bars_fetch", held_fetch)
    communicator = await connect()
    # The warm-up has loaded the first coin and holds the second one's load.
    for _ in range(500):
        if read and len(runner._warm_loads) < len(coins):
            break
        await asyncio.sleep(0.01)
    assert read == [first_coin.id]
    # A loaded chunk leaves the warm-up's table (its bars are in the cache):
    # the warm-up never holds every coin's bars at once.
    assert len(runner._warm_loads) == len(coins) - 1
    assert not any(load.done() for load in runner._warm_loads.values())
    await communicator.send_json_to({"type": "run", "strategy": "sma_crossover"})
    assert (await receive(communicator))["type"] == "start"
    # The first coin comes from the cache at once, not after the held warm-up.
    first = await receive(communicator)
    assert first["type"] == "result" and first["data"]["symbol"] == coins[0]
    release.set()  # the rest were loading when the run started: it shares them
    messages = await collect_until_end(communicator)
    assert messages[-1]["type"] == "complete"
    assert len([m for m in messages if m["type"] == "result"]) == len(coins) - 1
    assert sorted(read) == sorted(  # every coin read once, by the warm-up
        [c.id async for c in Cryptocurrency.objects.filter(symbol__in=coins)]
    )
    # Once warm, opening the page and running reads nothing more.
    second = await connect()
    await second.send_json_to({"type": "run", "strategies": "all"})
    assert (await collect_until_end(second))[-1]["type"] == "complete"
    assert len(read) == len(coins)
    await second.disconnect()
    await communicator.disconnect()
