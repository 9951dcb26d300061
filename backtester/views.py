"""Pages: the live run page, run history, run detail with charts, exports."""

from __future__ import annotations

import numpy as np
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from backtester.models import BacktestRun
from backtester.output import render_csv, render_json
from backtester.selectors import result_data, run_data, run_get, run_results, runs_list
from prices.selectors import bars_load, coins_with_range
from strategies.engine import run_backtest
from strategies.registry import schema
from strategies.types import Bars

CHART_POINTS = 1500


def _iso(value) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def home(request: HttpRequest) -> HttpResponse:
    """Render the run form and the live results table."""
    coins = [
        {
            "symbol": c.symbol,
            "name": c.name,
            "first_bar": _iso(c.first_bar),
            "last_bar": _iso(c.last_bar),
        }
        for c in coins_with_range()
    ]
    firsts = [c["first_bar"] for c in coins if c["first_bar"]]
    lasts = [c["last_bar"] for c in coins if c["last_bar"]]
    return render(
        request,
        "backtester/run.html",
        {
            "strategies": schema(),
            "coins": coins,
            "data_range": {
                "first": min(firsts) if firsts else None,
                "last": max(lasts) if lasts else None,
            },
        },
    )


def run_list(request: HttpRequest) -> HttpResponse:
    """Render saved runs, newest first, 25 a page."""
    page = Paginator(runs_list(), 25).get_page(request.GET.get("page"))
    return render(request, "backtester/run_list.html", {"page": page})


def _run_or_404(run_id: int) -> BacktestRun:
    try:
        return run_get(run_id)
    except BacktestRun.DoesNotExist:
        raise Http404(f"no run {run_id}") from None


def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    """Render one run: summary, results, and charts for a selected result."""
    run = _run_or_404(run_id)
    results = list(run_results(run, full=True))
    selected = None
    symbol, strategy = request.GET.get("symbol"), request.GET.get("strategy")
    for result in results:
        if result.symbol == symbol and result.strategy == strategy:
            selected = result
    if selected is None:
        selected = next((r for r in results if r.metrics), None)
    trades = []
    if selected is not None and selected.trades:
        table = selected.trades
        keys = [k for k in table if k != "count"]
        trades = [dict(zip(keys, values, strict=True)) for values in
                  zip(*(table[k] for k in keys), strict=True)]  # fmt: skip
        trades.reverse()  # newest first
    return render(
        request,
        "backtester/run_detail.html",
        {
            "run": run,
            "results": results,
            "selected": selected,
            "trades": trades,
            "trade_count": (selected.trades or {}).get("count", 0) if selected else 0,
            "chart_request": {
                "url": f"/runs/{run.pk}/chart/",
                "symbol": selected.symbol if selected else None,
                "strategy": selected.strategy if selected else None,
            },
        },
    )


def _downsample(n: int, points: int = CHART_POINTS) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, min(n, points)).round().astype(int))


def run_chart(request: HttpRequest, run_id: int) -> JsonResponse:
    """Return price, trades, equity and drawdown of one result, recomputed exactly."""
    run = _run_or_404(run_id)
    symbol, strategy = request.GET.get("symbol"), request.GET.get("strategy")
    result = run.results.filter(symbol=symbol, strategy=strategy).first()
    if result is None:
        return JsonResponse(
            {"error": f"run {run_id} has no result for {symbol} {strategy}"},
            status=404,
        )
    series = bars_load([symbol], start=run.start, end=run.end, interval=run.interval)
    bars = series.get(symbol)
    if bars is None or not len(bars.time):
        return JsonResponse(
            {"error": f"no prices for {symbol} in this range"}, status=404
        )
    backtest = run_backtest(
        Bars(*bars),
        strategy,
        result.params,
        fee=run.fee,
        slippage_bps=run.slippage_bps,
        interval=run.interval,
    )
    index = _downsample(len(bars.time))
    equity = backtest.equity
    peak = np.maximum.accumulate(equity)
    trades = backtest.trade_table
    return JsonResponse(
        {
            "symbol": symbol,
            "strategy": strategy,
            "time": (bars.time[index] * 1000).tolist(),
            "close": bars.close[index].tolist(),
            "equity": equity[index].round(2).tolist(),
            "buy_hold": backtest.buy_hold_equity[index].round(2).tolist(),
            "drawdown_pct": (-(1 - equity / peak) * 100)[index].round(3).tolist(),
            "entries": {
                "time": (trades["entry_time"] * 1000).tolist(),
                "price": trades["entry_price"].tolist(),
            },
            "exits": {
                "time": (trades["exit_time"] * 1000).tolist(),
                "price": trades["exit_price"].tolist(),
            },
        }
    )


def _export_payload(run: BacktestRun) -> tuple[dict, list[dict], dict]:
    results = [result_data(r) for r in run_results(run)]
    return run_data(run), results, run.summary


def run_export_json(request: HttpRequest, run_id: int) -> HttpResponse:
    """Download the run in the CLI's JSON shape."""
    run = _run_or_404(run_id)
    response = HttpResponse(
        render_json(*_export_payload(run)), content_type="application/json"
    )
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}.json"'
    return response


def run_export_csv(request: HttpRequest, run_id: int) -> HttpResponse:
    """Download the run's results as CSV."""
    run = _run_or_404(run_id)
    _, results, _ = _export_payload(run)
    response = HttpResponse(render_csv(results), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}.csv"'
    return response
