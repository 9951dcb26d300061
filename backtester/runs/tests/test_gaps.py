"""Gaps in a coin's bars are reported, never hidden."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import numpy as np
import pytest
from django.core.management import call_command

from backtester.runs.models import BacktestResult, BacktestRun
from backtester.runs.tests.factories import START, random_walk
from prices.services import bars_import
from prices.types import PriceSeries

pytestmark = pytest.mark.django_db(transaction=True)
HOUR = 3600


def gapped(n: int = 600, at: int = 300, hours: int = 50) -> PriceSeries:
    """A random walk with ``hours`` missing after bar ``at``."""
    walk = random_walk(n, seed=3)
    time = walk.time + np.where(np.arange(n) >= at, hours * HOUR, 0)
    return PriceSeries(time, *walk[1:])


def backtest(*args: str) -> dict:
    out = io.StringIO()
    call_command("backtest", *args, "--format", "json", stdout=out)
    return json.loads(out.getvalue())


def test_results_carry_missing_bars_and_the_longest_gap(client):
    bars_import(symbol="GAP", series=gapped())
    bars_import(symbol="EVEN", series=random_walk(600, seed=4))
    report = backtest("--strategy", "sma_crossover", "--param", "fast=5",
                      "--param", "slow=20", "--symbols", "GAP,EVEN")  # fmt: skip
    metrics = {r["symbol"]: r["metrics"] for r in report["results"]}
    assert (metrics["GAP"]["missing_bars"], metrics["GAP"]["longest_gap_hours"]) == (
        50,
        50.0,
    )
    assert (metrics["EVEN"]["missing_bars"], metrics["EVEN"]["longest_gap_hours"]) == (
        0,
        0.0,
    )
    # A range after the gap has none.
    after = datetime.fromtimestamp(START + 400 * HOUR, UTC).strftime("%Y-%m-%dT%H:%M")
    late = backtest("--strategy", "sma_crossover", "--symbols", "GAP",
                    "--start", after)  # fmt: skip
    assert late["results"][0]["metrics"]["missing_bars"] == 0

    # The detail page flags the gapped result only, and says so above its charts.
    run_id = report["run"]["id"]
    page = client.get(f"/runs/{run_id}/?symbol=GAP&strategy=sma_crossover")
    html = page.content.decode()
    assert html.count('<span class="badge gap"') == 2  # its row and its panel
    assert "50 bars missing in this range; the longest gap is 50 hours" in html
    page = client.get(f"/runs/{run_id}/?symbol=EVEN&strategy=sma_crossover")
    assert 'id="gap-note"' not in page.content.decode()

    # The trade list flags exactly the trades held across the gap.
    trades = client.get(
        f"/runs/{run_id}/trades.json?symbol=GAP&strategy=sma_crossover&per_page=500"
    ).json()["rows"]
    hole = START + 300 * HOUR + 50 * HOUR  # the first bar after the gap
    assert trades, "no trades"
    for trade in trades:
        entry = datetime.fromisoformat(trade["entry_time"].replace("Z", "+00:00"))
        exit_ = datetime.fromisoformat(trade["exit_time"].replace("Z", "+00:00"))
        across = entry.timestamp() < hole <= exit_.timestamp()
        assert trade["gap"] is across, trade
    assert any(t["gap"] for t in trades), "no trade spans the gap"
    csv_text = client.get(
        f"/runs/{run_id}/trades.csv?symbol=GAP&strategy=sma_crossover"
    ).content.decode()
    assert csv_text.splitlines()[0].endswith(",gap")


@pytest.mark.parametrize(("hours", "flagged"), [(24.0, False), (24.5, True)])
def test_only_a_gap_over_a_day_is_flagged(client, hours, flagged):
    run = BacktestRun.objects.create(
        strategies=[{"strategy": "sma_crossover", "params": {}}], status="complete"
    )
    metrics = {"total_return_pct": 1.0, "longest_gap_hours": hours, "missing_bars": 7}
    BacktestResult.objects.create(
        run=run, symbol="AAA", strategy="sma_crossover", bars=10,
        total_return_pct=1.0, metrics=metrics,
    )  # fmt: skip
    html = client.get(f"/runs/{run.pk}/").content.decode()
    assert ('<span class="badge gap"' in html) is flagged
