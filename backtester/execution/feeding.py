"""Feed a job's pieces to the broker a few at a time, and send lost ones again
(those of a worker whose heartbeat expired: see liveness.py).

A job sends at most BACKTEST_TASKS_IN_FLIGHT pieces that have not ended, and
one more as each ends: a 10,000-combination sweep never floods the queue, so
another user's job, sent later, waits behind a few of its pieces rather than
hundreds (priorities order what is queued; the bound keeps what is queued
short, for jobs of equal priority too).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from backtester.execution import events, services, state

logger = logging.getLogger(__name__)

WORKER_LOST_NOTICE = (
    "a worker stopped while computing part of this job; that part was sent to "
    "another worker"
)

# What a piece is sent as: (task, name, kwargs, priority).
Piece = tuple
Send = Callable[[dict[str, Piece]], list[str]]


class Feeder:
    """A job's pieces in order, sent ``bound`` at a time (0: all at once)."""

    def __init__(self, job: str, pieces: dict[str, Piece], send: Send, bound: int):
        self.job = job
        self._pieces = pieces
        self._order = list(pieces)
        self._next = 0
        self._send = send
        self.bound = bound
        self.task_ids: list[str] = []
        # (piece, owner) pairs already sent again: one resend per lost owner.
        self._resent: set[tuple[str, str]] = set()

    @property
    def sent(self) -> int:
        """How many of the pieces have been sent (once or more)."""
        return self._next

    def top_up(self, ended: int) -> int:
        """Send pieces until ``bound`` of them are in flight (sent and not among
        the ``ended`` ones); return how many were sent now."""
        left = len(self._order) - self._next
        room = left if self.bound <= 0 else self.bound - (self._next - ended)
        count = max(0, min(left, room))
        if count:
            keys = self._order[self._next : self._next + count]
            self.task_ids += self._send({k: self._pieces[k] for k in keys})
            self._next += count
        return count

    def resend(self, keys: list[str]) -> None:
        """Send these (already sent) pieces again."""
        if keys:
            self.task_ids += self._send({k: self._pieces[k] for k in keys})

    def not_ended(self) -> list[str]:
        """Return the pieces sent that have not ended."""
        done = state.ended(self.job)
        return [k for k in self._order[: self._next] if k not in done]

    def lost(self) -> tuple[list[str], set[str]]:
        """Return the pieces whose worker process died while it had them (its
        heartbeat expired, the piece never ended), not sent again yet, and
        those workers."""
        owners = state.owners(self.job)
        if not owners:
            return [], set()
        done = state.ended(self.job)
        running = {
            k: w
            for k, w in owners.items()
            if k not in done and (k, w) not in self._resent and k in self._pieces
        }
        if not running:
            return [], set()
        dead = set(running.values()) - state.workers_alive(running.values())
        keys = [k for k, w in running.items() if w in dead]
        self._resent.update((k, running[k]) for k in keys)
        return keys, dead

    def resend_lost(self, group: str) -> None:
        """Send again the pieces of workers that stopped beating, and tell the
        job's clients on ``group`` (the page says a worker stopped)."""
        lost, dead = self.lost()
        if not lost:
            return
        logger.warning(
            "%s: worker %s stopped; sending its %d pieces again",
            self.job,
            ", ".join(sorted(dead)),
            len(lost),
        )
        self.resend(lost)
        try:
            services.group_send(group, events.job_notice(WORKER_LOST_NOTICE))
        except Exception:  # the pieces go again all the same
            logger.warning("could not tell %s a worker stopped", group, exc_info=True)
