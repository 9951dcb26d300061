"""Pages and endpoints of the web UI."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from django.core.management import call_command

from backtester.models import BacktestRun
from backtester.tests.factories import make_coins
from strategies.registry import STRATEGIES

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def run():
    make_coins(["AAA", "BBB"], bars=400)
    out = io.StringIO()
    call_command("backtest", "--all-strategies", "--format", "json", stdout=out)
    return BacktestRun.objects.get(pk=json.loads(out.getvalue())["run"]["id"])


def json_script(html: str, element_id: str):
    pattern = rf'<script id="{element_id}" type="application/json">(.*?)</script>'
    match = re.search(pattern, html, re.S)
    assert match, element_id
    return json.loads(match.group(1))


def test_home_page_carries_schemas_coins_and_range(client):
    make_coins(["AAA", "BBB"], bars=50)
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    strategies = json_script(html, "strategies-data")
    assert [s["key"] for s in strategies] == list(STRATEGIES)
    coins = json_script(html, "coins-data")
    assert [c["symbol"] for c in coins] == ["AAA", "BBB"]
    assert coins[0]["first_bar"] == "2024-01-01T00:00:00Z"
    assert coins[0]["last_bar"] == "2024-01-03T01:00:00Z"  # 50 hourly bars
    assert json_script(html, "range-data") == {
        "first": "2024-01-01T00:00:00Z",
        "last": "2024-01-03T01:00:00Z",
    }
    assert 'src="/static/backtester/js/run.js"' in html


def test_home_page_without_coins(client):
    response = client.get("/")
    assert response.status_code == 200
    assert "No coins yet" in response.content.decode()


def test_run_list_empty_and_paginated(client):
    assert "No runs yet" in client.get("/runs/").content.decode()
    for _ in range(27):
        BacktestRun.objects.create(
            strategies=[{"strategy": "sma_crossover", "params": {}}]
        )
    first = client.get("/runs/").content.decode()
    assert "Page 1 of 2" in first and first.count('href="/runs/') >= 25
    assert "Page 2 of 2" in client.get("/runs/?page=2").content.decode()


def test_run_detail_and_missing_run(client, run):
    response = client.get(f"/runs/{run.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert f"Run #{run.pk}" in html and "plotly.min.js" in html
    request = json_script(html, "chart-request")
    best = run.results.order_by("-total_return_pct").first()
    assert (request["symbol"], request["strategy"]) == (best.symbol, best.strategy)
    other = client.get(f"/runs/{run.pk}/?symbol=BBB&strategy=rsi_reversion")
    assert json_script(other.content.decode(), "chart-request")["strategy"] == (
        "rsi_reversion"
    )
    assert client.get("/runs/999999/").status_code == 404


def test_chart_endpoint_recomputes_the_stored_result(client, run):
    result = run.results.get(symbol="AAA", strategy="sma_crossover")
    response = client.get(f"/runs/{run.pk}/chart/?symbol=AAA&strategy=sma_crossover")
    assert response.status_code == 200
    data = response.json()
    assert len(data["time"]) == len(data["close"]) == len(data["equity"]) == 400
    assert data["equity"][-1] == pytest.approx(result.metrics["final_equity"], abs=0.01)
    assert len(data["entries"]["time"]) == result.num_trades
    assert max(data["drawdown_pct"]) <= 0
    missing = client.get(f"/runs/{run.pk}/chart/?symbol=ZZZ&strategy=sma_crossover")
    assert missing.status_code == 404


def test_exports(client, run):
    payload = client.get(f"/runs/{run.pk}/export.json").json()
    assert set(payload) == {"run", "results", "summary"}
    assert payload["run"]["id"] == run.pk
    assert len(payload["results"]) == 2 * len(STRATEGIES)
    assert set(payload["results"][0]) >= {"symbol", "strategy", "params", "first_bar",
                                          "last_bar", "bars", "metrics"}  # fmt: skip
    response = client.get(f"/runs/{run.pk}/export.csv")
    assert response["Content-Type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 2 * len(STRATEGIES) and "sharpe" in rows[0]


def test_admin_shows_runs_read_only(admin_client, run):
    assert admin_client.get("/admin/backtester/backtestrun/").status_code == 200
    page = admin_client.get(f"/admin/backtester/backtestrun/{run.pk}/change/")
    assert page.status_code == 200 and "sma_crossover" in page.content.decode()
    assert admin_client.get("/admin/backtester/backtestrun/add/").status_code == 403
    assert admin_client.get("/admin/backtester/backtestresult/").status_code == 200
