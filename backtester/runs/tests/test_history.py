"""Run history (settings, filters, delete), compare, and "Edit & re-run"."""

from __future__ import annotations

import io
import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from backtester.runs.models import BacktestRun
from backtester.runs.tests.factories import make_coins

pytestmark = pytest.mark.django_db(transaction=True)


def backtest(*args: str) -> BacktestRun:
    out = io.StringIO()
    call_command("backtest", *args, "--format", "json", stdout=out)
    return BacktestRun.objects.get(pk=json.loads(out.getvalue())["run"]["id"])


@pytest.fixture
def runs():
    make_coins(["AAA", "BBB", "CCC", "DDD", "EEE"], bars=300)
    sma = backtest("--strategy", "sma_crossover", "--param", "fast=5",
                   "--param", "slow=20", "--symbols", "AAA,BBB", "--fee", "0.002",
                   "--start", "2024-01-02", "--end", "2024-01-12")  # fmt: skip
    every = backtest("--all-strategies", "--stop-loss", "5")
    failed = BacktestRun.objects.create(
        strategies=[{"strategy": "rsi_reversion", "params": {}}], symbols=["AAA"],
        status=BacktestRun.Status.FAILED,
    )  # fmt: skip
    return sma, every, failed


def rows(html: str) -> list[str]:
    if "<tbody>" not in html:
        return []
    body = html[html.index("<tbody>") : html.index("</tbody>")]
    return re.findall(r'<th scope="row"><a href="/runs/(\d+)/">', body)


def test_history_shows_settings(client, runs):
    sma, every, _ = runs
    html = client.get("/runs/").content.decode()
    assert "SMA crossover" in html and "fast=5, slow=20" in html
    assert "2 \u00b7 AAA, BBB" in html  # count and the first few coins
    assert "5 \u00b7 AAA, BBB, CCC, DDD\u2026" in html
    assert "2024-01-02 \u2192 2024-01-12" in html
    assert "0.2% \u00b7 0 bps" in html and "0.1% \u00b7 0 bps" in html  # not 0.002
    assert "stop 5%" in html and "long, all in" in html
    assert "6 strategies" in html


def test_history_filters_by_strategy_and_status(client, runs):
    sma, every, failed = runs
    ids = lambda query: rows(client.get(f"/runs/?{query}").content.decode())  # noqa: E731
    assert ids("strategy=sma_crossover") == [str(every.pk), str(sma.pk)]
    assert ids("strategy=rsi_reversion") == [str(failed.pk), str(every.pk)]
    assert ids("status=failed") == [str(failed.pk)]
    assert ids("strategy=sma_crossover&status=failed") == []
    assert (
        "No run matches these filters."
        in client.get("/runs/?strategy=macd_crossover&status=running").content.decode()
    )
    assert len(ids("strategy=nonsense")) == 3  # an unknown filter is ignored


def test_delete_own_finished_runs_only(client, runs):
    sma, every, _ = runs
    running = BacktestRun.objects.create(
        strategies=[{"strategy": "sma_crossover", "params": {}}],
        status=BacktestRun.Status.RUNNING,
    )
    # Anonymous demo visitors own the ownerless runs: finished ones can go.
    response = client.post(
        f"/runs/{sma.pk}/delete/", {"next": "/runs/?status=complete"}
    )
    assert (
        response.status_code == 302 and response["Location"] == "/runs/?status=complete"
    )
    assert not BacktestRun.objects.filter(pk=sma.pk).exists()
    assert sma.results.count() == 0
    assert client.get(f"/runs/{every.pk}/delete/").status_code == 405  # POST only
    assert client.post(f"/runs/{running.pk}/delete/").status_code == 403
    # Someone else's run: as if it did not exist.
    alice = get_user_model().objects.create_user("alice", password="pw")
    BacktestRun.objects.filter(pk=every.pk).update(created_by=alice)
    assert client.post(f"/runs/{every.pk}/delete/").status_code == 404
    client.force_login(alice)
    html = client.get("/runs/").content.decode()
    assert f'action="/runs/{every.pk}/delete/"' in html
    assert (
        client.post(f"/runs/{every.pk}/delete/", {"next": "//evil"})["Location"]
        == "/runs/"
    )
    assert not BacktestRun.objects.filter(pk=every.pk).exists()


def test_compare_two_runs_side_by_side(client, runs):
    sma, every, _ = runs
    html = client.get(f"/runs/compare/?run={sma.pk}&run={every.pk}").content.decode()
    assert f"Run #{sma.pk}" in html and f"Run #{every.pk}" in html
    assert "fast=5, slow=20" in html and "stop 5%" in html
    series = json.loads(
        re.search(
            r'id="compare-data" type="application/json">(.*?)</script>', html
        ).group(1)
    )
    assert [s["run"] for s in series] == [sma.pk, every.pk]
    # The first coin both ran, each run's best result on it.
    best = every.results.filter(symbol="AAA").order_by("-total_return_pct").first()
    query = parse_qs(urlsplit(series[1]["url"]).query)
    assert (query["symbol"], query["strategy"]) == (["AAA"], [best.strategy])
    data = client.get(series[1]["url"]).json()
    assert data["strategy_equity"][-1] == pytest.approx(best.metrics["final_equity"])
    html = client.get(
        f"/runs/compare/?run={sma.pk}&run={every.pk}&symbol=EEE"
    ).content.decode()
    assert "not in this run" in html  # EEE was not in the first run


def test_compare_needs_two_to_four_visible_runs(client, runs):
    sma, every, failed = runs
    assert client.get(f"/runs/compare/?run={sma.pk}").status_code == 400
    five = "&".join(f"run={i}" for i in (sma.pk, every.pk, failed.pk, 98, 99))
    assert client.get(f"/runs/compare/?{five}").status_code == 400
    assert client.get("/runs/compare/?run=a&run=b").status_code == 400
    assert client.get(f"/runs/compare/?run={sma.pk}&run=9999").status_code == 404


def test_edit_and_rerun_link_carries_the_settings(client, runs):
    sma, every, _ = runs
    html = client.get(f"/runs/{sma.pk}/").content.decode()
    href = re.search(r'href="/\?([^"]+)" id="rerun-link"', html).group(1)
    query = parse_qs(href.replace("&amp;", "&"))
    assert query == {
        "strategy": ["sma_crossover"], "p.fast": ["5"], "p.slow": ["20"],
        "symbols": ["AAA,BBB"], "start": ["2024-01-02"], "end": ["2024-01-12"],
        "interval": ["1h"], "fee": ["0.002"], "slippage_bps": ["0"],
    }  # fmt: skip
    html = client.get(f"/runs/{every.pk}/").content.decode()
    href = re.search(r'href="/\?([^"]+)" id="rerun-link"', html).group(1)
    query = parse_qs(href.replace("&amp;", "&"))
    assert query["strategy"] == ["all"] and query["stop_loss_pct"] == ["5.0"]
    assert "symbols" not in query  # every active coin
