"""Portfolio sweep pages: history, a sweep's heatmap and table, exports."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from backtester.portfolio.models import PortfolioSweep
from backtester.portfolio.sweep_output import (
    TABLE_COLUMNS,
    ranked,
    render_csv,
    render_json,
)
from backtester.portfolio.sweep_selectors import (
    psweep_export,
    psweep_get,
    psweeps_list,
)
from backtester.portfolio.sweep_services import psweeps_mark_stale

SWEEPS_PER_PAGE = 25
# What the heatmap may be coloured by: every objective (PORTFOLIO_OBJECTIVES),
# then the account's own numbers; (key, label, higher is better).
HEAT_METRICS = [
    ("total_return_pct", "Return %", True),
    ("cagr_pct", "CAGR %", True),
    ("sharpe", "Sharpe", True),
    ("sortino", "Sortino", True),
    ("calmar", "Calmar", True),
    ("profit_factor", "Profit factor", True),
    ("win_rate_pct", "Win rate %", True),
    ("max_drawdown_pct", "Max drawdown %", False),
    ("exposure_pct", "Exposure %", True),
    ("avg_positions", "Average positions", True),
    ("rejected_signals", "Rejected signals", False),
    ("num_trades", "Trades", True),
]


def heat_metrics() -> list[dict]:
    """Return the metrics a portfolio heatmap can show, for json_script."""
    return [
        {"key": k, "label": label, "higher_is_better": better}
        for k, label, better in HEAT_METRICS
    ]


def _params_text(params: dict | None, names: list[str]) -> str:
    if not params:
        return "–"
    return ", ".join(f"{n}={params.get(n)}" for n in names)


def _sweep_or_404(request: HttpRequest, sweep_id: int) -> PortfolioSweep:
    psweeps_mark_stale()
    try:
        return psweep_get(sweep_id, user=request.user)
    except PortfolioSweep.DoesNotExist:
        raise Http404(f"no portfolio sweep {sweep_id}") from None


def psweep_list(request: HttpRequest) -> HttpResponse:
    """Render the user's portfolio sweeps, newest first."""
    psweeps_mark_stale()
    page = Paginator(psweeps_list(user=request.user), SWEEPS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    rows = [
        {
            "sweep": sweep,
            "axes": " × ".join(
                f"{name} ({len(values)})" for name, values in sweep.ordered_axes.items()
            ),
            "best": _params_text(
                (sweep.best or {}).get("params"), list(sweep.ordered_axes)
            ),
        }
        for sweep in page.object_list
    ]
    return render(request, "portfolio/psweep_list.html", {"page": page, "rows": rows})


def psweep_detail(request: HttpRequest, sweep_id: int) -> HttpResponse:
    """Render a stored portfolio sweep: settings, heatmap and its cells' table."""
    sweep = _sweep_or_404(request, sweep_id)
    export = psweep_export(sweep)
    names = list(sweep.ordered_axes)
    table = [
        {
            "axes": [cell["params"].get(n) for n in names],
            "values": [cell.get(key) for _, key, _ in TABLE_COLUMNS],
        }
        for cell in ranked(export["cells"], sweep.objective)
    ]
    items = [
        {"index": i, "params": c["params"],
         "metrics": {k: v for k, v in c.items() if k != "params"}}
        for i, c in enumerate(export["cells"])
    ]  # fmt: skip
    best = sweep.best
    return render(
        request,
        "portfolio/psweep_detail.html",
        {
            "sweep": sweep,
            "names": names,
            "columns": [h for h, _, _ in TABLE_COLUMNS],
            "colspan": len(names) + len(TABLE_COLUMNS),
            "table": table,
            "best_text": _params_text((best or {}).get("params"), names),
            "page_data": {
                "sweep_id": sweep.pk,
                "axes": sweep.ordered_axes,
                "objective": sweep.objective,
                "metrics": heat_metrics(),
                "cells": items,
                "best_params": (best or {}).get("params"),
            },
        },
    )


def psweep_export_json(request: HttpRequest, sweep_id: int) -> HttpResponse:
    """Download the sweep in the command line's JSON shape."""
    sweep = _sweep_or_404(request, sweep_id)
    response = HttpResponse(
        render_json(psweep_export(sweep)), content_type="application/json"
    )
    name = f"portfolio-sweep-{sweep.pk}.json"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def psweep_export_csv(request: HttpRequest, sweep_id: int) -> HttpResponse:
    """Download one row per cell (text cells escaped for spreadsheets)."""
    sweep = _sweep_or_404(request, sweep_id)
    response = HttpResponse(render_csv(psweep_export(sweep)), content_type="text/csv")
    name = f"portfolio-sweep-{sweep.pk}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
