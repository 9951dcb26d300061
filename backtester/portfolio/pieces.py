"""What a Celery worker computes of portfolio jobs (tasks.py calls these).

Storing is idempotent: a run's record is overwritten with the same numbers, a
sweep's cell is stored once, so a task delivered again after its worker died
duplicates nothing. Each result is published to the job's group from here.
"""

from __future__ import annotations

import logging
import math
import time

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from backtester.execution.failures import failure_reason
from backtester.portfolio import events, sweep_events
from backtester.portfolio.compute import PortfolioCancelled, portfolio_compute
from backtester.portfolio.curve import chart_curve, curve_data
from backtester.portfolio.models import PortfolioRun, PortfolioSweep
from backtester.portfolio.models import PortfolioSweepCell as Cell
from backtester.portfolio.services import UNFINISHED, portfolio_finish, portfolio_store
from backtester.portfolio.sweep_run import basket_load
from backtester.portfolio.sweep_services import psweep_cell_store, psweep_finish
from prices.models import Cryptocurrency
from strategies.portfolio_sweep import portfolio_sweep

logger = logging.getLogger(__name__)


def _publish(group: str, event: dict) -> None:
    async_to_sync(get_channel_layer().group_send)(group, event)


def _finite(mapping: dict) -> dict:
    """Return the mapping with None for NaN and infinities (JSON has neither)."""
    return {
        k: None if isinstance(v, float) and not math.isfinite(v) else v
        for k, v in mapping.items()
    }


class _RecordStop:
    """Whether the run's record was ended meanwhile (a cancel): asked between
    coins, as the thread pool asks its handle's event."""

    def __init__(self, portfolio_id: int) -> None:
        self.portfolio_id = portfolio_id

    def is_set(self) -> bool:
        return not PortfolioRun.objects.filter(
            pk=self.portfolio_id, status__in=UNFINISHED
        ).exists()


def portfolio_run_piece(portfolio_id: int) -> str:
    """Compute, store and publish one portfolio run; return its final status."""
    run = PortfolioRun.objects.get(pk=portfolio_id)
    if run.is_finished:  # delivered again after it ended
        return run.status
    group = events.group(run.pk)
    began = time.perf_counter()

    def progress(symbol: str, completed: int, total: int) -> None:
        PortfolioRun.objects.filter(pk=run.pk).update(completed=completed)
        _publish(group, events.layer_progress(run.pk, symbol, completed, total))

    try:
        coins = list(Cryptocurrency.objects.filter(symbol__in=run.symbols))
        stop = _RecordStop(run.pk)
        result, bars = portfolio_compute(
            run, progress=progress, cancelled=stop, coins=coins
        )
        if stop.is_set():  # cancelled during the account pass
            raise PortfolioCancelled
        metrics, contributions = _finite(result.metrics), _finite(result.contributions)
        curve = chart_curve(result, bars, fee=run.fee)
        portfolio_store(
            run.pk, metrics=metrics, contributions=contributions, curve=curve
        )
        _publish(
            group,
            events.layer_result(run.pk, metrics, curve_data(curve), contributions),
        )
        status, error = "complete", ""
    except PortfolioCancelled:
        return "cancelled"  # the canceller recorded and announced it
    except Exception as exc:
        logger.exception("portfolio run %s failed on a worker", run.pk)
        status, error = "failed", failure_reason(exc)
    elapsed = time.perf_counter() - began
    portfolio_finish(run.pk, status=status, elapsed_s=elapsed, error=error)
    _publish(group, events.layer_final(run.pk, status, elapsed_s=elapsed, error=error))
    return status


def psweep_block_piece(sweep_id: int, indexes: list[int]) -> int:
    """Compute, store and publish a block of a sweep's cells; return how many
    it stored (none once the sweep has ended)."""
    sweep = PortfolioSweep.objects.get(pk=sweep_id)
    if sweep.is_finished:
        return 0
    done = set(
        Cell.objects.filter(sweep_id=sweep_id, index__in=indexes).values_list(
            "index", flat=True
        )
    )
    todo = [i for i in indexes if i not in done]
    if not todo:
        return 0
    group = sweep_events.group(sweep_id)
    stored = 0
    try:
        coins = list(Cryptocurrency.objects.filter(symbol__in=sweep.symbols))
        basket = basket_load(
            coins, start=sweep.start, end=sweep.end, interval=sweep.interval
        )
        cells = portfolio_sweep(
            basket, sweep.strategy, [sweep.combinations[i] for i in todo],
            rank=sweep.rank, fee=sweep.fee, slippage_bps=sweep.slippage_bps,
            interval=sweep.interval,
        )  # fmt: skip
        for local, result in cells:
            item = psweep_cell_store(sweep_id, todo[local], result.metrics)
            if item is None:  # ended meanwhile (a cancel): drop the rest
                return stored
            _publish(group, sweep_events.layer_cell(sweep_id, item))
            stored += 1
    except Exception as exc:
        logger.exception("portfolio sweep %s failed on a worker", sweep_id)
        final = psweep_finish(sweep_id, status="failed", error=failure_reason(exc))
        _publish(group, final)
    return stored
