"""Run a sweep on the process's shared thread pools (the sweeps app registers
what a ``sweep`` piece computes and stores).

The control thread loads the coins' bars (in chunks, on the loading threads,
through the price cache) and feeds the compute threads (coin, block) pieces:
the first block of each chunk's coins as soon as the chunk is loaded, then the
other blocks, block by block, a bounded number at a time so that runs started
meanwhile are not queued behind a whole sweep. Each finished piece is stored
and its events published from the control thread: one writer, in completion
order, while the compute threads go on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any

from django.db import close_old_connections, connections

from backtester.execution import registry
from backtester.execution.failures import failure_reason
from backtester.execution.handles import Publish, Slot, SweepHandle
from backtester.execution.pool import get_runner
from prices.models import Cryptocurrency
from prices.types import PriceSeries

logger = logging.getLogger(__name__)


_active: dict[int, SweepHandle] = {}
_lock = threading.Lock()


def active_sweeps() -> int:
    with _lock:
        return len(_active)


def handle_of(sweep_id: int) -> SweepHandle | None:
    """Return the handle of a sweep this process's thread pool computes."""
    with _lock:
        return _active.get(sweep_id)


def submit(
    *,
    plan: Any,
    coins: Sequence[Cryptocurrency],
    publish: Publish,
    slot: Slot | None = None,
) -> SweepHandle:
    """Start computing a stored sweep in the place ``slot`` held (admission
    counts it with every other job); RunnerBusy when the server is full."""
    runner = get_runner()
    handle = SweepHandle(plan.sweep_id)
    runner.admit(handle, slot, kind="sweep", job_id=plan.sweep_id)
    with _lock:
        _active[plan.sweep_id] = handle
    runner.submit_control(_drive, handle, plan, list(coins), publish)
    return handle


def _start_loads(
    handle: SweepHandle, plan: Any, coins: list[Cryptocurrency]
) -> list[tuple[Future, list[Cryptocurrency]]]:
    """Start loading the coins' bars in a run's chunks (small first); return
    each chunk's future with its coins, in order."""
    runner = get_runner()
    # A run's chunks: right after the page opened, the warm-up may be loading
    # them already, and its loads are shared instead of reading bars twice.
    loads = []
    for chunk in runner.chunks(coins):
        future, shared = runner.submit_load(chunk, plan.start, plan.end, plan.interval)
        loads.append((future, list(chunk)))
        if not shared:  # a cancel must not cancel the warm-up's load
            with handle._lock:
                handle._futures.append(future)
    return loads


def _piece(
    handle: SweepHandle,
    plan: Any,
    symbol: str,
    series: PriceSeries,
    indices: range,
) -> Any:
    if handle.cancelled.is_set():
        return None
    return registry.call("sweep", "block_run", plan, symbol, series, indices)


def _drive(
    handle: SweepHandle,
    plan: Any,
    coins: list[Cryptocurrency],
    publish: Publish,
) -> None:
    began = time.perf_counter()
    close_old_connections()
    runner = get_runner()
    try:
        loads = _start_loads(handle, plan, coins)
        series: dict[str, PriceSeries] = {}
        blocks = plan.blocks()
        # (coin, block) units of work, block by block. The first block of a
        # chunk's coins is computed as soon as that chunk is loaded, while the
        # next chunks load: the first cells do not wait for every coin's bars.
        work: deque[tuple[str, range]] = deque()
        stored: dict[int, int] = {}  # coins stored per block
        # A block's worth of pieces and more in flight: the compute threads
        # never wait for this thread to store, and a run started meanwhile
        # queues behind a few small pieces, not the whole sweep.
        window = len(coins) + 2 * runner.workers
        pending: set[Future] = set()
        while not handle.cancelled.is_set() and (pending or work or loads):
            while loads and loads[0][0].done():
                future, chunk = loads.pop(0)
                if future.cancelled():
                    handle.cancelled.set()
                    break
                series.update(future.result())
                work.extend((c.symbol, blocks[0]) for c in chunk if blocks)
                if not loads:
                    work.extend((c.symbol, b) for b in blocks[1:] for c in coins)
            if handle.cancelled.is_set():
                break
            while work and len(pending) < window:
                symbol, block = work.popleft()
                future = runner.submit_compute(
                    _piece, handle, plan, symbol, series[symbol], block
                )
                with handle._lock:
                    handle._futures.append(future)
                pending.add(future)
            waiting = pending | ({loads[0][0]} if loads else set())
            done, _ = wait(waiting, return_when=FIRST_COMPLETED)
            done &= pending
            pending -= done
            finished = [
                piece
                for future in done
                if not future.cancelled() and (piece := future.result()) is not None
            ]
            if not finished or handle.cancelled.is_set():
                continue
            # Whatever finished meanwhile is stored in one insert.
            complete = []
            for piece in finished:
                stored[piece.first] = stored.get(piece.first, 0) + 1
                if stored[piece.first] == len(coins):
                    complete.append(piece.first)
            stored_events = registry.call(
                "sweep", "pieces_store", plan, finished, complete=complete
            )
            for event in stored_events:
                publish(event)
            with handle._lock:
                handle._futures = [f for f in handle._futures if not f.done()]
        handle.status = "cancelled" if handle.cancelled.is_set() else "complete"
    except Exception as exc:  # the sweep fails, the server goes on
        logger.exception("sweep %s failed", plan.sweep_id)
        handle.cancel()
        handle.status = "failed"
        # The client reads the service at fault, never the exception's text
        # (host names and ports); the log above has the rest.
        handle.error = failure_reason(exc)
    handle.elapsed_s = time.perf_counter() - began
    handle.record_end()
    logger.info("sweep %s %s in %.3fs", plan.sweep_id, handle.status, handle.elapsed_s)
    try:
        publish(handle.final)
    except Exception:
        logger.exception("could not announce the end of sweep %s", plan.sweep_id)
    finally:
        connections.close_all()
        with _lock:
            _active.pop(plan.sweep_id, None)
        runner.retire(plan.sweep_id, "sweep")
        handle.done.set()
