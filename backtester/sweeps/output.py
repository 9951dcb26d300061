"""Render a sweep as an aligned table, JSON or CSV (CLI and exports)."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence

from backtester.output import csv_writer
from backtester.sweeps.models import CELL_METRICS
from strategies.sweep import OBJECTIVES

# (header, key, format) of the table after the parameter columns.
TABLE_COLUMNS = [
    ("coins", "coins", "{:d}"),
    ("median %", "median_return_pct", "{:+.2f}"),
    ("mean %", "mean_return_pct", "{:+.2f}"),
    ("sharpe", "mean_sharpe", "{:.2f}"),
    ("beat b&h", "beat_buy_hold", "{:d}"),
    ("med dd %", "median_max_drawdown_pct", "{:.2f}"),
    ("trades", "trades", "{:d}"),
]


def ranked(cells: Sequence[dict], objective: str) -> list[dict]:
    """Return cells best first by the objective (cells without a value last)."""
    sign = -1 if OBJECTIVES[objective] else 1

    def key(cell: dict) -> tuple:
        value = cell.get(objective)
        return (value is None, sign * (value or 0), cell.get("index", 0))

    return sorted(cells, key=key)


def _cell(value, fmt: str) -> str:
    if value is None:
        return "-"
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def render_table(export: dict, *, limit: int | None = None) -> str:
    """Return the cells as a table, best first, with a one-line header."""
    sweep = export["sweep"]
    axes = list(sweep["axes"])
    cells = ranked(export["cells"], sweep["objective"])
    shown = cells[:limit] if limit else cells
    headers = axes + [h for h, _, _ in TABLE_COLUMNS]
    rows = [
        [str(c["params"].get(a)) for a in axes]
        + [_cell(c.get(key), fmt) for _, key, fmt in TABLE_COLUMNS]
        for c in shown
    ]
    widths = [
        max([len(headers[i])] + [len(row[i]) for row in rows])
        for i in range(len(headers))
    ]
    lines = [
        "  ".join(cell.rjust(widths[i]) for i, cell in enumerate(row)).rstrip()
        for row in [headers, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if limit and len(cells) > limit:
        lines.append(f"... {len(cells) - limit} more (use --format csv for all)")
    lines.append("")
    lines.append(summary_line(export))
    return "\n".join(lines) + "\n"


def summary_line(export: dict) -> str:
    sweep, best = export["sweep"], export["best"]
    parts = [
        f"sweep {sweep['id']} {sweep['strategy']} {sweep['status']}",
        f"{sweep['completed']}/{sweep['combinations']} combinations",
        f"{sweep['skipped']} skipped",
        f"{len(sweep['symbols'])} coins",
    ]
    if best:
        shown = ", ".join(f"{k}={v}" for k, v in best["params"].items())
        value = best.get(sweep["objective"])
        parts.append(
            f"best {shown} ({sweep['objective']} "
            f"{'-' if value is None else f'{value:.2f}'})"
        )
    if sweep.get("elapsed_s") is not None:
        parts.append(f"in {sweep['elapsed_s']:.2f}s")
    return "; ".join(parts)


def render_json(export: dict) -> str:
    """Return the documented ``{"sweep", "cells", "best"}`` object."""
    return json.dumps(export, allow_nan=False)


def render_csv(export: dict) -> str:
    """Return one row per cell: the axis values, coins and every cell metric."""
    sweep = export["sweep"]
    axes = list(sweep["axes"])
    buffer = io.StringIO()
    # Every cell passes the formula check: axis names and values come from
    # the request.
    writer = csv_writer(buffer)
    writer.writerow([*axes, "params", "coins", *CELL_METRICS])
    for c in export["cells"]:
        writer.writerow(
            [c["params"].get(a) for a in axes]
            + [json.dumps(c["params"], sort_keys=True), c["coins"]]
            + ["" if c.get(k) is None else c[k] for k in CELL_METRICS]
        )
    return buffer.getvalue()
