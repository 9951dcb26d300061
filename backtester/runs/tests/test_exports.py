"""Every CSV the app writes is safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io

import pytest

from backtester.runs.models import BacktestResult, BacktestRun
from backtester.runs.output import csv_cell, render_csv

HOSTILE = ["=HYPERLINK(\"http://x\",\"y\")", "+1+2", "-2+3", "@SUM(A1:A2)",
           "\t=1", "\r=1"]  # fmt: skip


@pytest.mark.parametrize("text", HOSTILE)
def test_formula_text_gets_a_leading_quote(text):
    assert csv_cell(text) == "'" + text


def test_numbers_and_plain_text_are_left_alone():
    # A negative number is a number; only text can be a formula.
    for value in (-3.2, -1, 0, 2.5, None, True, "BTC", "sma_crossover", "{}", ""):
        assert csv_cell(value) == value


def _result(symbol: str, strategy: str, total: float) -> dict:
    return {
        "symbol": symbol,
        "strategy": strategy,
        "params": {"fast": 5},
        "first_bar": "2024-01-01T00:00:00Z",
        "last_bar": "2024-01-02T00:00:00Z",
        "bars": 25,
        "metrics": {"total_return_pct": total, "sharpe": -0.5},
    }


def test_render_csv_escapes_text_cells_and_keeps_negative_numbers():
    rows = list(
        csv.DictReader(io.StringIO(render_csv([_result("=CMD", "@SUM(A1)", -3.2)])))
    )
    assert rows[0]["symbol"] == "'=CMD"
    assert rows[0]["strategy"] == "'@SUM(A1)"
    assert rows[0]["total_return_pct"] == "-3.2"
    assert rows[0]["sharpe"] == "-0.5"


@pytest.mark.django_db
def test_the_csv_download_escapes_a_stored_hostile_symbol(admin_client):
    # A coin stored before symbols were validated keeps its old name in results.
    run = BacktestRun.objects.create(
        strategies=[{"strategy": "sma_crossover", "params": {}}],
        symbols=["=CMD"],
        status="complete",
    )
    BacktestResult.objects.create(
        run=run, symbol="=cmd|' /C calc'!A0", strategy="sma_crossover", bars=3,
        total_return_pct=-7.5, metrics={"total_return_pct": -7.5},
    )  # fmt: skip
    response = admin_client.get(f"/runs/{run.pk}/export.csv")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert rows[0]["symbol"] == "'=cmd|' /C calc'!A0"
    assert rows[0]["total_return_pct"] == "-7.5"


def test_every_csv_the_app_writes_goes_through_the_escaping_writer():
    """A CSV written with the csv module directly would skip csv_cell."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    for package in ("backtester", "prices", "strategies"):
        for path in (root / package).rglob("*.py"):
            if (
                "tests" in path.parts
                or path == root / "backtester" / "runs" / "output.py"
            ):
                continue
            text = path.read_text()
            for call in ("csv.writer(", "csv.DictWriter("):
                assert call not in text, f"{path.relative_to(root)} uses {call}"
