"""The shared, bounded thread pool that computes backtests and streams results.

One ``Runner`` per process. A run is driven by a control thread that loads prices
in a few batches (each one query or one cache MGET) and submits one task per coin
to the compute pool; each task runs every requested strategy on that coin (so its
indicators are computed once) and publishes its results the moment they exist,
in completion order. Cancelling stops queued tasks from running and finished
tasks from publishing. While a run is active its control thread calls
``on_beat`` every BACKTEST_HEARTBEAT seconds, so that other processes can tell it
from a run whose server died.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from django.conf import settings
from django.db import close_old_connections, connections
from django.dispatch import Signal

from backtester.runs import events
from backtester.runs.trades import EXIT_REASONS, SIDES, encode
from backtester.runs.validation import RunSpec
from prices.models import Cryptocurrency, Interval
from prices.selectors import bars_load, coins_uncached
from prices.types import PriceSeries
from strategies.engine import run_many
from strategies.risk import DEFAULT_RISK, Risk
from strategies.types import BacktestResult, Bars

logger = logging.getLogger(__name__)

Publish = Callable[[dict], None]
Hook = Callable[["RunHandle"], None]
# Sent once per process when get_runner() creates the runner (sender: the Runner
# class, runner: the new instance).
runner_created = Signal()
EQUITY_POINTS = 200
# What the run page asks for by default, and so what a warm-up loads (the
# interval coins_uncached looks for).
WARM_INTERVAL = Interval.HOUR
# Why a (coin, strategy) row has no metrics.
NO_DATA = "no data in range"
# Trades stored per result for the detail page (metrics always use all of them).
MAX_STORED_TRADES = 100
# The stored trade columns and their types (an engine result with no trades has
# float columns; storing fixed types keeps every stored value alike). ``side``
# and ``exit_reason`` are int8 codes: indexes into trades.SIDES and
# trades.EXIT_REASONS.
TRADE_COLUMNS = {
    "entry_time": np.int64, "exit_time": np.int64, "entry_price": np.float64,
    "exit_price": np.float64, "return_pct": np.float64, "bars_held": np.int64,
    "fees": np.float64, "closed_at_end": np.bool_, "gap": np.bool_, "side": np.int8,
    "exit_reason": np.int8,
}  # fmt: skip
CODED_COLUMNS = {"side": SIDES, "exit_reason": EXIT_REASONS}


class RunnerBusy(RuntimeError):
    """Too many runs are active in this process; try again shortly."""


@dataclass(eq=False)
class Slot:
    """A place for one run in the runner, held for ``key`` (whose run it is)
    from admission until the run is submitted or the slot is released."""

    key: str
    runner: Runner
    used: bool = False

    def release(self) -> None:
        """Give the place back unused (the run was never submitted)."""
        self.runner._release(self)


@dataclass
class ResultRow:
    """One (coin, strategy) outcome: the public data plus what is stored."""

    data: dict
    trades: dict[str, np.ndarray] = field(default_factory=dict)
    equity: dict[str, np.ndarray] = field(default_factory=dict)
    # Its number in the run (1..total), given when it is published.
    seq: int | None = None


@dataclass
class RunHandle:
    run_id: int
    total: int
    cancelled: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    rows: list[ResultRow] = field(default_factory=list)
    # How many rows ``on_rows`` has stored: what ``completed`` records.
    stored: int = 0
    status: str = "running"
    error: str = ""
    # A publish that failed (the channel layer is down): the rows are still
    # stored, then the run fails naming the service.
    publish_error: BaseException | None = None
    summary: dict = field(default_factory=dict)
    elapsed_s: float = 0.0
    _futures: list[Future] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def cancel(self) -> None:
        """Stop the run: queued coins never start, finished ones stay silent.

        Once it returns no row is numbered any more: ``published()`` then lists
        every row the run will store.
        """
        with self._lock:
            self.cancelled.set()
            for future in self._futures:
                future.cancel()

    def published(self) -> list[ResultRow]:
        """Return the rows numbered (published) so far, by seq."""
        with self._lock:
            return list(self.rows)

    def wait(self, timeout: float | None = None) -> bool:
        return self.done.wait(timeout)


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def equity_columns(
    times: np.ndarray, equity: np.ndarray, buy_hold: np.ndarray
) -> dict[str, np.ndarray]:
    """Return both curves at no more than EQUITY_POINTS evenly spread bars.

    The first and last bars are always kept, so the final equity is exact.
    """
    n = len(times)
    index = np.unique(np.linspace(0, n - 1, min(n, EQUITY_POINTS)).round().astype(int))
    return {
        "time": np.asarray(times, dtype=np.int64)[index],
        "strategy": np.asarray(equity, dtype=np.float64)[index],
        "buy_hold": np.asarray(buy_hold, dtype=np.float64)[index],
    }


def trade_columns(
    table: dict[str, np.ndarray], limit: int = MAX_STORED_TRADES
) -> dict[str, np.ndarray]:
    """Return the most recent ``limit`` trades column-wise, as stored.

    Columns (not one dict per trade) keep a run with a quarter of a million trades
    cheap to build and store; the full count is the ``num_trades`` metric.
    """
    keep = slice(max(0, len(table["return_pct"]) - limit), None)
    columns = {
        name: np.array(table[name][keep], dtype=dtype)
        for name, dtype in TRADE_COLUMNS.items()
        if name not in CODED_COLUMNS and name in table
    }
    # A table from before the engine flagged gaps: none flagged.
    columns.setdefault("gap", np.zeros(len(columns["return_pct"]), np.bool_))
    if "side" in table:
        columns["side"] = encode(table["side"][keep], SIDES)
        columns["exit_reason"] = encode(table["exit_reason"][keep], EXIT_REASONS)
    else:  # a trade table without them: long trades, out on a signal or at the end
        columns["side"] = np.zeros(len(columns["return_pct"]), np.int8)
        columns["exit_reason"] = np.where(
            columns["closed_at_end"], EXIT_REASONS.index("end"), 0
        ).astype(np.int8)
    return columns


def result_row(
    symbol: str,
    series: PriceSeries,
    result: BacktestResult,
    risk: Risk = DEFAULT_RISK,
) -> ResultRow:
    """Build the public data and stored extras of one backtest result."""
    n = len(series.time)
    data = {
        "symbol": symbol,
        "strategy": result.strategy,
        "params": dict(result.params),
        "risk": risk.as_dict(),
        "first_bar": _iso(series.time[0]) if n else None,
        "last_bar": _iso(series.time[-1]) if n else None,
        "bars": n,
        "metrics": result.metrics,
    }
    return ResultRow(
        data=data,
        trades=trade_columns(result.trade_table),
        equity=equity_columns(series.time, result.equity, result.buy_hold_equity),
    )


def empty_row(
    symbol: str, strategy: str, params: dict, risk: Risk = DEFAULT_RISK
) -> ResultRow:
    """Return the row for a coin with no bars in the requested range."""
    return ResultRow(
        data={
            "symbol": symbol,
            "strategy": strategy,
            "params": dict(params),
            "risk": risk.as_dict(),
            "first_bar": None,
            "last_bar": None,
            "bars": 0,
            "metrics": None,
            "skipped": NO_DATA,
        }
    )


def compute_coin(symbol: str, series: PriceSeries, spec: RunSpec) -> list[ResultRow]:
    """Run every job of the spec on one coin's bars."""
    if not len(series.time):
        return [empty_row(symbol, key, params, spec.risk) for key, params in spec.jobs]
    results = run_many(
        Bars(*series),
        list(spec.jobs),
        fee=spec.fee,
        slippage_bps=spec.slippage_bps,
        interval=spec.interval,
        risk=spec.risk,
    )
    return [result_row(symbol, series, r, spec.risk) for r in results]


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


class Runner:
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
        self._active: dict[int, RunHandle] = {}
        # Whose each active run is, and the slots admitted but not yet
        # submitted: a user's runs are counted from admission, before their
        # database row exists, so a refused request never writes one.
        self._run_keys: dict[int, str] = {}
        self._pending: list[Slot] = []
        # Finished runs whose final record could not be saved (the database
        # was down): saved again by ``retry_unsaved``.
        self._unsaved: dict[int, RunHandle] = {}
        # The loads of the warm-up under way, by chunk, kept until all are done
        # (see ``warm``).
        self._warm_loads: dict[tuple, Future] = {}
        self._lock = threading.Lock()

    def warm(self) -> int:
        """Start caching the full hourly history of active coins not cached yet.

        The coins are loaded in the chunks a run of the default request (every
        active coin, full history) would use, on the loading threads. Until the
        warm-up is over, a run that needs one of those chunks takes its load,
        finished or not, instead of reading the same bars again or queueing a
        load of its own behind the warm-up's; so a run sent right after the
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

        Nothing but the warm-up's table and a sharing run keeps a filled future
        (no callback holds the others), so loaded arrays are freed as soon as
        no run uses them.
        """
        try:
            future.set_result(self._load_coins(chunk, None, None, WARM_INTERVAL))
        except Exception as exc:  # the sharing run sees it; the log says it too
            future.set_exception(exc)
        for later in then:
            self._load.submit(self._warm_fill, *later)

    def _warm_done(self, future: Future) -> None:
        with self._lock:
            if all(load.done() for load in self._warm_loads.values()):
                self._warm_loads.clear()
        if not future.cancelled() and future.exception() is not None:
            logger.warning("price cache warm-up failed: %s", future.exception())

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
        key = _chunk_key(chunk, start, end, interval)
        with self._lock:
            future = self._warm_loads.get(key)
        if future is not None:
            return future, True
        return self._load.submit(self._load_coins, chunk, start, end, interval), False

    def chunks(self, coins: Sequence[Cryptocurrency]) -> list[Sequence]:
        """Split coins into the chunks a run loads (and the warm-up too)."""
        return _chunks(coins, settings.BACKTEST_FIRST_CHUNK, settings.BACKTEST_CHUNK)

    def handle(self, run_id: int) -> RunHandle | None:
        """Return the handle of a run active in this process, if it is."""
        with self._lock:
            return self._active.get(run_id)

    @property
    def active_runs(self) -> int:
        with self._lock:
            return len(self._active)

    def per_key_limit(self) -> int:
        """Return how many runs one user may have active in this process.

        BACKTEST_MAX_RUNS_PER_USER, but never all the slots: at least one is
        always left for somebody else.
        """
        limit = max(1, settings.BACKTEST_MAX_RUNS_PER_USER)
        return min(limit, self.max_runs - 1) if self.max_runs > 1 else 1

    def reserve(self, key: str) -> Slot:
        """Hold a place for a run of ``key`` (a user) or raise RunnerBusy.

        Refused when the process has max_runs runs active or admitted, or when
        ``key`` already has per_key_limit() of them.
        """
        limit = self.per_key_limit()
        with self._lock:
            busy = len(self._active) + len(self._pending)
            if busy >= self.max_runs:
                raise RunnerBusy(
                    f"the server is busy with {busy} runs; try again in a moment"
                )
            mine = sum(1 for k in self._run_keys.values() if k == key) + sum(
                1 for slot in self._pending if slot.key == key
            )
            if mine >= limit:
                raise RunnerBusy(
                    f"you already have {mine} active run{'s' * (mine > 1)} "
                    f"(at most {limit} at a time); wait for one to finish or "
                    "cancel it"
                )
            slot = Slot(key=key, runner=self)
            self._pending.append(slot)
        return slot

    def _release(self, slot: Slot) -> None:
        with self._lock:
            if slot in self._pending:
                self._pending.remove(slot)

    def submit(
        self,
        *,
        run_id: int,
        spec: RunSpec,
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

    def admit(self, handle: RunHandle, slot: Slot | None = None) -> None:
        """Count a run as active, in the place ``slot`` held; RunnerBusy if full.

        Runs computed elsewhere (on Celery workers) are counted here too, so the
        process's limit and each user's cap hold whichever executor runs them.
        """
        with self._lock:
            if slot is not None and slot in self._pending:
                self._pending.remove(slot)
            elif len(self._active) + len(self._pending) >= self.max_runs:
                raise RunnerBusy(
                    f"the server is busy with {len(self._active)} runs; "
                    "try again in a moment"
                )
            if slot is not None:
                self._run_keys[handle.run_id] = slot.key
            self._active[handle.run_id] = handle

    def retire(self, run_id: int) -> None:
        """Stop counting a run as active: it is over and announced."""
        with self._lock:
            self._active.pop(run_id, None)
            self._run_keys.pop(run_id, None)

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

    def _drive(
        self,
        handle: RunHandle,
        spec: RunSpec,
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
        try:
            first, size = settings.BACKTEST_FIRST_CHUNK, settings.BACKTEST_CHUNK
            chunks = _chunks(coins, first, size)
            loads: dict[Future, Sequence[Cryptocurrency]] = {}
            pending: set[Future] = set()

            def load(batch: Sequence[Cryptocurrency]) -> None:
                key = _chunk_key(batch, spec.start, spec.end, spec.interval)
                with self._lock:
                    future = self._warm_loads.get(key)
                if future is None:
                    future = self._load.submit(self._load_chunk, handle, batch, spec)
                    with handle._lock:
                        handle._futures.append(future)
                # A warm-up's load is shared: a cancel must not cancel it.
                loads[future] = batch
                pending.add(future)

            # The small first chunk loads alone (the first result does not wait
            # for a bigger one sharing the CPU); the rest load once it is in.
            if chunks:
                load(chunks[0])
            beat_every = settings.BACKTEST_HEARTBEAT
            next_beat = time.monotonic() + beat_every
            # One loop over loads and coin tasks in completion order: a loaded
            # chunk's coins go to the compute pool, a finished coin's rows are
            # stored here while other chunks load and other coins compute. It
            # wakes at least once per heartbeat, even while nothing completes.
            while pending:
                done, pending = wait(
                    pending, timeout=beat_every, return_when=FIRST_COMPLETED
                )
                if on_beat and time.monotonic() >= next_beat:
                    self._beat(handle, on_beat)
                    next_beat = time.monotonic() + beat_every
                for future in done:
                    if future.cancelled():
                        continue
                    if future in loads:
                        series = future.result()
                        if handle.cancelled.is_set():
                            continue
                        if loads[future] is chunks[0]:
                            for batch in chunks[1:]:
                                load(batch)
                        with handle._lock:
                            for coin in loads[future]:
                                task = self._compute.submit(
                                    self._coin_task,
                                    handle,
                                    coin.symbol,
                                    series[coin.symbol],
                                    spec,
                                    publish,
                                )
                                handle._futures.append(task)
                                pending.add(task)
                                unstored.add(task)
                        continue
                    unstored.discard(future)
                    rows = future.result()
                    # Rows a task returns were published: store them even when
                    # a cancel arrived since, so a cancelled run keeps exactly
                    # the results its client saw (and ``completed`` counts).
                    if rows and on_rows:
                        on_rows(handle, rows)
                    handle.stored += len(rows)
                    if handle.publish_error is not None:
                        raise handle.publish_error
            if handle.cancelled.is_set():
                handle.status = "cancelled"
            else:
                handle.status = "complete"
                handle.summary = summarize([r.data for r in handle.rows])
        except Exception as exc:  # the run fails, the server goes on
            logger.exception("backtest run %s failed", handle.run_id)
            handle.cancel()
            handle.status = "failed"
            # The client and the stored record name the service at fault, never
            # the exception's text (hosts, ports, SQL): the log has the details.
            handle.error = failure_reason(exc)
            self._store_published(handle, unstored, on_rows)
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
            publish(self._final_event(handle))
        except Exception:
            logger.exception("could not announce the end of run %s", handle.run_id)
        finally:
            handle.done.set()

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
            rows = task.result()
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

    @staticmethod
    def _final_event(handle: RunHandle) -> dict:
        if handle.status == "complete":
            return {
                "type": events.LAYER_COMPLETE,
                "run_id": handle.run_id,
                "summary": handle.summary,
                "elapsed_s": handle.elapsed_s,
            }
        if handle.status == "cancelled":
            return {"type": events.LAYER_CANCELLED, "run_id": handle.run_id}
        return {
            "type": events.LAYER_FAILED,
            "run_id": handle.run_id,
            "message": f"the run failed: {handle.error}",
        }

    @classmethod
    def _load_chunk(
        cls, handle: RunHandle, chunk: Sequence[Cryptocurrency], spec: RunSpec
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

    def _coin_task(
        self,
        handle: RunHandle,
        symbol: str,
        series: PriceSeries,
        spec: RunSpec,
        publish: Publish,
    ) -> list[ResultRow]:
        if handle.cancelled.is_set():
            return []
        rows = compute_coin(symbol, series, spec)
        if handle.cancelled.is_set():
            return []
        with handle._lock:
            # Checked with the lock held: a cancel either comes first (nothing
            # numbered, nothing stored) or after (numbered, stored, sent).
            if handle.cancelled.is_set():
                return []
            for row in rows:
                handle.rows.append(row)
                row.seq = len(handle.rows)
        try:
            publish(
                {
                    "type": events.LAYER_RESULTS,
                    "run_id": handle.run_id,
                    "results": [{"seq": row.seq, "data": row.data} for row in rows],
                }
            )
        except Exception as exc:
            # The rows are stored all the same (the client gets them from the
            # database); the control thread then fails the run.
            logger.warning(
                "publishing results of run %s failed: %r", handle.run_id, exc
            )
            handle.publish_error = exc
        return rows


def failure_reason(exc: BaseException) -> str:
    """Return why a run failed as the client may read it: the service at fault.

    A database or Redis (cache or channel layer) that cannot be reached is
    named; anything else is an internal error. Never the exception's text,
    which can hold host names, ports and queries.
    """
    from django.db import DatabaseError, InterfaceError, OperationalError

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        module = type(exc).__module__
        if isinstance(exc, OperationalError | InterfaceError):
            return "the database is unavailable"
        if isinstance(exc, DatabaseError):
            return "the results could not be stored in the database"
        if module.startswith("redis") or module.startswith("channels_redis"):
            return "Redis is unavailable"
        exc = exc.__cause__ or exc.__context__
    return "an internal error stopped the run (see the server log)"


def summarize(results: Sequence[dict]) -> dict:
    """Return the run summary: beats buy & hold, median/mean, best/worst, Sharpe."""
    scored = [r for r in results if r.get("metrics")]
    returns = np.array([r["metrics"]["total_return_pct"] for r in scored], float)
    sharpes = [
        r["metrics"]["sharpe"] for r in scored if r["metrics"].get("sharpe") is not None
    ]
    beat = [
        r
        for r in scored
        # A result that never traded did not beat anything: it sat in cash.
        if (r["metrics"].get("num_trades") or 0) > 0
        and r["metrics"]["total_return_pct"] > r["metrics"]["buy_hold_return_pct"]
    ]

    def pick(index: int) -> dict:
        r = scored[index]
        return {
            "symbol": r["symbol"],
            "strategy": r["strategy"],
            "params": r.get("params", {}),
            "total_return_pct": r["metrics"]["total_return_pct"],
        }

    summary: dict = {
        "results": len(results),
        "skipped": len(results) - len(scored),
        "beat_buy_hold": len(beat),
        "median_return_pct": float(np.median(returns)) if len(returns) else None,
        "mean_return_pct": float(np.mean(returns)) if len(returns) else None,
        "mean_sharpe": float(np.mean(sharpes)) if sharpes else None,
        "best": pick(int(np.argmax(returns))) if len(returns) else None,
        "worst": pick(int(np.argmin(returns))) if len(returns) else None,
    }
    strategies = list(dict.fromkeys(r["strategy"] for r in scored))
    if len(strategies) > 1:
        summary["by_strategy"] = {
            key: summarize([r for r in scored if r["strategy"] == key])
            for key in strategies
        }
    return summary


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
