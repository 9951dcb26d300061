"""Portfolio runs and sweeps on real Celery workers: the thread pool's numbers,
and a clear failure when no worker takes them."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from backtester.portfolio.models import PortfolioRun, PortfolioSweep
from backtester.portfolio.remote import BLOCK_CELLS, sweep_blocks
from backtester.runs.tests.factories import make_coins
from backtester.runs.tests.test_celery import (  # noqa: F401 - fixtures
    celery_settings,
    collect_until,
    workers,
)
from backtester.runs.tests.test_consumer import connect, receive

SYMBOLS = ["AAA", "BBB", "CCC", "DDD"]
RUN = {
    "type": "portfolio", "strategy": "sma_crossover",
    "params": {"fast": 5, "slow": 20}, "max_positions": 2, "rank": "roc_24",
}  # fmt: skip
SWEEP = {
    "type": "portfolio_sweep", "strategy": "sma_crossover",
    "grid": {"max_positions": [1, 2, 3], "fast": [5, 8]}, "params": {"slow": 20},
}  # fmt: skip
ENDS = ("complete", "sweep_complete", "cancelled", "error")


def test_sweep_blocks_share_strategy_parameters_and_stay_small():
    combos = [{"fast": f, "slow": 20, "max_positions": m}
              for f in (5, 8) for m in range(1, 21)]  # fmt: skip
    blocks = sweep_blocks(combos)
    assert sorted(i for b in blocks for i in b) == list(range(40))
    for block in blocks:
        assert len(block) <= BLOCK_CELLS
        assert len({combos[i]["fast"] for i in block}) == 1
    assert len(blocks) == 4  # 20 cells of each fast value: 16 + 4, twice


def record(model, pk: int, cells: bool = False):
    """Return a record (and its cell count), closing this thread's connection:
    the workers' database is dropped at the end, which an open one prevents."""
    try:
        row = model.objects.get(pk=pk)
        return (row, row.cells.count()) if cells else row
    finally:
        connection.close()


async def over_socket(message: dict, timeout: float = 60) -> list[dict]:
    communicator = await connect()
    await communicator.send_json_to(message)
    messages = await collect_until(communicator, ENDS, timeout)
    await communicator.disconnect()
    return messages


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
async def test_portfolio_jobs_on_a_worker_equal_the_thread_pools(settings, workers):  # noqa: F811
    await sync_to_async(make_coins)(SYMBOLS, bars=400)
    settings.BACKTEST_EXECUTOR = "threads"
    local_run = await over_socket(RUN)
    local_sweep = await over_socket(SWEEP)
    assert local_run[-1]["type"] == "complete", local_run[-1]
    assert local_sweep[-1]["type"] == "sweep_complete", local_sweep[-1]

    settings.BACKTEST_EXECUTOR = "celery"
    workers.start("one")
    await sync_to_async(workers.wait_ready)()
    remote_run = await over_socket(RUN)
    assert remote_run[-1]["type"] == "complete", (remote_run, workers.log("one"))
    kinds = [m["type"] for m in remote_run]
    assert kinds == ["start"] + ["progress"] * 4 + ["portfolio", "complete"]
    assert remote_run[-2]["metrics"] == local_run[-2]["metrics"]
    assert remote_run[-2]["contributions"] == local_run[-2]["contributions"]

    remote_sweep = await over_socket(SWEEP)
    assert remote_sweep[-1]["type"] == "sweep_complete", workers.log("one")
    cells = {m["index"]: m for m in remote_sweep if m["type"] == "cell"}
    local = {m["index"]: m for m in local_sweep if m["type"] == "cell"}
    assert len(cells) == 6 and cells.keys() == local.keys()
    for index, cell in cells.items():
        assert cell["params"] == local[index]["params"]
        assert cell["metrics"] == local[index]["metrics"]
    completed = [m["completed"] for m in remote_sweep if m["type"] == "cell"]
    assert completed == [1, 2, 3, 4, 5, 6]
    assert remote_sweep[-1]["best"] == local_sweep[-1]["best"]
    run = await sync_to_async(record)(PortfolioRun, remote_run[0]["portfolio_id"])
    sweep = await sync_to_async(record)(PortfolioSweep, remote_sweep[0]["sweep_id"])
    assert (run.status, sweep.status, sweep.completed) == ("complete", "complete", 6)


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
async def test_without_a_worker_portfolio_jobs_fail_saying_so(celery_settings):  # noqa: F811
    await sync_to_async(make_coins)(SYMBOLS, bars=400)
    celery_settings.BACKTEST_TASK_PICKUP_TIMEOUT = 1
    for message, key in ((RUN, "portfolio_id"), (SWEEP, "sweep_id")):
        communicator = await connect()
        await communicator.send_json_to(message)
        start = await receive(communicator)
        end = await receive(communicator, 30)
        assert end["type"] == "error" and "no Celery worker" in end["message"]
        await communicator.disconnect()
        model = PortfolioRun if key == "portfolio_id" else PortfolioSweep
        row = await sync_to_async(record)(model, start[key])
        assert row.status == "failed" and "no Celery worker" in row.error


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
async def test_cancel_on_a_worker_is_recorded_told_and_stops_the_cells(workers):  # noqa: F811
    await sync_to_async(make_coins)([f"K{i:02d}" for i in range(8)], bars=3000)
    workers.start("one")
    await sync_to_async(workers.wait_ready)()
    communicator = await connect()
    grid = {"max_positions": "1:20:1", "fast": [5, 8, 12]}
    await communicator.send_json_to({**SWEEP, "grid": grid})
    start = await receive(communicator)
    assert start["combinations"] == 60, start
    first = await receive(communicator, 60)
    assert first["type"] == "cell", (first, workers.log("one"))
    await communicator.send_json_to({"type": "cancel"})
    seen = 1
    while (message := await receive(communicator, 1))["type"] == "cell":
        seen += 1  # cells already on their way when the cancel was sent
    assert message["type"] == "cancelled", message
    sweep = await sync_to_async(record)(PortfolioSweep, start["sweep_id"])
    assert sweep.status == "cancelled"
    # The worker stops at its next cell: nothing more is stored or sent.
    assert await communicator.receive_nothing(2)
    _, stored = await sync_to_async(record)(PortfolioSweep, sweep.pk, cells=True)
    assert seen <= stored <= seen + 1 < 60
    await communicator.disconnect()
