"""A job's handle, its place in the admission count, and what its pieces
produce: execution's own ideas, shared by both executors and the apps."""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import numpy as np
from django.conf import settings

from backtester.execution import events, registry
from backtester.execution.failures import failure_reason

logger = logging.getLogger(__name__)

Publish = Callable[[dict], None]
Hook = Callable[["RunHandle"], None]


class JobSpec(Protocol):
    """What executors read of a job's request: the bars to load and the jobs
    to run on each coin (the runs app's RunSpec is one). A dataclass: the
    thread pool computes a long series' jobs one a piece, each piece's spec a
    copy holding one job (``dataclasses.replace``)."""

    start: datetime | None
    end: datetime | None
    interval: str
    jobs: tuple


def coin_parts(spec: JobSpec, bars: int) -> list[JobSpec]:
    """Return the specs a coin of ``bars`` bars is computed in: the whole spec,
    or one per job from BACKTEST_SPLIT_BARS bars on.

    All of a coin's jobs share its indicators, and hold every one of them
    until the last job is done: at a coin-year of 1-minute bars (525,600)
    that was 151 MB of intermediate arrays per compute thread, and the coin's
    first result waited for all six strategies (about 110 ms of CPU time).
    One job a piece holds one strategy's indicators, and the first result
    comes after one strategy.
    """
    if bars < settings.BACKTEST_SPLIT_BARS or len(spec.jobs) < 2:
        return [spec]
    return [dataclasses.replace(spec, jobs=(job,)) for job in spec.jobs]


class RunnerBusy(RuntimeError):
    """Too many jobs are active in this process; try again shortly."""


@dataclass(eq=False)
class Slot:
    """A place for one job, held for ``key`` (whose job it is) from admission
    until the job is submitted or the slot is released."""

    key: str
    runner: Any
    used: bool = False
    kind: str = "run"  # what the place is for: "run", "sweep", "walk_forward"...
    size: int = 0  # backtests it will compute, for a cap on a user's total

    def release(self) -> None:
        """Give the place back unused (the job was never submitted)."""
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

    def final_event(self) -> dict:
        """Return the layer event that announces the run's end."""
        return events.run_final(
            self.run_id,
            self.status,
            summary=self.summary,
            elapsed_s=self.elapsed_s,
            error=self.error,
        )


_job_ids = itertools.count(1)


@dataclass(eq=False)
class JobHandle:
    """A job with no record of its own (a walk-forward): its number in this
    process, a cancel flag its loop asks, and its end."""

    kind: str
    job_id: int = field(default_factory=lambda: next(_job_ids))
    cancelled: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        """Ask the job to stop at its next check."""
        self.cancelled.set()

    def should_stop(self) -> bool:
        """Return whether the job was asked to stop."""
        return self.cancelled.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self.done.wait(timeout)


@dataclass
class SweepHandle:
    sweep_id: int
    cancelled: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    status: str = "running"
    error: str = ""
    elapsed_s: float = 0.0
    final: dict = field(default_factory=dict)
    _futures: list[Future] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def cancel(self) -> None:
        """Stop the sweep: queued pieces never start, finished ones stay silent."""
        self.cancelled.set()
        with self._lock:
            for future in self._futures:
                future.cancel()

    def wait(self, timeout: float | None = None) -> bool:
        return self.done.wait(timeout)

    def record_end(self) -> None:
        """Save the sweep's end (status, elapsed, error) through the sweeps'
        registered ``finish`` and keep the event announcing it in ``final``; if
        it cannot be saved, the event says the sweep failed, and so does its
        record once ``sweeps_retry_unsaved`` can save it. Either executor calls
        this once its work is over."""
        try:
            self.final = self._finish()
        except Exception as exc:
            logger.exception("could not save sweep %s", self.sweep_id)
            if self.status != "failed":
                self.status, self.error = "failed", failure_reason(exc)
            with _unsaved_lock:
                _unsaved_sweeps[self.sweep_id] = self
            self.final = events.sweep_final(
                self.sweep_id,
                "failed",
                best=None,
                elapsed_s=self.elapsed_s,
                error=self.error,
            )

    def _finish(self) -> dict:
        return registry.call(
            "sweep",
            "finish",
            self.sweep_id,
            status=self.status,
            elapsed_s=self.elapsed_s,
            error=self.error,
        )


# Sweeps whose end could not be saved (the database was down), by id.
_unsaved_sweeps: dict[int, SweepHandle] = {}
_unsaved_lock = threading.Lock()


def sweeps_retry_unsaved() -> int:
    """Save again the ends of sweeps that failed to save; return how many are
    saved now (a sweep is kept for the next try while it still fails)."""
    with _unsaved_lock:
        pending = list(_unsaved_sweeps.values())
    saved = 0
    for handle in pending:
        try:
            handle._finish()
        except Exception as exc:
            logger.warning("sweep %s still not saved: %r", handle.sweep_id, exc)
            continue
        with _unsaved_lock:
            _unsaved_sweeps.pop(handle.sweep_id, None)
        saved += 1
    return saved
