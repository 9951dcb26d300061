"""What a worker does with one piece of a run or sweep.

A piece (one coin with all the run's jobs, or a few coins' block of a sweep's
combinations) is computed by the function the app registered for the thread
pool too (``registry``), stored by the app's idempotent store, and published in
the thread pool's event shape, so the two executors cannot drift apart.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
from collections.abc import Sequence

from channels.layers import get_channel_layer
from django.db import close_old_connections

from backtester.execution import events, liveness, registry, state
from backtester.execution.failures import failure_reason
from backtester.execution.handles import JobSpec, ResultRow, coin_parts
from prices.models import Cryptocurrency
from prices.selectors import bars_load

logger = logging.getLogger(__name__)


_loop: asyncio.AbstractEventLoop | None = None
_loop_pid = 0
_loop_lock = threading.Lock()


def _publishing_loop() -> asyncio.AbstractEventLoop:
    """Return this process's event loop for channel-layer sends, started on
    first use (after a prefork worker has forked)."""
    global _loop, _loop_pid
    with _loop_lock:
        if _loop is None or _loop_pid != os.getpid():
            _loop = asyncio.new_event_loop()
            _loop_pid = os.getpid()
            threading.Thread(
                target=_loop.run_forever, name="channel-layer", daemon=True
            ).start()
        return _loop


def group_send(group: str, event: dict) -> None:
    """Send ``event`` to a channel-layer group and wait for it to be queued.

    ``async_to_sync(layer.group_send)`` would start an event loop, and so open
    new Redis connections, for every send; one long-lived loop per process
    keeps the layer's connections from one send to the next.
    """
    send = get_channel_layer().group_send(group, event)
    asyncio.run_coroutine_threadsafe(send, _publishing_loop()).result(timeout=30)


def run_piece(*, run_id: int, coin_id: int, spec: JobSpec) -> int:
    """Compute, store and publish one coin of a run; return the rows stored.

    Prices come from the shared cache (a miss reads the database once and fills
    the cache for the other workers). Returns 0 when the run was stopped or the
    piece was stored already; a piece delivered again after its worker died
    stores the jobs the first delivery had not.
    """
    job, piece = state.run_job(run_id), str(coin_id)
    if state.stopped(job):
        return 0
    close_old_connections()
    state.piece_started(job, piece, liveness.owner_for_piece())
    try:
        coin = Cryptocurrency.objects.get(pk=coin_id)
        series = bars_load(
            coins=[coin], start=spec.start, end=spec.end, interval=spec.interval
        )[coin.symbol]
        stored = 0
        # A long series one job at a time, each stored and published as it is
        # done (coin_parts): the first result does not wait for all six.
        for part in coin_parts(spec, len(series)):
            if state.stopped(job):
                return stored
            rows = registry.call("run", "compute", coin.symbol, series, part)
            # Refused: stored by an earlier delivery of this piece (its worker
            # died after some jobs), or the run is over (then stopped above).
            if results_store_once(run_id, rows):
                results_publish(run_id, rows)
                stored += len(rows)
        state.pieces_published(job, [piece])
        return stored
    except Exception as exc:
        # The web process fails the run, as the thread pool does when a coin
        # raises; the worker's log has the traceback.
        state.piece_failed(job, piece, failure_reason(exc))
        raise
    finally:
        state.piece_ended(job, piece)


def results_publish(run_id: int, rows: Sequence[ResultRow]) -> None:
    """Send a piece's numbered results to the run's group, as the thread pool
    does."""
    results = [{"seq": row.seq, "data": row.data} for row in rows]
    group_send(events.run_group(run_id), events.run_results(run_id, results))


def results_store_once(run_id: int, rows: Sequence[ResultRow]) -> bool:
    """Store one piece's rows unless the run is over or they are stored already."""
    return registry.call("run", "store_once", run_id, rows)


def run_close(run_id: int, status: str) -> int:
    """Move a running run to ``status`` so no task stores into it any more, and
    return how many results it has stored."""
    return registry.call("run", "close", run_id, status)


def results_stored(run_id: int) -> int:
    return registry.call("run", "stored", run_id)


def results_summary(rows: Sequence[ResultRow]) -> dict:
    """Return the run's summary over its rows (the runs app's ``summarize``)."""
    return registry.call("run", "summarize", [row.data for row in rows])


def results_rows(run_id: int, symbols: Sequence[str] | None = None) -> list[ResultRow]:
    """Return the run's stored results (of ``symbols``) as rows of public data."""
    return registry.call("run", "rows", run_id, symbols)


# --- sweeps ----------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _sweep_plan(sweep_id: int):
    # A stored sweep's plan never changes: read it once per worker process.
    return registry.call("sweep", "plan", sweep_id)


def block_piece(first: int, symbols: Sequence[str]) -> str:
    return f"{first}:{','.join(symbols)}"


def block_published(first: int) -> str:
    return f"block:{first}"


def sweep_piece(*, sweep_id: int, symbols: Sequence[str], first: int) -> int:
    """Compute, store and publish a few coins' block of a sweep (the block that
    starts at combination ``first``); return the coins stored, 0 when the sweep
    was stopped.

    The sweeps app's own units of work (sweep_block_run per coin, then
    sweep_pieces_store: one insert, idempotent, and the block's cells
    aggregated once, by whoever stores its last coin), with the stop flag
    checked before computing and before storing. Several coins a task: one price
    load (one cache round trip), one insert and one set of state updates for
    all of them.
    """
    job, piece = state.sweep_job(sweep_id), block_piece(first, symbols)
    if state.stopped(job):
        return 0
    close_old_connections()
    state.piece_started(job, piece, liveness.owner_for_piece())
    try:
        plan = _sweep_plan(sweep_id)
        series = bars_load(
            symbols, start=plan.start, end=plan.end, interval=plan.interval
        )
        block = plan.block_of(first)
        # A few coins' block takes well under a second: the flag is looked at
        # before storing, which a cancel must beat (revoked tasks never start).
        pieces = [
            registry.call("sweep", "block_run", plan, s, series[s], block)
            for s in symbols
        ]
        if state.stopped(job):
            return 0
        layer_events = registry.call("sweep", "pieces_store", plan, pieces)
        for event in layer_events:
            group_send(events.sweep_group(sweep_id), event)
        if layer_events:
            state.pieces_published(job, [block_published(first)])
        return len(pieces)
    except Exception as exc:
        # The client and the record name the service at fault, never the
        # exception's text (hosts, ports, SQL): the worker's log has it.
        state.piece_failed(job, piece, failure_reason(exc))
        raise
    finally:
        state.piece_ended(job, piece)


def sweep_pending_cells(sweep_id: int) -> int:
    """Return how many cells of the sweep are not aggregated yet."""
    return registry.call("sweep", "pending_cells", sweep_id)


def sweep_cells_publish(sweep_id: int, blocks: Sequence[range]) -> None:
    """Publish the stored cells of these blocks (their workers did not)."""
    items = registry.call("sweep", "cell_items", sweep_id, blocks)
    group_send(events.sweep_group(sweep_id), events.sweep_cells(sweep_id, items))
