"""What the pages say and how they colour it (presenters and views, no browser)."""

from __future__ import annotations

from backtester.runs.output import render_table
from backtester.runs.presenters import summary_pick, summary_rows
from backtester.sweeps.output import render_table as sweep_table


def pick(value: float) -> dict:
    return {"symbol": "AAVE", "strategy": "sma_crossover", "params": {},
            "total_return_pct": value}  # fmt: skip


def test_best_and_worst_take_the_colour_of_their_sign():
    # The best of a losing run is a loss; the worst of a winning run a gain.
    assert summary_pick(pick(-82.9))["tone"] == "loss"
    assert summary_pick(pick(1867.3))["tone"] == "gain"
    assert summary_pick(pick(0.0))["tone"] == ""
    rows = summary_rows({"by_strategy": {"sma_crossover": {"best": pick(-5.0)}}})
    assert rows[0]["best_tone"] == "loss"


def test_max_drawdown_is_a_negative_percentage_in_the_cli_tables():
    metrics = {"total_return_pct": 10.0, "buy_hold_return_pct": 5.0, "sharpe": 1.0,
               "max_drawdown_pct": 75.76, "num_trades": 3,
               "win_rate_pct": 50.0}  # fmt: skip
    result = {"symbol": "BTC", "strategy": "sma_crossover", "metrics": metrics}
    row = render_table([result], {"results": 1}).splitlines()[2].split()
    assert "-75.76" in row and "75.76" not in row
    cell = {"index": 0, "params": {"fast": 10}, "coins": 2, "median_return_pct": 1.0,
            "mean_return_pct": 1.0, "mean_sharpe": 0.5, "beat_buy_hold": 1,
            "median_max_drawdown_pct": 12.5, "trades": 4}  # fmt: skip
    sweep = {"id": 1, "strategy": "sma_crossover", "status": "done", "completed": 1,
             "combinations": 1, "skipped": 0, "symbols": ["BTC", "ETH"],
             "axes": ["fast"], "objective": "median_return_pct"}  # fmt: skip
    export = {"sweep": sweep, "cells": [cell], "best": cell}
    row = sweep_table(export).splitlines()[2].split()
    assert "-12.50" in row and "12.50" not in row
