"""Writes for portfolio runs: admit, create, compute on the control threads, finish.

A portfolio run is a job like a run or a sweep: admitted under the same count
of active jobs per process and per user, and the same per-minute throttle
(``runs.services.run_admit``, as the ``portfolio`` kind); counted while it
computes on the thread pool's control threads; cancellable between two
coins' signals. It goes on when its socket closes (as runs and sweeps do)
and is stored when it ends.
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
from backtester.portfolio import events, remote
from backtester.portfolio.compute import PortfolioCancelled, portfolio_compute
from backtester.portfolio.curve import chart_curve, curve_data
from backtester.portfolio.jobs import LocalJob, LocalJobs
from backtester.portfolio.models import PortfolioRun
from backtester.portfolio.validation import STOP_FIELDS, PortfolioSpec
from backtester.runs import processes
from prices.models import Cryptocurrency
from strategies.portfolio import PortfolioResult

logger = logging.getLogger(__name__)
UNFINISHED = [PortfolioRun.Status.QUEUED, PortfolioRun.Status.RUNNING]
# Its kind in the admission count: refusals name it ("2 portfolio runs").
KIND = "portfolio"


class PortfolioHandle(LocalJob):
    """A portfolio run computing in this process: ``cancel()``, ``wait()``."""

    @property
    def portfolio_id(self) -> int:
        return self.job_id


# Portfolio runs computing in this process, for a reloaded page's cancel.
_active = LocalJobs(KIND)


def portfolio_build(
    *,
    spec: PortfolioSpec,
    coins: Sequence[Cryptocurrency],
    user=None,
    source: str = PortfolioRun.Source.WEB,
) -> PortfolioRun:
    """Return a queued portfolio run for the spec and coins, not saved."""
    return PortfolioRun(
        created_by=user if getattr(user, "is_authenticated", False) else None,
        source=source,
        strategy=spec.strategy,
        params=spec.params,
        symbols=[c.symbol for c in coins],
        data_versions={c.symbol: c.data_version for c in coins},
        start=spec.start,
        end=spec.end,
        interval=spec.interval,
        fee=spec.fee,
        slippage_bps=spec.slippage_bps,
        max_positions=spec.max_positions,
        rank=spec.rank,
        **{name: getattr(spec.risk, name) for name in STOP_FIELDS},
        total=len(coins),
        owner=processes.identity(),
    )


def portfolio_create(
    *,
    spec: PortfolioSpec,
    coins: Sequence[Cryptocurrency],
    user=None,
    source: str = PortfolioRun.Source.WEB,
) -> PortfolioRun:
    """Record a queued portfolio run for the spec and coins."""
    run = portfolio_build(spec=spec, coins=coins, user=user, source=source)
    run.save()
    return run


def _finite(value: object) -> object:
    """Return a JSON-safe number: None for NaN and infinities."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def portfolio_start(
    *,
    run: PortfolioRun,
    coins: Sequence[Cryptocurrency],
    publish: Publish,
    slot: Slot,
) -> PortfolioHandle:
    """Count the run in the place ``slot`` holds and compute it on a control
    thread; return its handle. Events go through ``publish``."""
    handle = PortfolioHandle(run.pk)
    _active.start(
        handle, run, slot=slot, coins=coins, publish=publish, drive=_drive,
        watch_remote=_watch_remote, finish=portfolio_finish,
    )  # fmt: skip
    return handle


def portfolio_handle(portfolio_id: int) -> PortfolioHandle | None:
    """Return the handle of a portfolio run this process computes, or None."""
    return _active.get(portfolio_id)


def _forget(handle: PortfolioHandle) -> None:
    """Stop counting the run: it is over (announced next) or never started."""
    _active.forget(handle)


def _drive(
    run: PortfolioRun,
    coins: list[Cryptocurrency],
    handle: PortfolioHandle,
    publish: Publish,
) -> None:
    """Compute, store and announce one portfolio run (a control thread)."""
    close_old_connections()
    began = time.perf_counter()

    def progress(symbol: str, completed: int, total: int) -> None:
        publish(events.layer_progress(run.pk, symbol, completed, total))

    try:
        result, bars = portfolio_compute(
            run, progress=progress, cancelled=handle.cancelled, coins=coins
        )
        if handle.cancelled.is_set():
            raise PortfolioCancelled
        curve = chart_curve(result, bars, fee=run.fee)
        metrics = {k: _finite(v) for k, v in result.metrics.items()}
        contributions = {k: _finite(v) for k, v in result.contributions.items()}
        handle.elapsed_s = time.perf_counter() - began
        portfolio_store(
            run.pk, metrics=metrics, contributions=contributions, curve=curve
        )
        publish(events.layer_result(run.pk, metrics, curve_data(curve), contributions))
        handle.status = "complete"
    except PortfolioCancelled:
        handle.status = "cancelled"
    except Exception as exc:
        logger.exception("portfolio run %s failed", run.pk)
        handle.status, handle.error = "failed", failure_reason(exc)
    finally:
        handle.elapsed_s = time.perf_counter() - began
        try:
            portfolio_finish(
                run.pk,
                status=handle.status,
                elapsed_s=handle.elapsed_s,
                error=handle.error,
            )
        except Exception:
            logger.exception("could not save portfolio run %s", run.pk)
        _forget(handle)
        try:
            publish(
                events.layer_final(
                    run.pk, handle.status, elapsed_s=handle.elapsed_s,
                    error=handle.error,
                )
            )  # fmt: skip
        except Exception:
            logger.warning("could not announce portfolio run %s's end", run.pk)
        handle.done.set()
        connections.close_all()


def _watch_remote(run: PortfolioRun, handle: PortfolioHandle, publish: Publish) -> None:
    """Send the run to a Celery worker and watch its record until it ends (a
    control thread); the worker stores and announces it."""
    began = time.perf_counter()
    unfinished = PortfolioRun.objects.filter(pk=run.pk, status__in=UNFINISHED)

    def fail(reason: str) -> None:
        handle.status, handle.error = "failed", reason
        portfolio_finish(
            run.pk, status="failed", elapsed_s=time.perf_counter() - began,
            error=reason,
        )  # fmt: skip
        publish(events.layer_final(run.pk, "failed", elapsed_s=0.0, error=reason))

    try:
        task_id = send(remote.RUN_TASK, run.pk)
        watch(
            handle=handle,
            started=lambda: not unfinished.filter(completed=0).exists(),
            finished=lambda: not unfinished.exists(),
            fail=fail,
            task_ids=[task_id],
        )
    except Exception as exc:
        logger.exception("portfolio run %s: could not watch its task", run.pk)
        fail(failure_reason(exc))
    finally:
        _forget(handle)
        handle.done.set()


def portfolio_store(
    portfolio_id: int, *, metrics: dict, contributions: dict, curve: dict
) -> None:
    """Store a computed run's metrics, contributions and chart curve."""
    with transaction.atomic():
        run = PortfolioRun.objects.select_for_update().get(pk=portfolio_id)
        run.metrics, run.contributions, run.curve = metrics, contributions, curve
        run.completed = run.total
        run.save(update_fields=["metrics", "contributions", "curve", "completed"])


def portfolio_finish(
    portfolio_id: int, *, status: str, elapsed_s: float | None = None, error: str = ""
) -> None:
    """Record a run's end (once: a finished run keeps its record)."""
    PortfolioRun.objects.filter(pk=portfolio_id, status__in=UNFINISHED).update(
        status=status, elapsed_s=elapsed_s, error=error, finished_at=timezone.now()
    )


def portfolio_cancel_record(portfolio_id: int) -> str:
    """Record a run cancelled unless it has ended; return its final status."""
    portfolio_finish(portfolio_id, status=PortfolioRun.Status.CANCELLED)
    return PortfolioRun.objects.values_list("status", flat=True).get(pk=portfolio_id)


def portfolios_mark_stale() -> int:
    """Fail runs left queued/running by a process on this host that is gone."""
    unfinished = PortfolioRun.objects.filter(status__in=UNFINISHED)
    owners = set(unfinished.exclude(owner="").values_list("owner", flat=True))
    dead = [owner for owner in owners if processes.is_alive(owner) is False]
    if not dead:
        return 0
    return unfinished.filter(owner__in=dead).update(
        status=PortfolioRun.Status.FAILED,
        error="interrupted by a server restart",
        finished_at=timezone.now(),
    )


def portfolio_run_now(run: PortfolioRun, *, progress=None) -> PortfolioResult:
    """Compute a run in this thread (the command line), store it unless it has
    no id, and return the result; errors are stored and raised."""
    began = time.perf_counter()
    saved = run.pk is not None
    if saved:
        PortfolioRun.objects.filter(pk=run.pk).update(
            status=PortfolioRun.Status.RUNNING, started_at=timezone.now()
        )
    try:
        result, bars = portfolio_compute(run, progress=progress)
    except BaseException as exc:
        if saved:
            status = "cancelled" if isinstance(exc, KeyboardInterrupt) else "failed"
            portfolio_finish(
                run.pk, status=status, elapsed_s=time.perf_counter() - began,
                error=failure_reason(exc) if status == "failed" else "",
            )  # fmt: skip
        raise
    run.metrics = {k: _finite(v) for k, v in result.metrics.items()}
    run.contributions = {k: _finite(v) for k, v in result.contributions.items()}
    run.elapsed_s = time.perf_counter() - began
    run.status = PortfolioRun.Status.COMPLETE
    if saved:
        portfolio_store(
            run.pk, metrics=run.metrics, contributions=run.contributions,
            curve=chart_curve(result, bars, fee=run.fee),
        )  # fmt: skip
        portfolio_finish(run.pk, status="complete", elapsed_s=run.elapsed_s)
    return result
