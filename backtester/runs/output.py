"""Render run results as an aligned table, JSON or CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence


def loss_pct(value: float) -> str:
    """Format a fall stored as a magnitude (a drawdown) as a negative percentage."""
    return f"{-value:.2f}" if value else "0.00"


# (header, metric key, format string or function) for the table.
TABLE_COLUMNS = [
    ("return %", "total_return_pct", "{:+.2f}"),
    ("b&h %", "buy_hold_return_pct", "{:+.2f}"),
    ("sharpe", "sharpe", "{:.2f}"),
    ("max dd %", "max_drawdown_pct", loss_pct),
    ("trades", "num_trades", "{:d}"),
    ("win %", "win_rate_pct", "{:.1f}"),
]
CSV_METRICS = [
    "total_return_pct", "buy_hold_return_pct", "cagr_pct", "volatility_ann_pct",
    "sharpe", "sortino", "calmar", "max_drawdown_pct", "max_drawdown_duration",
    "num_trades", "win_rate_pct", "profit_factor", "expectancy_pct", "avg_trade_pct",
    "best_trade_pct", "worst_trade_pct", "avg_trade_duration", "exposure_pct",
    "final_equity", "long_trades", "short_trades", "win_rate_long_pct",
    "win_rate_short_pct", "missing_bars", "longest_gap_hours",
]  # fmt: skip
# The risk settings as CSV columns, in schema order (empty: off).
CSV_RISK = [
    "direction", "stop_loss_pct", "take_profit_pct", "trailing_stop_pct",
    "position_size",
]  # fmt: skip


def risk_label(risk: dict | None) -> str:
    """Return risk settings in a few words ("" for the defaults).

    The direction unless long, the stops that are on, and a size below 1, e.g.
    "both · stop 5% · target 10% · size 0.5" (the web pages say the same).
    """
    if not risk:
        return ""
    parts = []
    if risk.get("direction", "long") != "long":
        parts.append(risk["direction"])
    for key, word in (
        ("stop_loss_pct", "stop"),
        ("take_profit_pct", "target"),
        ("trailing_stop_pct", "trail"),
    ):
        if risk.get(key) is not None:
            parts.append(f"{word} {risk[key]:g}%")
    if risk.get("position_size", 1.0) != 1.0:
        parts.append(f"size {risk['position_size']:g}")
    return " · ".join(parts)


def _sort_key(result: dict) -> float:
    metrics = result.get("metrics") or {}
    value = metrics.get("total_return_pct")
    return float("-inf") if value is None else value


def sorted_results(results: Sequence[dict]) -> list[dict]:
    """Return results best return first (skipped coins last)."""
    return sorted(results, key=_sort_key, reverse=True)


def _cell(value, fmt) -> str:
    if value is None:
        return "-"
    try:
        return fmt(value) if callable(fmt) else fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def table_header(run: dict) -> str:
    """Return the line above a results table: what was run, over what, at what
    cost, e.g. "sma_crossover (fast=10, slow=30) · 2 coins · 2024-01-01 ..
    2025-01-01 · 1h · fee 0.1% · slippage 0 bps"."""
    jobs = "; ".join(
        item["strategy"]
        + (
            " (" + ", ".join(f"{k}={v:g}" for k, v in item["params"].items()) + ")"
            if item.get("params")
            else ""
        )
        for item in run["strategies"]
    )
    start = (run["start"] or "first bar")[:10]
    end = (run["end"] or "last bar")[:10]
    parts = [
        jobs,
        f"{len(run['symbols'])} coin{'s' if len(run['symbols']) != 1 else ''}",
        f"{start} .. {end}",
        run["interval"],
        f"fee {run['fee'] * 100:g}%",
        f"slippage {run['slippage_bps']:g} bps",
    ]
    risk = risk_label(run.get("risk"))
    if risk:
        parts.append(risk)
    return " \u00b7 ".join(parts)


def synthetic_line(symbols: Sequence[str]) -> str:
    """Return the line naming the coins whose bars are synthetic demo data."""
    return f"synthetic demo data: {', '.join(symbols)}" if symbols else ""


def render_table(results: Sequence[dict], summary: dict) -> str:
    """Return an aligned text table sorted by return, with a summary line.

    A "risk" column names the risk settings when a result has any set.
    """
    with_risk = any(risk_label(r.get("risk")) for r in results)
    text = 3 if with_risk else 2  # leading text columns
    headers = ["symbol", "strategy", *(["risk"] if with_risk else [])]
    headers += [h for h, _, _ in TABLE_COLUMNS]
    rows = []
    for r in sorted_results(results):
        metrics = r.get("metrics") or {}
        row = [r["symbol"], r["strategy"]]
        if with_risk:
            row.append(risk_label(r.get("risk")) or "-")
        if not metrics:
            rows.append([*row, "no data in range"])
            continue
        rows.append(
            row + [_cell(metrics.get(key), fmt) for _, key, fmt in TABLE_COLUMNS]
        )
    widths = [
        max([len(headers[i])] + [len(row[i]) for row in rows if len(row) > i])
        for i in range(len(headers))
    ]
    lines = []
    for row in [headers, *rows]:
        cells = []
        for i, cell in enumerate(row):
            # Text columns left-aligned, numbers right-aligned.
            cells.append(cell.ljust(widths[i]) if i < text else cell.rjust(widths[i]))
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    lines.append(summary_line(summary))
    return "\n".join(lines) + "\n"


def summary_line(summary: dict) -> str:
    """Return the one-line run summary."""
    if not summary.get("results"):
        return "no results"
    scored = summary["results"] - summary.get("skipped", 0)
    parts = [
        f"{summary['results']} backtest{'' if summary['results'] == 1 else 's'}",
        f"{summary.get('beat_buy_hold', 0)}/{scored} beat buy & hold",
    ]
    if summary.get("median_return_pct") is not None:
        parts.append(f"median return {summary['median_return_pct']:+.2f}%")
        parts.append(f"mean {summary['mean_return_pct']:+.2f}%")
    if summary.get("mean_sharpe") is not None:
        parts.append(f"mean Sharpe {summary['mean_sharpe']:.2f}")
    best, worst = summary.get("best"), summary.get("worst")
    if best:
        parts.append(
            f"best {best['symbol']} {best['strategy']} {best['total_return_pct']:+.2f}%"
        )
    if worst:
        parts.append(
            f"worst {worst['symbol']} {worst['strategy']} "
            f"{worst['total_return_pct']:+.2f}%"
        )
    if summary.get("elapsed_s") is not None:
        parts.append(f"in {summary['elapsed_s']:.2f}s")
    return "; ".join(parts)


def render_json(run: dict, results: Sequence[dict], summary: dict) -> str:
    """Return the documented ``{"run", "results", "summary"}`` JSON object."""
    return json.dumps(
        {"run": run, "results": sorted_results(results), "summary": summary},
        allow_nan=False,
    )


# A spreadsheet runs a cell starting with one of these as a formula
# ("=HYPERLINK(...)", "@SUM(...)", "-2+3"); tab and carriage return can hide
# such a start from a viewer.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """Return ``value`` safe for a spreadsheet cell: text that a spreadsheet
    would read as a formula gets a leading single quote.

    Numbers are left alone (a float -3.2 is a number, not a formula); only
    strings are escaped, so every CSV the app writes must pass its cells
    through here (see ``csv_writer``).
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class _SafeWriter:
    def __init__(self, buffer: io.TextIOBase) -> None:
        self._writer = csv.writer(buffer, lineterminator="\n")

    def writerow(self, row: Sequence[object]) -> None:
        self._writer.writerow([csv_cell(value) for value in row])


def csv_writer(buffer: io.TextIOBase) -> _SafeWriter:
    """Return a CSV writer whose rows are escaped cell by cell with csv_cell."""
    return _SafeWriter(buffer)


def render_csv(results: Sequence[dict]) -> str:
    """Return one CSV row per result with every metric as a column."""
    buffer = io.StringIO()
    writer = csv_writer(buffer)
    writer.writerow(
        ["symbol", "strategy", "params", *CSV_RISK, "first_bar", "last_bar", "bars",
         *CSV_METRICS, "exit_reasons"]
    )  # fmt: skip
    for r in sorted_results(results):
        metrics = r.get("metrics") or {}
        risk = r.get("risk") or {}
        reasons = metrics.get("exit_reasons")
        writer.writerow(
            [
                r["symbol"],
                r["strategy"],
                json.dumps(r["params"], sort_keys=True),
                *("" if risk.get(k) is None else risk[k] for k in CSV_RISK),
                r["first_bar"] or "",
                r["last_bar"] or "",
                r["bars"],
                *("" if metrics.get(k) is None else metrics[k] for k in CSV_METRICS),
                "" if reasons is None else json.dumps(reasons, sort_keys=True),
            ]
        )
    return buffer.getvalue()
