"""Celery tasks of the sweeps app: thin wrappers around wf_pieces.py."""

from __future__ import annotations

from backtester.celery import app
from backtester.sweeps import wf_pieces
from backtester.sweeps.wf_remote import WALK_FORWARD_TASK


@app.task(name=WALK_FORWARD_TASK, bind=True)
def walk_forward(self, walk_forward_id: int, request: dict) -> str:
    """Compute, store and announce one walk-forward."""
    return wf_pieces.walk_forward_piece(walk_forward_id, request, self.request.id)
