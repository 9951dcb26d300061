"""How runs read on the pages: labels, signs and tones, settings, summaries,
metric cells and monthly tables (pure functions over stored runs)."""

from __future__ import annotations

import json
from datetime import datetime
from urllib.parse import urlencode

import numpy as np
from django.urls import reverse

from backtester.runs.metric_info import METRICS
from backtester.runs.models import BacktestResult, BacktestRun
from backtester.runs.output import risk_label
from backtester.runs.replay import ReplayError, result_replay
from backtester.runs.selectors import (
    run_risk,
)
from backtester.runs.series import monthly_returns
from backtester.runs.trades import EXIT_REASONS
from prices.selectors import coins_active
from strategies.engine import INITIAL_EQUITY
from strategies.registry import STRATEGIES
from strategies.risk import risk_schema, validate_risk

MINUS = "\u2212"


def iso_or_none(value: datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def strategy_name(key: str) -> str:
    """Return a strategy's display name (the key itself if it is unknown)."""
    spec = STRATEGIES.get(key)
    return spec.name if spec else key


def repeated_strategies(run: BacktestRun) -> set[str]:
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


def tone(value: float | None) -> str:
    """Return the css class of a figure by its sign: gain, loss or none."""
    if value is None or value == 0:
        return ""
    return "gain" if value > 0 else "loss"


def plain(value: float | None, digits: int = 2) -> str:
    """Format a number with a typographic minus and no plus sign."""
    return signed(value, digits).lstrip("+")


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
        + (f"\u2192 {run.end:%Y-%m-%d}" if run.end else "\u2192 last bar")
        + f" \u00b7 {run.interval}",
        "fee": fee_text(run),
        "risk": risk_label(run.risk) or "long, all in",
    }


# The history's setting columns that may be the same on every row of a page.
SHARED_COLUMNS = (("range", "Range"), ("fee", "Fee · slippage"), ("risk", "Risk"))


def shared_settings(settings: list[dict]) -> dict[str, str]:
    """Return the settings every run of a page shares (two runs or more), by key.

    The history says those once, above the table, instead of in a column that
    repeats one text on every row.
    """
    if len(settings) < 2:
        return {}
    return {
        key: settings[0][key]
        for key, _ in SHARED_COLUMNS
        if all(s[key] == settings[0][key] for s in settings)
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


def beat_text(summary: dict) -> str:
    """Return "beat / scored" for a run summary ("\u2013" before it has one)."""
    if not summary.get("results"):
        return "\u2013"
    scored = summary["results"] - summary.get("skipped", 0)
    return f"{summary.get('beat_buy_hold', 0)} / {scored}"


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


def result_row_view(
    run: BacktestRun, result: BacktestResult, repeated: set[str] = frozenset()
) -> dict:
    """Return a result as display cells, each (text, css class, sort value)."""
    excess = result.excess_return_pct
    # A fall, negative everywhere it is shown (the stored metric is positive).
    drawdown = None if result.max_drawdown_pct is None else -result.max_drawdown_pct
    metrics = [
        (signed(result.total_return_pct), tone(result.total_return_pct),
         result.total_return_pct),
        (signed(result.buy_hold_return_pct), tone(result.buy_hold_return_pct),
         result.buy_hold_return_pct),
        (signed(excess), tone(excess), excess),
        (plain(result.sharpe), "", result.sharpe),
        (plain(drawdown), "", drawdown),
        (str(result.num_trades), "", result.num_trades),
        (plain(result.win_rate_pct, 1), "", result.win_rate_pct),
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


def summary_pick(item: dict, repeated: set[str] = frozenset()) -> dict:
    """Return a summary's best or worst result with its display name and link."""
    query = result_query(item["symbol"], item["strategy"], item.get("params"))
    label = result_label(item["strategy"], item.get("params") or {}, repeated)
    return {
        "label": f"{item['symbol']} \u00b7 {label}",
        "text": signed(item["total_return_pct"]),
        # By its sign, as every return: the best of a losing run is a loss.
        "tone": tone(item["total_return_pct"]),
        "query": f"?{query}#chart",
    }


def summary_rows(summary: dict) -> list[dict]:
    """Return the per-strategy summary of a multi-strategy run for display."""
    rows = []
    for key, item in (summary.get("by_strategy") or {}).items():
        best = item.get("best") or {}
        rows.append(
            {
                "name": strategy_name(key),
                "results": item.get("results", 0),
                "beat": beat_text(item),
                "median": signed(item.get("median_return_pct")),
                "median_tone": tone(item.get("median_return_pct")),
                "sharpe": plain(item.get("mean_sharpe")),
                "best": (
                    f"{best['symbol']} {signed(best['total_return_pct'])}%"
                    if best
                    else "\u2013"
                ),
                "best_tone": tone(best.get("total_return_pct")),
            }
        )
    return rows


def _reason_order(reason: str) -> tuple[int, str]:
    known = reason in EXIT_REASONS
    return (EXIT_REASONS.index(reason) if known else len(EXIT_REASONS), reason)


def side_line(metrics: dict | None) -> dict | None:
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
             plain(metrics.get(f"win_rate_{side}_pct"), 1))
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
            text = plain(value, info.digits) if info.digits else f"{value:,.0f}"
        unit = {"%": "%", "bars": " bars", "hours": " h", "USDT": " USDT"}.get(
            info.unit, ""
        )
        cells.append(
            {
                "key": info.key,
                "label": info.label,
                "text": text + (unit if value is not None else ""),
                "tone": tone(value) if info.key.endswith("return_pct") else "",
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
                    None if v is None else {"text": signed(v, 1), "tone": tone(v)}
                    for v in values
                ],
                "total": {"text": signed(total, 1), "tone": tone(total)},
            }
        )
    return rows


def selected_detail(run: BacktestRun, selected: BacktestResult | None) -> dict:
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


def query_params(raw: str | None) -> dict | None:
    """Return the ``params`` of a result link (JSON), or None if absent or bad."""
    try:
        params = json.loads(raw) if raw else None
    except (ValueError, RecursionError):  # RecursionError: "[" x 3,000
        return None
    return params if isinstance(params, dict) else None
