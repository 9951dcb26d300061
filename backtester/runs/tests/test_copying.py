"""Result rows stored by binary COPY on PostgreSQL read back as the ORM stores them."""

from __future__ import annotations

import numpy as np
import pytest
from django.db import connection, transaction

from backtester.execution.handles import ResultRow
from backtester.runs.compute import compute_coin, empty_row
from backtester.runs.copying import copy_payload
from backtester.runs.models import BacktestResult
from backtester.runs.services import result_instance, results_save, run_create
from backtester.runs.tests.factories import make_coins
from backtester.runs.validation import run_spec
from prices.selectors import bars_load, coins_by_symbols

pytestmark = pytest.mark.django_db(transaction=True)

FIELDS = [f.name for f in BacktestResult._meta.fields if f.name not in ("id", "run")]


class Handle:
    def __init__(self, run_id: int) -> None:
        self.run_id = run_id


def rows_of_a_run() -> tuple[list, list[ResultRow], object]:
    make_coins(["AAA", "BBB"], bars=400)
    coins = coins_by_symbols(["AAA", "BBB"])
    spec = run_spec({"strategies": "all", "stop_loss_pct": 3})
    series = bars_load(["AAA", "BBB"])
    rows = [r for c in coins for r in compute_coin(c.symbol, series[c.symbol], spec)]
    rows.append(empty_row("CCC", "sma_crossover", {"fast": 5, "slow": 20}))
    for seq, row in enumerate(rows, 1):
        row.seq = seq
    return coins, rows, spec


def stored(run_id: int) -> list[dict]:
    out = []
    for result in BacktestResult.objects.filter(run_id=run_id).order_by("seq"):
        values = {name: getattr(result, name) for name in FIELDS}
        for name in ("trades", "equity"):
            values[name] = {k: np.asarray(v).tolist() for k, v in values[name].items()}
        out.append(values)
    return out


@pytest.mark.postgres
def test_copied_rows_read_back_as_inserted_rows():
    coins, rows, spec = rows_of_a_run()
    copied = run_create(spec=spec, coins=coins)
    inserted = run_create(spec=spec, coins=coins)
    assert connection.vendor == "postgresql"
    results_save(Handle(copied.pk), rows)  # binary COPY
    BacktestResult.objects.bulk_create([result_instance(inserted.pk, r) for r in rows])
    got, expected = stored(copied.pk), stored(inserted.pk)
    assert len(got) == len(rows) and got == expected
    # And what was computed: a few values checked against the rows themselves.
    first = got[0]
    assert first["metrics"] == rows[0].data["metrics"]
    assert first["first_bar"].isoformat().startswith(rows[0].data["first_bar"][:19])
    assert got[-1]["metrics"] == {} and got[-1]["bars"] == 0


@pytest.mark.postgres
def test_a_copy_that_breaks_a_constraint_stores_nothing():
    coins, rows, spec = rows_of_a_run()
    run = run_create(spec=spec, coins=coins)
    rows[1].seq = rows[0].seq  # two results numbered alike
    with pytest.raises(Exception, match="result_run_seq_uniq"), transaction.atomic():
        results_save(Handle(run.pk), rows)
    assert BacktestResult.objects.filter(run_id=run.pk).count() == 0


def test_the_payload_frames_each_row_as_postgresql_reads_it():
    # Hand-built: one row of NULLs but for an int4 and a text field.
    values = {name: None for name in FIELDS + ["run_id"]}
    values.update(run_id=7, symbol="AB", seq=3)
    data = copy_payload([values])
    assert data.startswith(b"PGCOPY\n\xff\r\n\x00" + bytes(8))
    assert data.endswith(b"\xff\xff")
    body = data[19:-2]
    assert body[:2] == (18).to_bytes(2, "big")  # field count
    assert body[2:14] == (8).to_bytes(4, "big") + (7).to_bytes(8, "big")  # run_id
    assert body[14:20] == (2).to_bytes(4, "big") + b"AB"  # symbol
    assert body[20:24] == b"\xff\xff\xff\xff"  # strategy: NULL
