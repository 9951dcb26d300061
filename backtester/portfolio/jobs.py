"""Portfolio runs and sweeps computing in this process: their handles, by id.

Both kinds are one job on a control thread (the account pass of a run, the
cells of a sweep), cancelled between steps; a reloaded page finds its job here
to cancel it, and the admission count forgets it when it ends.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

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
