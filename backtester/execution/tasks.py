"""Celery tasks: thin wrappers around the services the thread pool also uses."""

from __future__ import annotations

from backtester.celery import app
from backtester.execution import services
from backtester.execution.messages import spec_load

RUN_PIECE = "backtester.run_piece"
SWEEP_PIECE = "backtester.sweep_piece"


@app.task(name=RUN_PIECE)
def run_piece(run_id: int, coin_id: int, spec: dict) -> int:
    """Compute, store and publish one coin of a run (see services.run_piece)."""
    return services.run_piece(run_id=run_id, coin_id=coin_id, spec=spec_load(spec))


@app.task(name=SWEEP_PIECE)
def sweep_piece(sweep_id: int, symbols: list[str], first: int) -> int:
    """Compute, store and publish a few coins' block of a sweep."""
    return services.sweep_piece(sweep_id=sweep_id, symbols=symbols, first=first)
