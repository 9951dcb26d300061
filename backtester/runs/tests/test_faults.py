"""Faults on a real stack: Redis killed, PostgreSQL stopped, daphne killed mid-run.

Each test runs daphne (production settings) on a PostgreSQL and a Redis of its
own, starts a run over the websocket and breaks one service after the first
result. Afterwards the run's record must agree with what is stored
(``completed`` = the stored rows), the client must have been told which
service failed (by name only), a restarted server must mark the runs its dead
predecessor left, and the next run must work. A wrapper slows each coin down
(0.3 s), so that "mid-run" is deterministic.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "scripts"))
from services import (  # noqa: E402
    RedisServer,
    _as_postgres_user,
    _wait_for_port,
    free_port,
    postgres_bindir,
    postgres_server,
    redis_binary,
)

pytestmark = pytest.mark.skipif(
    postgres_bindir() is None or redis_binary() is None,
    reason="needs PostgreSQL server binaries and redis-server",
)

COINS = 8
# daphne with every coin slowed down: a run of 8 coins takes a few seconds.
SLOW_DAPHNE = """
import sys, time
import django
django.setup()
from backtester.runs import compute as runner
compute = runner.compute_coin
def slow(*args, **kwargs):
    time.sleep(0.3)
    return compute(*args, **kwargs)
runner.compute_coin = slow
from backtester.sweeps import services as sweeps
block_run = sweeps.sweep_block_run
def slow_block(*args, **kwargs):
    time.sleep(0.3)
    return block_run(*args, **kwargs)
sweeps.sweep_block_run = slow_block
from daphne.cli import CommandLineInterface
CommandLineInterface().run(sys.argv[1:])
"""


def _env(database_url: str, redis_url: str) -> dict:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    return {
        **base,
        "DJANGO_SETTINGS_MODULE": "backtester.settings",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DEBUG": "false",
        "SECRET_KEY": "fault-test-secret-key-not-for-production-0123456789",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL": "false",
        "BACKTEST_WORKERS": "1",
        "BACKTEST_EXECUTOR": "threads",
        "PRICE_CACHE_WARM": "false",
        "CONN_MAX_AGE": "0",
        "BACKTEST_RUNS_PER_MINUTE": "0",
        "SWEEP_FIRST_BLOCK": "2",
        "SWEEP_BLOCK": "2",
        "PYTHONPATH": str(ROOT),
    }


class Stack:
    """PostgreSQL, Redis and a daphne that a test can break and restart."""

    def __init__(self, database_url: str, redis: RedisServer, work: Path) -> None:
        self.database_url, self.redis, self.work = database_url, redis, work
        self.env = _env(database_url, redis.url)
        self.port = free_port()
        self.daphne: subprocess.Popen | None = None
        (work / "slow_daphne.py").write_text(SLOW_DAPHNE)

    def manage(self, *args: str) -> None:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT, env=self.env, capture_output=True, text=True,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr

    def start_daphne(self) -> None:
        log = open(self.work / f"daphne-{time.monotonic_ns()}.log", "w")  # noqa: SIM115
        self.daphne = subprocess.Popen(
            [sys.executable, str(self.work / "slow_daphne.py"), "-b", "127.0.0.1",
             "-p", str(self.port), "backtester.asgi:application"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        _wait_for_port(self.port, timeout=30)

    def kill_daphne(self) -> None:
        if self.daphne and self.daphne.poll() is None:
            self.daphne.send_signal(signal.SIGKILL)
            self.daphne.wait()

    def stop_daphne(self) -> None:
        if self.daphne and self.daphne.poll() is None:
            self.daphne.terminate()
            try:
                self.daphne.wait(10)
            except subprocess.TimeoutExpired:
                self.kill_daphne()

    def log(self) -> str:
        return "".join(p.read_text() for p in sorted(self.work.glob("daphne-*.log")))

    def sql(self, query: str, *args) -> list[tuple]:
        import psycopg2

        with contextlib.closing(psycopg2.connect(self.database_url)) as conn:
            with conn.cursor() as cursor:
                cursor.execute(query, args)
                rows = cursor.fetchall() if cursor.description else []
            conn.commit()
        return rows

    def run_record(self, run_id: int) -> tuple[str, int, int, str]:
        ((status, completed, error),) = self.sql(
            "SELECT status, completed, error FROM backtester_backtestrun WHERE id=%s",
            run_id,
        )
        ((stored,),) = self.sql(
            "SELECT count(*) FROM backtester_backtestresult WHERE run_id=%s", run_id
        )
        return status, completed, stored, error

    # --- PostgreSQL stop and start, on the cluster postgres_server made ------

    def _pg(self, *args: str) -> None:
        ((data,),) = self.sql("SHOW data_directory") if args[0] == "stop" else [(
            self.pg_data,
        )]  # fmt: skip
        self.pg_data = data
        port = self.database_url.rsplit(":", 1)[1].split("/")[0]
        options = (
            f"-p {port} -k {Path(data).parent} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c max_connections=200"
        )
        subprocess.run(
            _as_postgres_user(
                [str(postgres_bindir() / "pg_ctl"), "-D", data, "-o", options,
                 "-l", str(Path(data).parent / "server.log"), "-w", *args]
            ),
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def stop_postgres(self) -> None:
        # "fast": clients are cut off, but what was committed is kept (the test
        # cluster commits asynchronously: an immediate stop would lose commits
        # a real server keeps).
        self._pg("stop", "-m", "fast")

    def start_postgres(self) -> None:
        self._pg("start")


@pytest.fixture(scope="module")
def stack():
    work = Path(tempfile.mkdtemp(prefix="btlab-faults-"))
    with postgres_server() as database_url:
        redis = RedisServer().start()
        try:
            stack = Stack(database_url, redis, work)
            stack.manage("migrate", "-v0")
            stack.manage("seed_demo", "--symbols", str(COINS), "--years", "1")
            yield stack
        finally:
            stack.stop_daphne()
            redis.close()
            # A cluster this module restarted is stopped here, by the options
            # it was restarted with, before postgres_server removes its files.
            if getattr(stack, "pg_data", None):
                with contextlib.suppress(Exception):
                    stack.stop_postgres()


@pytest.fixture
def daphne(stack):
    stack.start_daphne()
    yield stack
    stack.stop_daphne()


def connect(stack: Stack):
    from websockets.sync.client import connect as ws_connect

    return ws_connect(
        f"ws://127.0.0.1:{stack.port}/ws/backtests/",
        origin=f"http://127.0.0.1:{stack.port}",
        open_timeout=20,
    )


def start_and_wait_for_a_result(ws) -> tuple[int, list[dict]]:
    ws.send(json.dumps({"type": "run", "strategies": "all", "no_cache": True}))
    start = json.loads(ws.recv(timeout=30))
    assert start["type"] == "start", start
    first = json.loads(ws.recv(timeout=30))
    assert first["type"] == "result", first
    return start["run_id"], [first]


def until_end(ws, timeout: float = 60) -> list[dict]:
    messages = []
    while True:
        message = json.loads(ws.recv(timeout=timeout))
        messages.append(message)
        if message["type"] in ("complete", "cancelled", "error"):
            return messages


def a_run_completes(stack: Stack) -> None:
    with connect(stack) as ws:
        ws.send(
            json.dumps({"type": "run", "strategy": "sma_crossover", "no_cache": True})
        )
        start = json.loads(ws.recv(timeout=30))
        assert start["type"] == "start", start
        messages = until_end(ws)
    assert messages[-1]["type"] == "complete", messages[-1]
    assert len([m for m in messages if m["type"] == "result"]) == COINS
    status, completed, stored, _ = stack.run_record(start["run_id"])
    assert (status, completed, stored) == ("complete", COINS, COINS)


def no_address_in(text: str, stack: Stack) -> None:
    redis_port = str(stack.redis.port)
    pg_port = stack.database_url.rsplit(":", 1)[1].split("/")[0]
    for secret in ("127.0.0.1", redis_port, pg_port, "Error", "refused"):
        assert secret not in text, (secret, text)


def test_redis_killed_mid_run(daphne):
    stack = daphne
    with connect(stack) as ws:
        run_id, got = start_and_wait_for_a_result(ws)
        stack.redis.stop()
        try:
            got += until_end(ws)
            error = got[-1]
            assert error["type"] == "error", error
            assert error.get("run_id") == run_id
            assert "Redis" in error["message"]
            no_address_in(error["message"], stack)
            # The socket is still open: it answers the next message.
            ws.send(json.dumps({"type": "cancel"}))
            assert json.loads(ws.recv(timeout=10))["type"] == "error"
        finally:
            stack.redis.start()
    status, completed, stored, reason = stack.run_record(run_id)
    assert status == "failed" and completed == stored and "Redis" in reason
    # The client was sent exactly the stored results (the rest from the
    # database, since the layer was gone).
    seqs = sorted(m["seq"] for m in got if m["type"] == "result")
    assert seqs == list(range(1, stored + 1))
    time.sleep(2)  # the layer's receive tries Redis again every second
    a_run_completes(stack)


def test_redis_killed_mid_sweep(daphne):
    stack = daphne
    with connect(stack) as ws:
        ws.send(json.dumps({"type": "sweep", "strategy": "sma_crossover",
                            "grid": {"fast": "5:40:5"}}))  # fmt: skip
        start = json.loads(ws.recv(timeout=30))
        assert start["type"] == "sweep_start", start
        first = json.loads(ws.recv(timeout=30))
        assert first["type"] == "cell", first
        stack.redis.stop()
        try:
            while (end := json.loads(ws.recv(timeout=60)))["type"] == "cell":
                pass
            assert end["type"] == "error", end
            assert end.get("sweep_id") == start["sweep_id"]
            assert "Redis" in end["message"]
            no_address_in(end["message"], stack)
        finally:
            stack.redis.start()
    ((status, error),) = stack.sql(
        "SELECT status, error FROM sweeps_sweep WHERE id=%s", start["sweep_id"]
    )
    assert status == "failed" and "Redis" in error, (status, error)
    no_address_in(error, stack)
    time.sleep(2)  # the layer's receive tries Redis again every second
    a_run_completes(stack)


def test_postgres_stopped_mid_run(daphne):
    stack = daphne
    with connect(stack) as ws:
        run_id, got = start_and_wait_for_a_result(ws)
        stack.stop_postgres()
        try:
            got += until_end(ws)
        finally:
            stack.start_postgres()
        error = got[-1]
        assert error["type"] == "error" and error.get("run_id") == run_id, error
        assert "database" in error["message"]
        no_address_in(error["message"], stack)
    # The next run saves the record its server could not save then.
    a_run_completes(stack)
    status, completed, stored, reason = stack.run_record(run_id)
    assert status == "failed" and completed == stored
    assert reason == "the database is unavailable"


def test_daphne_killed_mid_run(daphne):
    stack = daphne
    ws = connect(stack)
    run_id, _ = start_and_wait_for_a_result(ws)
    time.sleep(0.7)  # a coin or two more stored
    stack.kill_daphne()
    with contextlib.suppress(Exception):
        ws.close()
    assert stack.run_record(run_id)[0] == "running"
    stack.start_daphne()
    # The new server marks the run at start-up: no page is read, no run sent.
    deadline = time.monotonic() + 20
    while stack.run_record(run_id)[0] == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
    status, completed, stored, reason = stack.run_record(run_id)
    assert status == "failed" and reason == "interrupted by a server restart"
    assert completed == stored > 0
    a_run_completes(stack)
