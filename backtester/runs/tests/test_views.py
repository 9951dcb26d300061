"""Pages and endpoints of the web UI."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.utils.html import escape

from backtester.runs.metric_info import METRICS
from backtester.runs.models import BacktestResult, BacktestRun, params_key
from backtester.runs.output import CSV_METRICS, CSV_RISK
from backtester.runs.tests.factories import START, make_coins
from prices.models import Cryptocurrency
from strategies.registry import STRATEGIES, schema
from strategies.risk import DEFAULT_RISK

pytestmark = pytest.mark.django_db
T0 = datetime.fromtimestamp(START, UTC)
FIRST = (
    "symbol=AAA&strategy=sma_crossover"
    "&params=%7B%22fast%22%3A+20%2C+%22slow%22%3A+50%7D&points=1200"
)


def json_script(html: str, element_id: str):
    """Return the parsed content of a json_script element."""
    pattern = rf'<script id="{element_id}" type="application/json">(.*?)</script>'
    match = re.search(pattern, html, re.S)
    assert match, f"no json_script {element_id!r}"
    return json.loads(match.group(1))


def metrics(total: float, buy_hold: float, **extra) -> dict:
    return {
        "total_return_pct": total, "buy_hold_return_pct": buy_hold, "sharpe": 1.25,
        "max_drawdown_pct": 10.0, "num_trades": 3, "win_rate_pct": 66.7,
        "final_equity": 10_000 * (1 + total / 100), **extra,
    }  # fmt: skip


def add_result(run: BacktestRun, symbol: str, strategy: str, m: dict | None, **kw):
    m = m or {}
    return BacktestResult.objects.create(
        run=run, symbol=symbol, strategy=strategy,
        params={"fast": 20, "slow": 50},
        first_bar=T0 if m else None, last_bar=T0 + timedelta(hours=399) if m else None,
        bars=400 if m else 0, metrics=m,
        total_return_pct=m.get("total_return_pct"),
        buy_hold_return_pct=m.get("buy_hold_return_pct"), sharpe=m.get("sharpe"),
        max_drawdown_pct=m.get("max_drawdown_pct"), num_trades=m.get("num_trades", 0),
        win_rate_pct=m.get("win_rate_pct"), **kw,
    )  # fmt: skip


EQUITY = {
    "time": [START, START + 3600, START + 7200, START + 10800],
    "strategy": [10_000.0, 11_000.0, 9_900.0, 12_000.0],  # 9,900: 10% below the peak
    "buy_hold": [10_000.0, 10_100.0, 10_200.0, 10_300.0],
}
# Three trades made (num_trades in metrics()), the latest two stored.
TRADES = {
    "entry_time": [START + 3600, START + 9000],
    "exit_time": [START + 7200, START + 10800],
    "entry_price": [101.5, 98.25],
    "exit_price": [99.0, 110.0],
    "return_pct": [-2.6, 11.7],
    "bars_held": [1, 1],
    "fees": [10.0, 10.5],
    "closed_at_end": [False, True],
}


@pytest.fixture
def saved_run() -> BacktestRun:
    """A finished one-strategy run made through the ORM: a winner, a loser, a gap."""
    make_coins(["AAA", "BBB"], bars=400)
    run = BacktestRun.objects.create(
        strategies=[{"strategy": "sma_crossover", "params": {"fast": 20, "slow": 50}}],
        symbols=["AAA", "BBB", "CCC"],
        start=T0 + timedelta(hours=100),
        end=T0 + timedelta(hours=300),
        status=BacktestRun.Status.COMPLETE,
        total=3,
        completed=3,
        elapsed_s=0.25,
        summary={
            "results": 3, "skipped": 1, "beat_buy_hold": 1, "median_return_pct": 4.25,
            "mean_return_pct": 4.25, "mean_sharpe": 1.25,
            "best": {"symbol": "AAA", "strategy": "sma_crossover",
                     "total_return_pct": 12.5},
            "worst": {"symbol": "BBB", "strategy": "sma_crossover",
                      "total_return_pct": -4.0},
            "elapsed_s": 0.25,
        },
    )  # fmt: skip
    add_result(run, "AAA", "sma_crossover", metrics(12.5, 5.0),
               equity=EQUITY, trades=TRADES)  # fmt: skip
    add_result(run, "BBB", "sma_crossover", metrics(-4.0, 2.0))
    add_result(run, "CCC", "sma_crossover", None)
    return run


# ---- the run page --------------------------------------------------------------------


def test_home_page_carries_schemas_coins_and_range(
    client, django_assert_max_num_queries
):
    make_coins(["AAA", "BBB"], bars=50)
    make_coins(["OFF"], bars=10)
    Cryptocurrency.objects.filter(symbol="OFF").update(is_active=False)
    with django_assert_max_num_queries(2):  # no query per coin, no COUNT of bars
        response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert json_script(html, "strategies-data") == schema()
    assert [s["key"] for s in json_script(html, "strategies-data")] == list(STRATEGIES)
    # The cross-parameter checks come with it: the form applies the server's own.
    sma = json_script(html, "strategies-data")[0]
    assert sma["checks"] == [{"rule": "less_than", "low": "fast", "high": "slow"}]
    coins = json_script(html, "coins-data")
    assert [c["symbol"] for c in coins] == ["AAA", "BBB"]  # active coins only
    assert coins[0]["first_bar"] == "2024-01-01T00:00:00Z"
    assert coins[0]["last_bar"] == "2024-01-03T01:00:00Z"  # 50 hourly bars
    assert json_script(html, "range-data") == {
        "first": "2024-01-01T00:00:00Z",
        "last": "2024-01-03T01:00:00Z",
    }
    assert 'src="/static/backtester/js/run.js"' in html
    # Labels for every fixed input, the exclusive end said in words, server limits.
    for field in ["strategy", "interval", "fee", "slippage_bps", "start", "end"]:
        assert f'<label for="{field}"' in html, field
    assert "End (exclusive)" in html
    assert 'max="0.05"' in html and 'max="500.0"' in html


def test_home_page_without_coins(client):
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "No coins yet" in html
    assert json_script(html, "coins-data") == []
    assert json_script(html, "range-data") == {"first": None, "last": None}


def test_strategy_schema_is_escaped_not_string_built(client, monkeypatch):
    import backtester.runs.views

    evil = [{"key": "x", "name": "</script><script>alert(1)</script>", "params": []}]
    monkeypatch.setattr(backtester.runs.views, "schema", lambda: evil)
    html = client.get("/").content.decode()
    assert "<script>alert(1)" not in html
    assert json_script(html, "strategies-data") == evil


# ---- history -------------------------------------------------------------------------


def test_run_list_empty(client):
    response = client.get("/runs/")
    assert response.status_code == 200
    assert "No runs yet" in response.content.decode()


def test_run_list_paginates_25_newest_first(client, django_assert_max_num_queries):
    for _ in range(27):
        BacktestRun.objects.create(
            strategies=[{"strategy": "sma_crossover", "params": {}}]
        )
    newest = BacktestRun.objects.order_by("-id").first().pk
    with django_assert_max_num_queries(4):
        first = client.get("/runs/").content.decode()
    assert first.count('<th scope="row"><a href="/runs/') == 25
    assert f'href="/runs/{newest}/"' in first
    assert "Page 1 of 2" in first and "27 runs" in first
    second = client.get("/runs/?page=2").content.decode()
    assert second.count('<th scope="row"><a href="/runs/') == 2
    assert "Page 2 of 2" in second
    assert "Page 2 of 2" in client.get("/runs/?page=99").content.decode()
    assert "Page 1 of 2" in client.get("/runs/?page=x").content.decode()


def test_run_list_shows_headline_summary(client, saved_run):
    BacktestRun.objects.create(
        strategies=[{"strategy": k, "params": {}} for k in STRATEGIES],
        status=BacktestRun.Status.CANCELLED,
    )
    html = client.get("/runs/").content.decode()
    assert "SMA crossover" in html and "6 strategies" in html
    assert "1 / 2" in html  # beat buy & hold of the two scored results
    assert "+4.25%" in html
    assert "2024-01-05 → 2024-01-13 · 1h" in html
    assert "Cancelled" in html and "Complete" in html
    assert "0.25 s" in html


# ---- run detail ----------------------------------------------------------------------


def test_run_detail_defaults_to_the_best_result(client, saved_run):
    response = client.get(f"/runs/{saved_run.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert f"Run #{saved_run.pk}" in html and "plotly.min.js" in html
    request = json_script(html, "chart-request")
    assert request == {
        "equity_url": f"/runs/{saved_run.pk}/equity.json",
        "price_url": f"/runs/{saved_run.pk}/price.json",
        "trades_url": f"/runs/{saved_run.pk}/trades.json",
        "symbol": "AAA",
        "strategy": "sma_crossover",
        "params": {"fast": 20, "slow": 50},
        "max_drawdown_pct": 10.0,
        "num_trades": 3,
        # Preloaded by the page head: the first chart request, exactly.
        "first": {
            "price": f"/runs/{saved_run.pk}/price.json?{FIRST}",
            "equity": f"/runs/{saved_run.pk}/equity.json?{FIRST}",
        },
    }
    # Gains and losses carry a sign, not only a colour; the gap is said in words.
    assert "+12.50" in html and "\u22124.00" in html and "+7.50" in html
    assert "no data in range" in html
    # Every metric, each with its formula and unit; a drawdown is negative.
    for info in METRICS:
        assert f'data-metric="{info.key}"' in html
        assert escape(info.help) in html
    assert 'data-metric="max_drawdown_pct">\u221210.00%<' in html
    assert "Unit: %." in html and "Unit: bars." in html
    # This result was made up for the test (400 bars in a 200-bar range):
    # recomputing it from its prices gives another, and the page says so
    # instead of drawing charts.
    assert "changed since the run (200 now, 400 then)" in html
    assert "Loading charts" not in html
    assert json_script(html, "heatmap-data") is None  # one strategy: no heatmap


def test_run_detail_selects_a_result_and_lists_strategies(client, saved_run):
    html = client.get(
        f"/runs/{saved_run.pk}/?symbol=BBB&strategy=sma_crossover"
    ).content.decode()
    assert json_script(html, "chart-request")["symbol"] == "BBB"
    assert "SMA crossover" in html and "fast=20, slow=50" in html
    # An unknown pick falls back to the best result.
    html = client.get(f"/runs/{saved_run.pk}/?symbol=ZZZ&strategy=x").content.decode()
    assert json_script(html, "chart-request")["symbol"] == "AAA"


def test_run_detail_of_a_run_without_results(client):
    run = BacktestRun.objects.create(
        strategies=[{"strategy": "sma_crossover", "params": {}}],
        status=BacktestRun.Status.FAILED,
        error="the run failed: boom",
    )
    html = client.get(f"/runs/{run.pk}/").content.decode()
    assert "This run has no stored results." in html
    assert "the run failed: boom" in html
    assert "plotly.min.js" not in html
    assert 'id="chart-request"' not in html and 'id="charts"' not in html


def test_run_detail_of_an_unfinished_multi_strategy_run_has_its_heatmap(client):
    """A cancelled run has no summary, so no by-strategy table, but its results
    still fill the heatmap, and the table the page script draws it into is there."""
    make_coins(["AAA"], bars=400)
    run = BacktestRun.objects.create(
        strategies=[
            {"strategy": "sma_crossover", "params": {"fast": 20, "slow": 50}},
            {"strategy": "ema_crossover", "params": {}},
        ],
        symbols=["AAA", "BBB"],
        status=BacktestRun.Status.CANCELLED,
        total=4,
        completed=2,
    )
    add_result(run, "AAA", "sma_crossover", metrics(12.5, 5.0),
               equity=EQUITY, trades=TRADES)  # fmt: skip
    add_result(run, "AAA", "ema_crossover", metrics(-4.0, 5.0))
    html = client.get(f"/runs/{run.pk}/").content.decode()
    assert run.summary == {}
    # No summary, so no per-strategy table, and no heading promising one.
    assert "By strategy" not in html
    assert ">Return % by strategy and coin</h2>" in html
    assert '<table id="heatmap"' in html
    assert '<th scope="col" class="num">Backtests</th>' not in html  # no summary
    key, params = params_key({"fast": 20, "slow": 50}), {"fast": 20, "slow": 50}
    assert json_script(html, "heatmap-data") == [
        {"symbol": "AAA", "row": f"sma_crossover|{key}", "label": "SMA crossover",
         "strategy": "sma_crossover", "params": params, "value": 12.5},
        {"symbol": "AAA", "row": f"ema_crossover|{key}", "label": "EMA crossover",
         "strategy": "ema_crossover", "params": params, "value": -4.0},
    ]  # fmt: skip
    assert json_script(html, "chart-request")["symbol"] == "AAA"
    assert "plotly.min.js" in html


def test_run_detail_of_a_multi_strategy_run_without_results(client):
    run = BacktestRun.objects.create(
        strategies=[{"strategy": k, "params": {}} for k in STRATEGIES],
        status=BacktestRun.Status.FAILED,
        error="the run failed: boom",
    )
    html = client.get(f"/runs/{run.pk}/").content.decode()
    assert "This run has no stored results." in html
    assert json_script(html, "heatmap-data") is None  # nothing to draw
    assert '<table id="heatmap"' not in html


def test_missing_run_is_404(client):
    assert client.get("/runs/999999/").status_code == 404
    assert client.get("/runs/999999/equity.json?symbol=A&strategy=b").status_code == 404
    assert client.get("/runs/999999/trades.csv?symbol=A&strategy=b").status_code == 404
    assert client.get("/runs/999999/export.json").status_code == 404
    assert client.get("/runs/999999/export.csv").status_code == 404


# ---- recomputed series ---------------------------------------------------------------


def test_series_of_a_deleted_coin_say_so(client, saved_run):
    Cryptocurrency.objects.filter(symbol="AAA").delete()
    response = client.get(
        f"/runs/{saved_run.pk}/equity.json?symbol=AAA&strategy=sma_crossover"
    )
    assert response.status_code == 409
    assert response.json()["error"] == "the prices of AAA are no longer stored"
    html = client.get(f"/runs/{saved_run.pk}/").content.decode()
    assert "the prices of AAA are no longer stored" in html


# ---- exports -------------------------------------------------------------------------


def test_json_export_has_the_cli_shape(client, saved_run):
    response = client.get(f"/runs/{saved_run.pk}/export.json")
    assert response["Content-Type"] == "application/json"
    assert f'filename="run-{saved_run.pk}.json"' in response["Content-Disposition"]
    payload = json.loads(response.content)
    assert set(payload) == {"run", "results", "summary"}
    assert payload["run"]["id"] == saved_run.pk
    assert payload["run"]["start"] == "2024-01-05T04:00:00Z"
    assert payload["summary"] == saved_run.summary
    assert [r["symbol"] for r in payload["results"]] == ["AAA", "BBB", "CCC"]
    keys = {"symbol", "strategy", "params", "risk", "first_bar", "last_bar", "bars",
            "metrics"}  # fmt: skip
    # A coin without bars in the range says so, as it did when streamed.
    assert [set(r) - keys for r in payload["results"]] == [set(), set(), {"skipped"}]
    assert payload["results"][0]["first_bar"] == "2024-01-01T00:00:00Z"
    assert payload["results"][2]["metrics"] is None
    assert payload["results"][2]["skipped"] == "no data in range"
    # A run stored before risk settings existed ran with the defaults.
    assert payload["run"]["risk"] == DEFAULT_RISK.as_dict()
    assert all(r["risk"] == DEFAULT_RISK.as_dict() for r in payload["results"])


def test_csv_export_header_and_rows(client, saved_run):
    response = client.get(f"/runs/{saved_run.pk}/export.csv")
    assert response["Content-Type"] == "text/csv"
    assert f'filename="run-{saved_run.pk}.csv"' in response["Content-Disposition"]
    reader = csv.reader(io.StringIO(response.content.decode()))
    header = next(reader)
    assert header == ["symbol", "strategy", "params", *CSV_RISK, "first_bar",
                      "last_bar", "bars", *CSV_METRICS, "exit_reasons"]  # fmt: skip
    rows = [dict(zip(header, row, strict=True)) for row in reader]
    assert [r["symbol"] for r in rows] == ["AAA", "BBB", "CCC"]
    assert rows[0]["total_return_pct"] == "12.5" and rows[2]["sharpe"] == ""


# ---- a real run from the command line, shown on the pages ----------------------------


@pytest.mark.django_db(transaction=True)
def test_pages_of_a_run_made_by_the_engine(client):
    make_coins(["AAA", "BBB"], bars=400)
    out = io.StringIO()
    call_command("backtest", "--all-strategies", "--format", "json", stdout=out)
    run = BacktestRun.objects.get(pk=json.loads(out.getvalue())["run"]["id"])
    html = client.get(f"/runs/{run.pk}/").content.decode()
    heatmap = json_script(html, "heatmap-data")
    assert len(heatmap) == 2 * len(STRATEGIES)
    assert "By strategy" in html
    best = run.results.order_by("-total_return_pct").first()
    request = json_script(html, "chart-request")
    assert (request["symbol"], request["strategy"]) == (best.symbol, best.strategy)
    assert "Monthly returns" in html and "instead of the stored" not in html
    query = f"symbol={best.symbol}&strategy={best.strategy}"
    data = client.get(f"/runs/{run.pk}/price.json?{query}").json()
    assert len(data["close"]) == 400
    data = client.get(f"/runs/{run.pk}/equity.json?{query}").json()
    assert data["strategy_equity"][-1] == pytest.approx(
        best.metrics["final_equity"], abs=0.01
    )
    assert -min(data["drawdown_pct"]) == pytest.approx(best.max_drawdown_pct)
    trades = client.get(f"/runs/{run.pk}/trades.json?{query}").json()
    assert trades["total"] == best.num_trades
    assert "History" in client.get("/runs/").content.decode()


def test_run_detail_serves_the_selected_result_alone(client, saved_run):
    html = client.get(
        f"/runs/{saved_run.pk}/?symbol=BBB&strategy=sma_crossover&fragment=result"
    ).content.decode()
    assert html.lstrip().startswith('<section class="panel" id="chart"')
    assert "<html" not in html and "<style" not in html
    assert json_script(html, "chart-request")["symbol"] == "BBB"


def test_fee_as_a_percentage_and_the_sites_own_404(client, saved_run, settings):
    html = client.get(f"/runs/{saved_run.pk}/").content.decode()
    assert "<dd>0.1% \u00b7 0 bps</dd>" in html
    settings.DEBUG = True  # the demo: still the site's page, not Django's
    response = client.get("/runs/999999/")
    assert response.status_code == 404
    html = response.content.decode()
    assert '<h1 id="missing-title">Not found</h1>' in html
    assert "URLconf" not in html and "Run history" in html


def test_login_page_says_whether_login_is_needed(client, settings):
    settings.BACKTESTS_REQUIRE_LOGIN = False
    html = client.get("/accounts/login/").content.decode()
    assert "Logging in is optional here" in html
    assert "Log in to run backtests." not in html
    settings.BACKTESTS_REQUIRE_LOGIN = True
    assert "Log in to run backtests." in client.get("/accounts/login/").content.decode()


def test_summary_line_counts_one_backtest():
    from backtester.runs.output import summary_line

    line = summary_line({"results": 1, "skipped": 0, "beat_buy_hold": 0})
    assert line.startswith("1 backtest;") or line.startswith("1 backtest ")
