"""The thread pool's run loop: load a run's coins in chunks, compute each coin
on the compute threads, store and publish as coins finish.

A run is driven by a control thread that loads prices in a few batches (each
one query or one cache MGET) and submits one task per coin to the compute pool;
each task runs every requested strategy on that coin (what the runs app
registered as the ``run`` kind's ``compute``, so its indicators are computed
once). The control thread numbers each finished coin's rows, stores them in
batches and hands them to the run's publishing thread, which sends one layer
message at a time: the coins finished while the last was on its way go in the
next, in completion order.
Cancelling stops queued tasks from running and finished tasks from publishing.
While a run is active its control thread calls ``on_beat`` every
BACKTEST_HEARTBEAT seconds, so that other processes can tell it from a run
whose server died.
"""

from __future__ import annotations

import functools
import logging
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime

from django.conf import settings
from django.db import close_old_connections, connections

from backtester.execution import events, registry
from backtester.execution.failures import failure_reason
from backtester.execution.handles import (
    Hook,
    JobSpec,
    Publish,
    ResultRow,
    RunHandle,
    coin_parts,
)
from prices.models import Cryptocurrency
from prices.timeframes import INTERVAL_MINUTES
from prices.types import PriceSeries

logger = logging.getLogger(__name__)

# Rows stored in one insert while a run is going (about eight coins of an
# all-strategies run); whatever is left is stored when its last coin is in.
STORE_BATCH_ROWS = 48
# Seconds a finished coin's rows may wait for others to share their insert.
STORE_DELAY_S = 0.05


def _chunk_key(
    chunk: Sequence[Cryptocurrency],
    start: datetime | None,
    end: datetime | None,
    interval: str,
) -> tuple:
    """Identify the bars a chunk load reads (the data version changes on import)."""
    return (tuple((c.id, c.data_version) for c in chunk), start, end, interval)


def _chunks(coins: Sequence, first: int, size: int) -> list[Sequence]:
    """Split coins into a small first batch (fast first result) and larger ones."""
    out = [coins[:first]] if coins[:first] else []
    rest = coins[first:]
    out += [rest[i : i + size] for i in range(0, len(rest), size)]
    return out


def _first_chunk(size: int, interval: str) -> int:
    """Return the first chunk's coins: ``size`` of hourly bars or coarser, fewer
    of finer bars (one coin at least), in proportion to the bars per day."""
    return max(1, min(size, size * INTERVAL_MINUTES[interval] // 60))


def _chunk_coins(series: Iterable[PriceSeries], size: int, bars: int) -> int:
    """Return coins per chunk: at most ``size``, and at most ``bars`` bars of
    the longest series seen (one coin at least)."""
    longest = max((len(s.time) for s in series), default=0)
    return max(1, min(size, bars // longest)) if longest else size


class RunDriving:
    """The run loop of a Runner (which owns the pools, ``_warm_share``,
    ``_unsaved`` and the admission count)."""

    def _drive(
        self,
        handle: RunHandle,
        spec: JobSpec,
        coins: list[Cryptocurrency],
        publish: Publish,
        on_rows: Callable[[RunHandle, list[ResultRow]], None] | None,
        on_finish: Hook | None,
        on_beat: Hook | None,
    ) -> None:
        began = time.perf_counter()
        close_old_connections()
        # Coin tasks whose rows are not stored yet: a run that fails still
        # stores what it published, so the record matches what clients saw.
        unstored: set[Future] = set()
        # Finished coin tasks whose rows wait to be stored in one insert.
        buffered: list[Future] = []
        started: dict[Future, list[Future]] = {}  # coin tasks, by load
        publisher = ThreadPoolExecutor(1, "backtest-publish")
        try:
            # The first result waits for the whole first chunk: at 1-minute
            # bars one coin-year is already 525,600 bars (about 35 ms from
            # Redis), so the first chunk shrinks with the interval.
            first = _first_chunk(settings.BACKTEST_FIRST_CHUNK, spec.interval)
            size = settings.BACKTEST_CHUNK
            chunks = _chunks(coins, first, size)
            loads: dict[Future, Sequence[Cryptocurrency]] = {}
            pending: set[Future] = set()
            # Bars are held by chunk, from its load until its last coin is
            # computed, and at most BACKTEST_CHUNKS_HELD chunks at once: a run
            # over 200 coins never has every coin's bars in memory (420 MB at
            # five years hourly). ``later`` waits for a place, in chunks of
            # ``size`` coins, fitted to BACKTEST_CHUNK_BARS once the first
            # chunk shows how long the series are (a coin-year of minutes is
            # 525,600 bars, 25 MB: 16 of them would be 400 MB a chunk).
            later = [coin for chunk in chunks[1:] for coin in chunk]
            fitted = False
            computing: dict[Future, Future] = {}  # coin task -> its chunk's load
            left: dict[Future, int] = {}  # a chunk's load -> coins not computed
            loading = 0  # chunks whose load is not in yet

            def load(batch: Sequence[Cryptocurrency]) -> None:
                nonlocal loading
                future = self._warm_share(batch, spec.start, spec.end, spec.interval)
                if future is None:
                    # Chunks of one coin (a coin as long as a chunk allows, or
                    # the first of fine bars) load one at a time on one thread
                    # of their own: see ``Runner._load_one``.
                    lane = self._load_one if len(batch) == 1 else self._load
                    future = lane.submit(self._load_chunk, handle, batch, spec)
                    with handle._lock:
                        handle._futures.append(future)
                # A warm-up's load is shared: a cancel must not cancel it.
                loads[future] = batch
                pending.add(future)
                loading += 1
                # Its coins go to the compute pool the moment it is in, from
                # the loading thread, not when this thread is next free (it
                # may be waiting for a publish).
                future.add_done_callback(
                    functools.partial(self._start_coins, handle, batch, spec, started)
                )

            def load_more() -> None:
                # Not before ``size`` is fitted to the first chunk's bars.
                while (
                    fitted
                    and later
                    and loading + len(left) < settings.BACKTEST_CHUNKS_HELD
                ):
                    load(later[:size])
                    del later[:size]

            # The small first chunk loads alone (the first result does not wait
            # for a bigger one sharing the CPU); the rest load once its first
            # coin is computed.
            if chunks:
                load(chunks[0])
            beat_every = settings.BACKTEST_HEARTBEAT
            next_beat = time.monotonic() + beat_every
            # One loop over loads and coin tasks in completion order: a loaded
            # chunk's coins go to the compute pool, a finished coin's rows are
            # stored here while other chunks load and other coins compute. It
            # wakes at least once per heartbeat, even while nothing completes.
            buffered_at, waiting = 0.0, 0  # when the first waited, rows waiting
            fresh: list[ResultRow] = []  # rows numbered, not yet published
            sending: Future | None = None  # the publish on its way
            while pending or fresh or sending is not None:
                # Rows waiting to be stored are stored within STORE_DELAY_S even
                # when no other coin finishes (a page reloaded meanwhile finds
                # them in the database).
                timeout = STORE_DELAY_S if buffered else beat_every
                watched = pending if sending is None else pending | {sending}
                done, _ = wait(watched, timeout=timeout, return_when=FIRST_COMPLETED)
                pending -= done
                if on_beat and time.monotonic() >= next_beat:
                    self._beat(handle, on_beat)
                    next_beat = time.monotonic() + beat_every
                sent = sending if sending in done else None
                if sent is not None:
                    sending = None
                    if handle.publish_error is not None:
                        raise handle.publish_error
                for future in done:
                    if future is sent or future.cancelled():
                        continue
                    if future in loads:
                        loading -= 1
                        batch = loads.pop(future)
                        future.result()  # a failed load fails the run
                        if handle.cancelled.is_set():
                            continue
                        # Started by the load's callback, or here if it could
                        # not (then this raises what it met).
                        tasks = self._coin_tasks(handle, future, batch, spec, started)
                        if not fitted:
                            # No name for the loaded dict here: the loop would
                            # keep its bars alive until the run ends.
                            size = _chunk_coins(
                                (future.result()[coin.symbol] for coin in batch),
                                size,
                                settings.BACKTEST_CHUNK_BARS,
                            )
                            fitted = True
                        if tasks:
                            left[future] = len(tasks)
                            computing.update(dict.fromkeys(tasks, future))
                        pending.update(tasks)
                        unstored.update(tasks)
                        continue
                    chunk = computing.pop(future, None)
                    if chunk is not None:
                        left[chunk] -= 1
                        if not left[chunk]:
                            # The chunk's bars go (nothing else holds its
                            # load) and the next chunk takes its place.
                            del left[chunk]
                            started.pop(chunk, None)
                            with handle._lock:
                                handle._futures = [
                                    f for f in handle._futures if not f.done()
                                ]
                        chunk = None
                    # The rest load once a coin is in: decoding chunks of 16
                    # would share the cores with the first coins' computing.
                    load_more()
                    # Rows are numbered here, unless a cancel came first; from
                    # then on they are published and stored even when a cancel
                    # arrives since, so a cancelled run keeps exactly the
                    # results its client saw (and ``completed`` counts).
                    rows = self._number(handle, future.result())
                    if not rows:
                        unstored.discard(future)
                        continue
                    if not buffered:
                        buffered_at = time.monotonic()
                    buffered.append(future)
                    waiting += len(rows)
                    fresh += rows
                # One publish at a time, on the run's own thread: every coin
                # finished while the last was on its way goes in the next
                # message. Neither the compute threads nor this one wait for
                # the server's event loop, and a busy loop gets fewer messages.
                if fresh and sending is None:
                    sending = publisher.submit(self._publish, handle, publish, fresh)
                    fresh = []
                # Finished coins are stored together, a few coins' rows in one
                # insert and one commit (each insert costs a commit and the
                # thread's time beside the compute threads); the last ones
                # before the loop ends, so every published row is stored
                # before the run's end is saved and announced.
                late = time.monotonic() - buffered_at >= STORE_DELAY_S
                if buffered and (not pending or late or waiting >= STORE_BATCH_ROWS):
                    self._store_buffered(handle, buffered, unstored, on_rows)
                    buffered, waiting = [], 0
            if handle.cancelled.is_set():
                handle.status = "cancelled"
            else:
                handle.status = "complete"
                handle.summary = registry.call(
                    "run", "summarize", [r.data for r in handle.rows]
                )
        except Exception as exc:  # the run fails, the server goes on
            logger.exception("backtest run %s failed", handle.run_id)
            handle.cancel()
            handle.status = "failed"
            # The client and the stored record name the service at fault, never
            # the exception's text (hosts, ports, SQL): the log has the details.
            handle.error = failure_reason(exc)
            self._store_published(handle, unstored, on_rows)
        finally:
            # A load's callback holds the handle and ``started``, and the
            # handle its loads: without this ring the run's bars and rows are
            # freed when the run is, not at some later garbage collection.
            started.clear()
            with handle._lock:
                handle._futures.clear()
            # A run that failed may leave a publish waiting on the layer.
            publisher.shutdown(wait=False)
        handle.elapsed_s = time.perf_counter() - began
        handle.summary["elapsed_s"] = round(handle.elapsed_s, 4)
        try:
            # Save before announcing the end, so a client that follows the
            # ``complete`` event to the run page finds every result stored.
            if on_finish:
                on_finish(handle)
        except Exception:
            logger.exception("could not save run %s", handle.run_id)
            if handle.status != "failed":
                # The client must not be told "complete" for a run whose
                # record says otherwise; the record is saved again later.
                handle.status = "failed"
                handle.error = failure_reason(sys.exc_info()[1])
            with self._lock:
                self._unsaved[handle.run_id] = handle
        logger.info(
            "%s %s: %d results computed in %.3fs, saved in %.3fs",
            # The command line's unsaved runs have negative ids: no run to name.
            f"run {handle.run_id}" if handle.run_id > 0 else "unsaved run",
            handle.status,
            len(handle.rows),
            handle.elapsed_s,
            time.perf_counter() - began - handle.elapsed_s,
        )
        # Close this thread's connections before the run stops counting as
        # active: whoever waits for an idle runner (a test tearing down its
        # database, a shutdown) must not find a session still open. The run
        # stops counting (against the process and its user) before its end is
        # announced: a client told it is complete may start the next one at once.
        connections.close_all()
        self.retire(handle.run_id)
        try:
            publish(handle.final_event())
        except Exception:
            logger.exception("could not announce the end of run %s", handle.run_id)
        finally:
            handle.done.set()

    @staticmethod
    def _store_buffered(
        handle: RunHandle,
        buffered: list[Future],
        unstored: set[Future],
        on_rows: Callable[[RunHandle, list[ResultRow]], None] | None,
    ) -> None:
        """Store the rows of finished coin tasks in one call of ``on_rows``."""
        rows = [row for future in buffered for row in future.result()]
        if rows and on_rows:
            on_rows(handle, rows)
        handle.stored += len(rows)
        unstored.difference_update(buffered)

    @staticmethod
    def _store_published(
        handle: RunHandle,
        tasks: set[Future],
        on_rows: Callable[[RunHandle, list[ResultRow]], None] | None,
    ) -> None:
        """Store the rows that coin tasks of a failed run published."""
        wait(tasks, timeout=30)  # cancelled: running ones stop after this coin
        for task in tasks:
            if not task.done() or task.cancelled() or task.exception() is not None:
                continue
            # Rows never numbered were never published: nothing to keep.
            rows = [row for row in task.result() if row.seq is not None]
            if not rows:
                continue
            try:
                if on_rows:
                    on_rows(handle, rows)
            except Exception:
                logger.warning(
                    "could not store published rows of run %s",
                    handle.run_id,
                    exc_info=True,
                )
                return
            handle.stored += len(rows)

    @staticmethod
    def _beat(handle: RunHandle, on_beat: Hook) -> None:
        try:
            on_beat(handle)
        except Exception:  # a missed heartbeat is no reason to fail the run
            logger.warning("heartbeat of run %s failed", handle.run_id, exc_info=True)

    def _start_coins(
        self,
        handle: RunHandle,
        batch: Sequence[Cryptocurrency],
        spec: JobSpec,
        started: dict[Future, list[Future]],
        load: Future,
    ) -> None:
        """Submit a loaded chunk's coins (a load's done-callback, run by the
        thread that loaded it)."""
        if load.cancelled() or load.exception() is not None:
            return
        try:
            self._coin_tasks(handle, load, batch, spec, started)
        except Exception:  # the control thread meets it again and fails the run
            return

    def _coin_tasks(
        self,
        handle: RunHandle,
        load: Future,
        batch: Sequence[Cryptocurrency],
        spec: JobSpec,
        started: dict[Future, list[Future]],
    ) -> list[Future]:
        """Return the compute tasks of a loaded chunk's coins, submitted by
        whichever of the load's callback and the control thread comes first."""
        series = load.result()
        with handle._lock:
            if load in started:
                return started[load]
            if handle.cancelled.is_set():
                return []
            tasks = [
                self._compute.submit(self._coin_task, handle, coin.symbol, bars, part)
                for coin in batch
                for bars in (series[coin.symbol],)
                for part in coin_parts(spec, len(bars))
            ]
            handle._futures.extend(tasks)
            started[load] = tasks
        return tasks

    def _coin_task(
        self,
        handle: RunHandle,
        symbol: str,
        series: PriceSeries,
        spec: JobSpec,
    ) -> list[ResultRow]:
        if handle.cancelled.is_set():
            return []
        return registry.call("run", "compute", symbol, series, spec)

    @staticmethod
    def _number(handle: RunHandle, rows: list[ResultRow]) -> list[ResultRow]:
        """Number a finished coin's rows in the run; none once it is cancelled."""
        with handle._lock:
            # Checked with the lock held: a cancel either comes first (nothing
            # numbered, nothing stored) or after (numbered, stored, sent).
            if handle.cancelled.is_set():
                return []
            for row in rows:
                handle.rows.append(row)
                row.seq = len(handle.rows)
        return rows

    @staticmethod
    def _publish(handle: RunHandle, publish: Publish, rows: list[ResultRow]) -> None:
        """Publish numbered rows as one layer message; a failure is kept on the
        handle (the rows are stored all the same, and the run then fails)."""
        try:
            publish(
                events.run_results(
                    handle.run_id, [{"seq": row.seq, "data": row.data} for row in rows]
                )
            )
        except Exception as exc:
            # The client gets the rows from the database before the end.
            logger.warning(
                "publishing results of run %s failed: %r", handle.run_id, exc
            )
            handle.publish_error = exc
