"""The ``sweep`` message of ``ws/backtests/`` end to end through the ASGI app."""

from __future__ import annotations

import threading
import time

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from backtester.execution import sweeping as sweep_runner
from backtester.runs.tests.factories import make_coins
from backtester.runs.tests.test_consumer import connect, layer, receive  # noqa: F401
from backtester.sweeps import services as sweep_services
from backtester.sweeps.models import Sweep, SweepCell

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]
SYMBOLS = ["AAA", "BBB", "CCC"]
GRID = {"fast": {"start": 5, "stop": 20, "step": 5}, "slow": [10, 20, 30]}
# fast < slow: (5, 10), (5, 20), (5, 30), (10, 20), (10, 30), (15, 20),
# (15, 30), (20, 30); skipped: (10, 10), (15, 10), (20, 10), (20, 20).
VALID = 8


@pytest.fixture
def coins():
    make_coins(SYMBOLS, bars=400)


@pytest.fixture(autouse=True)
async def _drain_sweeps():
    yield

    def drain() -> None:
        deadline = time.monotonic() + 20
        while sweep_runner.active_sweeps() and time.monotonic() < deadline:
            time.sleep(0.02)
        connections.close_all()

    await sync_to_async(drain)()


async def until_end(communicator, timeout: float = 20) -> list[dict]:
    messages = []
    while True:
        message = await receive(communicator, timeout)
        messages.append(message)
        if message["type"] in ("sweep_complete", "cancelled", "error"):
            return messages


async def test_a_sweep_streams_every_cell_then_the_best(coins, layer):  # noqa: F811
    communicator = await connect()
    await communicator.send_json_to(
        {"type": "sweep", "strategy": "sma_crossover", "grid": GRID}
    )
    start = await receive(communicator)
    assert start["type"] == "sweep_start"
    assert start["combinations"] == VALID and start["skipped"] == 4
    assert start["total"] == VALID * len(SYMBOLS)
    messages = await until_end(communicator)
    cells, end = messages[:-1], messages[-1]
    assert end["type"] == "sweep_complete" and end["sweep_id"] == start["sweep_id"]
    assert [c["type"] for c in cells] == ["cell"] * VALID
    assert [c["completed"] for c in cells] == list(range(1, VALID + 1))
    assert {c["combinations"] for c in cells} == {VALID}
    pairs = sorted((c["params"]["fast"], c["params"]["slow"]) for c in cells)
    assert pairs == sorted(
        (f, s) for f in (5, 10, 15, 20) for s in (10, 20, 30) if f < s
    )
    # Every streamed cell is the stored one; the best is the highest median.
    stored = {
        c.index: c async for c in SweepCell.objects.filter(sweep_id=start["sweep_id"])
    }
    for c in cells:
        assert c["metrics"] == stored[c["index"]].metrics()
        assert c["metrics"]["coins"] == len(SYMBOLS)
    medians = [c["metrics"]["median_return_pct"] for c in cells]
    best = cells[medians.index(max(medians))]
    assert end["best"]["params"] == best["params"]
    assert end["best"]["median_return_pct"] == max(medians)
    sweep = await Sweep.objects.aget(pk=start["sweep_id"])
    assert sweep.status == "complete" and sweep.completed == VALID
    await communicator.disconnect()


async def test_many_cells_arrive_complete_on_either_layer(coins, layer):  # noqa: F811
    """2,500 combinations: cells travel many per layer message, none is lost."""
    communicator = await connect()
    grid = {"fast": {"start": 2, "stop": 51, "step": 1}, "slow": "52:101:1"}
    await communicator.send_json_to(
        {"type": "sweep", "strategy": "ema_crossover", "grid": grid,
         "symbols": ["AAA", "BBB"]}
    )  # fmt: skip
    start = await receive(communicator)
    assert start["combinations"] == 2500 and start["skipped"] == 0
    messages = await until_end(communicator, timeout=60)
    assert messages[-1]["type"] == "sweep_complete"
    indexes = [m["index"] for m in messages[:-1]]
    assert sorted(indexes) == list(range(2500))
    assert [m["completed"] for m in messages[:-1]] == list(range(1, 2501))
    await communicator.disconnect()


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"grid": {"fast": {"start": 50, "stop": 5, "step": 5}}}, "grid.fast"),
        ({"grid": {"fast": {"start": 5, "stop": 50, "step": 0}}}, "grid.fast"),
        ({"grid": {"fast": [5, "x"]}}, "grid.fast"),
        ({"grid": {"speed": [1, 2]}}, "grid.speed"),
        ({"grid": {"slow": [1000, 2000]}}, "grid.slow"),
        ({"grid": {}}, "grid"),
        ({"grid": {"fast": [60, 70]}}, "grid"),  # every combination invalid
        ({"grid": {"fast": [5]}, "params": {"slow": "x"}}, "params.slow"),
        ({"grid": {"fast": [5]}, "objective": "luck"}, "objective"),
        ({"grid": {"fast": [5]}, "symbols": ["NOPE"]}, "symbols"),
        ({"grid": {"fast": [5]}, "start": "yesterday"}, "start"),
        ({"grid": {"fast": [5]}, "colour": "red"}, "colour"),
    ],
)
async def test_a_bad_sweep_names_its_field_and_keeps_the_socket(coins, message, field):
    communicator = await connect()
    await communicator.send_json_to(
        {"type": "sweep", "strategy": "sma_crossover", **message}
    )
    error = await receive(communicator)
    assert error["type"] == "error" and error["field"] == field, error
    if field.startswith(("grid", "params")):
        assert error["message"].startswith(field + ":"), error
    # The socket is still usable.
    await communicator.send_json_to(
        {"type": "sweep", "strategy": "sma_crossover", "grid": {"fast": [5, 10]}}
    )
    assert (await receive(communicator))["type"] == "sweep_start"
    assert (await until_end(communicator))[-1]["type"] == "sweep_complete"
    await communicator.disconnect()
    assert await Sweep.objects.acount() == 1


class Gate:
    """Let the first block of every coin through; hold the rest until set()."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.held = 0

    def wrap(self, compute):
        def gated(plan, symbol, series, indices):
            if indices.start > 0:
                self.held += 1
                self.opened.wait(10)
            return compute(plan, symbol, series, indices)

        return gated


@pytest.fixture
def gate(monkeypatch) -> Gate:
    """Hold every coin's blocks after the first until ``gate.opened.set()``."""
    held = Gate()
    monkeypatch.setattr(
        sweep_services, "sweep_block_run", held.wrap(sweep_services.sweep_block_run)
    )
    return held


async def start_sweep(communicator, grid=GRID) -> dict:
    """Send an SMA crossover sweep of ``grid``; return its ``sweep_start``."""
    await communicator.send_json_to(
        {"type": "sweep", "strategy": "sma_crossover", "grid": grid}
    )
    return await receive(communicator)


async def test_cancel_stops_a_sweep_and_keeps_what_was_sent(coins, gate, settings):
    settings.SWEEP_FIRST_BLOCK = 2
    settings.SWEEP_BLOCK = 2
    communicator = await connect()
    start = await start_sweep(communicator)
    first = [await receive(communicator), await receive(communicator)]
    assert [m["type"] for m in first] == ["cell", "cell"]
    await communicator.send_json_to({"type": "cancel"})
    assert await receive(communicator) == {
        "type": "cancelled",
        "sweep_id": start["sweep_id"],
    }
    gate.opened.set()
    assert await communicator.receive_nothing(timeout=0.5)

    def finished() -> Sweep:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            sweep = Sweep.objects.get(pk=start["sweep_id"])
            if sweep.is_finished:
                return sweep
            time.sleep(0.02)
        raise AssertionError("the sweep did not finish")

    sweep = await sync_to_async(finished)()
    assert sweep.status == "cancelled"
    assert 2 <= sweep.completed < VALID
    # A new sweep can start on the same socket.
    await communicator.send_json_to(
        {"type": "sweep", "strategy": "sma_crossover", "grid": {"fast": [5]}}
    )
    assert (await receive(communicator))["type"] == "sweep_start"
    assert (await until_end(communicator))[-1]["type"] == "sweep_complete"
    await communicator.disconnect()


async def test_one_job_per_connection(coins, gate):
    communicator = await connect()
    await communicator.send_json_to(
        {"type": "sweep", "strategy": "sma_crossover", "grid": {"fast": "2:40:1"}}
    )
    assert (await receive(communicator))["type"] == "sweep_start"
    for kind in ("run", "sweep"):
        await communicator.send_json_to(
            {"type": kind, "strategy": "sma_crossover", "grid": {"fast": [5]}}
            if kind == "sweep"
            else {"type": "run", "strategy": "sma_crossover"}
        )
        while True:
            message = await receive(communicator)
            if message["type"] != "cell":
                break
        assert message["type"] == "error"
        assert "a sweep is already active" in message["message"]
    gate.opened.set()
    await communicator.send_json_to({"type": "cancel"})
    while (await receive(communicator))["type"] == "cell":
        pass
    await communicator.disconnect()


async def test_walk_forward_over_the_socket(monkeypatch):
    await sync_to_async(make_coins)(SYMBOLS, bars=1500)
    communicator = await connect()
    message = {
        "type": "walk_forward", "strategy": "sma_crossover",
        "grid": {"fast": [5, 10], "slow": [20, 40]},
        "train_bars": 400, "test_bars": 200, "folds": 3,
    }  # fmt: skip
    await communicator.send_json_to(message)
    start = await receive(communicator)
    assert start["type"] == "walk_forward_start" and start["combinations"] == 4
    done = await receive(communicator, timeout=30)
    assert done["type"] == "walk_forward_complete", done
    folds = done["result"]["folds"]
    assert len(folds) == 3
    assert [f["test"]["bars"] for f in folds] == [200, 200, 200]
    assert all(f["params"] in ({"fast": a, "slow": b} for a in (5, 10)
                               for b in (20, 40)) for f in folds)  # fmt: skip
    # The last test window ends on the last bar (1,500 hourly bars).
    assert folds[-1]["test"]["end"] == "2024-03-03T11:00:00Z"
    for bad, field in (
        ({"train_bars": None}, "train_bars"),
        ({"test_bars": 0}, "test_bars"),
        ({"train_bars": 100_000}, "train_bars"),
        ({"grid": {"fast": {"start": 5, "stop": 1, "step": 1}}}, "grid.fast"),
    ):
        await communicator.send_json_to({**message, **bad})
        error = await receive(communicator, timeout=30)
        if error["type"] == "walk_forward_start":
            error = await receive(communicator, timeout=30)
        assert error["type"] == "error" and error["field"] == field, error
    await communicator.disconnect()


@pytest.mark.redis
async def test_the_redis_layer_outwaits_its_blocking_pop(settings):
    """A consumer's channel read must not time out on the client before Redis
    answers its blocking pop (which it does after brpop_timeout seconds)."""
    from channels.layers import get_channel_layer
    from channels_redis.core import RedisChannelLayer

    channel_layer = get_channel_layer()
    assert isinstance(channel_layer, RedisChannelLayer)
    pool = channel_layer.create_pool(0)
    assert pool.connection_kwargs["socket_timeout"] > channel_layer.brpop_timeout
    await pool.disconnect()


async def test_a_sweep_goes_on_without_its_socket_and_a_page_attaches_again(
    coins, gate, settings
):
    settings.SWEEP_FIRST_BLOCK = 2
    settings.SWEEP_BLOCK = 2
    first = await connect()
    start = await start_sweep(first)
    sweep_id = start["sweep_id"]
    seen = [await receive(first), await receive(first)]  # the first block
    assert [m["type"] for m in seen] == ["cell", "cell"]
    await first.disconnect()  # a reload: the sweep is not stopped
    gate.opened.set()

    second = await connect()
    await second.send_json_to({"type": "attach", "sweep_id": sweep_id})
    again = await receive(second)
    assert again["type"] == "sweep_start" and again["attached"] is True
    assert again["sweep_id"] == sweep_id and again["combinations"] == VALID
    assert again["axes"] == start["axes"] and again["strategy"] == "sma_crossover"
    messages = await until_end(second)
    cells, end = messages[:-1], messages[-1]
    assert end["type"] == "sweep_complete", end
    # Every combination exactly once, numbered in the order this page got them:
    # those finished before the attach from the database, then the live ones.
    assert sorted(c["index"] for c in cells) == list(range(VALID))
    assert [c["completed"] for c in cells] == list(range(1, VALID + 1))
    stored = {
        c.index: c.metrics() async for c in SweepCell.objects.filter(sweep_id=sweep_id)
    }
    assert {c["index"]: c["metrics"] for c in cells} == stored
    sweep = await Sweep.objects.aget(pk=sweep_id)
    assert (sweep.status, sweep.completed) == ("complete", VALID)

    # Attaching to a finished sweep replays it and ends at once.
    await second.send_json_to({"type": "attach", "sweep_id": sweep_id})
    replay = await until_end(second)
    assert replay[0]["status"] == "complete"
    assert len(replay) == 1 + VALID + 1 and replay[-1]["best"] == end["best"]
    await second.disconnect()


@pytest.mark.parametrize(
    ("value", "problem"),
    [(999_999, "no sweep 999999"), ("7", "expected a sweep number"),
     (True, "expected a sweep number")],
)  # fmt: skip
async def test_attaching_to_no_such_sweep_names_the_field(value, problem):
    communicator = await connect()
    await communicator.send_json_to({"type": "attach", "sweep_id": value})
    message = await receive(communicator)
    assert message["type"] == "error" and message["field"] == "sweep_id"
    assert problem in message["message"]
    # The socket stays open and usable.
    await communicator.send_json_to({"type": "cancel"})
    assert (await receive(communicator))["type"] == "error"
    await communicator.disconnect()


async def test_one_user_cannot_fill_the_server_with_sweeps_left_running(
    coins, gate, settings
):
    settings.BACKTEST_MAX_RUNS_PER_USER = 2
    ids = []
    for _ in range(2):  # two sweeps, each left running by its closed socket
        communicator = await connect()
        await communicator.send_json_to(
            {"type": "sweep", "strategy": "sma_crossover", "grid": {"fast": "2:40:1"}}
        )
        started = await receive(communicator)
        assert started["type"] == "sweep_start", started
        ids.append(started["sweep_id"])
        await communicator.disconnect()
    third = await connect()
    await third.send_json_to(
        {"type": "sweep", "strategy": "sma_crossover", "grid": {"fast": [5]}}
    )
    refused = await receive(third)
    assert refused["type"] == "error"
    assert "you already have 2 active sweeps" in refused["message"]
    assert not await Sweep.objects.filter(pk__gt=max(ids)).aexists()  # nothing written
    # Cancelling one of them (attached again) frees a place.
    await third.send_json_to({"type": "attach", "sweep_id": ids[0]})
    while (await receive(third))["type"] != "sweep_start":
        pass
    await third.send_json_to({"type": "cancel"})
    while (message := await receive(third))["type"] == "cell":
        pass
    assert message == {"type": "cancelled", "sweep_id": ids[0]}
    handle = sweep_runner.handle_of(ids[0])
    gate.opened.set()
    if handle is not None:
        assert await sync_to_async(handle.wait)(10)
    await third.send_json_to(
        {"type": "sweep", "strategy": "sma_crossover", "grid": {"fast": [5]}}
    )
    assert (await receive(third))["type"] == "sweep_start"
    assert (await until_end(third))[-1]["type"] == "sweep_complete"
    await third.disconnect()
