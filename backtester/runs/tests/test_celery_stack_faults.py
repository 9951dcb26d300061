"""Faults on a real Celery stack: daphne killed, Redis killed, PostgreSQL
stopped while a job's pieces are on workers.

Each test runs daphne (production settings, BACKTEST_EXECUTOR=celery) and a
slowed Celery worker (every piece 0.4 s more, see test_celery_faults) on a
PostgreSQL and a Redis of their own, starts a run or a sweep over the
websocket and breaks one service after the first result. Afterwards the
record must agree with what is stored, the client must have been told how its
job ended, and a job whose server died must not go on being computed.
"""

from __future__ import annotations

import contextlib
import json
import time

import pytest

from backtester.runs.tests.test_browser import browser, page  # noqa: F401
from backtester.runs.tests.test_celery_faults import SLOW_WORKER
from backtester.runs.tests.test_faults import (  # noqa: F401 - fixture
    COINS,
    Stack,
    connect,
    no_address_in,
    postgres_bindir,
    redis_binary,
    stack,
    until_end,
)
from backtester.runs.tests.workers import ROOT, Workers

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        postgres_bindir() is None or redis_binary() is None,
        reason="needs PostgreSQL server binaries and redis-server",
    ),
]

SWEEP = {"type": "sweep", "strategy": "sma_crossover", "grid": {"fast": "5:40:5"}}
RUN = {"type": "run", "strategies": "all", "no_cache": True}


@pytest.fixture
def celery_stack(stack, tmp_path):  # noqa: F811
    """The module's stack with daphne on Celery and one slowed worker."""
    stack.env.update(
        BACKTEST_EXECUTOR="celery",
        BACKTEST_TASK_VISIBILITY_TIMEOUT="600",
        SWEEP_TASK_COINS="1",
        BACKTEST_HEARTBEAT="1",
        BTLAB_SLOW_PIECE_S="1.5",  # a job takes longer than a restart
        # Pages served from the source static files (no collectstatic here).
        DEBUG="true",
    )
    launcher = tmp_path / "worker.py"
    launcher.write_text(SLOW_WORKER)
    workers = Workers({**stack.env, "PYTHONPATH": str(ROOT)}, [str(launcher)])
    workers.start("w", concurrency=1)
    workers.wait_ready()
    stack.workers = workers
    stack.start_daphne()
    try:
        yield stack
    finally:
        stack.stop_daphne()
        workers.close()
        stack.env.update(BACKTEST_EXECUTOR="threads", DEBUG="false")


def start_job(ws, message: dict) -> tuple[int, dict]:
    """Send a run or sweep; return its id once its first result has come."""
    ws.send(json.dumps(message))
    start = json.loads(ws.recv(timeout=30))
    assert start["type"] in ("start", "sweep_start"), start
    first = json.loads(ws.recv(timeout=30))
    assert first["type"] in ("result", "cell"), first
    return start.get("run_id") or start["sweep_id"], start


def record(lab: Stack, kind: str, job_id: int) -> tuple[str, int, int, str]:
    """Return (status, completed, what is stored, error) of a run or sweep."""
    if kind == "run":
        return lab.run_record(job_id)
    ((status, completed, error),) = lab.sql(
        "SELECT status, completed, error FROM sweeps_sweep WHERE id=%s", job_id
    )
    ((done,),) = lab.sql(
        "SELECT count(*) FROM sweeps_sweepcell WHERE sweep_id=%s AND done", job_id
    )
    return status, completed, done, error


def coin_rows(lab: Stack, kind: str, job_id: int) -> int:
    """Return the rows the workers stored for the job (results or coin blocks)."""
    table = "backtester_backtestresult" if kind == "run" else "sweeps_sweepcoinresult"
    column = "run_id" if kind == "run" else "sweep_id"
    ((count,),) = lab.sql(f"SELECT count(*) FROM {table} WHERE {column}=%s", job_id)
    return count


def pieces_started(lab: Stack, kind: str, job_id: int) -> int:
    """Return how many of the job's pieces a worker has started."""
    import redis

    client = redis.Redis.from_url(lab.redis.url)
    try:
        keys = list(client.scan_iter(f"*:exec:{kind}:{job_id}:started"))
        return sum(client.scard(key) for key in keys)
    finally:
        client.close()


@pytest.mark.parametrize("kind", ["run", "sweep"])
def test_daphne_killed_mid_job_stops_its_pieces(celery_stack, kind):
    lab = celery_stack
    ws = connect(lab)
    job_id, _ = start_job(ws, RUN if kind == "run" else SWEEP)
    lab.kill_daphne()
    with contextlib.suppress(Exception):
        ws.close()
    lab.start_daphne()
    # The new server marks the job at start-up: no page is read, no job sent.
    deadline = time.monotonic() + 20
    while record(lab, kind, job_id)[0] == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
    status, completed, stored, reason = record(lab, kind, job_id)
    assert status == "failed" and reason == "interrupted by a server restart"
    assert completed == stored
    # The worker computes and stores nothing more for it: its pieces stopped.
    rows, begun = coin_rows(lab, kind, job_id), pieces_started(lab, kind, job_id)
    time.sleep(3)
    assert record(lab, kind, job_id) == (status, completed, stored, reason)
    assert coin_rows(lab, kind, job_id) == rows
    assert pieces_started(lab, kind, job_id) == begun
    total = COINS * 6 if kind == "run" else 4 * COINS
    assert rows < total, "the job ended before the kill"


def page_html(lab: Stack, path: str) -> str:
    """Return the HTML of a page of the running server."""
    from urllib.error import HTTPError
    from urllib.request import urlopen

    try:
        with urlopen(f"http://127.0.0.1:{lab.port}{path}", timeout=30) as response:
            return response.read().decode()
    except HTTPError as exc:
        raise AssertionError(f"{path}: {exc}\n{lab.log()[-3000:]}") from None


def test_redis_killed_mid_sweep_ends_the_sweep_for_its_client(celery_stack):
    lab = celery_stack
    with connect(lab) as ws:
        sweep_id, _ = start_job(ws, SWEEP)
        lab.redis.stop()
        try:
            while (end := json.loads(ws.recv(timeout=60)))["type"] == "cell":
                pass
            assert end["type"] == "error", end
            assert end.get("sweep_id") == sweep_id
            assert "Redis" in end["message"]
            no_address_in(end["message"], lab)
        finally:
            lab.redis.start()
    status, completed, done, error = record(lab, "sweep", sweep_id)
    assert status == "failed" and "Redis" in error, (status, error)
    assert completed == done
    no_address_in(error, lab)


@pytest.mark.parametrize("kind", ["run", "sweep"])
def test_postgres_stopped_mid_job_then_the_record_tells_what_is_stored(
    celery_stack, kind
):
    lab = celery_stack
    with connect(lab) as ws:
        job_id, _ = start_job(ws, RUN if kind == "run" else SWEEP)
        lab.stop_postgres()
        try:
            ends = ("complete", "sweep_complete", "cancelled", "error")
            while (end := json.loads(ws.recv(timeout=60)))["type"] not in ends:
                pass
        finally:
            time.sleep(1)  # the workers' pieces meet the stopped database too
            lab.start_postgres()
        assert end["type"] == "error", end
        assert "database" in end["message"]
        no_address_in(end["message"], lab)
    # The page of the job saves what its server could not save then.
    html = page_html(lab, f"/runs/{job_id}/" if kind == "run" else f"/sweeps/{job_id}/")
    status, completed, stored, reason = record(lab, kind, job_id)
    assert status == "failed" and reason.endswith("the database is unavailable")
    assert completed == stored
    assert "Failed" in html and reason in html
    # Nothing is stored into it afterwards.
    rows = coin_rows(lab, kind, job_id)
    time.sleep(2)
    assert coin_rows(lab, kind, job_id) == rows
    assert record(lab, kind, job_id) == (status, completed, stored, reason)


def both_busy(lab: Stack, run_id: int) -> None:
    """Wait until two worker processes each hold a piece of the run."""
    import redis

    client = redis.Redis.from_url(lab.redis.url)
    try:
        for _ in range(600):
            (owners_key,) = list(client.scan_iter(f"*:exec:run:{run_id}:owners")) or [
                None
            ]
            if owners_key is not None:
                owners = client.hgetall(owners_key)
                ended = client.smembers(owners_key.replace(b":owners", b":ended"))
                if len({w for p, w in owners.items() if p not in ended}) >= 2:
                    return
            time.sleep(0.05)
    finally:
        client.close()
    raise AssertionError("the two workers never both held a piece of the run")


def test_the_run_page_says_a_worker_stopped(celery_stack, page):  # noqa: F811
    lab = celery_stack
    lab.workers.start("x")
    lab.workers.wait_ready()
    page.goto(f"http://127.0.0.1:{lab.port}/")
    page.wait_for_selector("#connection.ok")
    page.click("#run-button")  # the form's defaults: every coin
    page.wait_for_selector("#results tbody tr")
    run_id = int(page.evaluate("new URL(location.href).searchParams.get('run')"))
    both_busy(lab, run_id)
    lab.workers.kill("x")
    page.wait_for_selector("#banner:not([hidden])", timeout=30_000)
    assert "a worker stopped" in page.inner_text("#banner-text")
    # The run goes on to its end on the other worker, every coin there.
    page.wait_for_selector("#summary:not([hidden])", timeout=60_000)
    assert page.locator("#results tbody tr").count() == COINS
    assert page.errors == []
    status, completed, stored, _ = lab.run_record(run_id)
    assert (status, completed, stored) == ("complete", COINS, COINS)
