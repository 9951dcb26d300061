"""Stored walk-forwards: the write when one finishes and the reads of the pages.

Kept apart from ``services.py``/``selectors.py`` (the sweeps' own) as one small
concern: a walk-forward is computed in one piece and stored whole.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q, QuerySet

from backtester.sweeps.models import WalkForwardRun
from backtester.sweeps.validation import WalkForwardSpec


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


def _visible(user) -> Q:
    """A user's own walk-forwards and ownerless ones (as for sweeps)."""
    if getattr(user, "is_authenticated", False):
        return Q(created_by=user) | Q(created_by=None)
    return Q(created_by=None)


def walk_forwards_list(*, user) -> QuerySet[WalkForwardRun]:
    """Return the walk-forwards a user may see, newest first, without results."""
    return WalkForwardRun.objects.filter(_visible(user)).defer("result")


def walk_forward_get(walk_forward_id: int, *, user) -> WalkForwardRun:
    """Return one walk-forward the user may see (DoesNotExist otherwise)."""
    return WalkForwardRun.objects.filter(_visible(user)).get(pk=walk_forward_id)
