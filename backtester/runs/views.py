"""Pages: the live run page, run history, run detail with charts, exports."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import LoginView
from django.core.paginator import Paginator
from django.db.models import F
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.views.decorators.http import require_POST

from backtester.library.selectors import strategy_choices
from backtester.runs.models import BacktestResult, BacktestRun
from backtester.runs.output import render_csv, render_json, risk_label
from backtester.runs.presenters import (
    beat_text,
    fee_text,
    gap_note,
    iso_or_none,
    plain,
    query_params,
    repeated_strategies,
    rerun_query,
    result_label,
    result_row_view,
    risk_fields,
    run_settings,
    selected_detail,
    shared_settings,
    side_line,
    signed,
    strategy_name,
    summary_pick,
    summary_rows,
    tone,
)
from backtester.runs.query import QueryError, query_text
from backtester.runs.selectors import (
    result_data,
    result_get,
    run_data,
    run_deletable,
    run_get,
    run_results,
    run_risk,
    runs_by_ids,
    runs_list,
)
from backtester.runs.services import run_remove, runs_mark_stale
from backtester.runs.validation import INTERVALS, MAX_FEE, MAX_SLIPPAGE_BPS
from prices.models import Source
from prices.selectors import coins_with_range, symbols_synthetic
from strategies.registry import STRATEGIES, schema

RUNS_PER_PAGE = 25
# The trade list's page sizes (trades.json takes any up to its 500).
TRADE_PAGE_SIZES = (25, 50, 100, 250, 500)


@login_not_required  # else LoginRequiredMiddleware sends the login page to itself
def login(request: HttpRequest) -> HttpResponse:
    """Show the login form, saying whether backtests need a login here."""
    view = LoginView.as_view(
        extra_context={"login_required": settings.BACKTESTS_REQUIRE_LOGIN}
    )
    return view(request)


def home(request: HttpRequest) -> HttpResponse:
    """Render the run form and the live results table."""
    coins = [
        {
            "symbol": c.symbol,
            "name": c.name,
            "first_bar": iso_or_none(c.first_bar),
            "last_bar": iso_or_none(c.last_bar),
            # seed_demo's synthetic prices, labelled wherever a result shows.
            "synthetic": c.source == Source.DEMO,
        }
        for c in coins_with_range()
    ]
    firsts = [c["first_bar"] for c in coins if c["first_bar"]]
    lasts = [c["last_bar"] for c in coins if c["last_bar"]]
    return render(
        request,
        "backtester/run.html",
        {
            # The built-ins, then the saved strategies this user may run.
            "strategies": schema() + strategy_choices(request.user),
            "risk_fields": risk_fields(),
            "coins": coins,
            "any_synthetic": any(c["synthetic"] for c in coins),
            "data_range": {
                "first": min(firsts) if firsts else None,
                "last": max(lasts) if lasts else None,
            },
            "limits": {
                "intervals": list(INTERVALS),
                "fee_max": MAX_FEE,
                "slippage_max": MAX_SLIPPAGE_BPS,
            },
        },
    )


RUN_STATUSES = [s.value for s in BacktestRun.Status]


def run_list(request: HttpRequest) -> HttpResponse:
    """Render saved runs, newest first, 25 a page; filter by strategy and status."""
    strategy = request.GET.get("strategy", "")
    status = request.GET.get("status", "")
    strategy = strategy if strategy in STRATEGIES else ""
    status = status if status in RUN_STATUSES else ""
    runs_mark_stale()
    runs_visible = runs_list(user=request.user, strategy=strategy, status=status)
    page = Paginator(runs_visible, RUNS_PER_PAGE).get_page(request.GET.get("page"))
    runs = [
        {
            "run": run,
            "settings": run_settings(run),
            "beat": beat_text(run.summary),
            "median": signed(run.summary.get("median_return_pct")),
            "median_tone": tone(run.summary.get("median_return_pct")),
            "deletable": run_deletable(run, user=request.user),
        }
        for run in page.object_list
    ]
    shared = shared_settings([item["settings"] for item in runs])
    # Runs on seed_demo's synthetic prices are labelled (one query a page).
    demo = set(symbols_synthetic({s for item in runs for s in item["run"].symbols}))
    for item in runs:
        item["synthetic"] = sorted(demo.intersection(item["run"].symbols))
    filters = urlencode({k: v for k, v in (("strategy", strategy),
                                           ("status", status)) if v})  # fmt: skip
    return render(
        request,
        "backtester/run_list.html",
        {
            "page": page,
            "runs": runs,
            "shared": shared,
            # Staff see everyone's runs, so the list says whose each one is.
            "show_owner": request.user.is_staff,
            "strategy_choices": [(k, spec.name) for k, spec in STRATEGIES.items()],
            "status_choices": RUN_STATUSES,
            "chosen": {"strategy": strategy, "status": status},
            "filters": filters,
        },
    )


@require_POST
def run_delete(request: HttpRequest, run_id: int) -> HttpResponse:
    """Delete one of the user's own finished runs, then show the history."""
    run = run_or_404(request, run_id)
    if not run_deletable(run, user=request.user):
        return HttpResponse(
            "only your own finished runs can be deleted", status=403,
            content_type="text/plain",
        )  # fmt: skip
    run_remove(run)
    back = request.POST.get("next", "")
    if not back.startswith("/runs/") or back.startswith("//"):
        back = reverse("run_list")
    return redirect(back)


MAX_COMPARED = 4


def run_compare(request: HttpRequest) -> HttpResponse:
    """Render 2 to 4 runs side by side, and their equity on one coin."""
    try:
        ids = list(dict.fromkeys(int(v) for v in request.GET.getlist("run")))
    except ValueError:
        return _compare_error(request, "run: give run numbers, e.g. ?run=3&run=5")
    if not 2 <= len(ids) <= MAX_COMPARED:
        return _compare_error(request, "pick 2 to 4 runs to compare")
    runs_mark_stale()
    runs = runs_by_ids(ids, user=request.user)
    if len(runs) != len(ids):
        raise Http404("no such runs")
    coins = sorted(set().union(*(r.symbols or [] for r in runs)))
    shared = [c for c in coins if all(c in (r.symbols or []) for r in runs)]
    try:
        symbol = query_text(request.GET, "symbol") or (shared or coins or [""])[0]
    except QueryError as exc:
        return _compare_error(request, exc.message)
    columns, series = [], []
    for run in runs:
        summary = run.summary or {}
        result = (
            run_results(run).filter(symbol=symbol, bars__gt=0)
            .order_by(F("total_return_pct").desc(nulls_last=True)).first()
        )  # fmt: skip
        columns.append(
            {
                "run": run,
                "settings": run_settings(run),
                "beat": beat_text(summary),
                "median": signed(summary.get("median_return_pct")),
                "median_tone": tone(summary.get("median_return_pct")),
                "mean": signed(summary.get("mean_return_pct")),
                "mean_tone": tone(summary.get("mean_return_pct")),
                "sharpe": plain(summary.get("mean_sharpe")),
                "best": summary.get("best") and summary_pick(summary["best"]),
                "worst": summary.get("worst") and summary_pick(summary["worst"]),
                "result": result,
                "result_return": result and signed(result.total_return_pct),
                "result_tone": result and tone(result.total_return_pct),
            }
        )
        if result is not None:
            series.append(
                {
                    "run": run.pk,
                    "label": f"#{run.pk} {strategy_name(result.strategy)}",
                    "url": reverse("run_equity", args=[run.pk])
                    + "?"
                    + urlencode(
                        {
                            "symbol": result.symbol,
                            "strategy": result.strategy,
                            "params": json.dumps(result.params),
                            "points": 1500,
                        }
                    ),
                }  # fmt: skip
            )
    return render(
        request,
        "backtester/run_compare.html",
        {
            "columns": columns,
            "coins": coins,
            "symbol": symbol,
            "ids": ids,
            "series": series,
        },
    )


def _compare_error(request: HttpRequest, message: str) -> HttpResponse:
    return render(
        request, "backtester/run_compare.html", {"error": message}, status=400
    )


def run_or_404(request: HttpRequest, run_id: int) -> BacktestRun:
    """Return the run if this request's user may see it; 404 otherwise, the
    same answer as for a run that does not exist."""
    try:
        runs_mark_stale()
        return run_get(run_id, user=request.user)
    except BacktestRun.DoesNotExist:
        raise Http404(f"no run {run_id}") from None


# A result whose range has a stretch longer than this without bars is flagged
# wherever results are shown (the live table does the same in results.js).


def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    """Render one run: summary, results, and charts for a selected result."""
    run = run_or_404(request, run_id)
    results = list(run_results(run))
    repeated = repeated_strategies(run)
    wanted = (request.GET.get("symbol"), request.GET.get("strategy"))
    params = query_params(request.GET.get("params"))
    chosen = next(
        (
            r
            for r in results
            if (r.symbol, r.strategy) == wanted and params in (None, r.params)
        ),
        None,
    )
    if chosen is None:
        chosen = next((r for r in results if r.metrics), None)  # the best
    selected = (
        result_get(
            run, symbol=chosen.symbol, strategy=chosen.strategy, key=chosen.params_key
        )
        if chosen is not None
        else None
    )
    summary = run.summary or {}
    best, worst = summary.get("best"), summary.get("worst")
    risk = run_risk(run)
    # The page swaps results in place by asking for this section alone.
    fragment = request.GET.get("fragment") == "result"
    return render(
        request,
        "backtester/run_result.html" if fragment else "backtester/run_detail.html",
        {
            "run": run,
            "synthetic": symbols_synthetic(run.symbols),
            "strategies": [
                {"name": strategy_name(s["strategy"]), "params": s.get("params", {})}
                for s in run.strategies
            ],
            "summary": summary,
            "risk": risk.as_dict(),
            "rerun_query": rerun_query(run),
            "fee_text": fee_text(run),
            "risk_text": risk_label(risk.as_dict()),
            "beat": beat_text(summary),
            "median": signed(summary.get("median_return_pct")),
            "median_tone": tone(summary.get("median_return_pct")),
            "mean": signed(summary.get("mean_return_pct")),
            "mean_tone": tone(summary.get("mean_return_pct")),
            "sharpe": plain(summary.get("mean_sharpe")),
            "best": best and summary_pick(best, repeated),
            "worst": worst and summary_pick(worst, repeated),
            "by_strategy": summary_rows(summary),
            "rows": [result_row_view(run, r, repeated) for r in results],
            "selected": selected,
            "trade_page_sizes": TRADE_PAGE_SIZES,
            "selected_query": selected
            and urlencode(
                {
                    "symbol": selected.symbol,
                    "strategy": selected.strategy,
                    "params": json.dumps(selected.params),
                }
            ),
            "selected_name": selected and strategy_name(selected.strategy),
            "selected_cells": selected and result_row_view(run, selected)["cells"],
            "selected_gap": selected and gap_note(selected.metrics),
            "selected_sides": selected and side_line(selected.metrics),
            **selected_detail(run, selected),
            "heatmap": [
                {
                    "symbol": r.symbol,
                    # The heatmap's row: one per (strategy, parameter set).
                    "row": f"{r.strategy}|{r.params_key}",
                    "label": result_label(r.strategy, r.params, repeated),
                    "strategy": r.strategy,
                    "params": r.params,
                    "value": r.total_return_pct,
                }
                for r in results
            ]
            if len(run.strategies) > 1 and results
            else None,  # fmt: skip
            "names": {key: spec.name for key, spec in STRATEGIES.items()},
            "chart_request": {
                "equity_url": reverse("run_equity", args=[run.pk]),
                "price_url": reverse("run_price", args=[run.pk]),
                "trades_url": reverse("run_trades", args=[run.pk]),
                "symbol": selected.symbol if selected else None,
                "strategy": selected.strategy if selected else None,
                "params": selected.params if selected else None,
                "max_drawdown_pct": selected.max_drawdown_pct if selected else None,
                "num_trades": selected.num_trades if selected else 0,
                "first": _first_urls(run, selected),
            },
        },
    )


# Points of the first chart request: fixed, so the page can ask for the data in
# its head (preload) while the chart library is still loading.
FIRST_POINTS = 1200


def _first_urls(run: BacktestRun, selected: BacktestResult | None) -> dict | None:
    """Return the URLs of the selected result's first chart data, or None."""
    if selected is None or not selected.metrics:
        return None
    query = "?" + urlencode(
        {
            "symbol": selected.symbol,
            "strategy": selected.strategy,
            "params": json.dumps(selected.params),
            "points": FIRST_POINTS,
        }
    )
    return {
        "price": reverse("run_price", args=[run.pk]) + query,
        "equity": reverse("run_equity", args=[run.pk]) + query,
    }


def _export_payload(run: BacktestRun) -> tuple[dict, list[dict], dict]:
    risk = run_risk(run)
    results = [result_data(r, risk=risk) for r in run_results(run)]
    return run_data(run), results, run.summary


def run_export_json(request: HttpRequest, run_id: int) -> HttpResponse:
    """Download the run in the CLI's JSON shape."""
    run = run_or_404(request, run_id)
    response = HttpResponse(
        render_json(*_export_payload(run)), content_type="application/json"
    )
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}.json"'
    return response


def run_export_csv(request: HttpRequest, run_id: int) -> HttpResponse:
    """Download the run's results as CSV."""
    run = run_or_404(request, run_id)
    _, results, _ = _export_payload(run)
    response = HttpResponse(render_csv(results), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}.csv"'
    return response


@login_not_required
def favicon(request: HttpRequest) -> HttpResponse:
    """Redirect the browsers' /favicon.ico to the icon among the static files."""
    return redirect(static("backtester/favicon.svg"), permanent=True)
