"""The ``portfolio_sweep`` message end to end through the ASGI app: stream,
metrics, cancel, attach (sweeps and runs), admission, bad requests."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from backtester.execution import pool as pool_module
from backtester.execution.pool import Runner, get_runner
from backtester.portfolio.models import PortfolioRun, PortfolioSweep
from backtester.portfolio.models import PortfolioSweepCell as Cell
from backtester.runs import services as run_services
from backtester.runs.tests.factories import make_coins, random_walk
from backtester.runs.tests.test_consumer import connect, receive
from strategies import portfolio as engine
from strategies import portfolio_sweep as sweep_engine
from strategies.portfolio import run_portfolio
from strategies.types import Bars

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]
SYMBOLS = ["AAA", "BBB", "CCC", "DDD"]
REQUEST = {
    "type": "portfolio_sweep",
    "strategy": "sma_crossover",
    "grid": {"max_positions": [1, 2, 3], "fast": [5, 8]},
    "params": {"slow": 20},
    "rank": "roc_24",
    "stop_loss_pct": 3,
}
ENDS = ("sweep_complete", "cancelled", "error")
RUN = {
    "type": "portfolio", "strategy": "sma_crossover",
    "params": {"fast": 5, "slow": 20}, "max_positions": 2,
}  # fmt: skip


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


@pytest.fixture
def hold(monkeypatch):
    """Hold every cell after the first until the returned event is set."""
    release, first = threading.Event(), threading.Event()
    one = sweep_engine.portfolio_from_signals

    def held(*args, **kwargs):
        if first.is_set():
            release.wait(20)
        first.set()
        return one(*args, **kwargs)

    monkeypatch.setattr(sweep_engine, "portfolio_from_signals", held)
    yield release
    release.set()


async def until_end(communicator, timeout: float = 20) -> list[dict]:
    messages = []
    while True:
        message = await receive(communicator, timeout)
        messages.append(message)
        if message["type"] in ENDS:
            return messages


def direct(fast: int, max_positions: int, risk: dict | None = None):
    """The same account computed straight from the factory's walks."""
    bars = {s: Bars(*random_walk(400, seed=i + 1)) for i, s in enumerate(SYMBOLS)}
    return run_portfolio(
        bars, "sma_crossover", {"fast": fast, "slow": 20},
        max_positions=max_positions, rank="roc_24" if risk is None else "symbol",
        risk={"stop_loss_pct": 3} if risk is None else risk,
    )  # fmt: skip


async def test_cells_stream_in_order_and_equal_direct_portfolio_runs(coins):
    communicator = await connect()
    await communicator.send_json_to(REQUEST)
    start = await receive(communicator)
    assert start["type"] == "sweep_start" and start["portfolio"] is True
    assert (start["combinations"], start["skipped"], start["total"]) == (6, 0, 24)
    assert start["axes"] == {"max_positions": [1, 2, 3], "fast": [5, 8]}
    messages = await until_end(communicator)
    kinds = [m["type"] for m in messages]
    assert kinds == ["cell"] * 6 + ["sweep_complete"]
    cells = messages[:-1]
    assert [c["completed"] for c in cells] == [1, 2, 3, 4, 5, 6]
    assert {c["combinations"] for c in cells} == {6}
    assert sorted(c["index"] for c in cells) == list(range(6))
    # Each cell is the portfolio run of its combination, computed outside
    # the app; best is the highest total return among them, by hand.
    returns = {}
    for cell in cells:
        p = cell["params"]
        result = direct(p["fast"], p["max_positions"])
        assert p["stop_loss_pct"] == 3 and p["slow"] == 20
        assert cell["metrics"]["final_equity"] == pytest.approx(
            result.metrics["final_equity"], rel=1e-12
        )
        assert cell["metrics"]["num_trades"] == len(result.trades["pnl"])
        assert cell["metrics"]["max_positions_held"] <= p["max_positions"]
        returns[cell["index"]] = result.metrics["total_return_pct"]
    best = max(returns, key=lambda i: (returns[i], -i))
    done = messages[-1]
    assert done["best"]["index"] == best and done["elapsed_s"] >= 0
    sweep = await PortfolioSweep.objects.aget(pk=start["sweep_id"])
    assert sweep.status == "complete" and sweep.completed == 6
    assert sweep.best["index"] == best and sweep.rank == "roc_24"
    assert await Cell.objects.filter(sweep=sweep).acount() == 6
    await communicator.disconnect()


async def test_the_first_cell_arrives_before_the_others_are_computed(coins, hold):
    communicator = await connect()
    await communicator.send_json_to(REQUEST)
    start = await receive(communicator)
    first = await receive(communicator)
    # The others are held: the first was sent as it finished, not at the end.
    assert first["type"] == "cell" and first["completed"] == 1
    assert await communicator.receive_nothing(0.3)
    hold.set()
    messages = await until_end(communicator)
    assert [m["type"] for m in messages][-1] == "sweep_complete"
    assert len(messages) == 6 and start["combinations"] == 6
    await communicator.disconnect()


async def test_cancel_is_recorded_before_it_is_told_within_a_second(coins, hold):
    communicator = await connect()
    await communicator.send_json_to(REQUEST)
    start = await receive(communicator)
    assert (await receive(communicator))["type"] == "cell"
    began = time.monotonic()
    await communicator.send_json_to({"type": "cancel"})
    cancelled = await receive(communicator, timeout=1)
    assert time.monotonic() - began < 1
    assert cancelled == {
        "type": "cancelled", "sweep_id": start["sweep_id"], "portfolio": True
    }  # fmt: skip
    sweep = await PortfolioSweep.objects.aget(pk=start["sweep_id"])
    assert sweep.status == "cancelled" and sweep.best is None
    hold.set()
    # The cell held when the cancel came is neither stored nor sent.
    assert await communicator.receive_nothing(0.5)
    for _ in range(500):
        if not get_runner().active_jobs():
            break
        await asyncio.sleep(0.02)
    assert await Cell.objects.filter(sweep_id=start["sweep_id"]).acount() == 1
    await communicator.send_json_to(REQUEST)  # the socket takes a new job
    assert (await receive(communicator))["type"] == "sweep_start"
    assert (await until_end(communicator))[-1]["type"] == "sweep_complete"
    await communicator.disconnect()


async def test_a_reloaded_page_attaches_to_a_running_sweep(coins, hold):
    first = await connect()
    await first.send_json_to(REQUEST)
    start = await receive(first)
    assert (await receive(first))["type"] == "cell"
    await first.disconnect()  # the page reloads; the sweep goes on
    page = await connect()
    await page.send_json_to({"type": "attach", "portfolio_sweep_id": start["sweep_id"]})
    again = await receive(page)
    assert again["type"] == "sweep_start" and again["attached"] is True
    assert again["status"] == "running" and again["combinations"] == 6
    stored = await receive(page)
    assert stored["type"] == "cell" and stored["completed"] == 1
    hold.set()
    messages = await until_end(page)
    assert [m["type"] for m in messages] == ["cell"] * 5 + ["sweep_complete"]
    assert [m["completed"] for m in messages[:-1]] == [2, 3, 4, 5, 6]
    # Attaching to it once it ended replays every cell, then its end.
    await page.send_json_to({"type": "attach", "portfolio_sweep_id": start["sweep_id"]})
    replay = [await receive(page)] + await until_end(page)
    assert [m["type"] for m in replay] == ["sweep_start"] + ["cell"] * 6 + [
        "sweep_complete"
    ]
    assert replay[-1]["best"] == messages[-1]["best"]
    await page.disconnect()


async def test_a_reloaded_page_attaches_to_a_running_portfolio_run(coins, monkeypatch):
    release, entered = threading.Event(), threading.Event()
    signals = engine.coin_signals

    def held(bars, spec, params):
        if entered.is_set():
            release.wait(20)
        entered.set()
        return signals(bars, spec, params)

    monkeypatch.setattr(engine, "coin_signals", held)
    first = await connect()
    await first.send_json_to(RUN)
    start = await receive(first)
    assert (await receive(first))["type"] == "progress"
    await first.disconnect()
    page = await connect()
    await page.send_json_to({"type": "attach", "portfolio_id": start["portfolio_id"]})
    again = await receive(page)
    assert again["type"] == "start" and again["attached"] is True
    assert again["status"] == "running" and again["total"] == 4
    release.set()
    messages = [await receive(page)]
    while messages[-1]["type"] != "complete":
        messages.append(await receive(page, 20))
    result = next(m for m in messages if m["type"] == "portfolio")
    assert result["metrics"]["final_equity"] == pytest.approx(
        direct(5, 2, risk={}).metrics["final_equity"], rel=1e-12
    )
    run = await PortfolioRun.objects.aget(pk=start["portfolio_id"])
    assert run.status == "complete" and result["metrics"] == run.metrics
    await page.disconnect()


async def test_attach_between_the_result_and_the_saved_end_still_gets_the_result(
    coins, monkeypatch
):
    """A page that attaches after the result went out but before the run is
    saved as complete reads the result from the record: the live ``complete``
    alone would leave it waiting for a result that was sent before it joined."""
    from backtester.portfolio import services

    release, entered = threading.Event(), threading.Event()
    finish = services.portfolio_finish

    def held(*args, **kwargs):
        entered.set()
        release.wait(20)
        return finish(*args, **kwargs)

    monkeypatch.setattr(services, "portfolio_finish", held)
    first = await connect()
    await first.send_json_to(RUN)
    start = await receive(first)
    while (await receive(first, 20))["type"] != "portfolio":
        pass
    await first.disconnect()  # the page reloads after the result went out
    assert await sync_to_async(entered.wait)(20)
    page = await connect()
    await page.send_json_to({"type": "attach", "portfolio_id": start["portfolio_id"]})
    again = await receive(page)
    assert again["type"] == "start" and again["status"] == "running"
    release.set()
    messages = [await receive(page)]
    while messages[-1]["type"] != "complete":
        messages.append(await receive(page, 20))
    kinds = [m["type"] for m in messages]
    assert kinds.index("portfolio") < kinds.index("complete")
    result = next(m for m in messages if m["type"] == "portfolio")
    run = await PortfolioRun.objects.aget(pk=start["portfolio_id"])
    assert result["metrics"] == run.metrics
    await page.disconnect()


async def test_a_cancelled_portfolio_run_is_recorded_before_it_is_told(
    coins, monkeypatch
):
    release, entered = threading.Event(), threading.Event()
    signals = engine.coin_signals

    def held(bars, spec, params):
        if entered.is_set():
            release.wait(20)
        entered.set()
        return signals(bars, spec, params)

    monkeypatch.setattr(engine, "coin_signals", held)
    page = await connect()
    await page.send_json_to(RUN)
    start = await receive(page)
    assert (await receive(page))["type"] == "progress"
    await page.send_json_to({"type": "cancel"})
    assert (await receive(page, timeout=1))["type"] == "cancelled"
    # Read at once, before the computing thread has noticed the cancel.
    run = await PortfolioRun.objects.aget(pk=start["portfolio_id"])
    release.set()
    assert run.status == "cancelled"
    await page.disconnect()


async def test_attach_to_a_finished_portfolio_run_sends_its_result(coins):
    first = await connect()
    await first.send_json_to(RUN)
    start = await receive(first)
    while (await receive(first, 20))["type"] != "complete":
        pass
    await first.disconnect()
    page = await connect()
    await page.send_json_to({"type": "attach", "portfolio_id": start["portfolio_id"]})
    kinds = [(await receive(page))["type"] for _ in range(3)]
    assert kinds == ["start", "portfolio", "complete"]
    await page.send_json_to({"type": "attach", "portfolio_id": 999_999})
    missing = await receive(page)
    assert missing["type"] == "error" and missing["field"] == "portfolio_id"
    await page.disconnect()


async def test_a_refused_sweep_writes_nothing_and_says_what_is_busy(
    coins, hold, settings, monkeypatch
):
    settings.BACKTEST_MAX_RUNS_PER_USER = 1
    monkeypatch.setattr(pool_module, "_runner", Runner(workers=2, max_runs=8))
    monkeypatch.setattr(run_services, "_clock", lambda: 1_800_000_040.0)
    first = await connect()
    await first.send_json_to(REQUEST)
    assert (await receive(first))["type"] == "sweep_start"
    other = await connect()  # the same visitor on a second socket
    for message in (REQUEST, RUN):
        await other.send_json_to(message)
        refused = await receive(other)
        assert refused["type"] == "error"
        assert "1 active portfolio sweep (at most 1" in refused["message"]
    assert await PortfolioSweep.objects.acount() == 1
    assert await PortfolioRun.objects.acount() == 0
    hold.set()
    assert (await until_end(first))[-1]["type"] == "sweep_complete"
    await first.disconnect()
    await other.disconnect()


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"grid": {}}, "grid", "at least one axis"),
        ({"grid": {"max_positions": [0, 1]}}, "grid.max_positions", "between 1"),
        ({"grid": {"max_positions": [1.5]}}, "grid.max_positions", "whole"),
        ({"grid": {"fast": [30], "max_positions": [1]}}, "grid", "none of its"),
        ({"objective": "luck"}, "objective", "must be one of"),
        ({"direction": "short"}, "direction", "long only"),
        ({"rank": "volume"}, "rank", "symbol, roc_24"),
        ({"symbols": ["AAA", "ZZZ"]}, "symbols", "ZZZ"),
        ({"leverage": 3}, "leverage", "unknown field"),
    ],
)
async def test_bad_requests_get_an_error_write_nothing_and_the_socket_stays(
    coins, change, field, words
):
    communicator = await connect()
    await communicator.send_json_to({**REQUEST, **change})
    error = await receive(communicator)
    assert error["type"] == "error" and error["field"] == field, error
    assert words in error["message"]
    assert await PortfolioSweep.objects.acount() == 0
    await communicator.send_json_to({"type": "attach", "portfolio_sweep_id": "seven"})
    error = await receive(communicator)
    assert error["type"] == "error" and error["field"] == "portfolio_sweep_id"
    await communicator.send_json_to(REQUEST)
    assert (await receive(communicator))["type"] == "sweep_start"
    assert (await until_end(communicator))[-1]["type"] == "sweep_complete"
    await communicator.disconnect()


async def test_a_sweep_whose_end_the_layer_loses_still_ends(coins, monkeypatch):
    from backtester.portfolio import sweep_events
    from backtester.runs import consumers

    publisher = consumers.publisher

    def losing(layer, group, loop):
        publish = publisher(layer, group, loop)

        def send(event: dict) -> None:
            # The layer drops the end and every other cell (Redis went away).
            if event["type"] == sweep_events.LAYER_COMPLETE:
                return
            if event["type"] == sweep_events.LAYER_CELL and event["cell"]["index"] % 2:
                return
            publish(event)

        return send

    monkeypatch.setattr(consumers, "publisher", losing)
    communicator = await connect()
    await communicator.send_json_to(REQUEST)
    start = await receive(communicator)
    messages = await until_end(communicator)
    # Every cell, once, from the layer or the database, then the stored end.
    assert [m["type"] for m in messages] == ["cell"] * 6 + ["sweep_complete"]
    assert sorted(m["index"] for m in messages[:-1]) == list(range(6))
    sweep = await PortfolioSweep.objects.aget(pk=start["sweep_id"])
    assert messages[-1]["best"] == sweep.best
    await communicator.disconnect()
