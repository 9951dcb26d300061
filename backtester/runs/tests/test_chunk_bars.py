"""A run's chunks after the first are bounded in bars, not only in coins: a
coin-year of minutes is twelve times five years of hours."""

from __future__ import annotations

import pytest

from backtester.execution.pool import Runner
from backtester.runs.tests.factories import make_coins, random_walk
from backtester.runs.validation import run_spec
from prices.selectors import coins_by_symbols
from prices.services import bars_import

pytestmark = pytest.mark.django_db(transaction=True)

SYMBOLS = [f"C{i:02d}" for i in range(11)]


def loads_of_a_run(monkeypatch, interval: str = "1h") -> list[list[str]]:
    """Run every strategy over SYMBOLS (300 bars each); return the chunks loaded."""
    if interval == "1h":
        make_coins(SYMBOLS, bars=300)
    else:
        for i, symbol in enumerate(SYMBOLS):
            series = random_walk(300, seed=i + 1, step=60)
            bars_import(symbol=symbol, series=series, interval=interval)
    loads, load = [], Runner._load_coins

    def recorded(chunk, start, end, interval):
        loads.append([coin.symbol for coin in chunk])
        return load(chunk, start, end, interval)

    monkeypatch.setattr(Runner, "_load_coins", staticmethod(recorded))
    runner = Runner(workers=1, max_runs=2, loaders=1)
    spec = run_spec({"strategies": "all", "symbols": SYMBOLS, "interval": interval})
    handle = runner.submit(
        run_id=-1, spec=spec, coins=coins_by_symbols(SYMBOLS), publish=lambda e: None
    )
    assert handle.done.wait(60)
    assert handle.status == "complete"
    assert len(handle.rows) == len(SYMBOLS) * 6
    return loads


def test_later_chunks_take_as_many_coins_as_their_bars_allow(settings, monkeypatch):
    settings.BACKTEST_FIRST_CHUNK, settings.BACKTEST_CHUNK = 2, 5
    # 700 bars a chunk: two coins of 300 bars (600), not three (900).
    settings.BACKTEST_CHUNK_BARS = 700
    loads = loads_of_a_run(monkeypatch)
    # The last chunk, of one coin, loads on a thread of its own: it may start
    # before the chunk ahead of it.
    assert sorted((len(chunk) for chunk in loads), reverse=True) == [2] * 5 + [1]
    assert sorted(s for chunk in loads for s in chunk) == SYMBOLS


def test_a_chunk_holds_one_coin_even_when_it_alone_exceeds_the_bars(
    settings, monkeypatch
):
    settings.BACKTEST_FIRST_CHUNK, settings.BACKTEST_CHUNK = 2, 5
    settings.BACKTEST_CHUNK_BARS = 100
    loads = loads_of_a_run(monkeypatch)
    assert [len(chunk) for chunk in loads] == [2] + [1] * 9


def test_the_coin_count_still_bounds_chunks_of_short_series(settings, monkeypatch):
    settings.BACKTEST_FIRST_CHUNK, settings.BACKTEST_CHUNK = 2, 5
    settings.BACKTEST_CHUNK_BARS = 1_000_000
    loads = loads_of_a_run(monkeypatch)
    assert [len(chunk) for chunk in loads] == [2, 5, 4]


@pytest.mark.parametrize(
    ("interval", "first"),
    [("1h", 4), ("1m", 1)],
)
def test_the_first_chunk_of_minute_bars_is_one_coin(
    settings, monkeypatch, interval, first
):
    # Sixty times the bars per day: four coin-years of minutes would be 100 MB
    # to read before the first result.
    settings.BACKTEST_FIRST_CHUNK, settings.BACKTEST_CHUNK = 4, 16
    loads = loads_of_a_run(monkeypatch, interval)
    assert len(loads[0]) == first
    assert sorted(s for chunk in loads for s in chunk) == SYMBOLS
