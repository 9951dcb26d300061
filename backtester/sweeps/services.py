"""Writes for sweeps: create, compute and store units of work, finish.

The unit of work is ``sweep_block_compute(sweep_id, symbol, combo_indices)``:
one coin's backtests of one block of combinations, stored idempotently, and the
events it returns for the sweep's group. Whatever executes it (the thread pool
here, or another executor's tasks) calls the same functions, so the two cannot
drift apart. Storing the same block twice stores it once; a block's cells are
aggregated exactly once, by whoever stores the block's last coin.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence

import numpy as np
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F
from django.utils import timezone

from backtester.execution import state
from backtester.execution.handles import RunnerBusy, sweeps_retry_unsaved
from backtester.runs import processes
from backtester.runs.output import CSV_METRICS
from backtester.sweeps import events
from backtester.sweeps.cells import cell_public, coin_metrics
from backtester.sweeps.models import CELL_METRICS, Sweep, SweepCell, SweepCoinResult
from backtester.sweeps.plan import CoinBlock, SweepPlan, plan_of
from backtester.sweeps.validation import SweepSpec
from prices.models import Cryptocurrency
from prices.types import PriceSeries
from strategies.sweep import OBJECTIVES, SWEEP_KEYS, aggregate, sweep_coin
from strategies.types import Bars

logger = logging.getLogger(__name__)
UNFINISHED = [Sweep.Status.QUEUED, Sweep.Status.RUNNING]
# Engine metrics that are counts: stored as float64 columns, handed back as int.


def params_key(params: dict) -> str:
    """Return the canonical text of a combination (its identity in a sweep)."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"))


def sweep_create(
    *,
    spec: SweepSpec,
    coins: Sequence[Cryptocurrency],
    user=None,
    source: str = Sweep.Source.WEB,
) -> Sweep:
    """Record a queued sweep and one pending cell per valid combination."""
    with transaction.atomic():
        sweep = Sweep.objects.create(
            created_by=user if getattr(user, "is_authenticated", False) else None,
            source=source,
            strategy=spec.strategy,
            strategy_version_id=spec.version,
            grid=spec.grid,
            axes=spec.axes,
            axis_names=list(spec.axes),
            base_params=spec.base_params,
            combinations=list(spec.combinations),
            symbols=[c.symbol for c in coins],
            interval=spec.interval,
            start=spec.start,
            end=spec.end,
            fee=spec.fee,
            slippage_bps=spec.slippage_bps,
            objective=spec.objective,
            block_first=settings.SWEEP_FIRST_BLOCK,
            block_size=settings.SWEEP_BLOCK,
            skipped=spec.skipped,
            total=len(spec.combinations) * len(coins),
            owner=processes.identity(),
        )
        SweepCell.objects.bulk_create(
            [
                SweepCell(sweep=sweep, index=i, params=p, params_key=params_key(p))
                for i, p in enumerate(spec.combinations)
            ],
            batch_size=500,
        )
    return sweep


def sweep_block_run(
    plan: SweepPlan, symbol: str, series: PriceSeries, indices: Sequence[int]
) -> CoinBlock:
    """Backtest one coin over a block of combinations (no database)."""
    indices = list(indices)
    if not len(series.time):
        return CoinBlock(symbol, indices[0], len(indices), 0, {})
    metrics = sweep_coin(
        Bars(*series),
        plan.engine_strategy,
        [plan.combinations[i] for i in indices],
        fee=plan.fee,
        slippage_bps=plan.slippage_bps,
        interval=plan.interval,
        # What cells and the per-coin table show; the engine skips the rest.
        keys=SWEEP_KEYS,
    )
    # The engine's metric names, in the documented order, as far as it gave them.
    keys = [k for k in CSV_METRICS if k in metrics[0]] if metrics else []
    columns = {"index": np.asarray(indices, dtype=np.int32)}
    for key in keys:
        columns[key] = np.array(
            [math.nan if m.get(key) is None else m[key] for m in metrics],
            dtype=np.float64,
        )
    return CoinBlock(symbol, indices[0], len(indices), len(series.time), columns)


def _aggregate_block(sweep_id: int, indices: Sequence[int]) -> dict[int, dict]:
    """Return each combination's aggregate over the coins stored for its block."""
    rows = list(
        SweepCoinResult.objects.filter(sweep_id=sweep_id, first=indices[0]).only(
            "symbol", "bars", "metrics"
        )
    )
    per_combo: dict[int, list[dict]] = {i: [] for i in indices}
    for row in rows:
        if not row.bars:
            continue
        stored = row.metrics
        for position, index in enumerate(stored["index"].tolist()):
            if index in per_combo:
                per_combo[index].append(coin_metrics(stored, position))
    return {index: aggregate(metrics) for index, metrics in per_combo.items()}


def _set_metrics(cell: SweepCell, values: dict) -> None:
    cell.coins = int(values.get("coins") or 0)
    for name in CELL_METRICS:
        value = values.get(name)
        if name in ("beat_buy_hold", "trades"):
            value = int(value or 0)
        setattr(cell, name, value)


def _store_coin(plan: SweepPlan, block: CoinBlock) -> bool:
    """Store one coin's block; return False when it was already stored."""
    try:
        with transaction.atomic():
            SweepCoinResult.objects.create(
                sweep_id=plan.sweep_id,
                symbol=block.symbol,
                first=block.first,
                size=block.size,
                bars=block.bars,
                metrics=block.columns,
            )
    except IntegrityError:
        return False
    return True


def sweep_block_store(
    plan: SweepPlan, block: CoinBlock, *, coins_done: int | None = None
) -> list[dict]:
    """Store one coin's block; when it completes the block, aggregate its cells.

    Returns the layer events to publish (a ``sweep.cells`` message with the
    block's cells when this call completed them). ``coins_done`` is how many
    coins of the block are stored, this one included, when the caller counts
    them itself (the thread pool does); otherwise the stored rows are counted.
    Storing a block again changes nothing; if its cells were complete by then,
    they are returned again (a retried task must not lose its events: the
    consumer drops cells it has already forwarded).
    """
    stored = _store_coin(plan, block)
    if coins_done is None or not stored:
        coins_done = SweepCoinResult.objects.filter(
            sweep_id=plan.sweep_id, first=block.first
        ).count()
    if coins_done < len(plan.symbols):
        return []
    return _complete_block(plan, block.first, block.size, stored=stored)


def sweep_pieces_store(
    plan: SweepPlan,
    pieces: Sequence[CoinBlock],
    *,
    complete: Sequence[int] | None = None,
) -> list[dict]:
    """Store many coins' blocks in one insert; aggregate the blocks they finish.

    ``complete`` lists the first index of each block these pieces complete,
    from an executor that alone stores a sweep's pieces and counts them itself
    (the thread pool); None counts the stored rows of each block after the
    insert (workers storing side by side: of two that both see a block
    complete, the claim in _complete_block lets one report it). If one of the
    pieces was stored already, each goes through sweep_block_store instead,
    which counts the stored rows.
    """
    rows = [
        SweepCoinResult(
            sweep_id=plan.sweep_id, symbol=p.symbol, first=p.first, size=p.size,
            bars=p.bars, metrics=p.columns,
        )
        for p in pieces
    ]  # fmt: skip
    try:
        with transaction.atomic():
            # A sweep that is over (failed while a worker had these pieces)
            # stores nothing more; the lock orders this with its end's UPDATE.
            if not (
                Sweep.objects.select_for_update(no_key=True)
                .filter(pk=plan.sweep_id, status__in=UNFINISHED)
                .exists()
            ):
                return []
            SweepCoinResult.objects.bulk_create(rows)
    except IntegrityError:
        seen: set[int] = set()
        out = []
        for piece in pieces:
            for event in sweep_block_store(plan, piece):
                cells = [c for c in event["cells"] if c["index"] not in seen]
                seen.update(c["index"] for c in cells)
                if cells:
                    out.append(events.layer_cells(plan.sweep_id, cells))
        return out
    if complete is None:
        firsts = sorted({p.first for p in pieces})
        done = dict(
            SweepCoinResult.objects.filter(sweep_id=plan.sweep_id, first__in=firsts)
            .values_list("first")
            .annotate(coins=Count("id"))
        )
        complete = [f for f in firsts if done.get(f, 0) >= len(plan.symbols)]
    reported = []
    for first in complete:
        block = plan.block_of(first)
        reported += _complete_block(plan, block.start, len(block), stored=True)
    return reported


def _cells_save(cells: Sequence[SweepCell]) -> None:
    """Write the cells' metrics, one parameterized UPDATE per cell in one
    executemany: ``bulk_update`` builds a CASE expression per field and cell,
    which took 110 ms of Python for a block of 58 cells."""
    fields = ["coins", *CELL_METRICS]
    meta = SweepCell._meta
    quote = connection.ops.quote_name
    assignments = ", ".join(
        f"{quote(meta.get_field(name).column)} = %s" for name in fields
    )
    sql = (
        f"UPDATE {quote(meta.db_table)} SET {assignments} "
        f"WHERE {quote(meta.pk.column)} = %s"
    )
    rows = [[getattr(cell, name) for name in fields] + [cell.pk] for cell in cells]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _complete_block(
    plan: SweepPlan, first: int, size: int, *, stored: bool
) -> list[dict]:
    """Aggregate a block whose coins are all stored; return its cells' event.

    ``stored`` False (this call stored nothing new: a retried task) reports
    the block's cells again if another call completed them already.
    """
    indices = range(first, first + size)
    aggregates = _aggregate_block(plan.sweep_id, indices)
    with transaction.atomic():
        # A sweep that is over (failed while a worker still had its piece)
        # counts no more cells; the lock orders this with its end's UPDATE.
        accepting = (
            Sweep.objects.select_for_update()
            .filter(pk=plan.sweep_id, status__in=UNFINISHED)
            .exists()
        )
        # The claim: of two processes storing a block's last coins at once,
        # only one flips the pending cells to done and reports them.
        claimed = accepting and SweepCell.objects.filter(
            sweep_id=plan.sweep_id, index__in=indices, done=False
        ).update(done=True)
        cells = list(
            SweepCell.objects.filter(sweep_id=plan.sweep_id, index__in=indices)
        )
        if claimed:
            for cell in cells:
                _set_metrics(cell, aggregates[cell.index])
            _cells_save(cells)
            Sweep.objects.filter(pk=plan.sweep_id).update(
                completed=F("completed") + len(cells)
            )
    if not claimed and (stored or not all(cell.done for cell in cells)):
        # Another process completed the block and reports it, or the sweep
        # ended without it.
        return []
    return [events.layer_cells(plan.sweep_id, [c.item() for c in cells])]


def sweep_block_compute(
    sweep_id: int,
    symbol: str,
    combo_indices: Sequence[int],
    *,
    plan: SweepPlan | None = None,
    series: PriceSeries | None = None,
) -> list[dict]:
    """Compute and store one coin's block of combinations; return its events.

    ``plan`` and ``series`` may be passed by an executor that already has
    them; otherwise the sweep is read and the coin's bars loaded (through the
    shared price cache).
    """
    from prices.selectors import bars_load

    if plan is None:
        plan = plan_of(Sweep.objects.get(pk=sweep_id))
    indices = list(combo_indices)
    if list(plan.block_of(indices[0])) != indices:
        raise ValueError(
            f"combo_indices: {indices[0]}..{indices[-1]} is not a block of sweep "
            f"{sweep_id}"
        )
    if series is None:
        series = bars_load(
            [symbol], start=plan.start, end=plan.end, interval=plan.interval
        )[symbol]
    return sweep_block_store(plan, sweep_block_run(plan, symbol, series, indices))


def sweep_best(sweep_id: int, objective: str) -> dict | None:
    """Return the finished cell with the best objective (ties: lowest index)."""
    cells = SweepCell.objects.filter(sweep_id=sweep_id, done=True).exclude(
        **{f"{objective}__isnull": True}
    )
    order = f"-{objective}" if OBJECTIVES[objective] else objective
    best = cells.order_by(order, "index").first()
    return None if best is None else cell_public(best)


def sweep_start(*, sweep: Sweep, coins: Sequence[Cryptocurrency], publish, slot=None):
    """Mark the sweep running and hand it to the executor of BACKTEST_EXECUTOR
    (the thread pool, or Celery workers) in the place ``slot`` (from
    ``run_admit(kind="sweep")``) held; RunnerBusy if full, and then the sweep
    is removed again, so a refused request leaves no record.

    Returns the runner's handle (``cancel()``, ``wait()``).
    """
    from backtester.execution.executors import get_executor

    Sweep.objects.filter(pk=sweep.pk).update(
        status=Sweep.Status.RUNNING,
        started_at=timezone.now(),
        owner=processes.identity(),
    )
    try:
        return get_executor().submit_sweep(
            plan=plan_of(sweep), coins=coins, publish=publish, slot=slot
        )
    except RunnerBusy:
        sweep_discard(sweep.pk)
        raise
    except Exception as exc:
        Sweep.objects.filter(pk=sweep.pk).update(
            status=Sweep.Status.FAILED, error=str(exc), finished_at=timezone.now()
        )
        raise


def sweep_discard(sweep_id: int) -> None:
    """Remove a sweep that never started (its request was refused) and its cells."""
    Sweep.objects.filter(pk=sweep_id, status__in=UNFINISHED).delete()


def sweep_finish(
    sweep_id: int, *, status: str, elapsed_s: float | None = None, error: str = ""
) -> dict:
    """Record a sweep's end (once) and return the layer event announcing it.

    A sweep already finished keeps its record; the event then tells that
    record, so a second finisher announces the same end.
    """
    sweep = Sweep.objects.get(pk=sweep_id)
    best = sweep_best(sweep_id, sweep.objective) if status == "complete" else None
    if elapsed_s is None and sweep.started_at is not None:
        elapsed_s = (timezone.now() - sweep.started_at).total_seconds()
    updated = Sweep.objects.filter(pk=sweep_id, status__in=UNFINISHED).update(
        status=status,
        best=best,
        elapsed_s=elapsed_s,
        error=error,
        finished_at=timezone.now(),
    )
    if not updated:
        sweep.refresh_from_db()
        status, best, elapsed_s, error = (
            sweep.status, sweep.best, sweep.elapsed_s, sweep.error
        )  # fmt: skip
    return events.layer_final(
        sweep_id, status, best=best, elapsed_s=round(elapsed_s or 0.0, 4), error=error
    )


def sweeps_mark_stale() -> int:
    """Fail sweeps left queued/running by a process on this host that is gone."""
    # First the ends this process could not save (the database was down).
    sweeps_retry_unsaved()
    unfinished = Sweep.objects.filter(status__in=UNFINISHED)
    owners = set(unfinished.exclude(owner="").values_list("owner", flat=True))
    dead = [owner for owner in owners if processes.is_alive(owner) is False]
    if not dead:
        return 0
    ids = list(unfinished.filter(owner__in=dead).values_list("pk", flat=True))
    count = unfinished.filter(pk__in=ids).update(
        status=Sweep.Status.FAILED,
        error="interrupted by a server restart",
        finished_at=timezone.now(),
    )
    # Their pieces still queued for Celery workers would compute for nobody.
    state.stop_all(state.sweep_job(pk) for pk in ids)
    return count
