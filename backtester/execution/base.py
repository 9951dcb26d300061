"""The interface both executors offer the services that start runs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from backtester.execution.handles import (
    Hook,
    JobSpec,
    Publish,
    ResultRow,
    RunHandle,
    Slot,
    SweepHandle,
)
from prices.models import Cryptocurrency


class Executor(Protocol):
    """Compute a run's jobs, one coin at a time, publishing each coin's results.

    Results reach the run's channel-layer group as ``run.results`` events and the
    end as ``run.complete`` / ``run.cancelled`` / ``run.failed``, whoever computes
    them. ``submit`` returns at once with a handle whose ``cancel()`` stops the
    run; ``on_finish`` is called once, before the final event, with the handle's
    status, summary and rows set; ``on_beat`` every BACKTEST_HEARTBEAT seconds.
    ``on_rows`` receives rows to store when the executor leaves storing to the
    caller (the thread pool); an executor that stores them itself ignores it.
    ``slot`` is the place ``Runner.reserve`` held at admission: every executor
    counts its runs in the process's runner.
    """

    @property
    def active_runs(self) -> int: ...

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
    ) -> RunHandle: ...

    def submit_sweep(
        self,
        *,
        plan: Any,
        coins: Sequence[Cryptocurrency],
        publish: Publish,
        slot: Slot | None = None,
    ) -> SweepHandle:
        """Start a stored sweep in the place ``slot`` held: its (coin, block of
        combinations) pieces are computed, stored and published as
        ``sweep.cells`` events, then the end (``sweep.complete`` /
        ``cancelled`` / ``failed``)."""
        ...

    def sweep_handle(self, sweep_id: int) -> SweepHandle | None:
        """Return the handle of a sweep this executor computes or watches in
        this process (a page attached again cancels through it), or None."""
        ...
