"""What the pages say and how they colour it (presenters and views, no browser)."""

from __future__ import annotations

from backtester.runs.presenters import summary_pick, summary_rows


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
