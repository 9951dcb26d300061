"""Worker processes' heartbeats: how a monitor tells a killed worker from a
slow one.

Each Celery pool process beats in Redis every ``state.WORKER_BEAT_S`` from a
daemon thread and records its name as the owner of every piece it starts. A
worker killed with SIGKILL (its whole process group, as when a machine or a
container dies) never acknowledges its task, and the broker hands that task to
another worker only after its visibility timeout (minutes): the monitor instead
sees the owner's heartbeat expire within ``state.WORKER_TTL_S`` seconds and
sends the piece again at once. Storing is idempotent, so a piece sent twice is
stored once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading

from backtester.execution import state

logger = logging.getLogger(__name__)

_started_pid = 0
_lock = threading.Lock()


def worker_name() -> str:
    """Return this process's name as a piece's owner: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def beating() -> bool:
    """Return whether this process sends heartbeats (a pool process does)."""
    return _started_pid == os.getpid()


def start_beating() -> None:
    """Start this process's heartbeat thread (once per process)."""
    global _started_pid
    with _lock:
        if _started_pid == os.getpid():
            return
        name = worker_name()
        _beat(name)  # alive before its first task, not a second later
        stop = threading.Event()
        threading.Thread(
            target=_beat_forever, args=(name, stop), name="worker-beat", daemon=True
        ).start()
        _started_pid = os.getpid()


def _beat(name: str) -> None:
    try:
        state.worker_beat(name)
    except Exception as exc:  # Redis away: the tasks will say so themselves
        logger.warning("worker heartbeat failed: %r", exc)


def _beat_forever(name: str, stop: threading.Event) -> None:
    while not stop.wait(state.WORKER_BEAT_S):
        _beat(name)


def owner_for_piece() -> str:
    """Return the owner name a piece started here records ("" when this
    process sends no heartbeats, so no monitor takes it for dead)."""
    return worker_name() if beating() else ""
