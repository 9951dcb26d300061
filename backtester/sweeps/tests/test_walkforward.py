"""`manage.py sweep --walk-forward` on real data: folds tile the range, each
fold's choice is the best of a plain sweep of its train window, its
out-of-sample cell the medians of plain backtests of its test window."""

from __future__ import annotations

import io
import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command

from backtester.sweeps.tests.test_command import REAL, real_coins  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)
GRID = ["--grid", "fast=10,20", "--grid", "slow=40:60:20"]
FOLDS = ["--walk-forward", "4", "--train-bars", "1000", "--test-bars", "500"]


def run(command: str, *args: str) -> str:
    out = io.StringIO()
    call_command(command, *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def day_after(text: str) -> str:
    """The exclusive --end for an inclusive last bar time: one hour later."""
    return (when(text) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_folds_tile_the_range_and_match_plain_sweeps(real_coins):  # noqa: F811
    args = ["--strategy", "sma_crossover", *GRID, "--symbols", ",".join(REAL)]
    data = json.loads(run("sweep", *args, *FOLDS, "--format", "json"))["walk_forward"]
    folds = data["folds"]
    assert len(folds) == 4
    for fold in folds:
        assert fold["train"]["bars"] == 1000 and fold["test"]["bars"] == 500
        assert when(fold["train"]["end"]) < when(fold["test"]["start"])
        assert sorted(fold["coins"]) == sorted(REAL)
    # Rolling: each test window starts right after the previous one ends, so
    # the test windows tile the end of the range without overlapping.
    for before, after in zip(folds, folds[1:], strict=False):
        assert when(after["test"]["start"]) == when(before["test"]["end"]) + timedelta(
            hours=1
        )
    last_bar = json.loads(
        run(
            "backtest",
            "--strategy",
            "sma_crossover",
            "--symbols",
            ",".join(REAL),
            "--format",
            "json",
            "--no-save",
        )  # fmt: skip
    )["results"]
    assert folds[-1]["test"]["end"] == max(r["last_bar"] for r in last_bar)

    # Fold 1's choice is the best cell of a plain sweep of its train window.
    first = folds[0]
    window = [
        "--start",
        first["train"]["start"],
        "--end",
        day_after(first["train"]["end"]),
    ]
    sweep = json.loads(run("sweep", *args, *window, "--format", "json"))
    assert first["params"] == sweep["best"]["params"]
    assert first["in_sample"]["median_return_pct"] == sweep["best"]["median_return_pct"]
    # ... and its out-of-sample cell the medians of plain backtests of the test
    # window with those parameters.
    window = [
        "--start",
        first["test"]["start"],
        "--end",
        day_after(first["test"]["end"]),
    ]
    params = [f"--param={k}={v}" for k, v in first["params"].items()]
    results = json.loads(
        run(
            "backtest",
            "--strategy",
            "sma_crossover",
            *params,
            "--symbols",
            ",".join(REAL),
            *window,
            "--format",
            "json",
            "--no-save",
        )  # fmt: skip
    )["results"]
    returns = sorted(r["metrics"]["total_return_pct"] for r in results)
    assert first["out_of_sample"]["median_return_pct"] == returns[1]
    mean = sum(returns) / 3
    assert first["return_pct"] == pytest.approx(mean, rel=1e-9)

    # The stitched result compounds the folds' equal-weight returns.
    growth = math.prod(1 + f["return_pct"] / 100 for f in folds)
    assert data["stitched"]["return_pct"] == pytest.approx((growth - 1) * 100, rel=1e-9)
    market = math.prod(1 + f["buy_hold_return_pct"] / 100 for f in folds)
    assert data["stitched"]["buy_hold_return_pct"] == pytest.approx(
        (market - 1) * 100, rel=1e-9
    )
    curve = data["stitched"]
    assert len(curve["time"]) == len(curve["equity"]) == len(curve["buy_hold"])
    assert curve["time"][0] == folds[0]["test"]["start"]

    table = run("sweep", *args, *FOLDS)
    assert table.splitlines()[0].split()[:3] == ["fold", "train", "(UTC)"]
    assert "out-of-sample" in table and "buy & hold" in table
    rows = run("sweep", *args, *FOLDS, "--format", "csv").splitlines()
    assert len(rows) == 5 and rows[0].startswith("fold,train_start")


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--walk-forward", "3"], "--train-bars: required"),
        (["--walk-forward", "3", "--train-bars", "x", "--test-bars", "5"],
         "--train-bars: expected a whole number"),
        (["--walk-forward", "0", "--train-bars", "5", "--test-bars", "5"],
         "--walk-forward: must be at least 1"),
        (["--walk-forward", "3", "--train-bars", "100000", "--test-bars", "500"],
         "--train-bars:"),
        (["--train-bars", "100"], "--train-bars and --test-bars need --walk-forward"),
    ],
)  # fmt: skip
def test_bad_walk_forward_flags(real_coins, extra, needle):  # noqa: F811
    with pytest.raises(CommandError) as info:
        run("sweep", "--strategy", "sma_crossover", *GRID, *extra)
    assert str(info.value).startswith(needle), str(info.value)
