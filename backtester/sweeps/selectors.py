"""Reads for sweeps: the plan executors work from, lists, cells, exports."""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import Q, QuerySet

from backtester.runs.validation import iso
from backtester.sweeps.cells import cell_public, coin_metrics
from backtester.sweeps.models import Sweep, SweepCell, SweepCoinResult
from backtester.sweeps.plan import SweepPlan, plan_of


def sweep_plan(sweep_id: int) -> SweepPlan:
    """Return what computing a sweep needs (DoesNotExist if missing)."""
    sweep = Sweep.objects.get(pk=sweep_id)
    return plan_of(sweep)


def sweep_all_done(sweep_id: int) -> bool:
    """Return whether every cell of the sweep is computed (time to finish it)."""
    return not SweepCell.objects.filter(sweep_id=sweep_id, done=False).exists()


def _visible(user) -> Q:
    """Sweeps a user may see: their own, and those nobody owns (the CLI's).

    An anonymous visitor (the login-free demo) sees only ownerless ones, so a
    logged-in user's sweeps are never shown to anyone else.
    """
    if getattr(user, "is_authenticated", False):
        return Q(created_by=user) | Q(created_by=None)
    return Q(created_by=None)


def sweeps_list(*, user) -> QuerySet[Sweep]:
    """Return the sweeps a user may see, newest first (stale ones failed)."""
    return (
        Sweep.objects.filter(_visible(user))
        .defer("combinations")
        .order_by("-created_at", "-id")
    )


def sweep_get(sweep_id: int, *, user) -> Sweep:
    """Return one sweep the user may see (Sweep.DoesNotExist otherwise)."""
    return Sweep.objects.filter(_visible(user)).get(pk=sweep_id)


def sweep_attach_state(sweep_id: int, *, user) -> tuple[Sweep, list[dict]]:
    """Return a sweep the user may see and its finished cells as the
    executors publish them (``{index, params, metrics}``), in index order."""
    sweep = sweep_get(sweep_id, user=user)
    return sweep, [cell.item() for cell in sweep_cells(sweep)]


def sweep_cells(sweep: Sweep, *, done_only: bool = True) -> QuerySet[SweepCell]:
    """Return a sweep's cells in combination order."""
    cells = SweepCell.objects.filter(sweep=sweep)
    return cells.filter(done=True) if done_only else cells


def cell_get(sweep: Sweep, index: int) -> SweepCell:
    """Return one cell of a sweep (SweepCell.DoesNotExist if missing)."""
    return SweepCell.objects.get(sweep=sweep, index=index)


def cell_coins(sweep: Sweep, index: int) -> list[dict]:
    """Return one combination's per-coin results, best return first.

    Each item: ``{"symbol", "bars", "metrics"}``; metrics is None for a coin
    without bars in the range.
    """
    first = plan_of(sweep).block_of(index).start
    out = []
    for row in SweepCoinResult.objects.filter(sweep=sweep, first=first):
        if not row.bars:
            out.append({"symbol": row.symbol, "bars": 0, "metrics": None})
            continue
        positions = row.metrics["index"].tolist()
        if index not in positions:
            continue
        out.append(
            {
                "symbol": row.symbol,
                "bars": row.bars,
                "metrics": coin_metrics(row.metrics, positions.index(index)),
            }
        )

    def key(item: dict) -> tuple:
        value = (item["metrics"] or {}).get("total_return_pct")
        return (value is None, -(value or 0.0), item["symbol"])

    return sorted(out, key=key)


def sweep_data(sweep: Sweep) -> dict:
    """Return a sweep's header in the public shape (the CLI's ``sweep`` object)."""
    return {
        "id": sweep.pk,
        "status": sweep.status,
        "strategy": sweep.strategy,
        "grid": sweep.grid,
        "axes": sweep.ordered_axes,
        "params": sweep.base_params,
        "symbols": sweep.symbols,
        "interval": sweep.interval,
        "start": iso(sweep.start),
        "end": iso(sweep.end),
        "fee": sweep.fee,
        "slippage_bps": sweep.slippage_bps,
        "objective": sweep.objective,
        "combinations": len(sweep.combinations),
        "skipped": sweep.skipped,
        "completed": sweep.completed,
        "backtests": sweep.total,
        "created_at": iso(sweep.created_at),
        "elapsed_s": sweep.elapsed_s,
        "error": sweep.error or None,
    }


def sweep_export(sweep: Sweep) -> dict:
    """Return ``{"sweep", "cells", "best"}``: the CLI's JSON and the export."""
    return {
        "sweep": sweep_data(sweep),
        "cells": [cell_public(c) for c in sweep_cells(sweep)],
        "best": sweep.best,
    }


def sweep_pending_cells(sweep_id: int) -> int:
    """Return how many cells of the sweep are not aggregated yet."""
    return SweepCell.objects.filter(sweep_id=sweep_id, done=False).count()


def sweep_cell_items(sweep_id: int, blocks: Sequence[range]) -> list[dict]:
    """Return the stored cells of these blocks as published items, by index."""
    indices = [i for block in blocks for i in block]
    cells = SweepCell.objects.filter(sweep_id=sweep_id, index__in=indices)
    return [cell.item() for cell in cells.order_by("index")]
