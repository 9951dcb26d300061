"""Stored walk-forwards: the writes when one starts and ends, and the reads of
the pages.

Kept apart from ``services.py``/``selectors.py`` (the sweeps' own) as one small
concern: a walk-forward is computed in one piece and stored whole. On the
thread pool it is stored once it is complete; on a Celery worker its record is
opened (queued) when it is sent and ended once, by the worker or a cancel,
whichever comes first (``walk_forward_end``). The pages show complete ones.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q, QuerySet

from backtester.sweeps.models import WalkForwardRun
from backtester.sweeps.validation import WalkForwardSpec

Status = WalkForwardRun.Status
UNFINISHED = [Status.QUEUED, Status.RUNNING]


def _settings(spec: WalkForwardSpec) -> dict:
    sweep = spec.sweep
    return {
        "symbols": list(sweep.symbols) if sweep.symbols else None,
        "start": sweep.start.isoformat() if sweep.start else None,
        "end": sweep.end.isoformat() if sweep.end else None,
        "interval": sweep.interval,
        "fee": sweep.fee,
        "slippage_bps": sweep.slippage_bps,
        "grid": sweep.grid,
        "params": sweep.base_params,
        "objective": sweep.objective,
        "train_bars": spec.train_bars,
        "test_bars": spec.test_bars,
        "folds": spec.folds,
    }


def walk_forward_store(
    *, spec: WalkForwardSpec, result: dict, elapsed_s: float, user=None
) -> WalkForwardRun:
    """Store a finished walk-forward with the settings it was asked with."""
    owner = user if getattr(user, "is_authenticated", False) else None
    with transaction.atomic():
        return WalkForwardRun.objects.create(
            created_by=owner,
            strategy=spec.sweep.strategy,
            settings=_settings(spec),
            result=result,
            elapsed_s=round(elapsed_s, 4),
        )


def walk_forward_open(*, spec: WalkForwardSpec, user=None) -> WalkForwardRun:
    """Record a queued walk-forward (one a Celery worker is to compute)."""
    owner = user if getattr(user, "is_authenticated", False) else None
    return WalkForwardRun.objects.create(
        created_by=owner,
        strategy=spec.sweep.strategy,
        settings=_settings(spec),
        status=Status.QUEUED,
    )


def walk_forward_end(
    walk_forward_id: int,
    *,
    status: str,
    result: dict | None = None,
    elapsed_s: float | None = None,
    error: str = "",
) -> bool:
    """End a queued or running walk-forward; return False when it had ended
    (a finished record keeps its end: the first to end it wins)."""
    fields = {"status": status, "error": error}
    if result is not None:
        fields["result"] = result
    if elapsed_s is not None:
        fields["elapsed_s"] = round(elapsed_s, 4)
    updated = WalkForwardRun.objects.filter(
        pk=walk_forward_id, status__in=UNFINISHED
    ).update(**fields)
    return updated == 1


def walk_forward_begin(walk_forward_id: int, task_id: str = "") -> bool:
    """Mark a walk-forward running (its task has started); return False when
    it has ended (cancelled before, or a task delivered again after its end)."""
    fields = {"status": Status.RUNNING}
    if task_id:
        fields["task_id"] = task_id
    updated = WalkForwardRun.objects.filter(
        pk=walk_forward_id, status__in=UNFINISHED
    ).update(**fields)
    return updated == 1


def walk_forward_task_set(walk_forward_id: int, task_id: str) -> None:
    """Record the Celery task sent to compute a walk-forward."""
    WalkForwardRun.objects.filter(pk=walk_forward_id, task_id="").update(
        task_id=task_id
    )


def walk_forward_status(walk_forward_id: int) -> str:
    """Return a walk-forward's status."""
    return WalkForwardRun.objects.values_list("status", flat=True).get(
        pk=walk_forward_id
    )


def _visible(user) -> Q:
    """A user's own walk-forwards and ownerless ones (as for sweeps)."""
    if getattr(user, "is_authenticated", False):
        return Q(created_by=user) | Q(created_by=None)
    return Q(created_by=None)


def walk_forwards_list(*, user) -> QuerySet[WalkForwardRun]:
    """Return the walk-forwards a user may see, newest first, without results."""
    return WalkForwardRun.objects.filter(_visible(user), status=Status.COMPLETE).defer(
        "result"
    )


def walk_forward_get(walk_forward_id: int, *, user) -> WalkForwardRun:
    """Return one walk-forward the user may see (DoesNotExist otherwise)."""
    visible = WalkForwardRun.objects.filter(_visible(user), status=Status.COMPLETE)
    return visible.get(pk=walk_forward_id)
