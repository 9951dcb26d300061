"""Hostile query strings on a run's page, its data endpoints and the comparison:
a 400 naming the problem (or the page as if the value were absent), never a
500. Run on SQLite and, with the services, on PostgreSQL (which refuses a NUL
character in a string, where SQLite does not)."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from backtester.runs.models import BacktestRun
from backtester.runs.tests.factories import make_coins
from backtester.tests.hostile_families import DEEP

pytestmark = pytest.mark.django_db(transaction=True)
DATA = ("equity.json", "price.json", "trades.json", "trades.csv")


def backtest(*args: str) -> BacktestRun:
    out = io.StringIO()
    call_command("backtest", *args, "--format", "json", stdout=out)
    return BacktestRun.objects.get(pk=json.loads(out.getvalue())["run"]["id"])


@pytest.fixture
def runs() -> list[BacktestRun]:
    make_coins(["AAA"], bars=300)
    return [
        backtest("--strategy", "sma_crossover", "--symbols", "AAA") for _ in range(2)
    ]


def test_deeply_nested_params_are_no_server_error(client, runs):
    run = runs[0]
    query = {"symbol": "AAA", "strategy": "sma_crossover", "params": DEEP}
    page = client.get(f"/runs/{run.pk}/", query)
    assert page.status_code == 200  # bad params select nothing: the best shows
    for name in DATA:
        response = client.get(f"/runs/{run.pk}/{name}", query)
        assert response.status_code == 400, name
        body = response.json()
        assert body["field"] == "params" and "params" in body["error"], name


@pytest.mark.parametrize("field", ["symbol", "strategy"])
def test_a_nul_character_is_a_bad_request(client, runs, field):
    run = runs[0]
    query = {"symbol": "AAA", "strategy": "sma_crossover", field: "A\x00B"}
    for name in DATA:
        response = client.get(f"/runs/{run.pk}/{name}", query)
        assert response.status_code == 400, name
        assert response.json()["field"] == field
        assert "NUL" in response.json()["error"]


def test_a_nul_character_in_the_compared_coin_is_a_bad_request(client, runs):
    ids = [("run", r.pk) for r in runs]
    response = client.get("/runs/compare/", [*ids, ("symbol", "A\x00")])
    assert response.status_code == 400
    assert b"NUL" in response.content
