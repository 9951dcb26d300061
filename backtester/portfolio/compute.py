"""Compute a stored portfolio run from its settings, and replay it on demand.

The engine is deterministic, so the trades a run's pages list are recomputed
from the stored settings and the coins' bars rather than stored, as a
single-coin result is replayed (``runs/replay.py``): the run records each
coin's data version, and a replay refuses when one changed since or when the
recomputed account ends elsewhere than the stored one. The last few results
are kept per process (the one just computed among them), so a page's trade
list and its paging cost one pass at most.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable

from backtester.portfolio.models import PortfolioRun
from prices.models import Cryptocurrency
from prices.selectors import bars_load
from strategies.portfolio import PortfolioResult, run_portfolio
from strategies.types import Bars

# Portfolio results kept per process: a page pages through one run's trades.
CACHE_SIZE = 4

Progress = Callable[[str, int, int], None]


class PortfolioCancelled(Exception):
    """The run was cancelled between two coins' signals."""


class ReplayError(Exception):
    """The run cannot be recomputed as it was (prices changed or are gone)."""


_cache: OrderedDict[tuple, tuple[PortfolioResult, list[Bars]]] = OrderedDict()
_lock = threading.Lock()


def _key(run: PortfolioRun, versions: dict[str, int]) -> tuple:
    return (run.pk, tuple(sorted(versions.items())))


def _remember(key: tuple, value: tuple[PortfolioResult, list[Bars]]) -> None:
    with _lock:
        _cache[key] = value
        _cache.move_to_end(key)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)


def portfolio_compute(
    run: PortfolioRun,
    *,
    progress: Progress | None = None,
    cancelled: threading.Event | None = None,
    coins: list[Cryptocurrency] | None = None,
) -> tuple[PortfolioResult, list[Bars]]:
    """Run the stored settings over the coins' bars; return the result and bars.

    ``progress(symbol, completed, total)`` counts every coin of the basket
    (those without bars in the range at once); ``cancelled`` is looked at
    between coins and raises PortfolioCancelled. ValueError when no coin has
    a bar in the range.
    """
    if coins is None:
        coins = list(Cryptocurrency.objects.filter(symbol__in=run.symbols))
    series = bars_load(coins=coins, start=run.start, end=run.end, interval=run.interval)
    basket = {s: Bars(*series[s]) for s in sorted(series) if len(series[s].time)}
    if not basket:
        raise ValueError("symbols: no coin of the basket has prices in this range")
    empty, total = len(run.symbols) - len(basket), len(run.symbols)

    def step(symbol: str, done: int, _count: int) -> None:
        if cancelled is not None and cancelled.is_set():
            raise PortfolioCancelled
        if progress is not None:
            progress(symbol, empty + done, total)

    if cancelled is not None and cancelled.is_set():
        raise PortfolioCancelled
    result = run_portfolio(
        basket, run.strategy, run.params, max_positions=run.max_positions,
        rank=run.rank, risk=run.risk, fee=run.fee, slippage_bps=run.slippage_bps,
        interval=run.interval, progress=step,
    )  # fmt: skip
    bars = list(basket.values())
    _remember(_key(run, {c.symbol: c.data_version for c in coins}), (result, bars))
    return result, bars


def portfolio_replay(run: PortfolioRun) -> PortfolioResult:
    """Return a finished run's result recomputed, or raise ReplayError."""
    if run.status != PortfolioRun.Status.COMPLETE:
        raise ReplayError(f"portfolio run {run.pk} is {run.status}: it has no trades")
    coins = list(Cryptocurrency.objects.filter(symbol__in=run.symbols))
    gone = sorted(set(run.symbols) - {c.symbol for c in coins})
    if gone:
        raise ReplayError(f"the prices of {', '.join(gone)} are no longer stored")
    versions = {c.symbol: c.data_version for c in coins}
    changed = sorted(
        s for s, v in (run.data_versions or {}).items() if versions.get(s) != v
    )
    if changed:
        raise ReplayError(
            f"the prices of {', '.join(changed)} changed since this run: re-run "
            "it to see its trades"
        )
    key = _key(run, versions)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key][0]
    result, _bars = portfolio_compute(run, coins=coins)
    stored = (run.metrics or {}).get("final_equity")
    now = result.metrics.get("final_equity")
    if stored is None or now is None or not math.isclose(stored, now, rel_tol=1e-9):
        raise ReplayError(
            f"recomputing gave a final equity of {now} instead of the stored "
            f"{stored}: the prices or the engine changed since the run"
        )
    return result


def cache_clear() -> None:
    """Forget every kept result (tests)."""
    with _lock:
        _cache.clear()
