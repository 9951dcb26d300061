"""Runs on Celery workers: same results as the thread pool, nothing lost or
doubled when a worker is killed, cancel, and a clear failure with no worker.

The workers are real ``celery -A backtester worker -P prefork -c 1`` processes
on the test's PostgreSQL database and Redis; every test kills its workers in
teardown.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime

import numpy as np
import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from backtester.execution import state
from backtester.execution.executors import get_executor
from backtester.execution.messages import spec_dump, spec_load
from backtester.runs.models import BacktestResult, BacktestRun
from backtester.runs.tests.factories import make_coins
from backtester.runs.tests.test_consumer import (  # noqa: F401 - fixture
    _drain_runs,
    collect_until_end,
    connect,
    receive,
)
from backtester.runs.tests.workers import ROOT, Workers, database_url
from backtester.runs.validation import RunSpec
from strategies.registry import STRATEGIES
from strategies.risk import Risk

SYMBOLS = [f"K{i:02d}" for i in range(12)]
# The run-kill test's coins: enough that the run is still going at the kill.
MORE_SYMBOLS = [f"K{i:02d}" for i in range(24)]
# Seconds before the broker hands a dead worker's task to another worker: short,
# so the kill test does not wait two minutes.
VISIBILITY_S = 3


def test_spec_survives_the_task_message():
    spec = RunSpec(
        jobs=(("sma_crossover", {"fast": 10, "slow": 30}), ("rsi_reversion", {})),
        symbols=("BTC", "ETH"),
        start=datetime(2024, 1, 1, tzinfo=UTC),
        end=datetime(2025, 1, 1, tzinfo=UTC),
        interval="1h",
        fee=0.002,
        slippage_bps=5.0,
        risk=Risk(stop_loss_pct=5.0, direction="both", position_size=0.5),
    )
    import json

    assert spec_load(json.loads(json.dumps(spec_dump(spec)))) == spec


def test_celery_executor_without_redis_is_a_clear_start_up_error():
    env = {
        **os.environ,
        "BACKTEST_EXECUTOR": "celery",
        "REDIS_URL": "",
        "DEBUG": "true",
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "BACKTEST_EXECUTOR=celery needs REDIS_URL" in done.stderr


# --- on real servers, with worker processes --------------------------------------


@pytest.fixture
def celery_settings(settings):
    settings.BACKTEST_EXECUTOR = "celery"
    settings.BACKTEST_TASK_PICKUP_TIMEOUT = 10
    # As the workers have it: the monitor sends lost pieces again after it.
    settings.BACKTEST_TASK_VISIBILITY_TIMEOUT = VISIBILITY_S
    return settings


@pytest.fixture
def workers(celery_settings):
    """A factory of worker processes on this test's database and Redis."""
    env = {
        "DATABASE_URL": database_url(connection.settings_dict),
        "REDIS_URL": celery_settings.REDIS_URL,
        "BACKTEST_EXECUTOR": "celery",
        "BACKTEST_TASK_VISIBILITY_TIMEOUT": str(VISIBILITY_S),
        "CONN_MAX_AGE": "0",
        "DEBUG": "true",
    }
    pool = Workers(env)
    try:
        yield pool
    finally:
        pool.close()


async def collect_until(communicator, ends: tuple, timeout: float) -> list[dict]:
    messages = []
    while not messages or messages[-1]["type"] not in ends:
        messages.append(await receive(communicator, timeout))
    return messages


ENDS = ("complete", "sweep_complete", "cancelled", "error")


async def run_over_socket(message: dict, timeout: float = 60) -> list[dict]:
    """Send a run or sweep; return every message up to its end."""
    communicator = await connect()
    await communicator.send_json_to(message)
    messages = await collect_until(communicator, ENDS, timeout)
    await communicator.disconnect()
    return messages


def stored(run_id: int) -> list[BacktestResult]:
    return list(
        BacktestResult.objects.filter(run_id=run_id).order_by("symbol", "strategy")
    )


def run_row(run_id: int) -> BacktestRun:
    return BacktestRun.objects.get(pk=run_id)


async def wait_idle(timeout: float = 30) -> None:
    """Wait until the executor's control threads have saved their runs."""
    executor = get_executor("celery")
    for _ in range(int(timeout / 0.02)):
        if not executor.active_runs:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the executor still has active runs")


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
async def test_a_run_on_workers_gives_the_thread_pools_results(settings, workers):
    await sync_to_async(make_coins)(SYMBOLS[:6], bars=1500)
    message = {"type": "run", "strategies": "all", "symbols": SYMBOLS[:6]}

    settings.BACKTEST_EXECUTOR = "threads"
    local = await run_over_socket(message)
    assert local[-1]["type"] == "complete", local[-1]

    settings.BACKTEST_EXECUTOR = "celery"
    workers.start("one")
    await sync_to_async(workers.wait_ready)()
    remote = await run_over_socket(message)
    assert remote[-1]["type"] == "complete", (remote[-1], workers.log("one"))
    await wait_idle()

    def by_key(messages):
        return {
            (m["data"]["symbol"], m["data"]["strategy"]): m["data"]
            for m in messages
            if m["type"] == "result"
        }

    assert len(by_key(remote)) == len(remote) - 2 == 6 * len(STRATEGIES)
    assert by_key(remote) == by_key(local)
    assert [m["completed"] for m in remote[1:-1]] == list(range(1, 37))
    # The summary is computed from the stored rows, the thread pool's from
    # memory: the same numbers (a mean may differ in its last bits).
    ours, theirs = remote[-1]["summary"], local[-1]["summary"]
    assert ours["best"] == theirs["best"] and ours["worst"] == theirs["worst"]
    assert ours["beat_buy_hold"] == theirs["beat_buy_hold"]
    assert ours["median_return_pct"] == pytest.approx(theirs["median_return_pct"])
    assert ours["mean_sharpe"] == pytest.approx(theirs["mean_sharpe"])

    local_rows = await sync_to_async(stored)(local[0]["run_id"])
    remote_rows = await sync_to_async(stored)(remote[0]["run_id"])
    assert len(remote_rows) == len(local_rows) == 36
    for a, b in zip(remote_rows, local_rows, strict=True):
        assert (a.symbol, a.strategy, a.params, a.metrics) == (
            b.symbol,
            b.strategy,
            b.params,
            b.metrics,
        )
        for name in ("time", "strategy", "buy_hold"):
            np.testing.assert_array_equal(a.equity[name], b.equity[name])
        for name in b.trades:
            np.testing.assert_array_equal(a.trades[name], b.trades[name])
    run = await sync_to_async(run_row)(remote[0]["run_id"])
    assert (run.status, run.completed, run.total) == ("complete", 36, 36)


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_long_coin_is_stored_and_published_one_job_at_a_time(settings, monkeypatch):
    """From BACKTEST_SPLIT_BARS bars a worker's piece stores and publishes each
    of its coin's jobs as it is done; delivered again after its worker died
    part-way, it stores the jobs not stored yet, and nothing twice."""
    from backtester.execution import services
    from backtester.runs.services import run_create
    from prices.selectors import bars_load, coins_by_symbols
    from strategies.engine import run_many
    from strategies.types import Bars

    make_coins(["AAA"], bars=1500)
    (coin,) = coins_by_symbols(["AAA"])
    spec = RunSpec(jobs=tuple((key, {}) for key in STRATEGIES), symbols=("AAA",))
    run = run_create(spec=spec, coins=[coin])
    BacktestRun.objects.filter(pk=run.pk).update(status=BacktestRun.Status.RUNNING)
    state.reset(state.run_job(run.pk))
    settings.BACKTEST_SPLIT_BARS = 1000
    published: list[list[int]] = []
    monkeypatch.setattr(
        services,
        "results_publish",
        lambda run_id, rows: published.append([r.seq for r in rows]),
    )
    # The first delivery's worker dies after storing three jobs.
    compute = services.registry.call
    calls = []

    def dying(kind, name, *args):
        if name == "compute":
            calls.append(name)
            if len(calls) > 3:
                raise SystemExit("worker killed")
        return compute(kind, name, *args)

    monkeypatch.setattr(services.registry, "call", dying)
    with pytest.raises(SystemExit):
        services.run_piece(run_id=run.pk, coin_id=coin.pk, spec=spec)
    assert published == [[1], [2], [3]]
    monkeypatch.setattr(services.registry, "call", compute)
    # Delivered again: the three others, one at a time.
    assert services.run_piece(run_id=run.pk, coin_id=coin.pk, spec=spec) == 3
    assert published == [[1], [2], [3], [4], [5], [6]]
    # And again: nothing new.
    assert services.run_piece(run_id=run.pk, coin_id=coin.pk, spec=spec) == 0
    rows = stored(run.pk)
    assert sorted(r.seq for r in rows) == [1, 2, 3, 4, 5, 6]
    direct = run_many(Bars(*bars_load(["AAA"])["AAA"]), spec.jobs)
    assert {r.strategy: r.metrics for r in rows} == {
        d.strategy: d.metrics for d in direct
    }


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
async def test_worker_results_reach_the_socket_through_the_layer(workers, monkeypatch):
    """Results computed by a worker stream to the socket live, through the run's
    group, not only from the database at the run's end (its fallback)."""
    from backtester.runs import delivery

    dispatched: list[str] = []
    dispatch = delivery.DeliveryMixin.dispatch

    async def recorded(self, message):
        dispatched.append(message.get("type"))
        return await dispatch(self, message)

    monkeypatch.setattr(delivery.DeliveryMixin, "dispatch", recorded)
    await sync_to_async(make_coins)(SYMBOLS[:3], bars=500)
    workers.start("one")
    await sync_to_async(workers.wait_ready)()
    messages = await run_over_socket(
        {"type": "run", "strategy": "sma_crossover", "symbols": SYMBOLS[:3]}
    )
    await wait_idle()
    assert messages[-1]["type"] == "complete", (messages[-1], workers.log("one"))
    assert dispatched.count("run.results") == 3  # one message a coin
    assert "run.complete" in dispatched


async def _kill_one_mid_run(workers: Workers) -> None:
    """Two workers; SIGKILL one while the run is under way; every result
    arrives and is stored exactly once."""
    await sync_to_async(make_coins)(MORE_SYMBOLS, bars=3000)
    workers.start("a")
    workers.start("b")
    await sync_to_async(workers.wait_ready)()
    communicator = await connect()
    await communicator.send_json_to({"type": "run", "strategies": "all"})
    start = await receive(communicator)
    assert start["type"] == "start", start
    run_id, total = start["run_id"], start["total"]
    # Kill worker "a" once both have taken tasks and a few coins are done.
    messages = []
    while True:
        message = await receive(communicator, timeout=30)
        messages.append(message)
        assert message["type"] == "result", (message, workers.log("b"))
        started, ended, _ = await sync_to_async(state.progress)(state.run_job(run_id))
        if started >= 3 and ended >= 2:
            break
    await sync_to_async(workers.kill)("a")
    killed_at = len(messages)
    try:
        messages += await collect_until_end(communicator, timeout=60)
    except TimeoutError:
        progress = await sync_to_async(state.progress)(state.run_job(run_id))
        raise AssertionError(f"stalled at {progress}:\n{workers.log('b')}") from None
    await communicator.disconnect()
    await wait_idle()
    assert messages[-1]["type"] == "complete", (messages[-1], workers.log("b"))
    assert killed_at < total, "the run ended before the kill"
    results = [m for m in messages if m["type"] == "result"]
    keys = [(m["data"]["symbol"], m["data"]["strategy"]) for m in results]
    assert len(keys) == len(set(keys)) == total
    assert [m["completed"] for m in results] == list(range(1, total + 1))
    rows = await sync_to_async(stored)(run_id)
    assert len(rows) == len({(r.symbol, r.strategy) for r in rows}) == total
    run = await sync_to_async(run_row)(run_id)
    assert (run.status, run.completed) == ("complete", total)


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("attempt", range(5))
async def test_a_worker_killed_mid_run_loses_and_doubles_nothing(workers, attempt):
    await _kill_one_mid_run(workers)


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
async def test_cancel_revokes_queued_tasks_and_stops_running_ones(workers):
    await sync_to_async(make_coins)(SYMBOLS, bars=3000)
    workers.start("one")
    await sync_to_async(workers.wait_ready)()
    communicator = await connect()
    await communicator.send_json_to({"type": "run", "strategies": "all"})
    start = await receive(communicator)
    run_id = start["run_id"]
    first = await receive(communicator, timeout=30)
    assert first["type"] == "result"
    await communicator.send_json_to({"type": "cancel"})
    # Results forwarded before the cancel was read may come first.
    assert (await collect_until_end(communicator))[-1]["type"] == "cancelled"
    await communicator.disconnect()
    await wait_idle()
    # After a second, nothing runs any more and nothing is stored any more.
    await asyncio.sleep(1.0)
    started, ended, _ = await sync_to_async(state.progress)(state.run_job(run_id))
    count = len(await sync_to_async(stored)(run_id))
    await asyncio.sleep(1.0)
    progress = await sync_to_async(state.progress)(state.run_job(run_id))
    assert progress == (started, ended, None)
    assert len(await sync_to_async(stored)(run_id)) == count
    assert started == ended < len(SYMBOLS)
    run = await sync_to_async(run_row)(run_id)
    assert (run.status, run.completed) == ("cancelled", count)
    # The worker was told to drop the tasks it has not run.
    from backtester.celery import app

    replies = await sync_to_async(app.control.inspect(timeout=2).revoked)()
    assert replies, "the worker did not answer"
    (revoked,) = replies.values()
    ours = [t for t in revoked if t.startswith(f"btlab-run-{run_id}-")]
    # Every task sent, no more: pieces go out BACKTEST_TASKS_IN_FLIGHT at a
    # time, and those never sent need no revoke.
    assert started <= len(ours) <= len(SYMBOLS)
    assert len(ours) == len(set(ours))


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
async def test_with_no_worker_the_run_fails_saying_so(celery_settings):
    celery_settings.BACKTEST_TASK_PICKUP_TIMEOUT = 1
    await sync_to_async(make_coins)(SYMBOLS[:2], bars=300)
    messages = await run_over_socket({"type": "run", "strategy": "sma_crossover"})
    assert messages[0]["type"] == "start"
    end = messages[-1]
    assert end["type"] == "error"
    assert (
        "no worker picked up the tasks within 1 s; is a worker running?"
        in (end["message"])
    )
    await wait_idle()
    run = await sync_to_async(run_row)(messages[0]["run_id"])
    assert run.status == "failed" and "no worker" in run.error


# --- sweeps on workers -----------------------------------------------------------

SWEEP = {
    "type": "sweep",
    "strategy": "sma_crossover",
    "grid": {
        "fast": {"start": 5, "stop": 50, "step": 5},
        "slow": {"start": 20, "stop": 200, "step": 10},
    },
}


def sweep_rows(sweep_id: int) -> tuple[list, list]:
    from backtester.sweeps.models import SweepCell, SweepCoinResult

    cells = list(SweepCell.objects.filter(sweep_id=sweep_id).order_by("index"))
    coins = list(
        SweepCoinResult.objects.filter(sweep_id=sweep_id).values_list("symbol", "first")
    )
    return cells, coins


def cells_of(messages: list[dict]) -> dict[int, dict]:
    return {m["index"]: m for m in messages if m["type"] == "cell"}


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
async def test_a_sweep_on_workers_gives_the_thread_pools_cells(settings, workers):
    await sync_to_async(make_coins)(SYMBOLS[:4], bars=1500)
    message = {**SWEEP, "symbols": SYMBOLS[:4]}
    settings.BACKTEST_EXECUTOR = "threads"
    local = await run_over_socket(message)
    assert local[-1]["type"] == "sweep_complete", local[-1]

    settings.BACKTEST_EXECUTOR = "celery"
    workers.start("one")
    await sync_to_async(workers.wait_ready)()
    remote = await run_over_socket(message)
    assert remote[-1]["type"] == "sweep_complete", (remote[-1], workers.log("one"))
    await wait_idle()
    combinations = remote[0]["combinations"]
    assert combinations == 174
    ours, theirs = cells_of(remote), cells_of(local)
    assert len(ours) == len(remote) - 2 == combinations
    assert sorted(m["completed"] for m in ours.values()) == list(
        range(1, combinations + 1)
    )
    assert {i: (c["params"], c["metrics"]) for i, c in ours.items()} == {
        i: (c["params"], c["metrics"]) for i, c in theirs.items()
    }
    assert remote[-1]["best"] == local[-1]["best"]


async def _kill_one_mid_sweep(workers: Workers, settings) -> None:
    """Two workers; SIGKILL one while the sweep is under way; every cell
    arrives once and every (coin, block) is stored once."""
    from backtester.sweeps.models import Sweep

    await sync_to_async(make_coins)(SYMBOLS, bars=3000)
    # Tasks of 3 coins: 4 a block, so the kill lands among many of them.
    settings.SWEEP_TASK_COINS = 3
    per_block = -(-len(SYMBOLS) // settings.SWEEP_TASK_COINS)
    workers.start("a")
    workers.start("b")
    await sync_to_async(workers.wait_ready)()
    communicator = await connect()
    await communicator.send_json_to(SWEEP)
    start = await receive(communicator)
    assert start["type"] == "sweep_start", start
    sweep_id, combinations = start["sweep_id"], start["combinations"]
    job = state.sweep_job(sweep_id)
    messages = []
    while True:
        message = await receive(communicator, timeout=30)
        messages.append(message)
        assert message["type"] == "cell", (message, workers.log("b"))
        started, ended, _ = await sync_to_async(state.progress)(job)
        if started >= 3 and ended >= per_block + 2:
            break
    await sync_to_async(workers.kill)("a")
    killed_at = len(messages)
    try:
        messages += await collect_until(communicator, ENDS, timeout=90)
    except TimeoutError:
        progress = await sync_to_async(state.progress)(job)
        raise AssertionError(f"stalled at {progress}:\n{workers.log('b')}") from None
    await communicator.disconnect()
    await wait_idle()
    assert messages[-1]["type"] == "sweep_complete", (messages[-1], workers.log("b"))
    assert killed_at < combinations, "the sweep ended before the kill"
    cells = [m for m in messages if m["type"] == "cell"]
    assert len(cells) == len({c["index"] for c in cells}) == combinations
    assert [c["completed"] for c in cells] == list(range(1, combinations + 1))
    stored_cells, stored_coins = await sync_to_async(sweep_rows)(sweep_id)
    first, size = settings.SWEEP_FIRST_BLOCK, settings.SWEEP_BLOCK
    blocks = 1 + -(-(combinations - first) // size)
    assert len(stored_coins) == len(set(stored_coins)) == blocks * len(SYMBOLS)
    assert all(cell.done and cell.coins == len(SYMBOLS) for cell in stored_cells)
    sweep = await Sweep.objects.aget(pk=sweep_id)
    assert (sweep.status, sweep.completed) == ("complete", combinations)


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("attempt", range(5))
async def test_a_worker_killed_mid_sweep_loses_and_doubles_nothing(
    workers, settings, attempt
):
    await _kill_one_mid_sweep(workers, settings)
