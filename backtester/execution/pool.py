"""The shared, bounded thread pools of a process: compute, control and loading.

One ``Runner`` per process. It owns the compute threads (every piece of every
job: a run's coins, a sweep's blocks), the control threads that drive jobs, and
a few loading threads with their own database connections; it counts admitted
jobs (admission.py) and drives runs (driving.py). Opening the run page warms
the price cache through it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime

from django.conf import settings
from django.db import close_old_connections, connections
from django.dispatch import Signal

from backtester.execution.admission import Admission
from backtester.execution.driving import RunDriving, _chunk_key, _chunks
from backtester.execution.handles import (
    Hook,
    JobSpec,
    Publish,
    ResultRow,
    RunHandle,
    Slot,
)
from prices.models import Cryptocurrency, Interval
from prices.selectors import bars_load, coins_uncached
from prices.types import PriceSeries

logger = logging.getLogger(__name__)

# Sent once per process when get_runner() creates the runner (sender: the Runner
# class, runner: the new instance).
runner_created = Signal()
# What the run page asks for by default, and so what a warm-up loads (the
# interval coins_uncached looks for).
WARM_INTERVAL = Interval.HOUR


class Runner(Admission, RunDriving):
    """Owns the compute pool and the control threads of active runs."""

    def __init__(
        self, workers: int | None = None, max_runs: int = 8, loaders: int = 2
    ) -> None:
        self.workers = workers or os.cpu_count() or 2
        self.max_runs = max_runs
        self._compute = ThreadPoolExecutor(self.workers, "backtest")
        self._control = ThreadPoolExecutor(max_runs, "backtest-run")
        # Price loads of all runs share a few threads with their own database
        # connections: two batch queries in flight keep two PostgreSQL backends
        # busy while this process parses, computes and stores.
        self._load = ThreadPoolExecutor(max(1, loaders), "backtest-load")
        # A run's chunks of one coin load here, one at a time on one thread.
        # A coin-year of minutes (a 25 MB payload from Redis, its reading
        # buffers) loaded by two threads at once left freed blocks of that
        # size in both of glibc's arenas (MALLOC_ARENAS): W over 48 such coins
        # peaked at 715-758 MB with two loaders, 567-621 MB with one, as fast.
        self._load_one = ThreadPoolExecutor(1, "backtest-load-one")
        self._active: dict[int, RunHandle] = {}
        # Whose each active job is, by (kind, id), and the slots admitted but
        # not yet submitted: a user's jobs are counted from admission, before
        # their database row exists, so a refused request never writes one.
        self._jobs: dict[tuple[str, object], str] = {}
        self._sizes: dict[tuple[str, object], int] = {}
        self._pending: list[Slot] = []
        # Finished runs whose final record could not be saved (the database
        # was down): saved again by ``retry_unsaved``.
        self._unsaved: dict[int, RunHandle] = {}
        # The loads of the warm-up under way, by chunk, kept until all are done
        # (see ``warm``).
        self._warm_loads: dict[tuple, Future] = {}
        # The chunks that warm-up has loaded (their bars are in the shared
        # cache, not held here), until it is over.
        self._warmed: set[tuple] = set()
        self._lock = threading.Lock()

    def warm(self) -> int:
        """Start caching the full hourly history of active coins not cached yet.

        The coins are loaded in the chunks a run of the default request (every
        active coin, full history) would use, on the loading threads. Until the
        warm-up is over, a run that needs one of those chunks while it loads
        takes that load instead of reading the same bars again or queueing a
        load of its own behind the warm-up's (a loaded chunk is in the shared
        cache); so a run sent right after the
        page opened costs no more than a cold run. Call it from a thread that
        may use the database; it returns how many coins are being loaded (0
        while an earlier warm-up is still going, or when all are cached).
        """
        with self._lock:
            if self._warm_loads:
                return 0
        coins = coins_uncached()
        first, size = settings.BACKTEST_FIRST_CHUNK, settings.BACKTEST_CHUNK
        chunks = _chunks(coins, first, size)
        # One future per chunk, filled by a load on the loading threads. As in a
        # run, the small first chunk loads alone and the rest follow it.
        planned = [(chunk, Future()) for chunk in chunks]
        with self._lock:
            if self._warm_loads:
                return 0
            for chunk, future in planned:
                self._warm_loads[_chunk_key(chunk, None, None, WARM_INTERVAL)] = future
        # Outside the lock: a future that is already done calls back at once.
        for _chunk, future in planned:
            future.add_done_callback(self._warm_done)
        if planned:
            self._load.submit(self._warm_fill, *planned[0], planned[1:])
        return len(coins)

    def _warm_fill(
        self,
        chunk: Sequence[Cryptocurrency],
        future: Future,
        then: list[tuple[Sequence[Cryptocurrency], Future]] = (),
    ) -> None:
        """Load one chunk into its future, then start the chunks after it.

        Nothing but a sharing run keeps a filled future (it leaves the warm-up's
        table when done, no callback holds the others), so loaded arrays are
        freed as soon as no run uses them.
        """
        try:
            future.set_result(self._load_coins(chunk, None, None, WARM_INTERVAL))
        except Exception as exc:  # the sharing run sees it; the log says it too
            future.set_exception(exc)
        for later in then:
            self._load.submit(self._warm_fill, *later)

    def _warm_done(self, future: Future) -> None:
        # A loaded chunk leaves the table at once: its bars are in the shared
        # cache now, where a later run finds them, and only a run that took
        # the load meanwhile keeps them. Keeping every chunk until the last was
        # in held all active coins' bars at once (200 coins: 420 MB).
        with self._lock:
            for key, load in list(self._warm_loads.items()):
                if load is future:
                    del self._warm_loads[key]
                    self._warmed.add(key)
            if not self._warm_loads:
                self._warmed.clear()
        if not future.cancelled() and future.exception() is not None:
            logger.warning("price cache warm-up failed: %s", future.exception())

    def _warm_share(
        self,
        chunk: Sequence[Cryptocurrency],
        start: datetime | None,
        end: datetime | None,
        interval: str,
    ) -> Future | None:
        """Return the warm-up's load of this chunk, or None when it has none.

        While the chunk loads, that load's future; once loaded, a future of the
        chunk read here from the shared cache (one MGET), not queued on the
        loading threads behind the warm-up's other loads.
        """
        key = _chunk_key(chunk, start, end, interval)
        with self._lock:
            future = self._warm_loads.get(key)
            warmed = key in self._warmed
        if future is not None or not warmed:
            return future
        future = Future()
        try:
            future.set_result(
                bars_load(coins=chunk, start=start, end=end, interval=interval)
            )
        except Exception as exc:  # the run sees it as it would a load's
            future.set_exception(exc)
        return future

    def submit_compute(self, fn: Callable, /, *args) -> Future:
        """Run ``fn(*args)`` on the shared compute threads (sweeps use them too)."""
        return self._compute.submit(fn, *args)

    def submit_control(self, fn: Callable, /, *args) -> Future:
        """Run a job's driving loop on the control threads."""
        return self._control.submit(fn, *args)

    def submit_load(
        self,
        chunk: Sequence[Cryptocurrency],
        start: datetime | None,
        end: datetime | None,
        interval: str,
    ) -> tuple[Future, bool]:
        """Load a chunk of coins' bars on the loading threads.

        Returns (future, shared): while the warm-up is loading this very chunk
        its load is returned (shared True), which the caller must not cancel.
        """
        future = self._warm_share(chunk, start, end, interval)
        if future is not None:
            return future, True
        return self._load.submit(self._load_coins, chunk, start, end, interval), False

    def chunks(self, coins: Sequence[Cryptocurrency]) -> list[Sequence]:
        """Split coins into the chunks a run loads (and the warm-up too)."""
        return _chunks(coins, settings.BACKTEST_FIRST_CHUNK, settings.BACKTEST_CHUNK)

    def submit(
        self,
        *,
        run_id: int,
        spec: JobSpec,
        coins: Sequence[Cryptocurrency],
        publish: Publish,
        on_rows: Callable[[RunHandle, list[ResultRow]], None] | None = None,
        on_finish: Hook | None = None,
        on_beat: Hook | None = None,
        slot: Slot | None = None,
    ) -> RunHandle:
        """Start a run in the background; raise RunnerBusy when the queue is full.

        With a ``slot`` from reserve() the run takes that place (it was counted
        at admission) and is counted against its key until it ends.

        ``on_rows`` is called in the run's control thread with each coin's rows as
        they complete (to store them while other coins compute), ``on_finish``
        once at the end, before the final event is published, and ``on_beat``
        every BACKTEST_HEARTBEAT seconds while the run is active.
        """
        handle = RunHandle(run_id=run_id, total=len(coins) * len(spec.jobs))
        self.admit(handle, slot)
        self._control.submit(
            self._drive, handle, spec, list(coins), publish, on_rows, on_finish, on_beat
        )
        return handle

    def keep_unsaved(self, handle: RunHandle) -> None:
        """Keep a finished run whose final record could not be saved, for
        ``retry_unsaved``."""
        with self._lock:
            self._unsaved[handle.run_id] = handle

    def retry_unsaved(self, save: Hook) -> int:
        """Save again the final records that failed to save; return how many
        are saved now (a run is kept for the next try while it still fails)."""
        with self._lock:
            pending = list(self._unsaved.values())
        saved = 0
        for handle in pending:
            try:
                save(handle)
            except Exception as exc:
                logger.warning("run %s still not saved: %r", handle.run_id, exc)
                continue
            with self._lock:
                self._unsaved.pop(handle.run_id, None)
            saved += 1
        return saved

    @classmethod
    def _load_chunk(
        cls, handle: RunHandle, chunk: Sequence[Cryptocurrency], spec: JobSpec
    ) -> dict[str, PriceSeries]:
        if handle.cancelled.is_set():
            return {}
        return cls._load_coins(chunk, spec.start, spec.end, spec.interval)

    @staticmethod
    def _load_coins(
        chunk: Sequence[Cryptocurrency],
        start: datetime | None,
        end: datetime | None,
        interval: str,
    ) -> dict[str, PriceSeries]:
        close_old_connections()
        try:
            return bars_load(coins=chunk, start=start, end=end, interval=interval)
        finally:
            # Pool threads outlive runs; a connection left open here would hold
            # a database session nobody uses (and block dropping a test DB).
            connections.close_all()


_runner: Runner | None = None
_runner_lock = threading.Lock()


def current_runner() -> Runner | None:
    """Return this process's runner if it has one (never creates it)."""
    return _runner


def get_runner() -> Runner:
    """Return this process's runner, creating it on first use.

    Creating it sends ``runner_created`` (the app fails runs that dead processes
    left unfinished then); a receiver that raises is logged, never fatal.
    """
    global _runner
    with _runner_lock:
        if _runner is not None:
            return _runner
        _runner = runner = Runner(
            workers=settings.BACKTEST_WORKERS,
            max_runs=settings.BACKTEST_MAX_QUEUED_RUNS,
            loaders=settings.BACKTEST_LOADERS,
        )
    runner_created.send_robust(sender=Runner, runner=runner)
    return runner
