"""Pages: the live run page, run history, run detail with charts, exports."""

from __future__ import annotations

import json
from datetime import datetime
from urllib.parse import urlencode

import numpy as np
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import LoginView
from django.core.paginator import Paginator
from django.db.models import F
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from backtester.runs.metric_info import METRICS
from backtester.runs.models import BacktestResult, BacktestRun
from backtester.runs.output import render_csv, render_json, risk_label
from backtester.runs.replay import ReplayError, result_replay
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
from backtester.runs.series import monthly_returns
from backtester.runs.services import run_remove
from backtester.runs.trades import EXIT_REASONS
from backtester.runs.validation import INTERVALS, MAX_FEE, MAX_SLIPPAGE_BPS
from prices.selectors import coins_active, coins_with_range
from strategies.engine import INITIAL_EQUITY
from strategies.registry import STRATEGIES, schema
from strategies.risk import risk_schema, validate_risk

RUNS_PER_PAGE = 25
MINUS = "\u2212"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def strategy_name(key: str) -> str:
    """Return a strategy's display name (the key itself if it is unknown)."""
    spec = STRATEGIES.get(key)
    return spec.name if spec else key


def _repeated(run: BacktestRun) -> set[str]:
    """Return the strategies a run holds with more than one parameter set."""
    keys = run.strategy_keys
    return {key for key in keys if keys.count(key) > 1}


def result_label(strategy: str, params: dict, repeated: set[str]) -> str:
    """Return a result's strategy name, with its parameters where the run holds
    the strategy more than once (so the two rows can be told apart)."""
    name = strategy_name(strategy)
    return f"{name} ({params_text(params)})" if strategy in repeated else name


def result_query(symbol: str, strategy: str, params: dict | None) -> str:
    """Return the query naming one result: its coin, strategy and parameters."""
    fields = {"symbol": symbol, "strategy": strategy}
    if params is not None:
        fields["params"] = json.dumps(params)
    return urlencode(fields)


def signed(value: float | None, digits: int = 2) -> str:
    """Format a number with an explicit + or \u2212 sign ("\u2013" for None)."""
    if value is None:
        return "\u2013"
    text = f"{abs(value):,.{digits}f}"
    if float(text.replace(",", "")) == 0:
        return text
    return ("+" if value > 0 else MINUS) + text


# How the form shows each risk setting: label, input step, and choice names.
RISK_LABELS = {
    "stop_loss_pct": ("Stop-loss", "0.5"),
    "take_profit_pct": ("Take-profit", "0.5"),
    "trailing_stop_pct": ("Trailing stop", "0.5"),
    "direction": ("Direction", ""),
    "position_size": ("Position size", "0.05"),
}
DIRECTION_NAMES = {"long": "Long only", "short": "Short only", "both": "Both sides"}
# Exit reasons as the detail page names them (the chart legend says the same).
REASON_NAMES = {
    "signal": "signal", "stop_loss": "stop", "take_profit": "target",
    "trailing_stop": "trailing", "end": "end", "liquidation": "liquidation",
}  # fmt: skip


def risk_fields() -> list[dict]:
    """Return the form's risk inputs, built from the published risk schema."""
    fields = []
    for entry in risk_schema():
        label, step = RISK_LABELS.get(entry["name"], (entry["name"], "any"))
        field = {
            "name": entry["name"],
            "label": label,
            "unit": entry["unit"],
            "help": entry["help"],
            "default": entry["default"],
        }
        if entry.get("min") is not None:
            low = "above" if entry["min_exclusive"] else "from"
            high = "below" if entry["max_exclusive"] else "up to"
            limits = f"{low} {entry['min']:g}, {high} {entry['max']:g}"
            if entry["default"] is None:
                field["help"] += f" Empty: off; {limits}."
            else:
                field["help"] += (
                    f" {limits.capitalize()}; default {entry['default']:g}."
                )
        if entry.get("choices"):
            field["choices"] = [
                (c, DIRECTION_NAMES.get(c, c)) for c in entry["choices"]
            ]
        else:
            field.update(
                min=f"{entry['min']:g}",
                max=f"{entry['max']:g}",
                min_open=entry["min_exclusive"],
                max_open=entry["max_exclusive"],
                step=step,
                placeholder="off" if entry["default"] is None else entry["default"],
            )
        fields.append(field)
    return fields


def _tone(value: float | None) -> str:
    if value is None or value == 0:
        return ""
    return "gain" if value > 0 else "loss"


def _plain(value: float | None, digits: int = 2) -> str:
    """Format a number with a typographic minus and no plus sign."""
    return signed(value, digits).lstrip("+")


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
            "risk_fields": risk_fields(),
            "coins": coins,
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


def params_text(params: dict) -> str:
    """Return parameters as "fast=20, slow=50"."""
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in params.items())  # fmt: skip


def fee_text(run: BacktestRun) -> str:
    """Return the fee as a percentage and the slippage in bps ("0.1% · 0 bps")."""
    return f"{run.fee * 100:g}% · {run.slippage_bps:g} bps"


def run_settings(run: BacktestRun) -> dict:
    """Return what a run was set to, for the history and compare pages."""
    if len(run.strategies) == 1:
        item = run.strategies[0]
        strategy = strategy_name(item["strategy"])
        params = params_text(item.get("params") or {})
    else:
        strategy = f"{len(run.strategies)} strategies"
        params = ", ".join(strategy_name(s["strategy"]) for s in run.strategies)
    symbols = run.symbols or []
    shown = ", ".join(symbols[:4]) + ("\u2026" if len(symbols) > 4 else "")
    return {
        "strategy": strategy,
        "params": params,
        "coins": f"{len(symbols)} \u00b7 {shown}" if symbols else "0",
        "all_coins": ", ".join(symbols),
        "range": (f"{run.start:%Y-%m-%d} " if run.start else "first bar ")
        + (f"\u2192 {run.end:%Y-%m-%d}" if run.end else "\u2192 last bar"),
        "fee": fee_text(run),
        "risk": risk_label(run.risk) or "long, all in",
    }


def active_symbols() -> list[str]:
    return list(coins_active().values_list("symbol", flat=True))


def rerun_query(run: BacktestRun) -> str:
    """Return the run page's address query that fills the form with this run's
    settings (the form reads them from the address, see form.js)."""
    query: dict[str, object] = {}
    if len(run.strategies) == 1:
        item = run.strategies[0]
        query["strategy"] = item["strategy"]
        for name, value in (item.get("params") or {}).items():
            query[f"p.{name}"] = value
    else:
        query["strategy"] = "all"
    if run.symbols and set(run.symbols) != set(active_symbols()):
        query["symbols"] = ",".join(run.symbols)
    if run.start:
        query["start"] = f"{run.start:%Y-%m-%d}"
    if run.end:
        query["end"] = f"{run.end:%Y-%m-%d}"
    query.update(interval=run.interval, fee=f"{run.fee:g}",
                 slippage_bps=f"{run.slippage_bps:g}")  # fmt: skip
    risk = run_risk(run).as_dict()
    defaults = validate_risk(None).as_dict()
    for name, value in risk.items():
        if value != defaults.get(name) and value is not None:
            query[name] = value
    return urlencode(query)


RUN_STATUSES = [s.value for s in BacktestRun.Status]


def run_list(request: HttpRequest) -> HttpResponse:
    """Render saved runs, newest first, 25 a page; filter by strategy and status."""
    strategy = request.GET.get("strategy", "")
    status = request.GET.get("status", "")
    strategy = strategy if strategy in STRATEGIES else ""
    status = status if status in RUN_STATUSES else ""
    runs_visible = runs_list(user=request.user, strategy=strategy, status=status)
    page = Paginator(runs_visible, RUNS_PER_PAGE).get_page(request.GET.get("page"))
    runs = [
        {
            "run": run,
            "settings": run_settings(run),
            "beat": _beat(run.summary),
            "median": signed(run.summary.get("median_return_pct")),
            "median_tone": _tone(run.summary.get("median_return_pct")),
            "deletable": run_deletable(run, user=request.user),
        }
        for run in page.object_list
    ]
    filters = urlencode({k: v for k, v in (("strategy", strategy),
                                           ("status", status)) if v})  # fmt: skip
    return render(
        request,
        "backtester/run_list.html",
        {
            "page": page,
            "runs": runs,
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
    run = _run_or_404(request, run_id)
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
    runs = runs_by_ids(ids, user=request.user)
    if len(runs) != len(ids):
        raise Http404("no such runs")
    coins = sorted(set().union(*(r.symbols or [] for r in runs)))
    shared = [c for c in coins if all(c in (r.symbols or []) for r in runs)]
    symbol = request.GET.get("symbol") or (shared or coins or [""])[0]
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
                "beat": _beat(summary),
                "median": signed(summary.get("median_return_pct")),
                "median_tone": _tone(summary.get("median_return_pct")),
                "mean": signed(summary.get("mean_return_pct")),
                "sharpe": _plain(summary.get("mean_sharpe")),
                "best": summary.get("best") and _pick(summary["best"]),
                "worst": summary.get("worst") and _pick(summary["worst"]),
                "result": result,
                "result_return": result and signed(result.total_return_pct),
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


def _beat(summary: dict) -> str:
    """Return "beat / scored" for a run summary ("\u2013" before it has one)."""
    if not summary.get("results"):
        return "\u2013"
    scored = summary["results"] - summary.get("skipped", 0)
    return f"{summary.get('beat_buy_hold', 0)} / {scored}"


def _run_or_404(request: HttpRequest, run_id: int) -> BacktestRun:
    """Return the run if this request's user may see it; 404 otherwise, the
    same answer as for a run that does not exist."""
    try:
        return run_get(run_id, user=request.user)
    except BacktestRun.DoesNotExist:
        raise Http404(f"no run {run_id}") from None


# A result whose range has a stretch longer than this without bars is flagged
# wherever results are shown (the live table does the same in results.js).
GAP_FLAG_HOURS = 24.0


def gap_note(metrics: dict | None) -> str | None:
    """Return a sentence about the gaps in a result's range when its longest one
    is over GAP_FLAG_HOURS, else None."""
    hours = (metrics or {}).get("longest_gap_hours")
    if hours is None or not hours > GAP_FLAG_HOURS:
        return None
    missing = metrics.get("missing_bars") or 0
    return (
        f"{missing:,} bars missing in this range; the longest gap is {hours:,.0f} hours"
    )


def _result_row(
    run: BacktestRun, result: BacktestResult, repeated: set[str] = frozenset()
) -> dict:
    """Return a result as display cells, each (text, css class, sort value)."""
    excess = result.excess_return_pct
    # A fall, negative everywhere it is shown (the stored metric is positive).
    drawdown = None if result.max_drawdown_pct is None else -result.max_drawdown_pct
    metrics = [
        (signed(result.total_return_pct), _tone(result.total_return_pct),
         result.total_return_pct),
        (signed(result.buy_hold_return_pct), _tone(result.buy_hold_return_pct),
         result.buy_hold_return_pct),
        (signed(excess), _tone(excess), excess),
        (_plain(result.sharpe), "", result.sharpe),
        (_plain(drawdown), "", drawdown),
        (str(result.num_trades), "", result.num_trades),
        (_plain(result.win_rate_pct, 1), "", result.win_rate_pct),
    ]  # fmt: skip
    query = "?" + result_query(result.symbol, result.strategy, result.params)
    return {
        "symbol": result.symbol,
        "strategy": result.strategy,
        "strategy_name": result_label(result.strategy, result.params, repeated),
        "cells": metrics if result.metrics else [],
        "url": reverse("run_detail", args=[run.pk]) + query + "#chart",
        "gap": gap_note(result.metrics),
    }


def _pick(item: dict, repeated: set[str] = frozenset()) -> dict:
    """Return a summary's best or worst result with its display name and link."""
    query = result_query(item["symbol"], item["strategy"], item.get("params"))
    label = result_label(item["strategy"], item.get("params") or {}, repeated)
    return {
        "label": f"{item['symbol']} \u00b7 {label}",
        "text": signed(item["total_return_pct"]),
        "query": f"?{query}#chart",
    }


def _summary_rows(summary: dict) -> list[dict]:
    """Return the per-strategy summary of a multi-strategy run for display."""
    rows = []
    for key, item in (summary.get("by_strategy") or {}).items():
        best = item.get("best") or {}
        rows.append(
            {
                "name": strategy_name(key),
                "results": item.get("results", 0),
                "beat": _beat(item),
                "median": signed(item.get("median_return_pct")),
                "median_tone": _tone(item.get("median_return_pct")),
                "sharpe": _plain(item.get("mean_sharpe")),
                "best": (
                    f"{best['symbol']} {signed(best['total_return_pct'])}%"
                    if best
                    else "\u2013"
                ),
            }
        )
    return rows


def _reason_order(reason: str) -> tuple[int, str]:
    known = reason in EXIT_REASONS
    return (EXIT_REASONS.index(reason) if known else len(EXIT_REASONS), reason)


def _side_line(metrics: dict | None) -> dict | None:
    """Return a result's trades by side and by exit reason, for display.

    None for results without those metrics (stored before them) and for long
    runs that only ever left on a signal or at the end: nothing to add there.
    """
    metrics = metrics or {}
    reasons = metrics.get("exit_reasons")
    if reasons is None:
        return None
    plain_long = not metrics.get("short_trades") and not any(
        reasons.get(r) for r in ("stop_loss", "take_profit", "trailing_stop",
                                 "liquidation")
    )  # fmt: skip
    if plain_long:
        return None
    return {
        "sides": [
            (side, metrics.get(f"{side}_trades") or 0,
             _plain(metrics.get(f"win_rate_{side}_pct"), 1))
            for side in ("long", "short")
        ],
        # In the documented order: jsonb (PostgreSQL) does not keep key order.
        "reasons": [
            (reason, REASON_NAMES.get(reason, reason), reasons[reason])
            for reason in sorted(reasons, key=_reason_order)
            if reasons[reason]
        ],
    }  # fmt: skip


MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
          "Nov", "Dec")  # fmt: skip


def _metric_cells(metrics: dict) -> list[dict]:
    """Return every metric of a result for display, with its unit and formula."""
    cells = []
    for info in METRICS:
        value = metrics.get(info.key)
        if info.key == "max_drawdown_pct" and value is not None:
            value = -value  # a fall: shown negative everywhere, as in the chart
        if value is None:
            text = "\u2013"
        elif info.unit == "%" and info.key.endswith("return_pct"):
            text = signed(value, info.digits)
        else:
            text = _plain(value, info.digits) if info.digits else f"{value:,.0f}"
        unit = {"%": "%", "bars": " bars", "hours": " h", "USDT": " USDT"}.get(
            info.unit, ""
        )
        cells.append(
            {
                "key": info.key,
                "label": info.label,
                "text": text + (unit if value is not None else ""),
                "tone": _tone(value) if info.key.endswith("return_pct") else "",
                "help": f"{info.help} Unit: {info.unit or 'count'}.",
            }
        )
    return cells


def _monthly_table(months: list[tuple[int, int, float]]) -> list[dict]:
    """Return year rows of 12 month cells (None where no bars) and the year."""
    years: dict[int, list] = {}
    for year, month, value in months:
        years.setdefault(year, [None] * 12)[month - 1] = value
    rows = []
    for year, values in years.items():
        growth = np.prod([1 + v / 100 for v in values if v is not None])
        total = float((growth - 1) * 100)
        rows.append(
            {
                "year": year,
                "cells": [
                    None if v is None else {"text": signed(v, 1), "tone": _tone(v)}
                    for v in values
                ],
                "total": {"text": signed(total, 1), "tone": _tone(total)},
            }
        )
    return rows


def _selected_detail(run: BacktestRun, selected: BacktestResult | None) -> dict:
    """Return the selected result's metrics and monthly returns (from a replay)."""
    if selected is None or not selected.metrics:
        return {"metric_cells": [], "monthly": [], "replay_error": ""}
    try:
        replay = result_replay(run, selected)
    except ReplayError as exc:
        return {
            "metric_cells": _metric_cells(selected.metrics),
            "monthly": [],
            "replay_error": str(exc),
        }
    months = monthly_returns(replay.bars.time, replay.result.equity, INITIAL_EQUITY)
    return {
        "metric_cells": _metric_cells(selected.metrics),
        "monthly": _monthly_table(months),
        "month_names": MONTHS,
        "replay_error": "",
    }


def _query_params(raw: str | None) -> dict | None:
    """Return the ``params`` of a result link (JSON), or None if absent or bad."""
    try:
        params = json.loads(raw) if raw else None
    except ValueError:
        return None
    return params if isinstance(params, dict) else None


def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    """Render one run: summary, results, and charts for a selected result."""
    run = _run_or_404(request, run_id)
    results = list(run_results(run))
    repeated = _repeated(run)
    wanted = (request.GET.get("symbol"), request.GET.get("strategy"))
    params = _query_params(request.GET.get("params"))
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
            "strategies": [
                {"name": strategy_name(s["strategy"]), "params": s.get("params", {})}
                for s in run.strategies
            ],
            "summary": summary,
            "risk": risk.as_dict(),
            "rerun_query": rerun_query(run),
            "fee_text": fee_text(run),
            "risk_text": risk_label(risk.as_dict()),
            "beat": _beat(summary),
            "median": signed(summary.get("median_return_pct")),
            "median_tone": _tone(summary.get("median_return_pct")),
            "mean": signed(summary.get("mean_return_pct")),
            "mean_tone": _tone(summary.get("mean_return_pct")),
            "sharpe": _plain(summary.get("mean_sharpe")),
            "best": best and _pick(best, repeated),
            "worst": worst and _pick(worst, repeated),
            "by_strategy": _summary_rows(summary),
            "rows": [_result_row(run, r, repeated) for r in results],
            "selected": selected,
            "selected_query": selected
            and urlencode(
                {
                    "symbol": selected.symbol,
                    "strategy": selected.strategy,
                    "params": json.dumps(selected.params),
                }
            ),
            "selected_name": selected and strategy_name(selected.strategy),
            "selected_cells": selected and _result_row(run, selected)["cells"],
            "selected_gap": selected and gap_note(selected.metrics),
            "selected_sides": selected and _side_line(selected.metrics),
            **_selected_detail(run, selected),
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
    run = _run_or_404(request, run_id)
    response = HttpResponse(
        render_json(*_export_payload(run)), content_type="application/json"
    )
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}.json"'
    return response


def run_export_csv(request: HttpRequest, run_id: int) -> HttpResponse:
    """Download the run's results as CSV."""
    run = _run_or_404(request, run_id)
    _, results, _ = _export_payload(run)
    response = HttpResponse(render_csv(results), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}.csv"'
    return response
