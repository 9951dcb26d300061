"""`manage.py sweep --portfolio`: cells against single runs, counts, errors, shapes."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.management import CommandError, call_command

from backtester.portfolio.models import PortfolioRun
from backtester.runs.tests.factories import make_coins
from backtester.sweeps.models import Sweep

pytestmark = pytest.mark.django_db(transaction=True)
SYMBOLS = ["AAA", "BBB", "CCC"]
# fast 5, 15, 25 against slow 20: fast=25 breaks fast < slow and is skipped.
GRID = (
    "--portfolio", "--strategy", "ema_crossover", "--grid", "fast=5:25:10",
    "--param", "slow=20", "--grid", "max_positions=1:3:1", "--rank", "roc_24",
)  # fmt: skip


@pytest.fixture
def coins():
    make_coins(SYMBOLS, bars=500)


def command(name: str, *args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command(name, *args, stdout=out, stderr=err)
    return out.getvalue()


def sweep_json(*args: str) -> dict:
    return json.loads(command("sweep", *args, "--format", "json"))


def test_each_cell_equals_a_single_portfolio_run(coins):
    payload = sweep_json(*GRID, "--stop-loss", "4")
    assert len(payload["cells"]) == 6
    for cell in payload["cells"]:
        p = cell["params"]
        single = json.loads(
            command(
                "backtest",
                "--portfolio",
                "--strategy",
                "ema_crossover",
                "--param",
                f"fast={p['fast']}",
                "--param",
                f"slow={p['slow']}",
                "--max-positions",
                str(p["max_positions"]),
                "--rank",
                "roc_24",
                "--stop-loss",
                "4",
                "--format",
                "json",
                "--no-save",
            )  # fmt: skip
        )["portfolio"]["metrics"]
        assert {k: v for k, v in cell.items() if k != "params"} == single
        assert p["stop_loss_pct"] == 4


def test_grid_counts_and_skips_invalid_combinations(coins):
    sweep = sweep_json(*GRID)
    header = sweep["sweep"]
    # By hand: fast in (5, 15) x max_positions in (1, 2, 3) run; fast=25 with
    # slow=20 is invalid for each of the three max_positions values.
    expected = {(f, m) for f in (5, 15) for m in (1, 2, 3)}
    got = [(c["params"]["fast"], c["params"]["max_positions"]) for c in sweep["cells"]]
    assert set(got) == expected and len(got) == 6
    assert header["combinations"] == header["completed"] == 6
    assert header["skipped"] == 3
    assert header["axes"] == {"fast": [5, 15, 25], "max_positions": [1, 2, 3]}
    # The first axis given runs slowest.
    assert got == [(5, 1), (5, 2), (5, 3), (15, 1), (15, 2), (15, 3)]
    swapped = sweep_json(
        "--portfolio", "--strategy", "ema_crossover", "--grid", "max_positions=1,2",
        "--grid", "fast=5,15", "--param", "slow=20",
    )  # fmt: skip
    order = [
        (c["params"]["max_positions"], c["params"]["fast"]) for c in swapped["cells"]
    ]
    assert order == [(1, 5), (1, 15), (2, 5), (2, 15)]
    # Nothing is stored: neither a sweep nor portfolio runs.
    assert Sweep.objects.count() == 0 and PortfolioRun.objects.count() == 0


def test_max_positions_alone_is_an_axis(coins):
    sweep = sweep_json(
        "--portfolio", "--strategy", "ema_crossover", "--param", "fast=5",
        "--param", "slow=20", "--grid", "max_positions=1,3",
    )  # fmt: skip
    params = [c["params"] for c in sweep["cells"]]
    assert [p["max_positions"] for p in params] == [1, 3]
    assert all(p["fast"] == 5 and p["slow"] == 20 for p in params)
    assert sweep["sweep"]["skipped"] == 0
    # One slot, all the stake in one coin; three slots split it: the runs differ.
    assert sweep["cells"][0]["avg_positions"] <= 1.0
    assert sweep["cells"][0]["final_equity"] != sweep["cells"][1]["final_equity"]


def test_json_shape_and_best_by_the_objective(coins):
    for objective, more_is_better in (
        ("total_return_pct", True),
        ("sharpe", True),
        ("max_drawdown_pct", False),
    ):
        payload = sweep_json(*GRID, "--objective", objective)
        assert set(payload) == {"sweep", "cells", "best"}
        assert payload["sweep"]["portfolio"] is True
        assert payload["sweep"]["objective"] == objective
        assert payload["sweep"]["rank"] == "roc_24"
        assert payload["sweep"]["symbols"] == SYMBOLS
        for cell in payload["cells"]:
            assert {"params", "total_return_pct", "sharpe", "num_trades"} <= set(cell)
            assert {"benchmark_return_pct", "avg_positions", "exposure_pct"} <= set(
                cell
            )
            assert {"rejected_signals", "fees_paid"} <= set(cell)
        # The best by a plain loop over the cells (first of equals).
        best = None
        for cell in payload["cells"]:
            value = cell[objective]
            if best is None or (
                value > best[objective] if more_is_better else value < best[objective]
            ):
                best = cell
        assert payload["best"] == best


def test_default_objective_is_total_return(coins):
    assert sweep_json(*GRID)["sweep"]["objective"] == "total_return_pct"


def test_csv_has_a_row_per_cell_matching_the_json(coins):
    rows = list(csv.DictReader(io.StringIO(command("sweep", *GRID, "--format", "csv"))))
    cells = sweep_json(*GRID)["cells"]
    assert len(rows) == len(cells) == 6
    assert list(rows[0])[:3] == ["fast", "max_positions", "params"]
    for row, cell in zip(rows, cells, strict=True):
        assert json.loads(row["params"]) == cell["params"]
        assert int(row["max_positions"]) == cell["params"]["max_positions"]
        assert float(row["total_return_pct"]) == pytest.approx(cell["total_return_pct"])
        assert int(row["num_trades"]) == cell["num_trades"]


def test_table_lists_the_cells_best_first(coins):
    text = command("sweep", *GRID)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["fast", "max_positions", "return"]
    returns = [float(line.split()[2]) for line in lines[2:8]]
    assert returns == sorted(returns, reverse=True)
    assert "6/6 combinations; 3 skipped; 3 coins ranked by roc_24" in lines[-1]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--grid", "max_positions=0:3:1"), "--grid max_positions: must be between"),
        (
            ("--grid", "max_positions=1,1"),
            "--grid max_positions: value 1 appears twice",
        ),
        (("--grid", "max_positions=a:b:c"), "--grid max_positions:"),
        (("--grid", "fast=5", "--rank", "best"), "--rank: must be one of"),
        (("--grid", "fast=5", "--max-positions", "0"), "--max-positions: must be"),
        (("--grid", "fast=5", "--stop-loss", "-3"), "--stop-loss: must satisfy"),
        (("--grid", "bogus=1:3:1"), "--grid bogus: unknown parameter"),
        (("--grid", "direction=long,short"), "--grid direction: not for a"),
        (
            ("--grid", "fast=5", "--param", "position_size=0.5"),
            "--param position_size: not",
        ),
        (("--grid", "fast=5", "--objective", "median_return_pct"), "--objective:"),
        (("--grid", "fast=5", "--walk-forward", "3"), "--walk-forward: not with"),
        (("--grid", "fast=5", "--symbols", "ZZZ"), "ZZZ"),
        (("--grid", "fast=30:40:10"), "--grid: none of its 2 combinations"),
    ],
)
def test_bad_flags_end_with_one_line(coins, args, expected):
    with pytest.raises(CommandError) as caught:
        command(
            "sweep", "--portfolio", "--strategy", "ema_crossover", "--param",
            "slow=20", *args,
        )  # fmt: skip
    message = str(caught.value)
    assert expected in message and "\n" not in message
    assert Sweep.objects.count() == 0 and PortfolioRun.objects.count() == 0


def test_portfolio_flags_need_portfolio(coins):
    with pytest.raises(CommandError, match=r"^--max-positions: only with --portfolio"):
        command("sweep", "--strategy", "ema_crossover", "--grid", "fast=5,10",
                "--max-positions", "3")  # fmt: skip
    with pytest.raises(CommandError, match=r"^--rank: only with --portfolio"):
        command("sweep", "--strategy", "ema_crossover", "--grid", "fast=5,10",
                "--rank", "roc_24")  # fmt: skip


def test_saved_strategy_versions_are_refused(coins):
    with pytest.raises(CommandError, match="built-in strategy"):
        command("sweep", "--portfolio", "--strategy", "mine@2", "--grid", "fast=5")


def test_a_stop_axis_matches_the_stop_flag(coins):
    cells = sweep_json(
        "--portfolio", "--strategy", "ema_crossover", "--param", "fast=5",
        "--param", "slow=20", "--grid", "stop_loss_pct=2,6", "--max-positions", "2",
    )["cells"]  # fmt: skip
    assert [c["params"]["stop_loss_pct"] for c in cells] == [2, 6]
    for cell in cells:
        single = json.loads(
            command(
                "backtest",
                "--portfolio",
                "--strategy",
                "ema_crossover",
                "--param",
                "fast=5",
                "--param",
                "slow=20",
                "--max-positions",
                "2",
                "--stop-loss",
                str(cell["params"]["stop_loss_pct"]),
                "--format",
                "json",
                "--no-save",
            )  # fmt: skip
        )["portfolio"]["metrics"]
        assert {k: v for k, v in cell.items() if k != "params"} == single
    assert cells[0]["final_equity"] != cells[1]["final_equity"]
