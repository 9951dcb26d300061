"""Admission: how many jobs this process and each user may have active.

A job is counted from admission (a ``Slot``), before its database row exists,
so a refused request never writes one; then while it runs, until ``retire``.
Runs computed elsewhere (on Celery workers) are counted here too, so the
process's limit and each user's cap hold whichever executor runs them.
"""

from __future__ import annotations

from django.conf import settings

from backtester.execution.handles import RunHandle, RunnerBusy, Slot


class Admission:
    """The admission count of a Runner (which sets ``max_runs``, ``_lock``,
    ``_active``, ``_run_keys`` and ``_pending``)."""

    def handle(self, run_id: int) -> RunHandle | None:
        """Return the handle of a run active in this process, if it is."""
        with self._lock:
            return self._active.get(run_id)

    @property
    def active_runs(self) -> int:
        with self._lock:
            return len(self._active)

    def per_key_limit(self) -> int:
        """Return how many runs one user may have active in this process.

        BACKTEST_MAX_RUNS_PER_USER, but never all the slots: at least one is
        always left for somebody else.
        """
        limit = max(1, settings.BACKTEST_MAX_RUNS_PER_USER)
        return min(limit, self.max_runs - 1) if self.max_runs > 1 else 1

    def reserve(self, key: str) -> Slot:
        """Hold a place for a run of ``key`` (a user) or raise RunnerBusy.

        Refused when the process has max_runs runs active or admitted, or when
        ``key`` already has per_key_limit() of them.
        """
        limit = self.per_key_limit()
        with self._lock:
            busy = len(self._active) + len(self._pending)
            if busy >= self.max_runs:
                raise RunnerBusy(
                    f"the server is busy with {busy} runs; try again in a moment"
                )
            mine = sum(1 for k in self._run_keys.values() if k == key) + sum(
                1 for slot in self._pending if slot.key == key
            )
            if mine >= limit:
                raise RunnerBusy(
                    f"you already have {mine} active run{'s' * (mine > 1)} "
                    f"(at most {limit} at a time); wait for one to finish or "
                    "cancel it"
                )
            slot = Slot(key=key, runner=self)
            self._pending.append(slot)
        return slot

    def _release(self, slot: Slot) -> None:
        with self._lock:
            if slot in self._pending:
                self._pending.remove(slot)

    def admit(self, handle: RunHandle, slot: Slot | None = None) -> None:
        """Count a run as active, in the place ``slot`` held; RunnerBusy if full.

        Runs computed elsewhere (on Celery workers) are counted here too, so the
        process's limit and each user's cap hold whichever executor runs them.
        """
        with self._lock:
            if slot is not None and slot in self._pending:
                self._pending.remove(slot)
            elif len(self._active) + len(self._pending) >= self.max_runs:
                raise RunnerBusy(
                    f"the server is busy with {len(self._active)} runs; "
                    "try again in a moment"
                )
            if slot is not None:
                self._run_keys[handle.run_id] = slot.key
            self._active[handle.run_id] = handle

    def retire(self, run_id: int) -> None:
        """Stop counting a run as active: it is over and announced."""
        with self._lock:
            self._active.pop(run_id, None)
            self._run_keys.pop(run_id, None)
