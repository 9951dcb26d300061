"""Admission: how many jobs this process and each user may have active.

One count for every kind of job (runs, sweeps, walk-forwards, and any kind an
app adds): a job is counted from admission (a ``Slot`` from ``reserve``),
before its database row exists, so a refused request never writes one; then
while it runs (``admit``), until ``retire``. Jobs computed elsewhere (on
Celery workers) are counted here too, so the process's limit and each user's
cap hold whichever executor runs them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from django.conf import settings

from backtester.execution.handles import RunHandle, RunnerBusy, Slot

# How a kind of job is named in a refusal: (one, many).
NOUNS = {
    "run": ("run", "runs"),
    "sweep": ("sweep", "sweeps"),
    "walk_forward": ("walk-forward", "walk-forwards"),
    "portfolio": ("portfolio run", "portfolio runs"),
    "portfolio_sweep": ("portfolio sweep", "portfolio sweeps"),
}


def _word(kind: str, count: int) -> str:
    """Return the name of ``count`` jobs of ``kind``: "run" or "runs"."""
    name = kind.replace("_", " ")
    one, many = NOUNS.get(kind, (name, name + "s"))
    return one if count == 1 else many


def _noun(kind: str, count: int) -> str:
    return f"{count} {_word(kind, count)}"


def describe(kinds: Iterable[str]) -> str:
    """Return "3 runs and 5 sweeps" for the kinds of some jobs."""
    counts = Counter(kinds)
    parts = [_noun(kind, n) for kind, n in sorted(counts.items(), key=_order)]
    if len(parts) < 2:
        return parts[0] if parts else "no jobs"
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _order(item: tuple[str, int]) -> tuple[int, str]:
    kind = item[0]
    return (list(NOUNS).index(kind) if kind in NOUNS else len(NOUNS), kind)


class Admission:
    """The admission count of a Runner (which sets ``max_runs``, ``_lock``,
    ``_active``, ``_jobs`` and ``_pending``).

    ``_jobs`` maps each admitted job, ``(kind, id)``, to its key (whose it is;
    "" for jobs started without a slot, such as the command line's), and
    ``_sizes`` to its backtests when its slot gave them;
    ``_active`` keeps the handles of runs, which their pages cancel through.
    """

    def handle(self, run_id: int) -> RunHandle | None:
        """Return the handle of a run active in this process, if it is."""
        with self._lock:
            return self._active.get(run_id)

    @property
    def active_runs(self) -> int:
        with self._lock:
            return len(self._active)

    def active_jobs(self, kind: str | None = None) -> int:
        """Return how many jobs (of ``kind``, or of any) are admitted or active."""
        with self._lock:
            kinds = [k for k, _ in self._jobs] + [s.kind for s in self._pending]
        return sum(1 for k in kinds if kind is None or k == kind)

    def per_key_limit(self) -> int:
        """Return how many jobs one user may have active in this process.

        BACKTEST_MAX_RUNS_PER_USER, but never all the slots: at least one is
        always left for somebody else.
        """
        limit = max(1, settings.BACKTEST_MAX_RUNS_PER_USER)
        return min(limit, self.max_runs - 1) if self.max_runs > 1 else 1

    def _busy(self) -> list[str]:
        """Return the kind of every job admitted or active (under the lock)."""
        return [k for k, _ in self._jobs] + [s.kind for s in self._pending]

    def reserve(
        self, key: str, kind: str = "run", *, size: int = 0, size_limit: int = 0
    ) -> Slot:
        """Hold a place for a job of ``kind`` for ``key`` (a user) or raise
        RunnerBusy saying what is busy.

        Refused when the process has max_runs jobs of any kind active or
        admitted, when ``key`` already has per_key_limit() of them, or when
        ``size_limit`` is set and the ``size`` (backtests) of key's jobs would
        pass it.
        """
        limit = self.per_key_limit()
        with self._lock:
            busy = self._busy()
            if len(busy) >= self.max_runs:
                raise RunnerBusy(
                    f"the server is busy with {describe(busy)}; try again in a moment"
                )
            mine = [k for (k, _), owner in self._jobs.items() if owner == key] + [
                slot.kind for slot in self._pending if slot.key == key
            ]
            if len(mine) >= limit:
                held = (
                    f"{len(mine)} active {_word(mine[0], len(mine))}"
                    if len(set(mine)) == 1
                    else f"{len(mine)} active jobs ({describe(mine)})"
                )
                raise RunnerBusy(
                    f"you already have {held} (at most {limit} at a time); wait "
                    "for one to finish or cancel it"
                )
            if size_limit > 0:
                held = sum(
                    self._sizes.get(job, 0)
                    for job, owner in self._jobs.items()
                    if owner == key
                ) + sum(s.size for s in self._pending if s.key == key)
                if held + size > size_limit:
                    raise RunnerBusy(
                        f"this {_word(kind, 1)} is {size:,} backtests and your "
                        f"active jobs {held:,}; at most {size_limit:,} at a time"
                    )
            slot = Slot(key=key, runner=self, kind=kind, size=size)
            self._pending.append(slot)
        return slot

    def _release(self, slot: Slot) -> None:
        with self._lock:
            if slot in self._pending:
                self._pending.remove(slot)

    def admit(
        self,
        handle: Any,
        slot: Slot | None = None,
        *,
        kind: str = "run",
        job_id: object = None,
    ) -> None:
        """Count a job as active, in the place ``slot`` held; RunnerBusy if full.

        ``job_id`` defaults to the handle's ``run_id``; a run's handle is kept
        for ``handle()``. Retire it with ``retire(job_id, kind)``.
        """
        job_id = handle.run_id if job_id is None else job_id
        with self._lock:
            if slot is not None and slot in self._pending:
                self._pending.remove(slot)
            else:
                busy = self._busy()
                if len(busy) >= self.max_runs:
                    raise RunnerBusy(
                        f"the server is busy with {describe(busy)}; "
                        "try again in a moment"
                    )
            self._jobs[(kind, job_id)] = slot.key if slot is not None else ""
            if slot is not None and slot.size:
                self._sizes[(kind, job_id)] = slot.size
            if kind == "run":
                self._active[job_id] = handle

    def retire(self, job_id: object, kind: str = "run") -> None:
        """Stop counting a job as active: it is over and announced."""
        with self._lock:
            self._jobs.pop((kind, job_id), None)
            self._sizes.pop((kind, job_id), None)
            if kind == "run":
                self._active.pop(job_id, None)
