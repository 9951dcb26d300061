"""Stored results sent as pre-encoded JSON: the same events as the decoded path."""

from __future__ import annotations

import json

import pytest

from backtester.runs import events
from backtester.runs.cache import results_encoded
from backtester.runs.compute import compute_coin, empty_row
from backtester.runs.models import BacktestRun
from backtester.runs.selectors import result_data, run_results
from backtester.runs.services import result_instance, run_coins
from backtester.runs.tests.factories import make_coins, random_walk
from backtester.runs.validation import run_spec

pytestmark = pytest.mark.django_db


def test_encoded_results_are_the_public_data_of_each_stored_result():
    make_coins(["AAA"], bars=300)
    spec = run_spec(
        {"type": "run", "strategies": "all", "symbols": ["AAA"], "stop_loss_pct": 3}
    )
    run_coins(spec)  # the spec is valid for the coins stored
    computed = compute_coin("AAA", random_walk(300, seed=1), spec)
    # A coin without bars in range: no metrics, a "skipped" reason.
    computed.append(empty_row("ZZZ", "sma_crossover", {"fast": 5}, spec.risk))
    run = BacktestRun.objects.create(
        strategies=[], status="complete", risk=spec.risk.as_dict()
    )
    for seq, row in enumerate(computed, 1):
        row.seq = seq
        result_instance(run.pk, row).save()

    encoded = results_encoded(run.pk, risk=spec.risk.as_dict())

    assert [seq for seq, _ in encoded] == list(range(1, len(computed) + 1))
    # The reference: the rows as computed in memory, through JSON as sent live.
    sent_live = [json.loads(json.dumps(row.data)) for row in computed]
    assert [json.loads(text) for _, text in encoded] == sent_live
    stored = {r.seq: result_data(r) for r in run_results(run)}
    assert [json.loads(text) for _, text in encoded] == [
        stored[seq] for seq in sorted(stored)
    ]
    assert json.loads(encoded[-1][1])["metrics"] is None
    assert json.loads(encoded[-1][1])["skipped"] == "no data in range"


def test_result_text_is_the_result_event():
    data = {"symbol": 'A"B', "metrics": {"sharpe": 0.1}, "first_bar": None}
    text = events.result_text(json.dumps(data), 3, 7, seq=5, run_id=11)
    assert json.loads(text) == events.result(data, 3, 7, seq=5, run_id=11)
