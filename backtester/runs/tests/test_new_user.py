"""Problems a new user met, each pinned: the server side of them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from backtester.runs.services import run_coins
from backtester.runs.summary import summarize
from backtester.runs.tests.factories import make_coins
from backtester.runs.validation import RequestError, run_spec

pytestmark = pytest.mark.django_db


def result(symbol: str, total: float, buy_hold: float, trades: int) -> dict:
    return {"symbol": symbol, "strategy": "sma_crossover", "metrics": {
        "total_return_pct": total, "buy_hold_return_pct": buy_hold,
        "num_trades": trades, "sharpe": None}}  # fmt: skip


def test_a_result_without_trades_does_not_beat_buy_and_hold():
    # A falling market: sitting in cash (0%) is above buy & hold (-5%), but
    # the strategy never traded, so it beat nothing.
    summary = summarize([result("AAA", 0.0, -5.0, 0), result("BBB", 3.0, 1.0, 2),
                         result("CCC", 1.0, 2.0, 4)])  # fmt: skip
    assert summary["beat_buy_hold"] == 1


def test_a_range_without_prices_is_refused_naming_start():
    make_coins(["AAA", "BBB"], bars=100)  # 2024-01-01 00:00 .. 04 03:00
    for start, end in (("2030-01-01", "2031-01-01"), ("2020-01-01", "2023-12-31")):
        with pytest.raises(RequestError) as error:
            run_coins(run_spec({"strategy": "sma_crossover", "start": start,
                                "end": end}))  # fmt: skip
        assert error.value.field == "start"
        assert error.value.message == (
            "start: no prices in this range; the data of these coins runs from "
            "2024-01-01 to 2024-01-05"
        )
    # One hour of overlap is enough to run.
    spec = run_spec({"strategy": "sma_crossover", "start": "2024-01-05T03:00:00Z"})
    assert [c.symbol for c in run_coins(spec)] == ["AAA", "BBB"]
    assert spec.start == datetime(2024, 1, 5, 3, tzinfo=UTC)
