"""Reads for runs and results."""

from __future__ import annotations

import json
from collections.abc import Collection

from django.db.models import F, Q, QuerySet, TextField
from django.db.models.functions import Cast

from backtester.runs.compute import NO_DATA
from backtester.runs.models import BacktestResult, BacktestRun
from strategies.risk import Risk, validate_risk


def runs_visible(user) -> Q:
    """Return the filter of the runs ``user`` may see.

    A run belongs to the user who started it. Staff see every run; any other
    logged-in user sees only their own; an anonymous visitor (possible only when
    BACKTESTS_REQUIRE_LOGIN is off, the demo) sees only runs without an owner:
    anonymous runs and those started from the command line. So a logged-in
    user's runs are never shown to anyone but them and staff.
    """
    if getattr(user, "is_staff", False) and user.is_active:
        return Q()
    if getattr(user, "is_authenticated", False):
        return Q(created_by=user)
    return Q(created_by=None)


def runs_list(*, user, strategy: str = "", status: str = "") -> QuerySet[BacktestRun]:
    """Return the runs ``user`` may see, newest first, optionally only those
    running ``strategy`` (a key) or in ``status``."""
    runs = BacktestRun.objects.filter(runs_visible(user))
    if strategy:
        # The stored list of {"strategy": key, "params": {...}} as text: both
        # SQLite and PostgreSQL write a key as "strategy": "<key>".
        runs = runs.annotate(strategies_text=Cast("strategies", TextField())).filter(
            strategies_text__contains=json.dumps({"strategy": strategy})[1:-1]
        )
    if status:
        runs = runs.filter(status=status)
    return runs.select_related("created_by").order_by("-created_at", "-id")


def runs_by_ids(ids: list[int], *, user) -> list[BacktestRun]:
    """Return the runs of ``ids`` that ``user`` may see, in the order given."""
    found = BacktestRun.objects.filter(runs_visible(user)).in_bulk(ids)
    return [found[i] for i in ids if i in found]


def run_deletable(run: BacktestRun, *, user) -> bool:
    """Return whether ``user`` may delete ``run``: their own finished run (an
    anonymous demo visitor: a finished run without an owner)."""
    if not run.is_finished:
        return False
    if getattr(user, "is_authenticated", False):
        return run.created_by_id == user.pk
    return run.created_by_id is None


def run_get(run_id: int, *, user) -> BacktestRun:
    """Return one run ``user`` may see (DoesNotExist if missing or not theirs)."""
    return BacktestRun.objects.filter(runs_visible(user)).get(pk=run_id)


def run_results(run: BacktestRun, *, full: bool = False) -> QuerySet[BacktestResult]:
    """Return a run's results, best return first; ``full`` includes trades/equity."""
    qs = BacktestResult.objects.filter(run=run).order_by(
        F("total_return_pct").desc(nulls_last=True), "symbol", "strategy"
    )
    return qs if full else qs.defer("trades", "equity")


def result_get(
    run: BacktestRun, *, symbol: str, strategy: str, key: str | None = None
) -> BacktestResult | None:
    """Return one stored result of a run with its trades and equity, or None.

    ``key`` is the result's ``params_key``; without it the first parameter set
    of that coin and strategy is taken (a link from before a strategy could run
    twice in one run).
    """
    results = BacktestResult.objects.filter(run=run, symbol=symbol, strategy=strategy)
    if key:
        results = results.filter(params_key=key)
    return results.order_by("seq", "pk").first()


def results_by_seq(run_id: int, *, exclude: Collection[int] = ()) -> list[dict]:
    """Return a run's stored results as ``{"seq", "data"}`` items in seq order,
    leaving out the seqs in ``exclude`` (those a client already has)."""
    stored = BacktestResult.objects.filter(run_id=run_id)
    have = set(exclude)
    missing = [s for s in stored.values_list("seq", flat=True) if s not in have]
    if not missing:
        return []
    results = stored.filter(seq__in=missing).defer("trades", "equity").order_by("seq")
    risk = run_risk_of(run_id)
    return [{"seq": r.seq, "data": result_data(r, risk=risk)} for r in results]


def run_risk(run: BacktestRun) -> Risk:
    """Return the risk settings a run used (the defaults for runs stored before)."""
    return validate_risk(run.risk or None)


def run_risk_of(run_id: int) -> Risk:
    """Return the risk settings of run ``run_id``, read once for all its results
    (``result_data`` would otherwise read the run for each one)."""
    return run_risk(BacktestRun.objects.only("risk").get(pk=run_id))


def result_data(result: BacktestResult, *, risk: Risk | None = None) -> dict:
    """Return a stored result in the public shape (as sent over the websocket).

    ``risk`` saves reading the run for each result when the caller has it.
    """
    data = {
        "symbol": result.symbol,
        "strategy": result.strategy,
        "params": result.params,
        "risk": (risk or run_risk(result.run)).as_dict(),
        "first_bar": _iso(result.first_bar),
        "last_bar": _iso(result.last_bar),
        "bars": result.bars,
        "metrics": result.metrics or None,
    }
    if not result.bars:
        data["skipped"] = NO_DATA
    return data


def run_data(run: BacktestRun) -> dict:
    """Return a run's header in the public shape (the CLI's JSON ``run`` object)."""
    return {
        "id": run.pk,
        "status": run.status,
        "strategies": run.strategies,
        "symbols": run.symbols,
        "interval": run.interval,
        "start": _iso(run.start),
        "end": _iso(run.end),
        "fee": run.fee,
        "slippage_bps": run.slippage_bps,
        "risk": run_risk(run).as_dict(),
        "created_at": _iso(run.created_at),
        "elapsed_s": run.elapsed_s,
        "cached_from": run.cached_from_id,
    }


def _iso(value) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")
