"""Run requests: parsing and every way they can be wrong."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from backtester.runs.summary import summarize
from backtester.runs.validation import RequestError, run_spec
from strategies.registry import STRATEGIES


def test_defaults_are_filled_in():
    spec = run_spec({"type": "run", "strategy": "sma_crossover"})
    assert spec.jobs == (("sma_crossover", {"fast": 20, "slow": 50}),)
    assert spec.symbols is None and spec.start is None and spec.end is None
    assert (spec.interval, spec.fee, spec.slippage_bps) == ("1h", 0.001, 0.0)


def test_dates_symbols_and_costs_are_parsed():
    spec = run_spec(
        {
            "strategy": "rsi_reversion",
            "params": {"period": "10"},
            "symbols": "btc, eth,BTC",
            "start": "2024-01-01",
            "end": "2024-06-01T12:00:00+02:00",
            "fee": "0.002",
            "slippage_bps": 5,
        }
    )
    assert spec.jobs[0][1]["period"] == 10
    assert spec.symbols == ("BTC", "ETH")
    assert spec.start == datetime(2024, 1, 1, tzinfo=UTC)
    assert spec.end == datetime(2024, 6, 1, 10, tzinfo=UTC)
    assert (spec.fee, spec.slippage_bps) == (0.002, 5.0)


def test_all_strategies():
    for request in ({"strategies": "all"}, {"strategy": "all"}):
        assert [k for k, _ in run_spec(request).jobs] == list(STRATEGIES)
    spec = run_spec(
        {"strategies": ["macd_crossover", {"strategy": "sma_crossover",
                                            "params": {"fast": 3, "slow": 9}}]}
    )  # fmt: skip
    assert spec.jobs[1] == ("sma_crossover", {"fast": 3, "slow": 9})


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        ({}, "strategy"),
        ({"strategy": "x"}, "strategy"),
        ({"strategy": "sma_crossover", "strategies": ["sma_crossover"]}, "strategy"),
        ({"strategies": []}, "strategies"),
        ({"strategies": [3]}, "strategies"),
        ({"strategies": ["sma_crossover", "sma_crossover"]}, "strategies"),
        ({"strategy": "sma_crossover", "params": [1]}, "params"),
        ({"strategy": "sma_crossover", "params": {"fast": 2.5}}, "params.fast"),
        ({"strategy": "sma_crossover", "symbols": 5}, "symbols"),
        ({"strategy": "sma_crossover", "symbols": ["B-TC"]}, "symbols"),
        ({"strategy": "sma_crossover", "symbols": []}, "symbols"),
        ({"strategy": "sma_crossover", "symbols": [" ", ""]}, "symbols"),
        ({"strategy": "sma_crossover", "symbols": ","}, "symbols"),
        ({"strategy": "sma_crossover", "start": 20240101}, "start"),
        ({"strategy": "sma_crossover", "end": "soon"}, "end"),
        ({"strategy": "sma_crossover", "start": "2024-01-02", "end": "2024-01-02"},
         "end"),
        ({"strategy": "sma_crossover", "interval": "2h"}, "interval"),
        ({"strategy": "sma_crossover", "fee": 0.5}, "fee"),
        ({"strategy": "sma_crossover", "fee": True}, "fee"),
        ({"strategy": "sma_crossover", "slippage_bps": -1}, "slippage_bps"),
        ({"strategy": "sma_crossover", "bogus": 1}, "bogus"),
        # The strategy list is blamed under the field the client used.
        ({"strategy": 5}, "strategy"),
        ({"strategy": ["sma_crossover"]}, "strategy"),
        ({"strategy": None}, "strategy"),
        ({"strategies": ["moon"]}, "strategies"),
        ({"strategies": [{"strategy": "moon"}]}, "strategies"),
        ({"strategies": "sma_crossover"}, "strategies"),
        ({"strategies": [{"strategy": "sma_crossover", "params": 0}]}, "strategies"),
        ({"strategies": [{"strategy": "sma_crossover", "parms": {}}]}, "strategies"),
        # Values that used to be dropped without a word.
        ({"strategy": "all", "params": {"fast": 5}}, "params"),
        ({"strategies": "all", "params": {"fast": 5}}, "params"),
        ({"strategies": ["sma_crossover", "ema_crossover"], "params": {"fast": 5}},
         "params"),
        ({"strategies": [{"strategy": "sma_crossover"}], "params": {"fast": 5}},
         "params"),
        ({"strategy": "sma_crossover", "params": 0}, "params"),
        ({"strategy": "sma_crossover", "params": ""}, "params"),
        ({"strategy": "sma_crossover", "interval": {}}, "interval"),
        ({"strategy": "sma_crossover", "interval": 0}, "interval"),
        ({"strategy": "sma_crossover", "interval": False}, "interval"),
    ],
)  # fmt: skip
@pytest.mark.django_db  # an unknown key may be a saved strategy: looked up
def test_bad_requests_name_their_field(request_, field):
    with pytest.raises(RequestError) as caught:
        run_spec(request_)
    assert caught.value.field == field


def test_params_go_to_the_one_strategy_they_can_mean():
    for request in (
        {"strategy": "sma_crossover", "params": {"fast": 5}},
        {"strategies": ["sma_crossover"], "params": {"fast": 5}},
    ):
        assert run_spec(request).jobs == (("sma_crossover", {"fast": 5, "slow": 50}),)
    # Empty or absent params are no request at all, so "all" accepts them.
    for params in ({}, None):
        spec = run_spec({"strategy": "all", "params": params})
        assert [k for k, _ in spec.jobs] == list(STRATEGIES)
    spec = run_spec({"strategy": "sma_crossover", "interval": None})
    assert spec.interval == "1h"


def test_every_parameter_problem_is_listed():
    with pytest.raises(RequestError) as caught:
        run_spec({"strategy": "macd_crossover", "params": {"fast": 0, "signal": 999}})
    fields = {name for name, _ in caught.value.errors}
    assert {"params.fast", "params.signal"} <= fields


def _result(symbol, strategy, ret, bh, sharpe, trades=3):
    return {
        "symbol": symbol,
        "strategy": strategy,
        "metrics": {
            "total_return_pct": ret,
            "buy_hold_return_pct": bh,
            "sharpe": sharpe,
            "num_trades": trades,
        },
    }


def test_summary_by_hand():
    results = [
        _result("A", "s1", 10.0, 5.0, 1.0),
        _result("B", "s1", -4.0, 2.0, None),
        _result("C", "s1", 30.0, 40.0, 2.0),
        {"symbol": "D", "strategy": "s1", "metrics": None, "skipped": "no data"},
    ]
    summary = summarize(results)
    assert summary["results"] == 4 and summary["skipped"] == 1
    assert summary["beat_buy_hold"] == 1
    assert summary["median_return_pct"] == 10.0
    assert summary["mean_return_pct"] == pytest.approx(12.0)
    assert summary["mean_sharpe"] == pytest.approx(1.5)
    # The best names its parameter set too: a run may hold a strategy twice.
    assert summary["best"] == {"symbol": "C", "strategy": "s1", "params": {},
                               "total_return_pct": 30.0}  # fmt: skip
    assert summary["worst"]["symbol"] == "B"
    assert "by_strategy" not in summary
    two = summarize(results + [_result("A", "s2", 1.0, 0.0, 0.5)])
    assert two["by_strategy"]["s2"]["results"] == 1
    # Flat at 0% while buy & hold lost 3% is no strategy beating the market.
    idle = summarize([_result("E", "s1", 0.0, -3.0, None, trades=0)])
    assert idle["beat_buy_hold"] == 0


def test_empty_summary():
    summary = summarize([])
    assert summary["results"] == 0 and summary["best"] is None
