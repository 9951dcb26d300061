"""Celery tasks of portfolio jobs: thin wrappers around pieces.py."""

from __future__ import annotations

from backtester.celery import app
from backtester.portfolio import pieces
from backtester.portfolio.remote import RUN_TASK, SWEEP_TASK


@app.task(name=RUN_TASK)
def portfolio_run(portfolio_id: int) -> str:
    """Compute, store and publish one portfolio run."""
    return pieces.portfolio_run_piece(portfolio_id)


@app.task(name=SWEEP_TASK)
def portfolio_sweep_block(sweep_id: int, indexes: list[int]) -> int:
    """Compute, store and publish a block of a portfolio sweep's cells."""
    return pieces.psweep_block_piece(sweep_id, indexes)
