"""Clients coming and going on the real Redis channel layer lose no result.

Ten clients run to the end while ten others connect, start a run and leave, in
ten trials in a row: every finished client must end with exactly its run's
stored results, each seq 1..n once. The figures are printed (``-s``) for the
record: how many results the consumers had to send from the database because
the layer did not deliver them (0 with the repaired layer, see layers.py).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import random
import uuid

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings

from backtester.execution import pool as pool_module
from backtester.execution.pool import Runner
from backtester.runs.models import BacktestResult, BacktestRun, params_key
from backtester.runs.tests.factories import make_coins
from backtester.runs.tests.test_consumer import (  # noqa: F401 - fixture
    _drain_runs,
    connect,
    drain_runs,
    receive,
)

pytestmark = [
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio,
]

COINS = [f"K{i:02d}" for i in range(6)]
STRATEGIES = ["sma_crossover", "ema_crossover", "rsi_reversion", "donchian_breakout"]
FINISHERS = CHURNERS = 10
TRIALS = 10
RUN = {"type": "run", "strategies": STRATEGIES}


async def finisher() -> tuple[int, list[dict], dict]:
    """Run to the end; return the run id, the results and the last event."""
    communicator = await connect()
    try:
        await communicator.send_json_to(RUN)
        start = await receive(communicator, timeout=30)
        assert start["type"] == "start", start
        results = []
        while True:
            message = await receive(communicator, timeout=60)
            if message["type"] != "result":
                return start["run_id"], results, message
            results.append(message)
    finally:
        await communicator.disconnect()


async def churner(rng: random.Random) -> None:
    """Connect, start a run and leave at some point of it."""
    communicator = await connect()
    try:
        await communicator.send_json_to(RUN)
        for _ in range(rng.randrange(3)):  # leave at start, or a few results in
            message = await receive(communicator, timeout=30)
            assert message["type"] in ("start", "result", "complete"), message
            if message["type"] == "complete":
                break
        await asyncio.sleep(rng.uniform(0, 0.02))
    finally:
        await communicator.disconnect()


def stored_results(run_id: int) -> tuple[BacktestRun, dict[int, tuple]]:
    run = BacktestRun.objects.get(pk=run_id)
    rows = BacktestResult.objects.filter(run_id=run_id)
    return run, {r.seq: (r.symbol, r.strategy, r.params_key) for r in rows}


async def test_finishing_clients_end_with_exactly_the_stored_results(
    settings, monkeypatch, caplog
):
    await sync_to_async(make_coins)(COINS, bars=300)
    config = copy.deepcopy(settings.CHANNEL_LAYERS["default"])
    config["CONFIG"]["prefix"] = f"btlab-churn-{uuid.uuid4().hex[:8]}"
    # Room for every run at once: a refusal is not what this test is about
    # (all the clients here are one anonymous address).
    settings.BACKTEST_MAX_RUNS_PER_USER = 4 * (FINISHERS + CHURNERS)
    settings.BACKTEST_RUNS_PER_MINUTE = 0
    runner = Runner(workers=2, max_runs=4 * (FINISHERS + CHURNERS))
    monkeypatch.setattr(pool_module, "_runner", runner)
    caplog.set_level(logging.WARNING, logger="backtester.runs.consumers")
    rng = random.Random(12)
    delivered = resent = 0
    with override_settings(CHANNEL_LAYERS={"default": config}):
        for trial in range(TRIALS):
            tasks = [finisher() for _ in range(FINISHERS)]
            tasks += [churner(rng) for _ in range(CHURNERS)]
            rng.shuffle(tasks)
            outcomes = await asyncio.gather(*tasks)
            await sync_to_async(drain_runs)(30, runner)
            finished = [o for o in outcomes if o is not None]
            assert len(finished) == FINISHERS
            for run_id, results, last in finished:
                assert last["type"] == "complete", (trial, last)
                run, stored = await sync_to_async(stored_results)(run_id)
                assert run.status == "complete"
                assert run.total == len(COINS) * len(STRATEGIES)
                assert run.completed == len(stored) == run.total
                seqs = [r["seq"] for r in results]
                assert sorted(seqs) == sorted(stored) == list(range(1, run.total + 1))
                got = {
                    r["seq"]: (
                        r["data"]["symbol"],
                        r["data"]["strategy"],
                        params_key(r["data"]["params"]),
                    )
                    for r in results
                }
                assert got == stored, trial
                delivered += len(results)
    for record in caplog.records:
        if "did not arrive through the channel layer" in record.getMessage():
            resent += record.args[1]
    print(
        f"\nchurn: {TRIALS} trials x ({FINISHERS} finishing + {CHURNERS} leaving "
        f"clients), {delivered} results delivered to finishing clients, "
        f"{resent} of them sent from the database after the layer lost them"
    )
    assert delivered == TRIALS * FINISHERS * len(COINS) * len(STRATEGIES)
