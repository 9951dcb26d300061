"""What a worker does with one piece of a run, and the writes that make it safe.

A piece (one coin with all the run's jobs) is computed by the thread pool's own
function (``runner.compute_coin``), stored with the thread pool's own row
mapping, and published in the thread pool's event shape. Storing is idempotent
and ordered by a lock on the run's row: a piece already stored, or a run that is
no longer running, stores nothing - so a task delivered twice (its first worker
died before acknowledging it) or finishing after a cancel never adds a row, and
the rows stored are what counts towards completion.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from backtester import events
from backtester.execution import state
from backtester.models import BacktestResult, BacktestRun
from backtester.runner import ResultRow, compute_coin, failure_reason
from backtester.selectors import result_data
from backtester.services import _result
from backtester.validation import RunSpec
from prices.models import Cryptocurrency
from prices.selectors import bars_load

logger = logging.getLogger(__name__)


def run_piece(*, run_id: int, coin_id: int, spec: RunSpec) -> int:
    """Compute, store and publish one coin of a run; return the rows stored.

    Prices come from the shared cache (a miss reads the database once and fills
    the cache for the other workers). Returns 0 when the run was stopped or the
    piece was stored already.
    """
    piece = str(coin_id)
    if state.stopped(run_id):
        return 0
    state.piece_started(run_id, piece)
    try:
        coin = Cryptocurrency.objects.get(pk=coin_id)
        series = bars_load(
            coins=[coin], start=spec.start, end=spec.end, interval=spec.interval
        )[coin.symbol]
        rows = compute_coin(coin.symbol, series, spec)
        if state.stopped(run_id) or not results_store_once(run_id, rows):
            return 0
        results_publish(run_id, rows)
        state.pieces_published(run_id, [piece])
        return len(rows)
    except Exception as exc:
        # The web process fails the run, as the thread pool does when a coin
        # raises; the worker's log has the traceback.
        state.piece_failed(run_id, piece, failure_reason(exc))
        raise
    finally:
        state.piece_ended(run_id, piece)


def results_store_once(run_id: int, rows: Sequence[ResultRow]) -> bool:
    """Store one piece's rows unless the run is over or they are stored already;
    return whether they were stored (all of them, in one transaction)."""
    if not rows:
        return False
    symbols = {row.data["symbol"] for row in rows}
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
        if stored.filter(symbol__in=symbols).exists():
            return False
        # Numbered here, under the run's lock: seqs are 1..n in store order.
        first = stored.count() + 1
        for seq, row in enumerate(rows, first):
            row.seq = seq
        BacktestResult.objects.bulk_create([_result(run_id, row) for row in rows])
    return True


def results_publish(run_id: int, rows: Sequence[ResultRow]) -> None:
    """Send a piece's numbered results to the run's group, as the thread pool
    does."""
    results = [{"seq": row.seq, "data": row.data} for row in rows]
    async_to_sync(get_channel_layer().group_send)(
        events.run_group(run_id),
        {"type": events.LAYER_RESULTS, "run_id": run_id, "results": results},
    )


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
    return [ResultRow(data=result_data(result), seq=result.seq) for result in stored]
