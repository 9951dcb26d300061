"""Identical reruns answered from stored results.

A run's results depend only on its jobs (strategy keys, saved strategies'
versions and parameters), its
coins and the version of each coin's bars, the range, the interval, the costs
and the risk settings; the engine is deterministic. So a request whose
fingerprint of all of those equals a complete run's is answered by copying
that run's results (one INSERT ... SELECT) into a new run of the requester's,
which records ``cached_from``. Importing new bars bumps a coin's data version,
and with it the fingerprint: a cached answer never outlives its data.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from django.db import connection, transaction
from django.db.models import TextField
from django.db.models.functions import Cast
from django.utils import timezone

from backtester.runs.compute import NO_DATA
from backtester.runs.models import BacktestResult, BacktestRun
from backtester.runs.validation import RunSpec
from prices.models import Cryptocurrency


def run_fingerprint(spec: RunSpec, coins: Sequence[Cryptocurrency]) -> str:
    """Return the SHA-256 of everything a run's results depend on."""
    identity = {
        "jobs": [[key, params] for key, params in spec.jobs],
        "coins": [[c.symbol, c.data_version] for c in coins],
        "start": spec.start.isoformat() if spec.start else None,
        "end": spec.end.isoformat() if spec.end else None,
        "interval": spec.interval,
        "fee": spec.fee,
        "slippage_bps": spec.slippage_bps,
        "risk": spec.risk.as_dict(),
        # Saved strategies by version, rule texts run unsaved by their hash:
        # a new version of a strategy is a new question.
        "versions": spec.versions,
        "sources": {
            key: hashlib.sha256(text.encode()).hexdigest()
            for key, text in spec.sources.items()
        },
    }
    # default=str: a job given as a compiled strategy (not a key) is named by
    # its text form, which includes its source's identity.
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def run_cached_source(fingerprint: str) -> BacktestRun | None:
    """Return the newest complete run with this fingerprint that was computed
    (not itself copied), so every copy names the run that computed it."""
    return (
        BacktestRun.objects.filter(
            fingerprint=fingerprint,
            status=BacktestRun.Status.COMPLETE,
            cached_from__isnull=True,
        )
        .order_by("-id")
        .first()
    )


def _copy_results(source_id: int, run_id: int) -> int:
    """Copy a run's stored results to another run in one statement; return how
    many were copied."""
    table = connection.ops.quote_name(BacktestResult._meta.db_table)
    columns = ", ".join(
        connection.ops.quote_name(field.column)
        for field in BacktestResult._meta.concrete_fields
        if field.column not in ("id", "run_id")
    )
    run_column = connection.ops.quote_name("run_id")
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({run_column}, {columns}) "
            f"SELECT %s, {columns} FROM {table} WHERE {run_column} = %s",
            [run_id, source_id],
        )
        return cursor.rowcount


def run_from_cache(run: BacktestRun) -> BacktestRun | None:
    """Complete an unsaved ``run`` (built by run_create with save off) from the
    stored results of an identical complete run; return it saved, or None
    (nothing written) when no identical run is stored."""
    source = run_cached_source(run.fingerprint)
    if source is None:
        return None
    now = timezone.now()
    with transaction.atomic():
        run.status = BacktestRun.Status.COMPLETE
        run.cached_from = source
        run.summary = {**source.summary, "elapsed_s": 0.0, "cached_from": source.pk}
        run.elapsed_s = 0.0
        run.started_at = run.finished_at = now
        run.save()
        run.completed = _copy_results(source.pk, run.pk)
        BacktestRun.objects.filter(pk=run.pk).update(completed=run.completed)
    return run


def results_encoded(run_id: int, *, risk: dict) -> list[tuple[int, str]]:
    """Return a run's stored results as (seq, JSON text of the public data) in
    seq order, with ``risk`` (the run's, as Risk.as_dict() gives it).

    One query of plain values: the stored JSON of params and metrics is taken
    as text and spliced in, never decoded and encoded again. The text is the
    JSON of what ``result_data`` returns (a cached answer sends hundreds of
    results at once, and decoding then re-encoding them was most of its time).
    """
    rows = (
        BacktestResult.objects.filter(run_id=run_id)
        .order_by("seq")
        .values_list(
            "seq",
            "symbol",
            "strategy",
            "first_bar",
            "last_bar",
            "bars",
            Cast("params", TextField()),
            Cast("metrics", TextField()),
        )  # fmt: skip
    )
    risk_text = json.dumps(risk)
    encoded = []
    for seq, symbol, strategy, first_bar, last_bar, bars, params, metrics in rows:
        # An empty metrics object is a row without metrics (result_data: None).
        metrics = "null" if metrics is None or metrics.strip() == "{}" else metrics
        skipped = "" if bars else f', "skipped": {json.dumps(NO_DATA)}'
        encoded.append(
            (
                seq,
                f'{{"symbol": {json.dumps(symbol)}, "strategy": {json.dumps(strategy)},'
                f' "params": {params}, "risk": {risk_text},'
                f' "first_bar": {_iso_json(first_bar)},'
                f' "last_bar": {_iso_json(last_bar)}, "bars": {int(bars)},'
                f' "metrics": {metrics}{skipped}}}',
            )
        )
    return encoded


def _iso_json(value) -> str:
    return "null" if value is None else value.strftime('"%Y-%m-%dT%H:%M:%SZ"')
