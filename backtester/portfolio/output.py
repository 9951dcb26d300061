"""Render a portfolio run as a table, JSON or CSV (the CLI and the exports)."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence

from backtester.portfolio.selectors import TRADE_COLUMNS
from backtester.runs.output import csv_writer

# The account's metrics a table shows, with their labels.
TABLE_METRICS = (
    ("total_return_pct", "Return %"),
    ("benchmark_return_pct", "Benchmark (equal-weight buy & hold) %"),
    ("cagr_pct", "CAGR %"),
    ("sharpe", "Sharpe"),
    ("sortino", "Sortino"),
    ("max_drawdown_pct", "Max drawdown %"),
    ("num_trades", "Trades"),
    ("win_rate_pct", "Win rate %"),
    ("profit_factor", "Profit factor"),
    ("avg_positions", "Average positions"),
    ("max_positions_held", "Most positions held"),
    ("exposure_pct", "Exposure %"),
    ("rejected_signals", "Rejected signals"),
    ("fees_paid", "Fees paid"),
    ("final_equity", "Final equity"),
)


def render_json(
    run: dict, metrics: dict, contributions: dict, trades: Sequence[dict]
) -> str:
    """Return ``{"run", "portfolio": {"metrics", "contributions", "trades"}}``."""
    return json.dumps(
        {
            "run": run,
            "portfolio": {
                "metrics": metrics,
                "contributions": contributions,
                "trades": list(trades),
            },
        },
        allow_nan=False,
    )


def render_csv(trades: Sequence[dict]) -> str:
    """Return one CSV row per trade (text cells escaped for spreadsheets)."""
    buffer = io.StringIO()
    writer = csv_writer(buffer)
    writer.writerow(TRADE_COLUMNS)
    for trade in trades:
        writer.writerow([trade[name] for name in TRADE_COLUMNS])
    return buffer.getvalue()


def _number(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.2f}"


def render_table(run: dict, metrics: dict, contributions: dict) -> str:
    """Return the settings line, the metrics and each coin's contribution."""
    params = ", ".join(f"{k}={v:g}" for k, v in run["params"].items())
    stops = ", ".join(
        f"{name.removesuffix('_pct').replace('_', ' ')} {run[name]:g}%"
        for name in ("stop_loss_pct", "take_profit_pct", "trailing_stop_pct")
        if run.get(name) is not None
    )
    start = (run["start"] or "first bar")[:10]
    end = (run["end"] or "last bar")[:10]
    head = " \u00b7 ".join(
        part
        for part in (
            f"{run['strategy']} ({params})" if params else run["strategy"],
            f"{len(run['symbols'])} coins",
            f"{start} .. {end}",
            run["interval"],
            f"{run['max_positions']} slots ranked by {run['rank']}",
            f"fee {run['fee'] * 100:g}%",
            stops,
        )
        if part
    )
    width = max(len(label) for _, label in TABLE_METRICS)
    lines = [head, ""]
    lines += [
        f"{label:<{width}}  {_number(metrics.get(key)):>14}"
        for key, label in TABLE_METRICS
    ]
    lines += ["", f"{'coin':<10}  {'contribution':>14}"]
    ordered = sorted(contributions.items(), key=lambda item: (-item[1], item[0]))
    lines += [f"{symbol:<10}  {_number(pnl):>14}" for symbol, pnl in ordered]
    return "\n".join(lines) + "\n"
