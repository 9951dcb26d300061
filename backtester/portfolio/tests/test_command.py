"""`manage.py backtest --portfolio`: table, JSON and CSV, saving, error exits."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.management import CommandError, call_command

from backtester.portfolio.models import PortfolioRun
from backtester.runs.tests.factories import make_coins, random_walk

pytestmark = pytest.mark.django_db(transaction=True)
SYMBOLS = ["AAA", "BBB", "CCC"]
ARGS = (
    "--portfolio", "--strategy", "ema_crossover", "--param", "fast=5",
    "--param", "slow=20", "--max-positions", "2", "--rank", "rsi_14",
)  # fmt: skip
FEE = 0.001


@pytest.fixture
def coins():
    make_coins(SYMBOLS, bars=500)


def run(*args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command("backtest", *args, stdout=out, stderr=err)
    return out.getvalue()


def test_json_has_the_documented_shape_and_consistent_trades(coins):
    payload = json.loads(run(*ARGS, "--format", "json"))
    assert set(payload) == {"run", "portfolio"}
    assert set(payload["portfolio"]) == {"metrics", "contributions", "trades"}
    run_ = payload["run"]
    assert run_["max_positions"] == 2 and run_["rank"] == "rsi_14"
    assert run_["symbols"] == SYMBOLS and run_["source"] == "cli"
    trades = payload["portfolio"]["trades"]
    metrics = payload["portfolio"]["metrics"]
    assert len(trades) == metrics["num_trades"] > 0
    # Each trade's P&L by hand from its fills, units and the fee; each coin's
    # contribution is its trades' sum, and they add up to the account's gain.
    for t in trades:
        cost = t["entry_price"] * (1 + FEE)
        proceeds = t["exit_price"] * (1 - FEE)
        assert t["pnl"] == pytest.approx(t["units"] * (proceeds - cost))
        assert t["entry_time"] <= t["exit_time"] and t["side"] == "long"
    by_coin = {s: 0.0 for s in SYMBOLS}
    for t in trades:
        by_coin[t["symbol"]] += t["pnl"]
    assert payload["portfolio"]["contributions"] == pytest.approx(by_coin)
    assert sum(by_coin.values()) == pytest.approx(metrics["final_equity"] - 10_000)
    # Never more than two positions open at once, from the trades' own times.
    events = sorted(
        [(t["entry_time"], 1) for t in trades] + [(t["exit_time"], -1) for t in trades],
        key=lambda e: (e[0], e[1]),
    )
    held = peak = 0
    for _, step in events:
        held += step
        peak = max(peak, held)
    assert peak <= 2
    stored = PortfolioRun.objects.get(pk=run_["id"])
    assert stored.status == "complete" and stored.metrics == metrics


def test_csv_lists_every_trade(coins):
    rows = list(csv.DictReader(io.StringIO(run(*ARGS, "--format", "csv", "--no-save"))))
    payload = json.loads(run(*ARGS, "--format", "json", "--no-save"))
    assert len(rows) == len(payload["portfolio"]["trades"]) > 0
    assert rows[0]["symbol"] in SYMBOLS
    assert float(rows[0]["pnl"]) == pytest.approx(
        payload["portfolio"]["trades"][0]["pnl"]
    )
    assert PortfolioRun.objects.count() == 0


def test_table_shows_settings_metrics_and_contributions(coins):
    out = run(*ARGS, "--stop-loss", "4")
    assert "ema_crossover (fast=5, slow=20)" in out
    assert "2 slots ranked by rsi_14" in out and "stop loss 4%" in out
    assert "Benchmark (equal-weight buy & hold) %" in out
    for symbol in SYMBOLS:
        assert f"\n{symbol}" in out
    run_ = PortfolioRun.objects.get()
    assert out.rstrip().endswith(f"saved as portfolio run {run_.pk}")
    assert run_.stop_loss_pct == 4.0


def test_benchmark_is_equal_weight_buy_and_hold_by_hand(coins):
    payload = json.loads(run(*ARGS, "--format", "json", "--no-save"))
    growth = []
    for seed in (1, 2, 3):
        bars = random_walk(500, seed=seed)
        growth.append(bars.close[-1] * (1 - FEE) / (bars.open[0] * (1 + FEE)))
    expected = (sum(growth) / 3 - 1) * 100
    assert payload["portfolio"]["metrics"]["benchmark_return_pct"] == pytest.approx(
        expected
    )


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--max-positions", "0"), "--max-positions: must be between 1 and 100"),
        (("--max-positions", "x"), "--max-positions: expected a whole number"),
        (("--rank", "best"), "--rank: must be one of symbol, roc_24"),
        (("--direction", "short"), "--direction: not for a portfolio"),
        (("--size", "0.5"), "--size: not for a portfolio"),
        (("--symbols", "AAA,NOPE"), "--symbols"),
    ],
)
def test_bad_flags_fail_with_one_line(coins, args, words):
    with pytest.raises(CommandError) as caught:
        run(*ARGS, *args)
    assert words in str(caught.value)
    assert "\n" not in str(caught.value)
    assert PortfolioRun.objects.count() == 0


def test_all_strategies_is_refused(coins):
    with pytest.raises(CommandError, match="one strategy"):
        run("--portfolio", "--all-strategies")
