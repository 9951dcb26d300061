"""Stored portfolio sweeps' pages: history, detail, JSON and CSV, per user."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.contrib.auth import get_user_model

from backtester.portfolio.models import PortfolioSweep
from backtester.portfolio.sweep import portfolio_sweep_spec
from backtester.portfolio.sweep_services import psweep_create, psweep_start
from backtester.runs.services import run_admit, run_coins
from backtester.runs.tests.factories import make_coins, random_walk
from strategies.portfolio import run_portfolio
from strategies.types import Bars

pytestmark = pytest.mark.django_db(transaction=True)
SYMBOLS = ["AAA", "BBB", "CCC"]
URLS = ["/", "/export.json", "/export.csv"]
REQUEST = {
    "strategy": "sma_crossover",
    "grid": {"max_positions": [1, 3], "fast": [5, 8]},
    "params": {"slow": 20},
}


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


def stored_sweep(owner=None) -> PortfolioSweep:
    """Run a portfolio sweep as the socket does and return its record."""
    spec = portfolio_sweep_spec(REQUEST)
    coins = run_coins(spec.base.run)
    slot = run_admit(user=owner, address="10.0.0.9", kind="portfolio_sweep")
    sweep = psweep_create(spec=spec, coins=coins, user=owner)
    handle = psweep_start(sweep=sweep, coins=coins, publish=lambda e: None, slot=slot)
    assert handle.wait(30)
    sweep.refresh_from_db()
    assert sweep.status == "complete"
    return sweep


def test_another_users_sweep_is_not_found(coins, users, client):
    sweep = stored_sweep(users["alice"])
    base = f"/portfolio/sweeps/{sweep.pk}"
    client.force_login(users["bob"])
    for url in URLS:
        assert client.get(base + url).status_code == 404, url
    assert f"#{sweep.pk}<" not in client.get("/portfolio/sweeps/").content.decode()
    client.force_login(users["alice"])
    for url in URLS:
        assert client.get(base + url).status_code == 200, url
    assert f"#{sweep.pk}<" in client.get("/portfolio/sweeps/").content.decode()
    client.force_login(users["root"])  # staff see every sweep, as for runs
    assert client.get(base + "/").status_code == 200


def test_exports_hold_every_cell_computed_as_a_direct_portfolio_run(coins, client):
    sweep = stored_sweep()
    body = client.get(f"/portfolio/sweeps/{sweep.pk}/export.json")
    assert "portfolio-sweep-" in body["Content-Disposition"]
    export = json.loads(body.content)
    assert export["sweep"]["axes"] == {"max_positions": [1, 3], "fast": [5, 8]}
    assert len(export["cells"]) == 4
    bars = {s: Bars(*random_walk(400, seed=i + 1)) for i, s in enumerate(SYMBOLS)}
    returns = []
    for cell in export["cells"]:
        p = cell["params"]
        direct = run_portfolio(
            bars, "sma_crossover", {"fast": p["fast"], "slow": 20},
            max_positions=p["max_positions"],
        )  # fmt: skip
        assert cell["final_equity"] == pytest.approx(
            direct.metrics["final_equity"], rel=1e-12
        )
        returns.append((direct.metrics["total_return_pct"], p))
    # Best by the default objective (total return), found by hand.
    assert export["best"]["params"] == max(returns, key=lambda r: r[0])[1]
    rows = list(
        csv.reader(
            io.StringIO(
                client.get(f"/portfolio/sweeps/{sweep.pk}/export.csv").content.decode()
            )
        )
    )
    assert rows[0][:3] == ["max_positions", "fast", "params"]
    assert len(rows) == 5
    assert {(r[0], r[1]) for r in rows[1:]} == {
        ("1", "5"), ("1", "8"), ("3", "5"), ("3", "8")
    }  # fmt: skip


def test_detail_page_draws_the_heatmap_from_json_script_and_a_table(coins, client):
    sweep = stored_sweep()
    page = client.get(f"/portfolio/sweeps/{sweep.pk}/").content.decode()
    assert 'id="psweep-canvas"' in page and 'id="psweep-detail-data"' in page
    table = page.split('id="psweep-cells"')[1].split("</table>")[0]
    assert table.count("<tr>") == 1 + 4  # the heading and one row per cell
    history = client.get("/portfolio/sweeps/").content.decode()
    assert "max_positions (2) × fast (2)" in history
