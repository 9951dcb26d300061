"""The thread-pool executor: the process's shared Runner (backtester.runs.runner)."""

from __future__ import annotations

from backtester.runs.runner import RunHandle, get_runner


class ThreadExecutor:
    """Compute runs on this process's bounded thread pool (the default)."""

    @property
    def active_runs(self) -> int:
        return get_runner().active_runs

    def submit(self, **kwargs) -> RunHandle:
        """Start a run on the shared Runner (RunnerBusy when it is full)."""
        return get_runner().submit(**kwargs)

    def submit_sweep(self, *, plan, coins, publish):
        """Start a sweep on the shared thread pools (RunnerBusy when full)."""
        from backtester.sweeps import runner

        return runner.submit(plan=plan, coins=coins, publish=publish)

    def sweep_handle(self, sweep_id: int):
        """Return the handle of a sweep on this process's pool, or None."""
        from backtester.sweeps import runner

        return runner.handle_of(sweep_id)
