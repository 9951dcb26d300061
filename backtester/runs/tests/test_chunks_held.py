"""A run over many coins holds a few chunks of bars at a time, never all of them."""

from __future__ import annotations

import threading
import weakref

import numpy as np
import pytest

from backtester.execution.pool import Runner
from backtester.runs.tests.factories import make_coins
from backtester.runs.validation import run_spec
from prices.selectors import coins_by_symbols
from prices.types import COLUMNS, PriceSeries

pytestmark = pytest.mark.django_db(transaction=True)

SYMBOLS = [f"C{i:02d}" for i in range(20)]


class Tracked:
    """Count the coins whose loaded arrays are alive (any of the six columns)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.arrays: dict[str, int] = {}  # symbol -> its columns still alive
        self.loads: list[list[str]] = []
        self.peak = 0

    def _gone(self, symbol: str) -> None:
        with self.lock:
            self.arrays[symbol] -= 1
            if not self.arrays[symbol]:
                del self.arrays[symbol]

    def wrap(self, loaded: dict[str, PriceSeries]) -> dict[str, PriceSeries]:
        """Return owned copies of a load's arrays, each watched until freed."""
        out = {}
        with self.lock:
            self.loads.append(list(loaded))
            for symbol, series in loaded.items():
                copy = PriceSeries(*(np.array(column) for column in series))
                for column in copy:
                    weakref.finalize(column, self._gone, symbol)
                self.arrays[symbol] = len(COLUMNS)
                out[symbol] = copy
            # Coins only ever arrive here, so this is the most held at once.
            self.peak = max(self.peak, len(self.arrays))
        return out


@pytest.mark.parametrize("held", [1, 2])
def test_a_run_over_many_coins_holds_at_most_its_chunks_of_bars(
    settings, monkeypatch, held
):
    settings.BACKTEST_FIRST_CHUNK, settings.BACKTEST_CHUNK = 2, 3
    settings.BACKTEST_CHUNKS_HELD = held
    make_coins(SYMBOLS, bars=300)
    tracked, load = Tracked(), Runner._load_coins

    def tracked_load(chunk, start, end, interval):
        return tracked.wrap(load(chunk, start, end, interval))

    monkeypatch.setattr(Runner, "_load_coins", staticmethod(tracked_load))
    runner = Runner(workers=1, max_runs=2, loaders=1)
    coins = coins_by_symbols(SYMBOLS)
    spec = run_spec({"strategies": "all", "symbols": SYMBOLS})
    handle = runner.submit(run_id=-1, spec=spec, coins=coins, publish=lambda e: None)
    assert handle.done.wait(60)
    assert handle.status == "complete"
    # Every coin loaded once, in chunks of 2, then 3: 2 + 6 x 3.
    assert [len(chunk) for chunk in tracked.loads] == [2] + [3] * 6
    assert sorted(s for chunk in tracked.loads for s in chunk) == SYMBOLS
    assert sorted({row.data["symbol"] for row in handle.rows}) == SYMBOLS
    assert len(handle.rows) == 20 * 6
    # ``held`` chunks of three at most, plus the coin a compute thread may
    # still be letting go of as the next load arrives; holding every loaded
    # chunk until the run ends would reach all 20.
    assert tracked.peak <= held * 3 + 1, tracked.peak
    del handle
    assert not tracked.arrays  # the run keeps no bars once it is over


class Overlap:
    """Record which threads load, and the most loads in flight at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = self.most = 0
        self.threads: set[str] = set()
        self.real = Runner._load_coins

    def load(self, chunk, start, end, interval):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
            self.threads.add(threading.current_thread().name.rsplit("_", 1)[0])
        try:
            # Long enough for a second load to start beside it, if one may.
            threading.Event().wait(0.05)
            return self.real(chunk, start, end, interval)
        finally:
            with self.lock:
                self.now -= 1


@pytest.mark.parametrize(("chunk", "most", "threads"), [
    (1, 1, {"backtest-load-one"}),  # one coin a chunk: one at a time, one thread
    (3, 2, {"backtest-load"}),  # larger chunks: both loaders at once
])  # fmt: skip
def test_chunks_of_one_coin_load_one_at_a_time_on_one_thread(
    settings, monkeypatch, chunk, most, threads
):
    settings.BACKTEST_FIRST_CHUNK = settings.BACKTEST_CHUNK = chunk
    settings.BACKTEST_CHUNKS_HELD = 4
    make_coins(SYMBOLS[:12], bars=300)
    overlap = Overlap()
    monkeypatch.setattr(Runner, "_load_coins", overlap.load)
    runner = Runner(workers=1, max_runs=2, loaders=2)
    spec = run_spec({"strategies": ["sma_crossover"], "symbols": SYMBOLS[:12]})
    handle = runner.submit(
        run_id=-1, spec=spec, coins=coins_by_symbols(SYMBOLS[:12]),
        publish=lambda e: None,
    )  # fmt: skip
    assert handle.done.wait(60)
    assert handle.status == "complete"
    assert len(handle.rows) == 12
    assert overlap.most == most
    assert overlap.threads == threads
