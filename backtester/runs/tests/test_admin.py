"""The read-only admin of runs and results."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from backtester.runs.models import BacktestResult, BacktestRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def run() -> BacktestRun:
    run = BacktestRun.objects.create(
        strategies=[{"strategy": "sma_crossover", "params": {"fast": 20, "slow": 50}}],
        symbols=["AAA", "BBB"],
        status=BacktestRun.Status.COMPLETE,
        total=2,
        completed=2,
        summary={"results": 2, "skipped": 0, "beat_buy_hold": 1},
    )
    for symbol, ret in [("AAA", 12.5), ("BBB", -4.0)]:
        BacktestResult.objects.create(
            run=run, symbol=symbol, strategy="sma_crossover", total_return_pct=ret,
            buy_hold_return_pct=1.0, metrics={"total_return_pct": ret},
            equity={"time": [0] * 200, "strategy": [1.0] * 200,
                    "buy_hold": [1.0] * 200},
        )  # fmt: skip
    return run


def test_run_list_and_view_page_show_results_inline(admin_client, run):
    listing = admin_client.get("/admin/backtester/backtestrun/")
    assert listing.status_code == 200
    assert "1 / 2" in listing.content.decode()  # beat buy & hold
    page = admin_client.get(f"/admin/backtester/backtestrun/{run.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "sma_crossover" in html and "AAA" in html and "BBB" in html
    assert 'name="_save"' not in html  # a view page, no save button


def test_runs_and_results_cannot_be_added_or_changed(admin_client, run):
    result = run.results.first()
    assert admin_client.get("/admin/backtester/backtestrun/add/").status_code == 403
    assert admin_client.get("/admin/backtester/backtestresult/add/").status_code == 403
    response = admin_client.post(
        f"/admin/backtester/backtestrun/{run.pk}/change/", {"status": "failed"}
    )
    assert response.status_code == 403
    run.refresh_from_db()
    assert run.status == BacktestRun.Status.COMPLETE
    response = admin_client.post(
        f"/admin/backtester/backtestresult/{result.pk}/change/", {"symbol": "X"}
    )
    assert response.status_code == 403


def test_result_list_search_and_view(admin_client, run):
    with CaptureQueriesContext(connection) as queries:
        listing = admin_client.get("/admin/backtester/backtestresult/")
    assert listing.status_code == 200
    # The list leaves the bulky trades and equity columns in the database.
    selects = [q["sql"] for q in queries if "backtester_backtestresult" in q["sql"]]
    assert selects and not any('"equity"' in sql for sql in selects)
    found = admin_client.get("/admin/backtester/backtestresult/?q=BBB")
    assert "BBB" in found.content.decode()
    assert "12.5" not in found.content.decode()
    result = run.results.get(symbol="AAA")
    view = admin_client.get(f"/admin/backtester/backtestresult/{result.pk}/change/")
    assert view.status_code == 200 and "12.5" in view.content.decode()


def test_admin_needs_staff(client, run):
    response = client.get("/admin/backtester/backtestrun/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
