"""Render a sweep as an aligned table, JSON or CSV (CLI and exports)."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence

from backtester.runs.output import csv_writer, loss_pct
from backtester.sweeps.models import CELL_METRICS
from strategies.sweep import OBJECTIVES

# (header, key, format) of the table after the parameter columns.
TABLE_COLUMNS = [
    ("coins", "coins", "{:d}"),
    ("median %", "median_return_pct", "{:+.2f}"),
    ("mean %", "mean_return_pct", "{:+.2f}"),
    ("sharpe", "mean_sharpe", "{:.2f}"),
    ("beat b&h", "beat_buy_hold", "{:d}"),
    ("med dd %", "median_max_drawdown_pct", loss_pct),
    ("trades", "trades", "{:d}"),
]


def ranked(cells: Sequence[dict], objective: str) -> list[dict]:
    """Return cells best first by the objective (cells without a value last)."""
    sign = -1 if OBJECTIVES[objective] else 1

    def key(cell: dict) -> tuple:
        value = cell.get(objective)
        return (value is None, sign * (value or 0), cell.get("index", 0))

    return sorted(cells, key=key)


def _cell(value, fmt) -> str:
    if value is None:
        return "-"
    try:
        return fmt(value) if callable(fmt) else fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def render_table(export: dict, *, limit: int | None = None) -> str:
    """Return the cells as a table, best first, with a one-line header."""
    sweep = export["sweep"]
    cells = ranked(export["cells"], sweep["objective"])
    return cells_table(
        cells, list(sweep["axes"]), TABLE_COLUMNS, summary_line(export), limit=limit
    )


def cells_table(
    cells: list[dict],
    axes: list[str],
    columns: Sequence[tuple[str, str, object]],
    footer: str,
    *,
    limit: int | None = None,
) -> str:
    """Return ranked cells as aligned columns (axes, then ``columns`` of
    (heading, metric key, format)), at most ``limit`` of them, then ``footer``."""
    shown = cells[:limit] if limit else cells
    headers = axes + [h for h, _, _ in columns]
    rows = [
        [str(c["params"].get(a)) for a in axes]
        + [_cell(c.get(key), fmt) for _, key, fmt in columns]
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
    lines.append(footer)
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


# --- walk-forward ---------------------------------------------------------------


def _pct(value) -> str:
    return "-" if value is None else f"{value:+.2f}"


def render_walk_forward_table(data: dict) -> str:
    """Return one line per fold (windows, chosen parameters, in-sample and
    out-of-sample figures) and the stitched out-of-sample result."""
    objective = data["objective"]
    # The in-sample objective gets a column when it is not the median return.
    extra = objective != "median_return_pct"
    headers = [
        "fold", "train (UTC)", "test (UTC)", "coins", "params",
        *([f"IS {objective}"] if extra else []),
        "IS median %", "OOS median %", "OOS %", "b&h %",
    ]  # fmt: skip
    rows = []
    for fold in data["folds"]:
        params = fold["params"]
        rows.append(
            [
                str(fold["fold"]),
                f"{fold['train']['start'][:10]}..{fold['train']['end'][:10]}",
                f"{fold['test']['start'][:10]}..{fold['test']['end'][:10]}",
                str(len(fold["coins"])),
                ", ".join(f"{k}={v}" for k, v in params.items()) if params else "-",
                *([_cell(fold["in_sample"].get(objective), "{:.2f}")] if extra else []),
                _pct(fold["in_sample"].get("median_return_pct")),
                _pct(fold["out_of_sample"].get("median_return_pct")),
                _pct(fold["return_pct"]),
                _pct(fold["buy_hold_return_pct"]),
            ]
        )
    widths = [
        max([len(headers[i])] + [len(row[i]) for row in rows])
        for i in range(len(headers))
    ]
    lines = [
        "  ".join(
            cell.ljust(widths[i]) if i in (1, 2, 4) else cell.rjust(widths[i])
            for i, cell in enumerate(row)
        ).rstrip()
        for row in [headers, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    stitched = data["stitched"]
    lines += [
        "",
        f"walk-forward {data['strategy']}: {len(data['folds'])} folds of "
        f"{data['train_bars']} train + {data['test_bars']} test bars, "
        f"{data['combinations']} combinations ({data['skipped']} skipped); "
        f"out-of-sample {_pct(stitched['return_pct'])}% vs buy & hold "
        f"{_pct(stitched['buy_hold_return_pct'])}% on the same windows",
    ]
    return "\n".join(lines) + "\n"


WALK_FORWARD_CSV = [
    "fold", "train_start", "train_end", "test_start", "test_end", "coins", "params",
    "is_median_return_pct", "is_mean_sharpe", "oos_median_return_pct",
    "oos_mean_sharpe", "oos_return_pct", "buy_hold_return_pct",
]  # fmt: skip


def render_walk_forward_csv(data: dict) -> str:
    """Return one CSV row per fold."""
    buffer = io.StringIO()
    writer = csv_writer(buffer)
    writer.writerow(WALK_FORWARD_CSV)
    for fold in data["folds"]:
        ins, oos = fold["in_sample"], fold["out_of_sample"]
        writer.writerow(
            [
                fold["fold"], fold["train"]["start"], fold["train"]["end"],
                fold["test"]["start"], fold["test"]["end"], len(fold["coins"]),
                json.dumps(fold["params"], sort_keys=True),
                *("" if v is None else v for v in (
                    ins.get("median_return_pct"), ins.get("mean_sharpe"),
                    oos.get("median_return_pct"), oos.get("mean_sharpe"),
                    fold["return_pct"], fold["buy_hold_return_pct"],
                )),
            ]
        )  # fmt: skip
    return buffer.getvalue()
