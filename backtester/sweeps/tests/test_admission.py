"""One admission count for every kind of job: runs, sweeps and walk-forwards
share the process's limit, each user's cap and the per-minute throttle, and a
refused sweep writes nothing."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.core.cache import cache

from backtester.execution import pool as pool_module
from backtester.execution.handles import RunnerBusy
from backtester.execution.pool import Runner
from backtester.runs import services as run_services
from backtester.runs.tests.factories import make_coins
from backtester.runs.tests.test_consumer import connect, receive
from backtester.sweeps.models import Sweep, SweepCell
from backtester.sweeps.tests.test_consumer import (  # noqa: F401 - fixtures
    SYMBOLS,
    _drain_sweeps,
    gate,
    until_end,
)

SWEEP = {"type": "sweep", "strategy": "sma_crossover", "grid": {"fast": "2:40:1"}}
RUN = {"type": "run", "strategy": "sma_crossover", "symbols": ["AAA"]}


@pytest.fixture(autouse=True)
def _one_throttle_window(monkeypatch):
    """Keep the whole test inside one throttle window, counted from zero."""
    monkeypatch.setattr(run_services, "_clock", lambda: 1_800_000_040.0)
    cache.clear()


def test_the_process_limit_counts_every_kind_and_says_what_is_busy(settings):
    settings.BACKTEST_MAX_RUNS_PER_USER = 8
    runner = Runner(workers=1, max_runs=4)
    runner.reserve("user:1", "run")
    runner.reserve("user:2", "sweep")
    runner.reserve("user:3", "sweep")
    runner.reserve("user:4", "walk_forward")
    with pytest.raises(RunnerBusy) as busy:
        runner.reserve("user:5", "run")
    assert str(busy.value).startswith(
        "the server is busy with 1 run, 2 sweeps and 1 walk-forward;"
    )
    assert runner.active_jobs() == 4 and runner.active_jobs("sweep") == 2


def test_a_users_cap_counts_every_kind(settings):
    settings.BACKTEST_MAX_RUNS_PER_USER = 2
    runner = Runner(workers=1, max_runs=8)
    runner.reserve("user:1", "run")
    sweep = runner.reserve("user:1", "sweep")
    with pytest.raises(RunnerBusy, match=r"2 active jobs \(1 run and 1 sweep\)"):
        runner.reserve("user:1", "walk_forward")
    # Admitted, the sweep still counts; retired, its place is free again.
    runner.admit(object(), sweep, kind="sweep", job_id=7)
    with pytest.raises(RunnerBusy):
        runner.reserve("user:1", "run")
    runner.retire(7, "sweep")
    runner.reserve("user:1", "walk_forward")


@pytest.fixture
def small_runner(monkeypatch):
    runner = Runner(workers=2, max_runs=3)
    monkeypatch.setattr(pool_module, "_runner", runner)
    return runner


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_an_active_sweep_counts_against_the_users_runs(
    settings,
    small_runner,
    gate,  # noqa: F811
):
    await sync_to_async(make_coins)(SYMBOLS, bars=400)
    settings.BACKTEST_MAX_RUNS_PER_USER = 1
    first, second = await connect(), await connect()
    await first.send_json_to(SWEEP)
    assert (await receive(first))["type"] == "sweep_start"
    await second.send_json_to(RUN)
    refused = await receive(second)
    assert refused["type"] == "error", refused
    assert "you already have 1 active sweep" in refused["message"]
    await first.send_json_to({"type": "cancel"})
    gate.opened.set()
    await first.disconnect()
    await second.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_sweep_refused_for_a_busy_server_writes_nothing(settings, small_runner):
    await sync_to_async(make_coins)(SYMBOLS, bars=400)
    held = [small_runner.reserve(f"user:{n}", "run") for n in range(3)]
    communicator = await connect()
    for _ in range(5):
        await communicator.send_json_to(SWEEP)
        refused = await receive(communicator)
        assert refused["type"] == "error", refused
        assert "the server is busy with 3 runs" in refused["message"]
    assert await Sweep.objects.acount() == 0
    assert await SweepCell.objects.acount() == 0
    held[0].release()
    await communicator.send_json_to({**SWEEP, "grid": {"fast": [5]}})
    assert (await receive(communicator))["type"] == "sweep_start"
    assert (await until_end(communicator))[-1]["type"] == "sweep_complete"
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_sweeps_are_throttled_with_runs(settings, small_runner):
    await sync_to_async(make_coins)(SYMBOLS, bars=400)
    settings.BACKTEST_RUNS_PER_MINUTE = 2
    communicator = await connect()
    outcomes = []
    for _ in range(4):
        await communicator.send_json_to({**SWEEP, "grid": {"fast": [5]}})
        message = await receive(communicator)
        if message["type"] == "sweep_start":
            message = (await until_end(communicator))[-1]
        outcomes.append(message["type"])
        last = message
    assert outcomes == ["sweep_complete"] * 2 + ["error"] * 2
    assert "at most 2 a minute" in last["message"]
    assert await Sweep.objects.acount() == 2
    await communicator.disconnect()


def test_a_users_backtests_in_active_sweeps_are_capped(settings):
    settings.BACKTEST_MAX_RUNS_PER_USER = 8
    runner = Runner(workers=1, max_runs=8)
    first = runner.reserve("user:1", "sweep", size=300, size_limit=500)
    with pytest.raises(
        RunnerBusy,
        match=r"this sweep is 300 backtests and your active jobs 300; at most 500",
    ):
        runner.reserve("user:1", "sweep", size=300, size_limit=500)
    runner.reserve("user:2", "sweep", size=300, size_limit=500)  # another user
    runner.admit(object(), first, kind="sweep", job_id=1)
    with pytest.raises(RunnerBusy):  # admitted, it still counts
        runner.reserve("user:1", "walk_forward", size=201, size_limit=500)
    runner.reserve("user:1", "walk_forward", size=200, size_limit=500)
    runner.retire(1, "sweep")
    runner.reserve("user:1", "sweep", size=300, size_limit=500)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_sweeps_too_large_for_the_users_cap_are_refused(
    settings,
    small_runner,
    gate,  # noqa: F811
):
    await sync_to_async(make_coins)(SYMBOLS, bars=400)
    settings.BACKTEST_MAX_RUNS_PER_USER = 2
    settings.SWEEP_MAX_BACKTESTS = 30
    settings.SWEEP_FIRST_BLOCK = 1
    settings.SWEEP_BLOCK = 1
    grid = {"fast": [5, 10], "slow": [20, 30, 40, 50]}  # 8 x 3 coins: 24
    first, second = await connect(), await connect()
    await first.send_json_to({**SWEEP, "grid": grid})
    assert (await receive(first))["type"] == "sweep_start"
    await second.send_json_to({**SWEEP, "grid": grid})
    refused = await receive(second)
    assert refused["type"] == "error"
    assert "24 backtests and your active jobs 24; at most 30" in refused["message"]
    await second.send_json_to({**SWEEP, "grid": {"fast": "2:12:1"}})  # 11 x 3
    too_large = await receive(second)
    assert too_large["type"] == "error" and too_large["field"] == "grid"
    assert (
        "11 combinations x 3 coins is 33 backtests; at most 30"
        in (too_large["message"])
    )
    assert await Sweep.objects.acount() == 1
    await first.send_json_to({"type": "cancel"})
    gate.opened.set()
    await first.disconnect()
    await second.disconnect()
