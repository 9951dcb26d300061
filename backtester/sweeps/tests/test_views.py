"""Sweep pages and endpoints: history, detail, a cell's coins, a one-coin run
from a cell, exports, and who may see what."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from backtester.runs.models import BacktestRun
from backtester.runs.tests.factories import make_coins
from backtester.runs.tests.test_views import json_script
from backtester.sweeps.models import Sweep

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def cli_sweep() -> Sweep:
    """A finished sweep nobody owns (made by the command line)."""
    make_coins(["AAA", "BBB"], bars=500)
    call_command(
        "sweep", "--strategy", "sma_crossover", "--grid", "fast=5,10,30",
        "--grid", "slow=20,30", "--format", "json", stdout=io.StringIO(),
    )  # fmt: skip
    return Sweep.objects.get()


@pytest.fixture
def users():
    model = get_user_model()
    return model.objects.create_user("ann", password="pw-ann-123456"), (
        model.objects.create_user("bob", password="pw-bob-123456")
    )


def test_the_sweep_page_publishes_strategies_coins_and_metrics(client, cli_sweep):
    html = client.get("/sweeps/").content.decode()
    data = json_script(html, "sweep-page-data")
    assert [s["key"] for s in data["strategies"]][0] == "sma_crossover"
    assert [c["symbol"] for c in data["coins"]] == ["AAA", "BBB"]
    keys = [m["key"] for m in data["metrics"]]
    assert keys[:4] == [
        "median_return_pct", "mean_sharpe", "beat_buy_hold", "median_max_drawdown_pct"
    ]  # fmt: skip
    drawdown = data["metrics"][3]
    assert drawdown["higher_is_better"] is False
    assert "<script>" not in html.replace('type="application/json"', "")


def test_history_and_detail(client, cli_sweep):
    html = client.get("/sweeps/history/").content.decode()
    assert f"/sweeps/{cli_sweep.pk}/" in html and "CLI" in html
    html = client.get(f"/sweeps/{cli_sweep.pk}/").content.decode()
    data = json_script(html, "sweep-detail-data")
    # fast < slow keeps (5, 20), (5, 30), (10, 20), (10, 30); (30, 20) and
    # (30, 30) are skipped.
    assert data["axes"] == {"fast": [5, 10, 30], "slow": [20, 30]}
    assert len(data["cells"]) == 4 and cli_sweep.skipped == 2
    best = max(data["cells"], key=lambda c: c["metrics"]["median_return_pct"])
    assert data["best_index"] == best["index"]


def test_a_cell_lists_its_coins_and_runs_one_as_a_normal_run(client, cli_sweep):
    data = client.get(f"/sweeps/{cli_sweep.pk}/cells/1/").json()
    assert data["params"] == {"fast": 5, "slow": 30}
    assert sorted(c["symbol"] for c in data["coins"]) == ["AAA", "BBB"]
    returns = sorted(c["metrics"]["total_return_pct"] for c in data["coins"])
    assert data["metrics"]["median_return_pct"] == pytest.approx(sum(returns) / 2)
    assert client.get(f"/sweeps/{cli_sweep.pk}/cells/99/").status_code == 404
    # The one-coin run gets exactly the metrics the sweep stored for that coin.
    coin = data["coins"][0]
    response = client.post(data["run_url"], {"symbol": coin["symbol"]})
    assert response.status_code == 302
    run = BacktestRun.objects.get()
    assert response["Location"].startswith(f"/runs/{run.pk}/?symbol=")
    assert run.status == "complete" and run.symbols == [coin["symbol"]]
    [job] = run.strategies
    assert job["strategy"] == "sma_crossover"
    assert job["params"] == {"fast": 5, "slow": 30}
    stored = run.results.get().metrics
    for key, value in coin["metrics"].items():
        if value is None:
            assert stored[key] is None, key
        else:
            assert stored[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key
    assert client.post(data["run_url"], {"symbol": "ZZZ"}).status_code == 400
    assert client.get(data["run_url"]).status_code == 405


def test_exports(client, cli_sweep):
    payload = client.get(f"/sweeps/{cli_sweep.pk}/export.json").json()
    assert set(payload) == {"sweep", "cells", "best"}
    assert [c["params"] for c in payload["cells"]] == [
        {"fast": 5, "slow": 20}, {"fast": 5, "slow": 30},
        {"fast": 10, "slow": 20}, {"fast": 10, "slow": 30},
    ]  # fmt: skip
    assert all(c["coins"] == 2 for c in payload["cells"])
    response = client.get(f"/sweeps/{cli_sweep.pk}/export.csv")
    assert response["Content-Disposition"].endswith(f'sweep-{cli_sweep.pk}.csv"')
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(r["fast"], r["slow"]) for r in rows] == [
        ("5", "20"), ("5", "30"), ("10", "20"), ("10", "30"),
    ]  # fmt: skip
    assert (
        float(rows[0]["median_return_pct"]) == payload["cells"][0]["median_return_pct"]
    )


def test_the_csv_export_escapes_formula_text(client, cli_sweep):
    # A stored grid whose axis name a spreadsheet would run (only possible by
    # writing the row directly: requests are validated).
    Sweep.objects.filter(pk=cli_sweep.pk).update(
        axes={"=cmd|' /C calc'!A0": [1], "fast": [5, 10]},
        axis_names=["=cmd|' /C calc'!A0", "fast"],
    )
    text = client.get(f"/sweeps/{cli_sweep.pk}/export.csv").content.decode()
    header = next(csv.reader(io.StringIO(text)))
    assert header[0] == "'=cmd|' /C calc'!A0"
    assert json.loads(next(csv.DictReader(io.StringIO(text)))["params"])


def test_another_users_sweep_is_not_found(client, users):
    ann, bob = users
    make_coins(["AAA"], bars=300)
    from backtester.runs.services import run_coins
    from backtester.sweeps.services import sweep_create
    from backtester.sweeps.validation import sweep_spec

    spec = sweep_spec({"strategy": "sma_crossover", "grid": {"fast": [5, 10]}})
    sweep = sweep_create(spec=spec, coins=run_coins(spec), user=ann)
    urls = [
        f"/sweeps/{sweep.pk}/", f"/sweeps/{sweep.pk}/cells/0/",
        f"/sweeps/{sweep.pk}/export.json", f"/sweeps/{sweep.pk}/export.csv",
    ]  # fmt: skip
    client.force_login(bob)
    for url in urls:
        assert client.get(url).status_code == 404, url
    assert (
        client.post(f"/sweeps/{sweep.pk}/cells/0/run/", {"symbol": "AAA"}).status_code
        == 404
    )
    assert f"/sweeps/{sweep.pk}/" not in client.get("/sweeps/history/").content.decode()
    client.logout()  # anonymous visitors see only ownerless sweeps
    assert client.get(urls[0]).status_code == 404
    client.force_login(ann)
    for url in urls:
        assert client.get(url).status_code == 200, url
    assert f"/sweeps/{sweep.pk}/" in client.get("/sweeps/history/").content.decode()


def test_a_run_from_a_cell_meets_the_run_limits(client, cli_sweep, settings):
    settings.BACKTEST_RUNS_PER_MINUTE = 1
    url = f"/sweeps/{cli_sweep.pk}/cells/0/run/"
    assert client.post(url, {"symbol": "AAA"}).status_code == 302
    refused = client.post(url, {"symbol": "BBB"})
    assert refused.status_code == 503
    assert "too many runs" in refused.content.decode()
    assert BacktestRun.objects.count() == 1


def test_the_admin_lists_sweeps_read_only(admin_client, cli_sweep):
    page = admin_client.get("/admin/sweeps/sweep/")
    assert page.status_code == 200 and "sma_crossover" in page.content.decode()
    assert (
        admin_client.get(f"/admin/sweeps/sweep/{cli_sweep.pk}/change/").status_code
        == 200
    )
    assert admin_client.get("/admin/sweeps/sweep/add/").status_code == 403
