"""A result is one (run, coin, strategy, params): a strategy may run twice."""

from __future__ import annotations

import csv
import io
import json
from urllib.parse import urlencode

import pytest
from asgiref.sync import sync_to_async
from django.db import IntegrityError, transaction

from backtester.runs.models import BacktestResult, BacktestRun, params_key
from backtester.runs.tests.factories import make_coins
from backtester.runs.tests.test_consumer import (  # noqa: F401 - fixtures
    _drain_runs,
    collect_until_end,
    connect,
    layer,  # noqa: F811 - a fixture
    receive,
    wait_done,
)
from strategies.engine import run_many
from strategies.types import Bars

REPRODUCTION = {
    "type": "run",
    "strategies": [
        {"strategy": "sma_crossover", "params": {"fast": 10, "slow": 30}},
        {"strategy": "sma_crossover", "params": {"fast": 5, "slow": 20}},
    ],
    "symbols": ["BTC", "ETH"],
}


def test_params_key_is_canonical():
    assert params_key({"fast": 10, "slow": 30}) == params_key({"slow": 30, "fast": 10})
    assert params_key({"fast": 10, "slow": 30}) != params_key({"fast": 5, "slow": 20})
    assert params_key({}) == params_key({})


@pytest.mark.django_db
def test_the_same_coin_strategy_and_params_are_stored_once():
    run = BacktestRun.objects.create(strategies=[])
    BacktestResult.objects.create(run=run, symbol="A", strategy="s", params={"n": 1})
    BacktestResult.objects.create(run=run, symbol="A", strategy="s", params={"n": 2})
    with pytest.raises(IntegrityError), transaction.atomic():
        BacktestResult.objects.create(
            run=run, symbol="A", strategy="s", params={"n": 1}
        )
    keys = set(BacktestResult.objects.values_list("params_key", flat=True))
    assert keys == {params_key({"n": 1}), params_key({"n": 2})}


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_run_with_the_same_strategy_twice_stores_both(layer, client):  # noqa: F811
    """The reproduction: two SMA parameter sets on BTC and ETH used to fail on
    the (run, symbol, strategy) constraint and send the IntegrityError."""
    await sync_to_async(make_coins)(["BTC", "ETH"], bars=300)
    communicator = await connect()
    await communicator.send_json_to(REPRODUCTION)
    start = await receive(communicator)
    assert start["type"] == "start" and start["total"] == 4
    messages = await collect_until_end(communicator)
    await communicator.disconnect()
    assert messages[-1]["type"] == "complete", messages[-1]
    results = [m for m in messages if m["type"] == "result"]
    got = {
        (r["data"]["symbol"], r["data"]["params"]["fast"]): r["data"] for r in results
    }
    assert set(got) == {("BTC", 10), ("BTC", 5), ("ETH", 10), ("ETH", 5)}
    assert sorted(r["seq"] for r in results) == [1, 2, 3, 4]
    await wait_done(start["run_id"])
    run = await BacktestRun.objects.aget(pk=start["run_id"])
    assert run.status == "complete" and run.completed == 4
    stored = [r async for r in BacktestResult.objects.filter(run=run)]
    assert len(stored) == 4
    assert {r.params_key for r in stored} == {
        params_key({"fast": 10, "slow": 30}),
        params_key({"fast": 5, "slow": 20}),
    }

    # Each parameter set's numbers are its own: check one against the engine.
    from prices.selectors import bars_load

    series = (await sync_to_async(bars_load)(["BTC"]))["BTC"]
    (fast5,) = run_many(Bars(*series), [("sma_crossover", {"fast": 5, "slow": 20})])
    assert got[("BTC", 5)]["metrics"]["total_return_pct"] == pytest.approx(
        fast5.metrics["total_return_pct"]
    )
    assert got[("BTC", 5)]["metrics"] != got[("BTC", 10)]["metrics"]

    # The pages and exports tell the two apart.
    await sync_to_async(_check_pages)(client, run, stored)


def _check_pages(client, run: BacktestRun, stored: list[BacktestResult]) -> None:
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_superuser("boss", "b@example.com", "pw")
    client.force_login(user)
    html = client.get(f"/runs/{run.pk}/").content.decode()
    assert "SMA crossover (fast=10, slow=30)" in html
    assert "SMA crossover (fast=5, slow=20)" in html
    for result in stored:
        query = urlencode(
            {
                "symbol": result.symbol,
                "strategy": result.strategy,
                "params": json.dumps(result.params),
            }
        )
        page = client.get(f"/runs/{run.pk}/?{query}").content.decode()
        fast = result.params["fast"]
        assert f"fast={fast}" in page.split('id="chart-title"')[1].split("</h2>")[0]
        curve = client.get(f"/runs/{run.pk}/equity.json?{query}").json()
        assert curve["params"] == result.params
        assert curve["strategy_equity"][-1] == pytest.approx(
            result.metrics["final_equity"]
        )
    exported = json.loads(client.get(f"/runs/{run.pk}/export.json").content)
    pairs = {(r["symbol"], r["params"]["fast"]) for r in exported["results"]}
    assert pairs == {("BTC", 10), ("BTC", 5), ("ETH", 10), ("ETH", 5)}
    rows = list(
        csv.DictReader(
            io.StringIO(client.get(f"/runs/{run.pk}/export.csv").content.decode())
        )
    )
    assert len(rows) == 4
    assert len({(r["symbol"], r["params"]) for r in rows}) == 4
