"""Writes for stored portfolio sweeps: create, compute on a control thread, finish.

A portfolio sweep is a job like a sweep: admitted (``run_admit`` with the kind
``"portfolio_sweep"``) before anything is written, counted while it computes,
cancellable between two cells, and stored when it ends whether its socket is
still open or not. Each combination is one account pass over the whole basket
(``strategies.portfolio_sweep``), so the unit of work is the cell: each is
stored and published as it finishes, and a cancel takes effect before the
next one.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence

from django.db import close_old_connections, connections, transaction
from django.utils import timezone

from backtester.execution.failures import failure_reason
from backtester.execution.handles import Publish, Slot
from backtester.execution.remote import send, watch
from backtester.portfolio import remote
from backtester.portfolio import sweep_events as events
from backtester.portfolio.jobs import LocalJob, LocalJobs
from backtester.portfolio.models import PortfolioSweep, PortfolioSweepCell
from backtester.portfolio.sweep import PortfolioSweepSpec
from backtester.portfolio.sweep_run import basket_load, best_cell
from backtester.runs import processes
from prices.models import Cryptocurrency
from strategies.portfolio_sweep import portfolio_sweep

logger = logging.getLogger(__name__)
KIND = "portfolio_sweep"
UNFINISHED = [PortfolioSweep.Status.QUEUED, PortfolioSweep.Status.RUNNING]


class PortfolioSweepHandle(LocalJob):
    """A portfolio sweep computing in this process: ``cancel()``, ``wait()``."""

    @property
    def sweep_id(self) -> int:
        return self.job_id


# Portfolio sweeps computing in this process, for a reloaded page's cancel.
_active = LocalJobs(KIND)


def psweep_handle(sweep_id: int) -> PortfolioSweepHandle | None:
    """Return the handle of a portfolio sweep this process computes, or None."""
    return _active.get(sweep_id)


def psweep_create(
    *, spec: PortfolioSweepSpec, coins: Sequence[Cryptocurrency], user=None
) -> PortfolioSweep:
    """Record a queued portfolio sweep for the spec and coins."""
    base = spec.base
    return PortfolioSweep.objects.create(
        created_by=user if getattr(user, "is_authenticated", False) else None,
        strategy=base.strategy,
        grid=spec.grid,
        axes=spec.axes,
        axis_names=list(spec.axes),
        base_params=spec.base_params,
        combinations=list(spec.combinations),
        symbols=sorted(c.symbol for c in coins),
        data_versions={c.symbol: c.data_version for c in coins},
        start=base.start,
        end=base.end,
        interval=base.interval,
        fee=base.fee,
        slippage_bps=base.slippage_bps,
        rank=base.rank,
        objective=spec.objective,
        skipped=spec.skipped,
        owner=processes.identity(),
    )


def psweep_start(
    *,
    sweep: PortfolioSweep,
    coins: Sequence[Cryptocurrency],
    publish: Publish,
    slot: Slot,
) -> PortfolioSweepHandle:
    """Count the sweep in the place ``slot`` holds and compute it on a control
    thread; return its handle. Events go through ``publish``."""
    handle = PortfolioSweepHandle(sweep.pk)
    _active.start(
        handle, sweep, slot=slot, coins=coins, publish=publish, drive=_drive,
        watch_remote=_watch_remote, finish=psweep_finish,
    )  # fmt: skip
    return handle


def _forget(handle: PortfolioSweepHandle) -> None:
    """Stop counting the sweep: it is over (announced next) or never started."""
    _active.forget(handle)


def _drive(
    sweep: PortfolioSweep,
    coins: list[Cryptocurrency],
    handle: PortfolioSweepHandle,
    publish: Publish,
) -> None:
    """Compute, store and announce each cell, then the end (a control thread)."""
    close_old_connections()
    began = time.perf_counter()
    try:
        basket = basket_load(
            coins, start=sweep.start, end=sweep.end, interval=sweep.interval
        )
        cells = portfolio_sweep(
            basket, sweep.strategy, sweep.combinations, rank=sweep.rank,
            fee=sweep.fee, slippage_bps=sweep.slippage_bps, interval=sweep.interval,
        )  # fmt: skip
        for index, result in cells:
            if handle.cancelled.is_set():
                break
            item = psweep_cell_store(sweep.pk, index, result.metrics)
            if item is not None:
                publish(events.layer_cell(sweep.pk, item))
        handle.status = "cancelled" if handle.cancelled.is_set() else "complete"
    except Exception as exc:  # the sweep fails, the server goes on
        logger.exception("portfolio sweep %s failed", sweep.pk)
        handle.status, handle.error = "failed", failure_reason(exc)
    handle.elapsed_s = time.perf_counter() - began
    try:
        final = psweep_finish(
            sweep.pk, status=handle.status, elapsed_s=handle.elapsed_s,
            error=handle.error,
        )  # fmt: skip
    except Exception:
        logger.exception("could not save portfolio sweep %s", sweep.pk)
        final = events.layer_final(sweep.pk, "failed", error="could not save it")
    _forget(handle)
    try:
        publish(final)
    except Exception:
        logger.warning("could not announce portfolio sweep %s's end", sweep.pk)
    finally:
        handle.done.set()
        connections.close_all()


def _watch_remote(
    sweep: PortfolioSweep, handle: PortfolioSweepHandle, publish: Publish
) -> None:
    """Send the sweep's blocks to Celery workers and end it when every cell
    is stored (a control thread); the workers store and publish the cells."""
    began = time.perf_counter()
    total = len(sweep.combinations)

    def finished() -> bool:
        row = PortfolioSweep.objects.values("status", "completed").get(pk=sweep.pk)
        if row["status"] in UNFINISHED and row["completed"] >= total:
            publish(
                psweep_finish(
                    sweep.pk, status="complete", elapsed_s=time.perf_counter() - began
                )
            )
            return True
        return row["status"] not in UNFINISHED

    def fail(reason: str) -> None:
        publish(psweep_finish(sweep.pk, status="failed", error=reason))

    try:
        task_ids = [
            send(remote.SWEEP_TASK, sweep.pk, indexes, block=k)
            for k, indexes in enumerate(remote.sweep_blocks(sweep.combinations))
        ]
        watch(
            handle=handle,
            started=lambda: PortfolioSweep.objects.filter(
                pk=sweep.pk, completed__gt=0
            ).exists(),
            finished=finished,
            fail=fail,
            task_ids=task_ids,
        )
    except Exception as exc:
        logger.exception("portfolio sweep %s: could not watch its tasks", sweep.pk)
        fail(failure_reason(exc))
    finally:
        _forget(handle)
        handle.done.set()


def _finite(value: object) -> object:
    """Return None for NaN and infinities (JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def psweep_cell_store(sweep_id: int, index: int, metrics: dict) -> dict | None:
    """Store one finished cell (once) and count it; return it as published,
    or None when it was stored already or the sweep has ended."""
    with transaction.atomic():
        sweep = (
            PortfolioSweep.objects.select_for_update()
            .only("status", "combinations", "completed")
            .get(pk=sweep_id)
        )
        if sweep.status not in UNFINISHED:
            return None
        cell, created = PortfolioSweepCell.objects.get_or_create(
            sweep_id=sweep_id,
            index=index,
            defaults={
                "params": sweep.combinations[index],
                "metrics": {k: _finite(v) for k, v in metrics.items()},
            },
        )
        if not created:
            return None
        PortfolioSweep.objects.filter(pk=sweep_id).update(completed=sweep.completed + 1)
    return cell.item()


def psweep_best(sweep_id: int, objective: str) -> dict | None:
    """Return the stored cell with the best objective (the first of equals),
    by the command line's rule (``best_cell``)."""
    cells = PortfolioSweepCell.objects.filter(sweep_id=sweep_id).order_by("index")
    scored = [{**cell.metrics, "cell": cell} for cell in cells]
    best = best_cell(scored, objective)
    return None if best is None else best["cell"].item()


def psweep_finish(
    sweep_id: int, *, status: str, elapsed_s: float | None = None, error: str = ""
) -> dict:
    """Record a sweep's end (once) and return the layer event announcing it;
    a sweep finished already keeps its record, which the event then tells."""
    sweep = PortfolioSweep.objects.get(pk=sweep_id)
    best = psweep_best(sweep_id, sweep.objective) if status == "complete" else None
    if elapsed_s is None and sweep.started_at is not None:
        elapsed_s = (timezone.now() - sweep.started_at).total_seconds()
    updated = PortfolioSweep.objects.filter(pk=sweep_id, status__in=UNFINISHED).update(
        status=status, best=best, elapsed_s=elapsed_s, error=error,
        finished_at=timezone.now(),
    )  # fmt: skip
    if not updated:
        sweep.refresh_from_db()
        status, best, elapsed_s, error = (
            sweep.status, sweep.best, sweep.elapsed_s, sweep.error
        )  # fmt: skip
    return events.layer_final(
        sweep_id, status, best=best, elapsed_s=elapsed_s or 0.0, error=error
    )


def psweeps_mark_stale() -> int:
    """Fail sweeps left queued/running by a process on this host that is gone."""
    unfinished = PortfolioSweep.objects.filter(status__in=UNFINISHED)
    owners = set(unfinished.exclude(owner="").values_list("owner", flat=True))
    dead = [owner for owner in owners if processes.is_alive(owner) is False]
    if not dead:
        return 0
    return unfinished.filter(owner__in=dead).update(
        status=PortfolioSweep.Status.FAILED,
        error="interrupted by a server restart",
        finished_at=timezone.now(),
    )
