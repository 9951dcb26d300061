"""The thread-pool executor: the process's shared Runner (pool.py)."""

from __future__ import annotations

from backtester.execution import sweeping
from backtester.execution.handles import RunHandle, SweepHandle
from backtester.execution.pool import get_runner


class ThreadExecutor:
    """Compute runs on this process's bounded thread pool (the default)."""

    @property
    def active_runs(self) -> int:
        return get_runner().active_runs

    def submit(self, **kwargs) -> RunHandle:
        """Start a run on the shared Runner (RunnerBusy when it is full)."""
        return get_runner().submit(**kwargs)

    def submit_sweep(self, *, plan, coins, publish, slot=None) -> SweepHandle:
        """Start a sweep on the shared thread pools (RunnerBusy when full)."""
        return sweeping.submit(plan=plan, coins=coins, publish=publish, slot=slot)

    def sweep_handle(self, sweep_id: int) -> SweepHandle | None:
        """Return the handle of a sweep on this process's pool, or None."""
        return sweeping.handle_of(sweep_id)
