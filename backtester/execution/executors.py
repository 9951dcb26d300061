"""This process's executors, by the name BACKTEST_EXECUTOR gives."""

from __future__ import annotations

import threading

from django.conf import settings

from backtester.execution.base import Executor

_executors: dict[str, Executor] = {}
_lock = threading.Lock()


def get_executor(name: str | None = None) -> Executor:
    """Return this process's executor named by BACKTEST_EXECUTOR (or ``name``)."""
    name = name or settings.BACKTEST_EXECUTOR
    with _lock:
        if name not in _executors:
            if name == "celery":
                from backtester.execution.celery import CeleryExecutor

                _executors[name] = CeleryExecutor(
                    max_runs=settings.BACKTEST_MAX_QUEUED_RUNS
                )
            elif name == "threads":
                from backtester.execution.threads import ThreadExecutor

                _executors[name] = ThreadExecutor()
            else:
                raise ValueError(f"BACKTEST_EXECUTOR: unknown executor {name!r}")
        return _executors[name]


def sweep_handle(sweep_id: int):
    """Return the handle (``cancel()``) of a sweep computed or watched by this
    process, whichever executor started it, or None."""
    with _lock:
        executors = list(_executors.values())
    for executor in executors:
        handle = executor.sweep_handle(sweep_id)
        if handle is not None:
            return handle
    return None
