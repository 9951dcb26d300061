"""Every trade and every bar of a stored result, recomputed on demand.

A run stores its metrics, a preview of its trades and a 200-point equity curve:
storing every bar of 288 five-year curves would take ~200 MB a run. Instead the
detail page recomputes the one result it shows from what the run recorded - the
strategy, its parameters, the range, the costs - and the coin's bars. The engine
is deterministic, so this gives back exactly the trades and curve the metrics
were computed from, provided the bars are the ones the run saw: the run records
each coin's data version, and a replay refuses when it changed (an import since
the run) or when the recomputed result disagrees with the stored metrics.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from backtester.library.selectors import strategy_or_key
from backtester.runs.models import BacktestResult, BacktestRun
from prices.models import Cryptocurrency
from prices.selectors import bars_load
from prices.types import PriceSeries
from strategies.engine import run_many
from strategies.risk import validate_risk
from strategies.types import BacktestResult as EngineResult
from strategies.types import Bars

# Replays kept per process: a zoom re-fetches the same result several times.
CACHE_SIZE = 8


class ReplayError(Exception):
    """The result cannot be recomputed as it was (prices changed or are gone)."""


@dataclass(frozen=True)
class Replay:
    """A result recomputed at full resolution, with the bars it ran on."""

    bars: PriceSeries
    result: EngineResult
    drawdown_pct: np.ndarray  # 0 at a running peak, negative below it

    @property
    def trades(self) -> dict[str, np.ndarray]:
        return self.result.trade_table


_cache: OrderedDict[tuple, Replay] = OrderedDict()
_lock = threading.Lock()


def engine_options(run: BacktestRun) -> dict:
    """Return the run's settings as keyword arguments of ``run_many``."""
    return {
        "fee": run.fee,
        "slippage_bps": run.slippage_bps,
        "interval": run.interval,
        # {} for runs stored before risk settings: the defaults they ran with.
        "risk": validate_risk(run.risk or None),
    }


def drawdown_pct(equity: np.ndarray) -> np.ndarray:
    """Return each bar's percentage below the running peak (0 or negative)."""
    peak = np.maximum.accumulate(equity)
    return (equity / peak - 1.0) * 100.0


def result_replay(run: BacktestRun, result: BacktestResult) -> Replay:
    """Return ``result`` recomputed bar by bar, or raise ReplayError."""
    if not result.bars:
        raise ReplayError(f"{result.symbol} had no bars in this run's range")
    coin = Cryptocurrency.objects.filter(symbol=result.symbol).first()
    if coin is None:
        raise ReplayError(f"the prices of {result.symbol} are no longer stored")
    recorded = (run.data_versions or {}).get(result.symbol)
    if recorded is not None and recorded != coin.data_version:
        raise ReplayError(
            f"the prices of {result.symbol} changed since this run (data version "
            f"{coin.data_version}, the run used {recorded}): re-run it to see "
            "its trades and curves"
        )
    options = engine_options(run)
    key = (
        run.pk,
        result.symbol,
        result.strategy,
        tuple(sorted(result.params.items())),
        coin.data_version,
    )
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    series = bars_load(
        start=run.start, end=run.end, interval=run.interval, coins=[coin]
    )[coin.symbol]
    if len(series.time) != result.bars:
        raise ReplayError(
            f"the bars of {result.symbol} in this range changed since the run "
            f"({len(series.time)} now, {result.bars} then)"
        )
    # The saved version the run recorded, whatever its strategy says today.
    strategy = strategy_or_key(result.strategy, run.strategy_versions)
    (engine,) = run_many(Bars(*series), [(strategy, result.params)], **options)
    _check_same(result, engine)
    replay = Replay(series, engine, drawdown_pct(engine.equity))
    with _lock:
        _cache[key] = replay
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return replay


def _check_same(stored: BacktestResult, engine: EngineResult) -> None:
    """Raise ReplayError unless the recomputed metrics are the stored ones."""
    for name in ("num_trades", "final_equity", "max_drawdown_pct"):
        then, now = (stored.metrics or {}).get(name), engine.metrics.get(name)
        if then is None and now is None:
            continue
        if then is None or now is None or not math.isclose(then, now, rel_tol=1e-9):
            raise ReplayError(
                f"recomputing {stored.symbol} gave {name} {now} instead of the "
                f"stored {then}: its prices or the engine changed since the run"
            )


def cache_clear() -> None:
    """Forget every kept replay (tests)."""
    with _lock:
        _cache.clear()
