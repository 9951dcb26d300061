"""Writes for runs: create, start through the runner, save results, mark stale."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from backtester.execution import state
from backtester.execution.executors import get_executor
from backtester.execution.failures import failure_reason
from backtester.execution.handles import Publish, ResultRow, RunHandle, RunnerBusy, Slot
from backtester.execution.pool import current_runner, get_runner
from backtester.runs import processes
from backtester.runs.cache import run_fingerprint, run_from_cache
from backtester.runs.copying import results_copy
from backtester.runs.models import BacktestResult, BacktestRun, params_key
from backtester.runs.validation import RequestError, RunSpec
from prices.models import Cryptocurrency, Interval
from prices.selectors import (
    UnknownSymbolError,
    coins_by_symbols,
    coins_with_range,
    intervals_stored,
)
from prices.timeframes import source_interval

logger = logging.getLogger(__name__)
UNFINISHED = [BacktestRun.Status.QUEUED, BacktestRun.Status.RUNNING]


def run_coins(spec: RunSpec) -> list[Cryptocurrency]:
    """Return the coins a spec runs on, or raise RequestError naming 'symbols'."""
    try:
        coins = coins_by_symbols(spec.symbols)
    except UnknownSymbolError as exc:
        raise RequestError(str(exc), "symbols") from None
    if not coins:
        raise RequestError("symbols: there are no active coins to run", "symbols")
    if spec.start is not None or spec.end is not None:
        _check_range_has_data(spec, coins)
    if spec.interval not in (Interval.HOUR, Interval.DAY):
        _check_interval_stored(spec.interval, coins)
    return coins


def _check_interval_stored(interval: str, coins: Sequence[Cryptocurrency]) -> None:
    """Raise RequestError naming 'interval' when a coin's bars are all coarser
    than ``interval`` (hourly and daily bars exist for every imported coin)."""
    stored = intervals_stored([c.pk for c in coins])
    for coin in coins:
        if not stored.get(coin.pk):
            continue  # no bars at all: a row of "no data", as for any range
        try:
            source_interval(interval, stored[coin.pk])
        except ValueError as exc:
            problem = str(exc).removeprefix("interval: ")
            raise RequestError(
                f"interval: {coin.symbol}: {problem}", "interval"
            ) from None


def _check_range_has_data(spec: RunSpec, coins: Sequence[Cryptocurrency]) -> None:
    """Raise RequestError naming 'start' when no coin has a bar in the range:
    such a run could only store a row of "no data" per coin."""
    bounds = [
        (c.first_bar, c.last_bar)
        for c in coins_with_range(active_only=False).filter(
            pk__in=[c.pk for c in coins]
        )
        if c.first_bar is not None
    ]
    for first, last in bounds:
        if (spec.end is None or first < spec.end) and (
            spec.start is None or last >= spec.start
        ):
            return
    if not bounds:
        raise RequestError("symbols: these coins have no prices yet", "symbols")
    first = min(b[0] for b in bounds).strftime("%Y-%m-%d")
    last = max(b[1] for b in bounds).strftime("%Y-%m-%d")
    raise RequestError(
        f"start: no prices in this range; the data of these coins runs from "
        f"{first} to {last}",
        "start",
    )


def run_create(
    *,
    spec: RunSpec,
    coins: Sequence[Cryptocurrency],
    user=None,
    source: str = BacktestRun.Source.WEB,
    save: bool = True,
) -> BacktestRun:
    """Record a queued run for the spec and coins (``save`` off: only build it)."""
    run = BacktestRun(
        strategies=[{"strategy": k, "params": p} for k, p in spec.jobs],
        symbols=[c.symbol for c in coins],
        data_versions={c.symbol: c.data_version for c in coins},
        strategy_versions=dict(spec.versions),
        interval=spec.interval,
        start=spec.start,
        end=spec.end,
        fee=spec.fee,
        slippage_bps=spec.slippage_bps,
        risk=spec.risk.as_dict(),
        status=BacktestRun.Status.QUEUED,
        source=source,
        total=len(coins) * len(spec.jobs),
        created_by=user if getattr(user, "is_authenticated", False) else None,
        owner=processes.identity(),
        fingerprint=run_fingerprint(spec, coins),
    )
    if save:
        run.save()
    return run


def run_cached(
    *, spec: RunSpec, coins: Sequence[Cryptocurrency], user=None, source: str = "web"
) -> BacktestRun | None:
    """Record a complete run answered from an identical run's stored results, or
    return None (nothing written) when there is none or the spec asks afresh."""
    if spec.no_cache:
        return None
    return run_from_cache(
        run_create(spec=spec, coins=coins, user=user, source=source, save=False)
    )


def _epoch_to_dt(value: str | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def results_save(handle: RunHandle, rows: list[ResultRow]) -> None:
    """Store result rows of a run (called as each coin completes)."""
    results_insert(handle.run_id, rows)


def results_insert(run_id: int, rows: Sequence[ResultRow]) -> None:
    """Insert result rows of a run: one binary COPY on PostgreSQL (copying.py),
    one bulk insert elsewhere."""
    values = [result_values(run_id, row) for row in rows]
    if connection.vendor == "postgresql":
        results_copy(connection, BacktestResult._meta.db_table, values)
    else:
        BacktestResult.objects.bulk_create([BacktestResult(**v) for v in values])


def result_instance(run_id: int, row: ResultRow) -> BacktestResult:
    return BacktestResult(**result_values(run_id, row))


def result_values(run_id: int, row: ResultRow) -> dict:
    """Return the stored columns of a result row, by field name."""
    metrics = row.data["metrics"] or {}
    return {
        "run_id": run_id,
        "symbol": row.data["symbol"],
        "strategy": row.data["strategy"],
        "params": row.data["params"],
        "params_key": params_key(row.data["params"]),
        "seq": row.seq,
        "first_bar": _epoch_to_dt(row.data["first_bar"]),
        "last_bar": _epoch_to_dt(row.data["last_bar"]),
        "bars": row.data["bars"],
        "total_return_pct": metrics.get("total_return_pct"),
        "buy_hold_return_pct": metrics.get("buy_hold_return_pct"),
        "sharpe": metrics.get("sharpe"),
        "max_drawdown_pct": metrics.get("max_drawdown_pct"),
        "num_trades": metrics.get("num_trades") or 0,
        "win_rate_pct": metrics.get("win_rate_pct"),
        "metrics": metrics,
        "trades": row.trades,
        "equity": row.equity,
    }


def run_remove(run: BacktestRun) -> None:
    """Delete a run with its results."""
    run.delete()


def run_save(handle: RunHandle) -> None:
    """Store a finished run's status, summary and counts.

    ``completed`` counts the rows stored, whatever the handle knew: a run saved
    after the database came back (its executor could not read them then) still
    records what was stored.
    """
    BacktestRun.objects.filter(pk=handle.run_id).update(
        status=handle.status,
        summary=handle.summary,
        error=handle.error,
        elapsed_s=handle.elapsed_s,
        completed=BacktestResult.objects.filter(run_id=handle.run_id).count(),
        finished_at=timezone.now(),
    )


THROTTLE_PREFIX = "throttle:runs"
THROTTLE_WINDOW_S = 60
_clock = time.time  # the throttle's clock (tests fix it inside one window)


class RunsThrottled(RunnerBusy):
    """The user started BACKTEST_RUNS_PER_MINUTE runs within the last minute."""


def run_owner_key(user=None, address: str | None = None) -> str:
    """Return whose a run is, for limits: the user, or an anonymous client's
    address (behind a proxy every anonymous visitor shares the proxy's)."""
    if getattr(user, "is_authenticated", False):
        return f"user:{user.pk}"
    return f"anon:{address or 'unknown'}"


def _throttle_key(key: str, now: float) -> str:
    return f"{THROTTLE_PREFIX}:{key}:{int(now // THROTTLE_WINDOW_S)}"


def run_admit(
    *,
    user=None,
    address: str | None = None,
    kind: str = "run",
    size: int = 0,
    size_limit: int = 0,
) -> Slot:
    """Admit one more job (a run, or another ``kind``: "sweep",
    "walk_forward") of this user or raise RunnerBusy saying why not.

    Call it before anything is written: a refused request (the user's active
    job cap, a full server, or more than BACKTEST_RUNS_PER_MINUTE jobs of any
    kind started this minute) leaves no trace in the database. The returned
    slot goes to the job's start; release it if the job is not started after
    all. ``size`` and ``size_limit`` cap the backtests of the user's jobs (see
    Admission.reserve).
    """
    key = run_owner_key(user, address)
    limit = settings.BACKTEST_RUNS_PER_MINUTE
    now = _clock()
    counter = _throttle_key(key, now)
    if limit > 0:
        try:
            started = cache.get(counter, 0)
        except Exception:  # the cache being down must not stop every run
            logger.warning("run throttle unavailable (cache error)", exc_info=True)
            started = 0
        if started >= limit:
            wait = THROTTLE_WINDOW_S - int(now % THROTTLE_WINDOW_S)
            noun = "runs" if kind == "run" else "jobs"
            raise RunsThrottled(
                f"too many {noun}: at most {limit} a minute; try again in {wait} s"
            )
    slot = get_runner().reserve(key, kind, size=size, size_limit=size_limit)
    if limit > 0:
        try:
            # add() is a no-op when the counter exists; incr() is atomic in
            # Redis, so concurrent admissions in several processes all count.
            cache.add(counter, 0, THROTTLE_WINDOW_S * 2)
            cache.incr(counter)
        except Exception:
            logger.warning("run throttle unavailable (cache error)", exc_info=True)
    return slot


def run_start(
    *,
    run: BacktestRun,
    spec: RunSpec,
    coins: Sequence[Cryptocurrency],
    publish: Publish,
    slot: Slot | None = None,
) -> RunHandle:
    """Mark the run running and hand it to the executor of BACKTEST_EXECUTOR (the
    thread pool, or Celery workers); RunnerBusy if full. ``slot`` is the place
    run_admit held for it. A run refused after all is removed again, so a
    refused request leaves no record."""
    runner = current_runner()
    if runner is not None:
        runner.retry_unsaved(run_save)
    now = timezone.now()
    BacktestRun.objects.filter(pk=run.pk).update(
        status=BacktestRun.Status.RUNNING,
        started_at=now,
        owner=processes.identity(),
        heartbeat_at=now,
    )
    try:
        return get_executor().submit(
            run_id=run.pk,
            spec=spec,
            coins=coins,
            publish=publish,
            on_rows=results_save,
            on_finish=run_save,
            on_beat=run_beat,
            slot=slot,
        )
    except RunnerBusy:
        run_discard(run.pk)
        raise
    except Exception as exc:
        logger.exception("could not start run %s", run.pk)
        BacktestRun.objects.filter(pk=run.pk).update(
            status=BacktestRun.Status.FAILED,
            error=failure_reason(exc),
            finished_at=timezone.now(),
        )
        raise


def run_cancel_record(run_id: int) -> BacktestRun:
    """Save an unfinished run as cancelled (its executor fills in the counts
    when it stops) and return the run as saved: a run that had just finished
    keeps its end."""
    BacktestRun.objects.filter(
        pk=run_id,
        status__in=[BacktestRun.Status.QUEUED, BacktestRun.Status.RUNNING],
    ).update(status=BacktestRun.Status.CANCELLED, finished_at=timezone.now())
    return BacktestRun.objects.get(pk=run_id)


def run_discard(run_id: int) -> None:
    """Remove a run that never started (its request was refused)."""
    BacktestRun.objects.filter(pk=run_id, results__isnull=True).delete()


def prices_warm() -> int:
    """Start caching the prices of the run page's default request (every active
    coin's full history) unless PRICE_CACHE_WARM is off; return the coins read."""
    return get_runner().warm() if settings.PRICE_CACHE_WARM else 0


def run_beat(handle: RunHandle) -> None:
    """Record that the process running this run is still at work on it."""
    BacktestRun.objects.filter(
        pk=handle.run_id, status=BacktestRun.Status.RUNNING
    ).update(heartbeat_at=timezone.now())


def runs_mark_stale() -> int:
    """Mark runs left queued/running by a stopped process as failed.

    Two rules, because several server processes may share the database:

    - the owner is a process on this host that no longer runs (see
      processes.py): its runs are failed at once. This is what catches a server
      restart on the first read or the first run after it;
    - nothing was heard of the run for BACKTEST_STALE_AFTER seconds: its last
      heartbeat (or its start, or its creation) is older. A running run beats
      every BACKTEST_HEARTBEAT seconds, so this only catches runs whose process
      is gone; it is the only rule for owners on other hosts, whose processes
      cannot be looked at from here.

    Return how many runs were marked.
    """
    runner = current_runner()
    if runner is not None:
        runner.retry_unsaved(run_save)
    now = timezone.now()
    unfinished = BacktestRun.objects.filter(status__in=UNFINISHED)
    owners = set(unfinished.exclude(owner="").values_list("owner", flat=True))
    dead = [owner for owner in owners if processes.is_alive(owner) is False]
    # ``completed`` becomes what was stored before the process stopped.
    stored = Coalesce(
        Subquery(
            BacktestResult.objects.filter(run=OuterRef("pk"))
            .values("run")
            .annotate(n=Count("pk"))
            .values("n")
        ),
        0,
    )
    silence = settings.BACKTEST_STALE_AFTER
    cutoff = now - timedelta(seconds=silence)
    marked: list[int] = []
    for rule, error in (
        (Q(owner__in=dead), "interrupted by a server restart"),
        (
            Q(heartbeat_at__lt=cutoff)
            | Q(heartbeat_at=None, started_at__lt=cutoff)
            | Q(heartbeat_at=None, started_at=None, created_at__lt=cutoff),
            f"interrupted: its server gave no sign of life for {silence} s",
        ),
    ):
        ids = list(unfinished.filter(rule).values_list("pk", flat=True))
        if ids:
            unfinished.filter(pk__in=ids).update(
                status=BacktestRun.Status.FAILED,
                error=error,
                finished_at=now,
                completed=stored,
            )
            marked += ids
    # Their pieces still queued for Celery workers would compute for nobody.
    state.stop_all(state.run_job(pk) for pk in marked)
    return len(marked)


def runs_mark_stale_on_start(sender, **kwargs) -> None:
    """Receive runner_created: a new runner is a (re)started server, so fail what
    dead processes left unfinished before this process takes runs."""
    count = runs_mark_stale()
    if count:
        logger.warning("marked %d runs left by stopped processes as failed", count)
