"""Runs left queued or running by a stopped server are marked failed."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from backtester.execution import pool as pool_module
from backtester.execution.pool import get_runner
from backtester.runs import compute as compute_module
from backtester.runs import processes
from backtester.runs.models import BacktestRun
from backtester.runs.selectors import run_get, runs_list
from backtester.runs.services import run_coins, run_create, run_start, runs_mark_stale
from backtester.runs.tests.factories import make_coins
from backtester.runs.validation import run_spec

RUNNING, QUEUED = BacktestRun.Status.RUNNING, BacktestRun.Status.QUEUED
needs_proc = pytest.mark.skipif(not processes.HAS_PROC, reason="needs /proc")


def make_run(
    *,
    owner: str = "",
    status: str = RUNNING,
    age: timedelta = timedelta(0),
    silent_for: timedelta | None = timedelta(0),
) -> BacktestRun:
    """Store an unfinished run created and started ``age`` ago."""
    now = timezone.now()
    run = BacktestRun.objects.create(
        strategies=[{"strategy": "sma_crossover", "params": {}}],
        status=status,
        owner=owner,
        started_at=now - age if status == RUNNING else None,
        heartbeat_at=None if silent_for is None else now - silent_for,
    )
    BacktestRun.objects.filter(pk=run.pk).update(created_at=now - age)
    return run


def status_of(run: BacktestRun) -> str:
    run.refresh_from_db()
    return run.status


def sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


@pytest.fixture
def dead_owner() -> str:
    """Return the owner string of a process on this host that has exited."""
    child = sleeper()
    try:
        owner = processes.identity(child.pid)
    finally:
        child.kill()
        child.wait()
    return owner


@pytest.fixture
def live_owner():
    """Return the owner string of another process on this host, still running."""
    child = sleeper()
    yield processes.identity(child.pid)
    child.kill()
    child.wait()


def other_host(owner: str) -> str:
    return "elsewhere" + owner[owner.index(":") :]


def test_owner_strings_tell_live_processes_from_stopped_ones(dead_owner, live_owner):
    assert processes.is_alive(processes.identity()) is True
    assert processes.is_alive(live_owner) is True
    assert processes.is_alive(dead_owner) is False
    # Nothing can be told about a process on another host.
    assert processes.is_alive(other_host(dead_owner)) is None
    assert processes.is_alive("not an owner") is None


@needs_proc
def test_a_restart_that_reuses_the_pid_or_a_reboot_counts_as_stopped():
    host, boot, pid, start = processes.identity().rsplit(":", 3)
    # A container restarted in place: same host name and pid, a later start.
    assert processes.is_alive(f"{host}:{boot}:{pid}:{int(start) + 1}") is False
    assert processes.is_alive(f"{host}:another-boot:{pid}:{start}") is False


@pytest.mark.django_db
def test_a_new_runner_fails_runs_whose_process_stopped(
    dead_owner, live_owner, monkeypatch
):
    # Heartbeats are fresh: only the owner check can tell these runs are dead.
    dead = make_run(owner=dead_owner)
    dead_queued = make_run(owner=dead_owner, status=QUEUED, silent_for=None)
    live = make_run(owner=live_owner)
    mine = make_run(owner=processes.identity())
    elsewhere = make_run(owner=other_host(dead_owner))
    monkeypatch.setattr(pool_module, "_runner", None)  # a process starting up

    get_runner()

    for run in (dead, dead_queued):
        assert status_of(run) == "failed"
        assert run.error == "interrupted by a server restart"
        assert run.finished_at is not None
    # Another server on this host, this process, and a server elsewhere that
    # beat recently all still own their runs.
    assert [status_of(r) for r in (live, mine, elsewhere)] == [RUNNING] * 3


@pytest.mark.django_db
def test_reading_runs_fails_those_of_a_stopped_process(dead_owner, client):
    """The history and a run's page mark stale runs before reading (selectors
    only read; the pages call the service that writes)."""
    listed = make_run(owner=dead_owner)
    assert client.get("/runs/").status_code == 200
    assert status_of(listed) == "failed"
    assert {r.pk: r.status for r in runs_list(user=None)}[listed.pk] == "failed"
    opened = make_run(owner=dead_owner)
    assert client.get(f"/runs/{opened.pk}/").status_code == 200
    assert run_get(opened.pk, user=None).status == "failed"


@pytest.mark.django_db
def test_runs_without_a_sign_of_life_fail_after_stale_after(settings):
    settings.BACKTEST_STALE_AFTER = 120
    owner = other_host(processes.identity())
    hour = timedelta(hours=1)
    # A long run whose server keeps beating is not touched, however old it is.
    beating = make_run(owner=owner, age=hour, silent_for=timedelta(seconds=5))
    silent = make_run(owner=owner, age=hour, silent_for=timedelta(minutes=5))
    # Rows from before heartbeats: the start, or the creation, is the last sign.
    started_long_ago = make_run(age=hour, silent_for=None)
    queued_long_ago = make_run(status=QUEUED, age=hour, silent_for=None)
    just_queued = make_run(status=QUEUED, silent_for=None)

    assert runs_mark_stale() == 3

    assert status_of(beating) == RUNNING
    assert status_of(just_queued) == QUEUED
    for run in (silent, started_long_ago, queued_long_ago):
        assert status_of(run) == "failed"
        assert "no sign of life for 120 s" in run.error


@pytest.mark.django_db(transaction=True)
def test_a_run_records_its_owner_and_beats_while_it_works(settings, monkeypatch):
    settings.BACKTEST_HEARTBEAT = 0.05
    settings.BACKTEST_STALE_AFTER = 1
    make_coins(["AAA"], bars=200)
    release = threading.Event()
    compute = compute_module.compute_coin

    def held(symbol, series, spec):
        assert release.wait(20)
        return compute(symbol, series, spec)

    monkeypatch.setattr(compute_module, "compute_coin", held)
    spec = run_spec({"strategy": "sma_crossover"})
    coins = run_coins(spec)
    run = run_create(spec=spec, coins=coins)
    assert run.owner == processes.identity()
    handle = run_start(run=run, spec=spec, coins=coins, publish=lambda event: None)
    try:
        run.refresh_from_db()
        started = run.heartbeat_at
        deadline = time.monotonic() + 5
        # Held at the gate for longer than BACKTEST_STALE_AFTER, still beating.
        while time.monotonic() < deadline:
            time.sleep(0.1)
            run.refresh_from_db()
            if run.heartbeat_at > started + timedelta(seconds=1.2):
                break
        assert run.heartbeat_at > started + timedelta(seconds=1.2)
        assert runs_mark_stale() == 0
        assert status_of(run) == RUNNING
    finally:
        release.set()
        assert handle.wait(20)
    assert status_of(run) == "complete"
