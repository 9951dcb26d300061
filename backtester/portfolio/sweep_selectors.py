"""Reads for stored portfolio sweeps: who may see which, cells, the export."""

from __future__ import annotations

from django.db.models import QuerySet

from backtester.portfolio.models import PortfolioSweep, PortfolioSweepCell
from backtester.runs.selectors import runs_visible
from backtester.runs.validation import iso


def psweeps_list(*, user) -> QuerySet[PortfolioSweep]:
    """Return the portfolio sweeps ``user`` may see (as for runs), newest first."""
    return (
        PortfolioSweep.objects.filter(runs_visible(user))
        .defer("combinations", "data_versions")
        .order_by("-created_at", "-id")
    )


def psweep_get(sweep_id: int, *, user) -> PortfolioSweep:
    """Return one sweep the user may see (PortfolioSweep.DoesNotExist otherwise)."""
    return PortfolioSweep.objects.filter(runs_visible(user)).get(pk=sweep_id)


def psweep_items(sweep_id: int) -> list[dict]:
    """Return the sweep's finished cells as published: ``{index, params, metrics}``."""
    cells = PortfolioSweepCell.objects.filter(sweep_id=sweep_id).order_by("index")
    return [cell.item() for cell in cells]


def psweep_attach_state(sweep_id: int, *, user) -> tuple[PortfolioSweep, list[dict]]:
    """Return a sweep the user may see and its finished cells, for ``attach``."""
    sweep = psweep_get(sweep_id, user=user)
    return sweep, psweep_items(sweep.pk)


def psweep_export(sweep: PortfolioSweep) -> dict:
    """Return the sweep in the command line's ``{"sweep", "cells", "best"}`` shape."""
    items = psweep_items(sweep.pk)
    cells = [{"params": item["params"], **item["metrics"]} for item in items]
    best = sweep.best
    return {
        "sweep": {
            "id": sweep.pk,
            "portfolio": True,
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
            "rank": sweep.rank,
            "objective": sweep.objective,
            "combinations": len(sweep.combinations),
            "skipped": sweep.skipped,
            "completed": len(cells),
            "elapsed_s": sweep.elapsed_s,
            "created_at": iso(sweep.created_at),
        },
        "cells": cells,
        "best": None if best is None else {"params": best["params"], **best["metrics"]},
    }
