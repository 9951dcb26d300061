"""Portfolio pages: the live page, history, a run's detail, trades, exports."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse

from backtester.portfolio.compute import ReplayError, portfolio_replay
from backtester.portfolio.curve import curve_data
from backtester.portfolio.models import PortfolioRun
from backtester.portfolio.output import render_csv, render_json
from backtester.portfolio.selectors import (
    portfolio_data,
    portfolio_get,
    portfolios_list,
    trade_rows,
)
from backtester.portfolio.services import portfolios_mark_stale
from backtester.portfolio.sweep import PORTFOLIO_OBJECTIVES
from backtester.portfolio.sweep_views import heat_metrics
from backtester.runs.metric_info import METRICS
from prices.selectors import coins_with_range
from strategies.portfolio_signals import RANKS
from strategies.registry import STRATEGIES, schema
from strategies.risk import risk_schema

RUNS_PER_PAGE = 25
TRADES_PER_PAGE = 50
# The account's own metrics, beside the single-coin set (runs.metric_info).
PORTFOLIO_METRICS = [
    ("benchmark_return_pct", "Benchmark", "%", 2,
     "Equal-weight buy & hold of the coins with a bar at the first time: equal "
     "shares bought at that bar's open with the fee, sold at each coin's last "
     "close with the fee."),
    ("avg_positions", "Average positions", "", 2,
     "Mean number of positions held over the bars of the union clock."),
    ("max_positions_held", "Most positions", "", 0,
     "Most positions open at once."),
    ("rejected_signals", "Rejected signals", "", 0,
     "Entry signals that found no free slot or no cash."),
    ("fees_paid", "Fees paid", "USDT", 2, "Every fill's fee, in money."),
]  # fmt: skip
HIDDEN = {"missing_bars", "longest_gap_hours"}


def _metric_info() -> list[dict]:
    rows = [
        {"key": m.key, "label": m.label, "unit": m.unit, "digits": m.digits,
         "help": m.help}
        for m in METRICS if m.key not in HIDDEN
    ]  # fmt: skip
    rows[1:1] = [
        {"key": k, "label": label, "unit": unit, "digits": d, "help": text}
        for k, label, unit, d, text in PORTFOLIO_METRICS
    ]
    for row in rows:
        if row["key"] == "exposure_pct":
            row["help"] = "Share of bars with at least one position held."
    return rows


def _iso(value) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _run_or_404(request: HttpRequest, portfolio_id: int) -> PortfolioRun:
    portfolios_mark_stale()
    try:
        return portfolio_get(portfolio_id, user=request.user)
    except PortfolioRun.DoesNotExist:
        raise Http404(f"no portfolio run {portfolio_id}") from None


def _urls() -> dict:
    return {
        "base": reverse("portfolio_page"),
        "detail": reverse("portfolio_detail", args=[0]),
        "trades": reverse("portfolio_trades", args=[0]),
    }


def portfolio_page(request: HttpRequest) -> HttpResponse:
    """Render the portfolio form and its live results."""
    coins = [
        {
            "symbol": c.symbol,
            "first_bar": _iso(c.first_bar),
            "last_bar": _iso(c.last_bar),
        }
        for c in coins_with_range()
    ]
    stops = [r for r in risk_schema() if r["name"].endswith("_pct")]
    return render(
        request,
        "portfolio/portfolio.html",
        {
            "coins": coins,
            "page_data": {
                "strategies": [s for s in schema() if STRATEGIES[s["key"]].sides],
                "coins": coins,
                "ranks": list(RANKS),
                "stops": stops,
                "metrics": _metric_info(),
                "sweep_metrics": heat_metrics(),
                "objectives": list(PORTFOLIO_OBJECTIVES),
                "urls": {
                    **_urls(),
                    "sweep_detail": reverse("psweep_detail", args=[0]),
                },
            },
        },
    )


def portfolio_list(request: HttpRequest) -> HttpResponse:
    """Render the user's portfolio runs, newest first."""
    portfolios_mark_stale()
    page = Paginator(portfolios_list(user=request.user), RUNS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(request, "portfolio/portfolio_list.html", {"page": page})


def portfolio_detail(request: HttpRequest, portfolio_id: int) -> HttpResponse:
    """Render a stored run: settings, metrics, charts and its trade list."""
    run = _run_or_404(request, portfolio_id)
    return render(
        request,
        "portfolio/portfolio_detail.html",
        {
            "run": run,
            "page_data": {
                "portfolio_id": run.pk,
                "status": run.status,
                "metrics": run.metrics,
                "contributions": run.contributions,
                "equity": curve_data(run.curve) if run.curve else None,
                "metric_info": _metric_info(),
                "urls": _urls(),
            },
        },
    )


def _replayed(run: PortfolioRun):
    try:
        return portfolio_replay(run), None
    except ReplayError as exc:
        return None, JsonResponse({"error": str(exc)}, status=409)


def trades_json(request: HttpRequest, portfolio_id: int) -> JsonResponse:
    """Return a page of the run's trades (``?page=``, ``?symbol=``) and, with
    ``?held=1``, each coin's held intervals (epoch ms) for the timeline."""
    run = _run_or_404(request, portfolio_id)
    result, error = _replayed(run)
    if error is not None:
        return error
    rows = trade_rows(result)
    symbol = request.GET.get("symbol", "")
    if symbol:
        rows = [r for r in rows if r["symbol"] == symbol]
    page = Paginator(rows, TRADES_PER_PAGE).get_page(request.GET.get("page"))
    body = {
        "trades": list(page.object_list),
        "page": page.number,
        "pages": page.paginator.num_pages,
        "count": page.paginator.count,
    }
    if request.GET.get("held"):
        trades = result.trades
        held: dict[str, list] = {}
        for s, entry, exit_ in zip(
            trades["symbol"].tolist(), trades["entry_time"].tolist(),
            trades["exit_time"].tolist(), strict=True,
        ):  # fmt: skip
            held.setdefault(s, []).append([entry * 1000, exit_ * 1000])
        body["held"] = held
    return JsonResponse(body)


def export_json(request: HttpRequest, portfolio_id: int) -> HttpResponse:
    """Download the run in the CLI's JSON shape, its trades replayed."""
    run = _run_or_404(request, portfolio_id)
    result, error = _replayed(run)
    if error is not None:
        return error
    response = HttpResponse(
        render_json(
            portfolio_data(run), run.metrics, run.contributions, trade_rows(result)
        ),
        content_type="application/json",
    )
    response["Content-Disposition"] = f'attachment; filename="portfolio-{run.pk}.json"'
    return response


def export_csv(request: HttpRequest, portfolio_id: int) -> HttpResponse:
    """Download the run's trades as CSV (text cells escaped for spreadsheets)."""
    run = _run_or_404(request, portfolio_id)
    result, error = _replayed(run)
    if error is not None:
        return error
    response = HttpResponse(render_csv(trade_rows(result)), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="portfolio-{run.pk}.csv"'
    return response
