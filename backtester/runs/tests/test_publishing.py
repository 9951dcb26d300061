"""Where a run's results are published from: the run's own publishing thread,
never the compute threads, so a slow channel layer never stalls the computing."""

from __future__ import annotations

import gc
import threading
import time
import weakref

import pytest

from backtester.execution.pool import Runner
from backtester.runs import compute as compute_module
from backtester.runs.services import run_coins
from backtester.runs.tests.factories import make_coins
from backtester.runs.validation import run_spec

pytestmark = pytest.mark.django_db(transaction=True)

SYMBOLS = ["AAA", "BBB", "CCC", "DDD", "EEE", "FFF"]


def test_coins_compute_while_a_publish_waits(monkeypatch):
    make_coins(SYMBOLS, bars=200)
    spec = run_spec({"type": "run", "strategy": "sma_crossover", "symbols": SYMBOLS})
    coins = run_coins(spec)
    computed: list[str] = []
    all_computed = threading.Event()
    compute = compute_module.compute_coin

    def counting(symbol, series, s):
        rows = compute(symbol, series, s)
        computed.append(symbol)
        if len(computed) == len(SYMBOLS):
            all_computed.set()
        return rows

    monkeypatch.setattr(compute_module, "compute_coin", counting)
    published: list[tuple[str, dict]] = []
    first_waited: list[bool] = []

    def slow_publish(event: dict) -> None:
        # The first publish holds until every coin is computed (a stalled
        # server loop): compute threads waiting here would never get there.
        if not first_waited:
            first_waited.append(all_computed.wait(timeout=10))
        published.append((threading.current_thread().name, event))

    runner = Runner(workers=2, max_runs=2, loaders=1)
    handle = runner.submit(run_id=1, spec=spec, coins=coins, publish=slow_publish)
    assert handle.wait(timeout=30)
    assert first_waited == [True]
    assert handle.status == "complete"
    results = [e for _, e in published if e["type"] == "run.results"]
    seqs = [item["seq"] for event in results for item in event["results"]]
    assert sorted(seqs) == list(range(1, len(SYMBOLS) + 1))
    # Results from the run's publishing thread, the end from its control thread.
    assert {name.rsplit("_", 1)[0] for name, e in published if e in results} == {
        "backtest-publish"
    }
    assert published[-1][1]["type"] == "run.complete"


def test_a_finished_run_is_freed_without_the_garbage_collector():
    """Nothing of a finished run (its bars, its rows) waits for a garbage
    collection: no reference ring keeps its handle alive."""
    make_coins(SYMBOLS[:3], bars=200)
    spec = run_spec(
        {"type": "run", "strategy": "sma_crossover", "symbols": SYMBOLS[:3]}
    )
    coins = run_coins(spec)
    runner = Runner(workers=2, max_runs=2, loaders=1)
    gc.disable()
    try:
        handle = runner.submit(run_id=1, spec=spec, coins=coins, publish=lambda e: None)
        assert handle.wait(timeout=30) and handle.status == "complete"
        freed = weakref.ref(handle)
        del handle
        deadline = time.monotonic() + 5
        while freed() is not None and time.monotonic() < deadline:
            time.sleep(0.01)  # the control thread returns from the run
        assert freed() is None
    finally:
        gc.enable()
