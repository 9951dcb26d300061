"""An identical rerun is answered from the stored results, streamed like a
computed one, and says so; a new data version or ``no_cache`` computes afresh."""

from __future__ import annotations

import io
import json

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command

from backtester.runs import compute as compute_module
from backtester.runs.models import BacktestResult, BacktestRun
from backtester.runs.tests.factories import make_coins
from backtester.runs.tests.test_consumer import (
    _drain_runs,  # noqa: F401 (autouse fixture)
    collect_until_end,
    connect,
)
from prices.models import Cryptocurrency

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

SYMBOLS = ["AAA", "BBB", "CCC"]
REQUEST = {
    "type": "run",
    "strategies": [
        {"strategy": "sma_crossover", "params": {"fast": 5, "slow": 20}},
        {"strategy": "rsi_reversion", "params": {}},
    ],
    "symbols": SYMBOLS,
    "stop_loss_pct": 3,
}


@pytest.fixture
def coins(settings):
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}
    }
    make_coins(SYMBOLS, bars=400)


@pytest.fixture
def computed(monkeypatch) -> list[str]:
    """Count the coins the engine computes (a cached answer computes none)."""
    calls: list[str] = []
    compute = compute_module.compute_coin

    def counting(symbol, series, spec):
        calls.append(symbol)
        return compute(symbol, series, spec)

    monkeypatch.setattr(compute_module, "compute_coin", counting)
    return calls


async def run_once(request: dict) -> list[dict]:
    communicator = await connect()
    try:
        await communicator.send_json_to(request)
        return await collect_until_end(communicator)
    finally:
        await communicator.disconnect()


def by_key(messages: list[dict]) -> dict[tuple, dict]:
    return {
        (m["data"]["symbol"], m["data"]["strategy"]): m["data"]
        for m in messages
        if m["type"] == "result"
    }


async def test_identical_rerun_is_answered_from_the_stored_results(coins, computed):
    first = await run_once(REQUEST)
    assert first[-1]["type"] == "complete"
    assert "cached_from" not in first[-1]
    first_id = first[0]["run_id"]
    assert sorted(computed) == SYMBOLS
    computed.clear()

    again = await run_once(REQUEST)
    start, results, end = again[0], again[1:-1], again[-1]
    assert computed == []  # nothing was computed
    assert start["type"] == "start" and start["cached_from"] == first_id
    assert start["run_id"] != first_id
    assert end["type"] == "complete" and end["cached_from"] == first_id
    assert end["summary"]["results"] == len(SYMBOLS) * 2
    # Streamed as a computed run: every result numbered 1..total, once each.
    assert [m["seq"] for m in results] == list(range(1, len(results) + 1))
    assert [m["completed"] for m in results] == list(range(1, len(results) + 1))
    assert by_key(again) == by_key(first)

    # A run of the requester's own, with its own copies of the results.
    run = await BacktestRun.objects.aget(pk=start["run_id"])
    assert run.status == "complete" and run.cached_from_id == first_id
    assert run.completed == len(results)
    count = await BacktestResult.objects.filter(run=run).acount()
    assert count == len(SYMBOLS) * 2


async def test_other_settings_new_data_or_no_cache_compute_afresh(coins, computed):
    first = await run_once(REQUEST)
    computed.clear()

    # Any setting that changes results changes the answer: here the stop.
    other = await run_once({**REQUEST, "stop_loss_pct": 4})
    assert "cached_from" not in other[0] and sorted(computed) == SYMBOLS
    computed.clear()

    fresh = await run_once({**REQUEST, "no_cache": True})
    assert "cached_from" not in fresh[0] and sorted(computed) == SYMBOLS
    assert by_key(fresh) == by_key(first)
    computed.clear()

    # New bars for one coin: its data version moves, and so does the answer.
    await Cryptocurrency.objects.filter(symbol="BBB").aupdate(data_version=99)
    changed = await run_once(REQUEST)
    assert "cached_from" not in changed[0] and sorted(computed) == SYMBOLS

    bad = await run_once({**REQUEST, "no_cache": "yes"})
    assert bad == [
        {"type": "error", "message": "no_cache: expected true or false",
         "field": "no_cache"}
    ]  # fmt: skip


async def test_the_command_answers_an_identical_rerun_from_stored_results(
    coins, computed
):
    def backtest(*flags: str) -> str:
        out = io.StringIO()
        call_command(
            "backtest", "--strategy", "sma_crossover", "--param", "fast=5",
            "--param", "slow=20", "--symbols", ",".join(SYMBOLS),
            "--format", "json", *flags, stdout=out, stderr=io.StringIO(),
        )  # fmt: skip
        return out.getvalue()

    first = json.loads(await sync_to_async(backtest)())
    assert first["run"]["cached_from"] is None
    computed.clear()
    again = json.loads(await sync_to_async(backtest)())
    assert computed == []
    assert again["run"]["cached_from"] == first["run"]["id"]
    assert again["run"]["id"] != first["run"]["id"]
    key = lambda r: (r["symbol"], r["strategy"])  # noqa: E731
    assert sorted(again["results"], key=key) == sorted(first["results"], key=key)
    table = await sync_to_async(backtest)("--format", "table")
    assert f"(answered from run {first['run']['id']})" in table
    await sync_to_async(backtest)("--no-cache")
    assert sorted(computed) == SYMBOLS
