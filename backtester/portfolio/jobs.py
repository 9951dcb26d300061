"""Portfolio runs and sweeps computing in this process: their handles, by id.

Both kinds are one job on a control thread (the account pass of a run, the
cells of a sweep), cancelled between steps; a reloaded page finds its job here
to cancel it, and the admission count forgets it when it ends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.db import models
from django.utils import timezone

from backtester.execution.handles import Publish, Slot
from backtester.execution.pool import get_runner


@dataclass
class LocalJob:
    """A job computing in this process: ``cancel()``, ``wait()``."""

    job_id: int
    cancelled: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    status: str = "running"
    error: str = ""
    elapsed_s: float = 0.0

    @property
    def run_id(self) -> int:
        """Return its key in the admission count (under its own kind)."""
        return self.job_id

    def cancel(self) -> None:
        """Stop at the next step (a coin's signals, a cell); nothing more is
        stored or published."""
        self.cancelled.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the job has ended; return whether it has."""
        return self.done.wait(timeout)


class LocalJobs:
    """The jobs of one kind that this process computes, by id."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._jobs: dict[int, LocalJob] = {}
        self._lock = threading.Lock()

    def add(self, job: LocalJob) -> None:
        """Keep ``job`` until it is forgotten."""
        with self._lock:
            self._jobs[job.job_id] = job

    def get(self, job_id: int) -> LocalJob | None:
        """Return the job with ``job_id`` if this process computes it."""
        with self._lock:
            return self._jobs.get(job_id)

    def forget(self, job: LocalJob) -> None:
        """Stop counting ``job``: it is over (announced next) or never started."""
        with self._lock:
            self._jobs.pop(job.job_id, None)
        get_runner().retire(job.job_id, self.kind)

    def start(
        self,
        job: LocalJob,
        record: models.Model,
        *,
        slot: Slot,
        coins: Sequence,
        publish: Publish,
        drive: Callable,
        watch_remote: Callable,
        finish: Callable,
    ) -> LocalJob:
        """Count ``job`` in the place ``slot`` holds, mark ``record`` running and
        compute it on a control thread: ``drive`` here, or ``watch_remote``
        while Celery workers compute it. Events go through ``publish``; a job
        that cannot start is ``finish``-ed as failed."""
        runner = get_runner()
        runner.admit(job, slot, kind=self.kind, job_id=job.job_id)
        self.add(job)
        type(record).objects.filter(pk=record.pk).update(
            status="running", started_at=timezone.now()
        )
        try:
            if settings.BACKTEST_EXECUTOR == "celery":
                runner.submit_control(watch_remote, record, job, publish)
            else:
                runner.submit_control(drive, record, list(coins), job, publish)
        except BaseException:
            self.forget(job)
            finish(record.pk, status="failed", error="could not start")
            raise
        return job
