"""Sweep pages: the live sweep page, history, detail, a cell's coins, exports."""

from __future__ import annotations

from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from backtester.execution.handles import RunnerBusy
from backtester.library.selectors import strategy_choices
from backtester.runs.output import risk_label
from backtester.runs.presenters import risk_fields
from backtester.runs.services import run_admit, run_coins, run_create, run_start
from backtester.runs.validation import (
    INTERVALS,
    MAX_SLIPPAGE_BPS,
    RISK_FIELDS,
    RequestError,
    run_spec,
)
from backtester.sweeps.models import Sweep, SweepCell
from backtester.sweeps.output import render_csv, render_json
from backtester.sweeps.selectors import (
    cell_coins,
    cell_get,
    sweep_cells,
    sweep_export,
    sweep_get,
    sweeps_list,
)
from backtester.sweeps.services import sweeps_mark_stale
from prices.selectors import coins_with_range
from strategies.registry import STRATEGIES, schema
from strategies.sweep import OBJECTIVES, split_params

SWEEPS_PER_PAGE = 25
# The metrics a heatmap can be coloured by, with their labels.
METRICS = {
    "median_return_pct": "Median return %",
    "mean_sharpe": "Mean Sharpe",
    "beat_buy_hold": "Beat buy & hold (coins)",
    "median_max_drawdown_pct": "Median max drawdown %",
    "mean_return_pct": "Mean return %",
}
# A one-coin run started from a cell waits this long for its result.
CELL_RUN_TIMEOUT_S = 60


def _iso(value) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _sweep_or_404(request: HttpRequest, sweep_id: int) -> Sweep:
    try:
        sweeps_mark_stale()
        return sweep_get(sweep_id, user=request.user)
    except Sweep.DoesNotExist:
        raise Http404(f"no sweep {sweep_id}") from None


def _metric_options() -> list[dict]:
    return [
        {"key": key, "label": label, "higher_is_better": OBJECTIVES[key]}
        for key, label in METRICS.items()
    ]


def sweep_page(request: HttpRequest) -> HttpResponse:
    """Render the sweep form and the live heatmap."""
    coins = [
        {
            "symbol": c.symbol,
            "first_bar": _iso(c.first_bar),
            "last_bar": _iso(c.last_bar),
        }
        for c in coins_with_range()
    ]
    return render(
        request,
        "sweeps/sweep.html",
        {
            "page_data": {
                "strategies": schema() + strategy_choices(request.user),
                "coins": coins,
                "metrics": _metric_options(),
                # Numeric risk settings may be an axis too (as on the CLI).
                "risk_axes": [f for f in risk_fields() if not f.get("choices")],
                "urls": {"base": reverse("sweep_page")},
            },
            "coins": coins,
            "risk_fields": risk_fields(),
            "limits": {"intervals": list(INTERVALS), "slippage_max": MAX_SLIPPAGE_BPS},
        },
    )


def sweep_list(request: HttpRequest) -> HttpResponse:
    """Render the user's sweeps, newest first."""
    sweeps_mark_stale()
    page = Paginator(sweeps_list(user=request.user), SWEEPS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    rows = [
        {
            "sweep": sweep,
            "strategy": STRATEGIES[sweep.strategy].name
            if sweep.strategy in STRATEGIES
            else sweep.strategy,
            "axes": " × ".join(
                f"{name} ({len(values)})" for name, values in sweep.ordered_axes.items()
            ),
            "best": sweep.best,
            "best_params": _axis_text(sweep, sweep.best),
        }
        for sweep in page.object_list
    ]
    return render(request, "sweeps/sweep_list.html", {"page": page, "rows": rows})


def _axis_text(sweep: Sweep, cell: dict | None) -> str:
    if not cell:
        return "\u2013"
    return ", ".join(
        f"{name}={cell['params'].get(name)}" for name in sweep.ordered_axes
    )


def _cell_data(cell: SweepCell) -> dict:
    return {"index": cell.index, "params": cell.params, "metrics": cell.metrics()}


def sweep_detail(request: HttpRequest, sweep_id: int) -> HttpResponse:
    """Render a stored sweep: its heatmap, best cells and exports."""
    sweep = _sweep_or_404(request, sweep_id)
    return render(
        request,
        "sweeps/sweep_detail.html",
        {
            "sweep": sweep,
            "strategy_name": STRATEGIES[sweep.strategy].name
            if sweep.strategy in STRATEGIES
            else sweep.strategy,
            "axes_text": " × ".join(
                f"{name} {values[0]}…{values[-1]} ({len(values)})"
                for name, values in sweep.ordered_axes.items()
            ),
            "best_text": _axis_text(sweep, sweep.best),
            "objective_label": METRICS.get(sweep.objective, sweep.objective),
            "risk_text": risk_label(
                {k: v for k, v in sweep.base_params.items() if k in RISK_FIELDS}
            )
            or "long, all in",
            "page_data": {
                "sweep_id": sweep.pk,
                "status": sweep.status,
                "axes": sweep.ordered_axes,
                "objective": sweep.objective,
                "combinations": len(sweep.combinations),
                "cells": [_cell_data(c) for c in sweep_cells(sweep)],
                "metrics": _metric_options(),
                "best_index": (sweep.best or {}).get("index"),
                "urls": {"base": reverse("sweep_page")},
            },
        },
    )


def cell_detail(request: HttpRequest, sweep_id: int, index: int) -> JsonResponse:
    """Return one combination's cell and its per-coin results as JSON."""
    sweep = _sweep_or_404(request, sweep_id)
    try:
        cell = cell_get(sweep, index)
    except SweepCell.DoesNotExist:
        return JsonResponse(
            {"error": f"sweep {sweep_id} has no cell {index}"}, status=404
        )
    return JsonResponse(
        {
            "sweep_id": sweep.pk,
            "index": cell.index,
            "params": cell.params,
            "done": cell.done,
            "metrics": cell.metrics(),
            "coins": cell_coins(sweep, index) if cell.done else [],
            "run_url": reverse("sweep_cell_run", args=[sweep.pk, cell.index]),
        }
    )


@require_POST
def cell_run(request: HttpRequest, sweep_id: int, index: int) -> HttpResponse:
    """Backtest one coin with a cell's parameters as a normal run; show it."""
    sweep = _sweep_or_404(request, sweep_id)
    try:
        cell = cell_get(sweep, index)
    except SweepCell.DoesNotExist:
        raise Http404(f"sweep {sweep_id} has no cell {index}") from None
    symbol = request.POST.get("symbol", "")
    if symbol not in sweep.symbols:
        return HttpResponse(
            f"symbol: {symbol!r} is not a coin of sweep {sweep_id}", status=400
        )
    params, risk = split_params(cell.params)
    try:
        spec = run_spec(
            {
                "strategy": sweep.strategy,
                "params": params,
                **risk,
                "symbols": [symbol],
                "start": _iso(sweep.start),
                "end": _iso(sweep.end),
                "interval": sweep.interval,
                "fee": sweep.fee,
                "slippage_bps": sweep.slippage_bps,
                # The saved version the sweep ran; the sweep's owner saw it.
                **(
                    {"version": sweep.strategy_version.number}
                    if sweep.strategy_version_id
                    else {}
                ),
            },
            user=request.user,
            trusted=True,
        )
        coins = run_coins(spec)
    except RequestError as exc:
        return HttpResponse(exc.message, status=400)
    try:
        # The limits a run from the run page meets (per-user cap, throttle).
        slot = run_admit(user=request.user, address=request.META.get("REMOTE_ADDR"))
    except RunnerBusy as exc:
        return HttpResponse(str(exc), status=503)
    try:
        run = run_create(spec=spec, coins=coins, user=request.user)
        handle = run_start(
            run=run, spec=spec, coins=coins, publish=lambda _: None, slot=slot
        )
    except BaseException as exc:
        slot.release()  # a no-op once the run took its place
        if isinstance(exc, RunnerBusy):
            return HttpResponse(str(exc), status=503)
        raise
    handle.wait(CELL_RUN_TIMEOUT_S)
    query = urlencode({"symbol": symbol, "strategy": sweep.strategy})
    return redirect(reverse("run_detail", args=[run.pk]) + f"?{query}")


def export_json(request: HttpRequest, sweep_id: int) -> HttpResponse:
    """Download the sweep in the CLI's JSON shape."""
    sweep = _sweep_or_404(request, sweep_id)
    response = HttpResponse(
        render_json(sweep_export(sweep)), content_type="application/json"
    )
    response["Content-Disposition"] = f'attachment; filename="sweep-{sweep.pk}.json"'
    return response


def export_csv(request: HttpRequest, sweep_id: int) -> HttpResponse:
    """Download the sweep's cells as CSV (text cells escaped for spreadsheets)."""
    sweep = _sweep_or_404(request, sweep_id)
    response = HttpResponse(render_csv(sweep_export(sweep)), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="sweep-{sweep.pk}.csv"'
    return response
