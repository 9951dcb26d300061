"""A sweep cell's public shape and one combination's metrics from packed
columns: what the writes and the reads both show."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from backtester.sweeps.models import SweepCell

INTEGER_METRICS = {"num_trades", "max_drawdown_duration"}


def coin_metrics(columns: dict[str, np.ndarray], position: int) -> dict:
    """Return one combination's metrics dict from packed columns (NaN -> None)."""
    out: dict = {}
    for key, column in columns.items():
        if key == "index":
            continue
        value = float(column[position])
        if math.isnan(value):
            out[key] = None
        else:
            out[key] = int(value) if key in INTEGER_METRICS else value
    return out


def cell_public(cell: SweepCell) -> dict:
    """Return a cell as the CLI and exports show it: params, coins, metrics."""
    return {"index": cell.index, "params": cell.params, **cell.metrics()}
