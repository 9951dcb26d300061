"""Render a portfolio sweep as an aligned table, JSON or CSV (the CLI)."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence

from backtester.portfolio.sweep import PORTFOLIO_OBJECTIVES
from backtester.runs.output import csv_writer
from backtester.sweeps.output import cells_table

# (header, metric, format) of the table after the axis columns.
TABLE_COLUMNS = (
    ("return %", "total_return_pct", "{:+.2f}"),
    ("bench %", "benchmark_return_pct", "{:+.2f}"),
    ("sharpe", "sharpe", "{:.2f}"),
    ("max dd %", "max_drawdown_pct", "{:.2f}"),
    ("trades", "num_trades", "{:d}"),
    ("avg pos", "avg_positions", "{:.2f}"),
    ("exposure %", "exposure_pct", "{:.1f}"),
    ("rejected", "rejected_signals", "{:d}"),
)


def ranked(cells: Sequence[dict], objective: str) -> list[dict]:
    """Return cells best first by the objective (cells without a value last)."""
    sign = -1 if PORTFOLIO_OBJECTIVES[objective] else 1
    order = {id(c): i for i, c in enumerate(cells)}

    def key(cell: dict) -> tuple:
        value = cell.get(objective)
        return (value is None, sign * (value or 0), order[id(cell)])

    return sorted(cells, key=key)


def render_table(export: dict, *, limit: int | None = None) -> str:
    """Return the cells as a table, best first, and a one-line summary."""
    sweep = export["sweep"]
    cells = ranked(export["cells"], sweep["objective"])
    return cells_table(
        cells, list(sweep["axes"]), TABLE_COLUMNS, summary_line(export), limit=limit
    )


def summary_line(export: dict) -> str:
    """Return what was swept, how much of it, and the best combination."""
    sweep, best = export["sweep"], export["best"]
    parts = [
        f"portfolio sweep {sweep['strategy']}",
        f"{sweep['completed']}/{sweep['combinations']} combinations",
        f"{sweep['skipped']} skipped",
        f"{len(sweep['symbols'])} coins ranked by {sweep['rank']}",
    ]
    if best:
        shown = ", ".join(f"{k}={v}" for k, v in best["params"].items())
        parts.append(
            f"best {shown} ({sweep['objective']} {best[sweep['objective']]:.2f})"
        )
    parts.append(f"in {sweep['elapsed_s']:.2f}s")
    return "; ".join(parts)


def render_json(export: dict) -> str:
    """Return the documented ``{"sweep", "cells", "best"}`` object."""
    return json.dumps(export, allow_nan=False)


def render_csv(export: dict) -> str:
    """Return one row per cell: the axis values, all parameters and every metric."""
    axes = list(export["sweep"]["axes"])
    cells = export["cells"]
    metrics = [k for k in cells[0] if k != "params"] if cells else []
    buffer = io.StringIO()
    writer = csv_writer(buffer)
    writer.writerow([*axes, "params", *metrics])
    for c in cells:
        writer.writerow(
            [c["params"].get(a) for a in axes]
            + [json.dumps(c["params"], sort_keys=True)]
            + ["" if c.get(k) is None else c[k] for k in metrics]
        )
    return buffer.getvalue()
