"""What a run's pieces store, as Celery workers call it: idempotent writes
ordered by a lock on the run's row, and the reads the executor's monitor makes.

A piece already stored, or a run that is no longer running, stores nothing - so
a task delivered twice (its first worker died before acknowledging it) or
finishing after a cancel never adds a row, and the rows stored are what counts
towards completion.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction
from django.db.models import Q

from backtester.execution.handles import ResultRow
from backtester.runs.models import BacktestResult, BacktestRun, params_key
from backtester.runs.selectors import result_data, run_risk_of
from backtester.runs.services import results_insert


def results_store_once(run_id: int, rows: Sequence[ResultRow]) -> bool:
    """Store one piece's rows unless the run is over or they are stored already;
    return whether they were stored (all of them, in one transaction)."""
    if not rows:
        return False
    # A result's identity in its run (the table's unique constraint): a long
    # coin's jobs are stored one at a time (coin_parts).
    identities = Q()
    for row in rows:
        identities |= Q(
            symbol=row.data["symbol"],
            strategy=row.data["strategy"],
            params_key=params_key(row.data["params"]),
        )
    with transaction.atomic():
        # Stores of one run queue here, and so does run_close: after a run left
        # "running", no task can add a row to it.
        status = (
            BacktestRun.objects.select_for_update()
            .filter(pk=run_id)
            .values_list("status", flat=True)
            .first()
        )
        if status != BacktestRun.Status.RUNNING:
            return False
        stored = BacktestResult.objects.filter(run_id=run_id)
        if stored.filter(identities).exists():
            return False
        # Numbered here, under the run's lock: seqs are 1..n in store order.
        first = stored.count() + 1
        for seq, row in enumerate(rows, first):
            row.seq = seq
        results_insert(run_id, rows)
    return True


def run_close(run_id: int, status: str) -> int:
    """Move a running run to ``status`` so no task stores into it any more, and
    return how many results it has stored."""
    with transaction.atomic():
        # The UPDATE waits for a store holding the row's lock, and holds it.
        BacktestRun.objects.filter(pk=run_id, status=BacktestRun.Status.RUNNING).update(
            status=status
        )
        return BacktestResult.objects.filter(run_id=run_id).count()


def results_stored(run_id: int) -> int:
    return BacktestResult.objects.filter(run_id=run_id).count()


def results_rows(run_id: int, symbols: Sequence[str] | None = None) -> list[ResultRow]:
    """Return the run's stored results (of ``symbols``) as rows of public data
    only, by coin."""
    stored = BacktestResult.objects.filter(run_id=run_id)
    if symbols is not None:
        stored = stored.filter(symbol__in=list(symbols))
    stored = stored.defer("trades", "equity").order_by("symbol", "strategy", "pk")
    risk = run_risk_of(run_id)
    return [
        ResultRow(data=result_data(result, risk=risk), seq=result.seq)
        for result in stored
    ]
