"""A coin with a long series is computed one job a piece: each piece holds one
strategy's indicators, and the first result waits for one strategy, not all."""

from __future__ import annotations

import pytest

from backtester.execution.pool import Runner
from backtester.runs import compute as compute_module
from backtester.runs.tests.factories import make_coins
from backtester.runs.validation import run_spec
from prices.selectors import bars_load, coins_by_symbols
from strategies.engine import run_many
from strategies.registry import STRATEGIES
from strategies.types import Bars

pytestmark = pytest.mark.django_db(transaction=True)

SYMBOLS = ["AAA", "BBB", "CCC"]
REQUEST = {"strategies": "all", "symbols": SYMBOLS, "stop_loss_pct": 4}


def run_recording(monkeypatch) -> tuple[list[tuple[str, int]], list]:
    """Run REQUEST on a fresh runner; return (symbol, jobs) per piece and the rows."""
    pieces = []
    compute = compute_module.compute_coin

    def recorded(symbol, series, spec):
        pieces.append((symbol, len(spec.jobs)))
        return compute(symbol, series, spec)

    monkeypatch.setattr(compute_module, "compute_coin", recorded)
    runner = Runner(workers=2, max_runs=2, loaders=1)
    handle = runner.submit(
        run_id=-1,
        spec=run_spec(REQUEST),
        coins=coins_by_symbols(SYMBOLS),
        publish=lambda e: None,
    )
    assert handle.done.wait(60)
    assert handle.status == "complete"
    return pieces, handle.rows


def test_a_long_series_is_computed_one_job_a_piece(monkeypatch, settings):
    make_coins(SYMBOLS, bars=400)
    settings.BACKTEST_SPLIT_BARS = 400
    pieces, rows = run_recording(monkeypatch)
    assert sorted(pieces) == sorted((s, 1) for s in SYMBOLS for _ in STRATEGIES)
    # Each (coin, strategy) once, numbered 1..n without a gap.
    assert sorted(r.seq for r in rows) == list(range(1, len(SYMBOLS) * 6 + 1))
    assert len({(r.data["symbol"], r.data["strategy"]) for r in rows}) == len(rows)
    # The same figures as the engine run directly over all of a coin's jobs.
    spec = run_spec(REQUEST)
    series = bars_load(SYMBOLS)
    for symbol in SYMBOLS:
        direct = run_many(Bars(*series[symbol]), spec.jobs, risk=spec.risk)
        got = {
            r.data["strategy"]: r.data["metrics"]
            for r in rows
            if r.data["symbol"] == symbol
        }
        assert got == {d.strategy: d.metrics for d in direct}


def test_a_shorter_series_keeps_its_jobs_together(monkeypatch, settings):
    make_coins(SYMBOLS, bars=400)
    settings.BACKTEST_SPLIT_BARS = 401
    pieces, rows = run_recording(monkeypatch)
    assert sorted(pieces) == sorted((s, 6) for s in SYMBOLS)
    assert len(rows) == len(SYMBOLS) * 6
