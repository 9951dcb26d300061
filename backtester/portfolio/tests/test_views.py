"""Portfolio pages and downloads: history, detail, trades, exports, isolation,
and the curve and replay behind them."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from backtester.portfolio import compute
from backtester.portfolio.curve import benchmark_curve, chart_curve
from backtester.portfolio.models import PortfolioRun
from backtester.runs.tests.factories import make_coins
from prices.models import Cryptocurrency
from strategies.types import Bars

pytestmark = pytest.mark.django_db(transaction=True)
SYMBOLS = ["AAA", "BBB", "CCC"]
URLS = ["/", "/trades.json", "/export.json", "/export.csv"]


@pytest.fixture
def coins():
    make_coins(SYMBOLS, bars=400)


@pytest.fixture
def users():
    User = get_user_model()
    return {
        name: User.objects.create_user(name, password="pw-" + name, is_staff=staff)
        for name, staff in (("alice", False), ("bob", False), ("root", True))
    }


def portfolio(owner=None) -> tuple[PortfolioRun, dict]:
    out = io.StringIO()
    call_command(
        "backtest", "--portfolio", "--strategy", "sma_crossover", "--param",
        "fast=5", "--param", "slow=20", "--max-positions", "2", "--rank",
        "roc_24", "--format", "json", stdout=out,
    )  # fmt: skip
    payload = json.loads(out.getvalue())
    PortfolioRun.objects.filter(pk=payload["run"]["id"]).update(created_by=owner)
    return PortfolioRun.objects.get(pk=payload["run"]["id"]), payload


def test_another_users_run_is_not_found(coins, users, client):
    run, _ = portfolio(users["alice"])
    base = f"/portfolio/{run.pk}"
    client.force_login(users["bob"])
    for url in URLS:
        assert client.get(base + url).status_code == 404, url
    assert f"#{run.pk}" not in client.get("/portfolio/history/").content.decode()
    client.force_login(users["alice"])
    for url in URLS:
        assert client.get(base + url).status_code == 200, url
    assert f"#{run.pk}<" in client.get("/portfolio/history/").content.decode()
    client.force_login(users["root"])  # staff see every run, as for runs
    assert client.get(base + "/").status_code == 200


def test_exports_are_the_cli_output_replayed(coins, client):
    run, payload = portfolio()
    compute.cache_clear()  # the downloads recompute the trades
    exported = json.loads(client.get(f"/portfolio/{run.pk}/export.json").content)
    assert exported["portfolio"] == payload["portfolio"]
    assert exported["run"]["id"] == run.pk
    response = client.get(f"/portfolio/{run.pk}/export.csv")
    assert response["Content-Disposition"].endswith(f'portfolio-{run.pk}.csv"')
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    trades = payload["portfolio"]["trades"]
    assert [r["symbol"] for r in rows] == [t["symbol"] for t in trades]
    assert [float(r["pnl"]) for r in rows] == pytest.approx([t["pnl"] for t in trades])


def test_trades_are_paged_filtered_and_held_intervals_given(coins, client):
    run, payload = portfolio()
    trades = payload["portfolio"]["trades"]
    body = client.get(f"/portfolio/{run.pk}/trades.json?page=1&held=1").json()
    assert body["count"] == len(trades) and body["page"] == 1
    assert body["trades"] == trades[:50]
    held = body["held"]
    assert sum(len(v) for v in held.values()) == len(trades)
    mine = client.get(f"/portfolio/{run.pk}/trades.json?symbol=BBB").json()
    assert mine["count"] == sum(t["symbol"] == "BBB" for t in trades)
    assert {t["symbol"] for t in mine["trades"]} <= {"BBB"}


def test_a_replay_refuses_when_prices_changed(coins, client):
    run, _ = portfolio()
    compute.cache_clear()
    Cryptocurrency.objects.filter(symbol="BBB").update(data_version=99)
    response = client.get(f"/portfolio/{run.pk}/trades.json")
    assert response.status_code == 409
    assert "BBB changed since this run" in response.json()["error"]


def test_detail_page_carries_the_stored_curve(coins, client):
    run, payload = portfolio()
    page = client.get(f"/portfolio/{run.pk}/").content.decode()
    assert 'id="portfolio-detail-data"' in page and "plotly.min.js" in page
    assert run.curve["equity"][-1] == pytest.approx(
        payload["portfolio"]["metrics"]["final_equity"]
    )
    live = client.get("/portfolio/").content.decode()
    assert 'id="portfolio-page-data"' in live


def test_benchmark_curve_by_hand():
    # Two coins from the first time, one listed later (not in the benchmark).
    a = Bars(np.array([0, 3600, 7200]), np.array([10.0, 11, 12]),
             np.array([11.0, 12, 13]), np.array([9.0, 10, 11]),
             np.array([11.0, 12, 13]), np.ones(3))  # fmt: skip
    b = Bars(np.array([0, 7200]), np.array([20.0, 18]), np.array([21.0, 19]),
             np.array([19.0, 17]), np.array([19.0, 18]), np.ones(2))  # fmt: skip
    c = Bars(np.array([3600]), np.array([5.0]), np.array([5.0]), np.array([5.0]),
             np.array([5.0]), np.ones(1))  # fmt: skip
    fee = 0.01
    curve = benchmark_curve(np.array([0, 3600, 7200]), [a, b, c], fee=fee)
    units_a = 5000 / (10 * 1.01)
    units_b = 5000 / (20 * 1.01)
    expected = [
        units_a * 11 * 0.99 + units_b * 19 * 0.99,
        units_a * 12 * 0.99 + units_b * 19 * 0.99,  # b has no bar: its last close
        units_a * 13 * 0.99 + units_b * 18 * 0.99,
    ]
    assert curve.tolist() == pytest.approx(expected)


def test_chart_curve_keeps_the_extremes_within_the_point_limit():
    class Result:
        pass

    rng = np.random.default_rng(7)
    n = 20_000
    result = Result()
    result.time = 3600 * np.arange(n, dtype=np.int64)
    result.equity = 10_000 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    result.positions = rng.integers(0, 5, n)
    bars = Bars(result.time, np.full(n, 1.0), np.full(n, 1.0), np.full(n, 1.0),
                np.full(n, 1.0), np.ones(n))  # fmt: skip
    curve = chart_curve(result, [bars], fee=0.0, max_points=2000)
    assert len(curve["time"]) <= 2000
    assert curve["equity"].max() == result.equity.max()
    assert curve["equity"].min() == result.equity.min()
    assert curve["time"][0] == 0 and curve["time"][-1] == result.time[-1] * 1000
    # The drawdown is the full curve's at the kept bars.
    peak = np.maximum.accumulate(result.equity)
    kept = curve["time"] // 3_600_000
    assert curve["drawdown_pct"] == pytest.approx(
        (result.equity / peak - 1)[kept] * 100
    )
