"""A worker SIGKILLed mid-job on Celery: its pieces are sent again as soon as
its heartbeat expires, not after the broker's visibility timeout, and the
client is told a worker stopped.

The workers are real ``celery -A backtester worker`` processes started through
a launcher that slows every piece down (0.4 s), so each worker is always in
the middle of a piece when the test kills one. The broker's visibility timeout
is ten minutes here: a job that completes within the test's 60-second waits
was not rescued by the broker.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from backtester.execution import state
from backtester.runs.tests.factories import make_coins
from backtester.runs.tests.test_celery import (
    ENDS,
    run_row,
    stored,
    sweep_rows,
    wait_idle,
)
from backtester.runs.tests.test_consumer import connect, receive
from backtester.runs.tests.workers import ROOT, Workers, database_url

SYMBOLS = ["AAA", "BBB", "CCC", "DDD", "EEE", "FFF"]
VISIBILITY_S = 600
# The worker launcher: every run coin and sweep block takes 0.4 s more
# (BTLAB_SLOW_PIECE_S).
SLOW_WORKER = """
import os, sys, time
import django
django.setup()
from backtester.runs import compute
from backtester.sweeps import services

def slowed(function):
    def slow(*args, **kwargs):
        time.sleep(float(os.environ.get("BTLAB_SLOW_PIECE_S", "0.4")))
        return function(*args, **kwargs)
    return slow

compute.compute_coin = slowed(compute.compute_coin)
services.sweep_block_run = slowed(services.sweep_block_run)
from celery.__main__ import main
sys.argv[0] = "celery"
sys.exit(main())
"""


def test_a_driver_error_of_an_unreachable_database_names_the_database():
    import psycopg2

    from backtester.execution.failures import failure_reason

    # Raised by the price loader's own COPY, outside Django's wrappers.
    lost = psycopg2.OperationalError("server closed the connection unexpectedly")
    assert failure_reason(lost) == "the database is unavailable"
    assert failure_reason(psycopg2.InterfaceError("connection already closed")) == (
        "the database is unavailable"
    )
    shutdown = psycopg2.errors.AdminShutdown("terminating connection")
    assert failure_reason(shutdown) == "the database is unavailable"
    bad = psycopg2.errors.NotNullViolation("null value in column")
    assert failure_reason(bad) == "the results could not be stored in the database"
    assert "internal error" in failure_reason(ValueError("x"))


@pytest.fixture
def slow_workers(settings):
    settings.BACKTEST_EXECUTOR = "celery"
    settings.BACKTEST_TASK_PICKUP_TIMEOUT = 10
    settings.BACKTEST_TASK_VISIBILITY_TIMEOUT = VISIBILITY_S
    settings.BACKTEST_RUNS_PER_MINUTE = 0
    launcher = Path(tempfile.mkdtemp(prefix="btlab-slow-worker-")) / "worker.py"
    launcher.write_text(SLOW_WORKER)
    env = {
        "DATABASE_URL": database_url(connection.settings_dict),
        "REDIS_URL": settings.REDIS_URL,
        "BACKTEST_EXECUTOR": "celery",
        "BACKTEST_TASK_VISIBILITY_TIMEOUT": str(VISIBILITY_S),
        "CONN_MAX_AGE": "0",
        "DEBUG": "true",
        "PYTHONPATH": str(ROOT),  # the launcher runs from its own directory
    }
    pool = Workers(env, launcher=[str(launcher)])
    try:
        yield pool
    finally:
        pool.close()


async def _both_busy(job: str) -> None:
    """Wait until two worker processes each hold a piece they have not ended."""
    for _ in range(600):
        owners = await sync_to_async(state.owners)(job)
        ended = await sync_to_async(state.ended)(job)
        if len({w for p, w in owners.items() if p not in ended}) >= 2:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the workers never both held a piece: {owners}")


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", ["run", "sweep"])
async def test_a_killed_workers_pieces_go_again_at_once(slow_workers, settings, kind):
    await sync_to_async(make_coins)(SYMBOLS, bars=1500)
    settings.SWEEP_TASK_COINS = 1
    slow_workers.start("a")
    slow_workers.start("b")
    await sync_to_async(slow_workers.wait_ready)()
    communicator = await connect()
    if kind == "run":
        message = {"type": "run", "strategy": "sma_crossover", "symbols": SYMBOLS}
    else:
        message = {"type": "sweep", "strategy": "sma_crossover", "symbols": SYMBOLS,
                   "grid": {"fast": "5:50:5", "slow": "20:200:10"}}  # fmt: skip
    await communicator.send_json_to(message)
    start = await receive(communicator, 30)
    assert start["type"] in ("start", "sweep_start"), start
    job_id = start.get("run_id") or start["sweep_id"]
    job = state.run_job(job_id) if kind == "run" else state.sweep_job(job_id)
    await _both_busy(job)
    await sync_to_async(slow_workers.kill)("a")
    killed_at = time.monotonic()
    try:
        messages = []
        while not messages or messages[-1]["type"] not in ENDS:
            messages.append(await receive(communicator, 60))
            if messages[-1]["type"] == "notice":
                told_s = time.monotonic() - killed_at
        ended_s = time.monotonic() - killed_at
    except TimeoutError:
        progress = await sync_to_async(state.progress)(job)
        raise AssertionError(
            f"stalled at {progress}:\n{slow_workers.log('b')}"
        ) from None
    await communicator.disconnect()
    await wait_idle()
    assert messages[-1]["type"] in ("complete", "sweep_complete"), messages[-1]
    notices = [m for m in messages if m["type"] == "notice"]
    assert len(notices) >= 1, [m["type"] for m in messages]
    assert "a worker stopped" in notices[0]["message"]
    print(
        f"\n{kind}: a worker killed; the notice {told_s:.1f} s and the end "
        f"{ended_s:.1f} s later (the broker's visibility timeout: {VISIBILITY_S} s)"
    )
    # Nothing lost, nothing doubled.
    if kind == "run":
        rows = await sync_to_async(stored)(job_id)
        assert len(rows) == len({r.symbol for r in rows}) == len(SYMBOLS)
        run = await sync_to_async(run_row)(job_id)
        assert (run.status, run.completed) == ("complete", len(SYMBOLS))
    else:
        cells, coins = await sync_to_async(sweep_rows)(job_id)
        assert len(coins) == len(set(coins))
        assert len(cells) == start["combinations"]
        assert all(cell.done and cell.coins == len(SYMBOLS) for cell in cells)
        got = [m for m in messages if m["type"] == "cell"]
        assert len({m["index"] for m in got}) == start["combinations"]
