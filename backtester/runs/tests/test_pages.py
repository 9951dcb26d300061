"""What the pages say and how they colour it (presenters and views, no browser)."""

from __future__ import annotations

import pytest

from backtester.runs.models import BacktestResult, BacktestRun
from backtester.runs.output import render_table
from backtester.runs.presenters import summary_pick, summary_rows
from backtester.sweeps.output import render_table as sweep_table


def pick(value: float) -> dict:
    return {"symbol": "AAVE", "strategy": "sma_crossover", "params": {},
            "total_return_pct": value}  # fmt: skip


def test_best_and_worst_take_the_colour_of_their_sign():
    # The best of a losing run is a loss; the worst of a winning run a gain.
    assert summary_pick(pick(-82.9))["tone"] == "loss"
    assert summary_pick(pick(1867.3))["tone"] == "gain"
    assert summary_pick(pick(0.0))["tone"] == ""
    rows = summary_rows({"by_strategy": {"sma_crossover": {"best": pick(-5.0)}}})
    assert rows[0]["best_tone"] == "loss"


def test_max_drawdown_is_a_negative_percentage_in_the_cli_tables():
    metrics = {"total_return_pct": 10.0, "buy_hold_return_pct": 5.0, "sharpe": 1.0,
               "max_drawdown_pct": 75.76, "num_trades": 3,
               "win_rate_pct": 50.0}  # fmt: skip
    result = {"symbol": "BTC", "strategy": "sma_crossover", "metrics": metrics}
    row = render_table([result], {"results": 1}).splitlines()[2].split()
    assert "-75.76" in row and "75.76" not in row
    cell = {"index": 0, "params": {"fast": 10}, "coins": 2, "median_return_pct": 1.0,
            "mean_return_pct": 1.0, "mean_sharpe": 0.5, "beat_buy_hold": 1,
            "median_max_drawdown_pct": 12.5, "trades": 4}  # fmt: skip
    sweep = {"id": 1, "strategy": "sma_crossover", "status": "done", "completed": 1,
             "combinations": 1, "skipped": 0, "symbols": ["BTC", "ETH"],
             "axes": ["fast"], "objective": "median_return_pct"}  # fmt: skip
    export = {"sweep": sweep, "cells": [cell], "best": cell}
    row = sweep_table(export).splitlines()[2].split()
    assert "-12.50" in row and "12.50" not in row


@pytest.mark.django_db
def test_admin_run_page_reads_as_settings_not_raw_json(admin_client):
    run = BacktestRun.objects.create(
        strategies=[{"strategy": "sma_crossover", "params": {"fast": 20, "slow": 50}}],
        symbols=["AAA", "BBB"], status=BacktestRun.Status.COMPLETE, total=1,
        completed=1, risk={"stop_loss_pct": 5.0},
        summary={"results": 1, "skipped": 0, "beat_buy_hold": 1,
                 "median_return_pct": 12.3456789, "mean_sharpe": 0.123456789},
    )  # fmt: skip
    BacktestResult.objects.create(
        run=run, symbol="AAA", strategy="sma_crossover", params={"fast": 20},
        total_return_pct=12.3456789, buy_hold_return_pct=-1.98765,
        sharpe=0.87654321, max_drawdown_pct=7.654321, win_rate_pct=55.5555,
        metrics={"total_return_pct": 12.3456789},
    )  # fmt: skip
    html = admin_client.get(f"/admin/backtester/backtestrun/{run.pk}/change/")
    html = html.content.decode()
    # No raw JSON of the settings and no float at full precision.
    for raw in ("&quot;strategy&quot;", "&quot;AAA&quot;", "&quot;stop_loss_pct"):
        assert raw not in html
    assert "12.3456789" not in html and "0.87654321" not in html
    assert "fast=20, slow=50" in html
    assert "AAA, BBB" in html
    assert "stop 5%" in html
    assert "+12.35" in html and "\u22121.99" in html and "\u22127.65" in html
    # The results table scrolls inside its box instead of widening the page.
    assert "backtester/css/admin.css" in html


@pytest.mark.django_db
def test_favicon_is_served_and_linked(client):
    from xml.etree import ElementTree

    from django.contrib.staticfiles import finders

    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"].endswith("backtester/favicon.svg")
    path = finders.find("backtester/favicon.svg")
    assert path, "the icon is a static file"
    root = ElementTree.parse(path).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    html = client.get("/runs/").content.decode()
    assert '<link rel="icon" href="/static/backtester/favicon.svg"' in html
