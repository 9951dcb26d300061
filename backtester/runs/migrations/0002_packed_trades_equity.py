"""Store trades and equity curves as packed binary columns instead of JSON.

Existing results are converted, not dropped: JSON trades ``{"count", column:
[...]}`` keep their columns; JSON equity rows ``[[epoch, equity, buy & hold],
...]`` become the columns "time", "strategy" and "buy_hold".
"""

import numpy as np
from django.db import migrations

import backtester.runs.fields

TRADE_DTYPES = {
    "entry_time": np.int64,
    "exit_time": np.int64,
    "entry_price": np.float64,
    "exit_price": np.float64,
    "return_pct": np.float64,
    "bars_held": np.int64,
    "fees": np.float64,
    "closed_at_end": np.bool_,
}


def _trades(data: dict) -> dict:
    return {
        name: np.asarray(data.get(name) or [], dtype=dtype)
        for name, dtype in TRADE_DTYPES.items()
    }


def _equity(rows: list) -> dict:
    curve = np.asarray(rows or [], dtype=np.float64).reshape(-1, 3)
    return {
        "time": curve[:, 0].astype(np.int64),
        "strategy": curve[:, 1].copy(),
        "buy_hold": curve[:, 2].copy(),
    }


def _rewrite(apps, read: list[str], write: list[str], convert) -> None:
    """Apply ``convert`` to every result, saving ``write`` in batches of 500."""
    Result = apps.get_model("backtester", "BacktestResult")
    batch = []
    for result in Result.objects.only(*read).iterator(chunk_size=500):
        convert(result)
        batch.append(result)
        if len(batch) == 500:
            Result.objects.bulk_update(batch, write)
            batch = []
    if batch:
        Result.objects.bulk_update(batch, write)


def _to_columns(result) -> None:
    result.trades = _trades(result.trades_json)
    result.equity = _equity(result.equity_json)


def _to_json(result) -> None:
    trades = {k: np.asarray(v).tolist() for k, v in result.trades.items()}
    result.trades_json = {"count": result.num_trades, **trades}
    equity = result.equity
    result.equity_json = (
        np.column_stack(
            [equity["time"], equity["strategy"], equity["buy_hold"]]
        ).tolist()
        if equity
        else []
    )


def forwards(apps, schema_editor):
    _rewrite(apps, ["trades_json", "equity_json"], ["trades", "equity"], _to_columns)


def backwards(apps, schema_editor):
    _rewrite(
        apps,
        ["trades", "equity", "num_trades"],
        ["trades_json", "equity_json"],
        _to_json,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("backtester", "0001_initial"),
    ]

    operations = [
        migrations.RenameField("backtestresult", "trades", "trades_json"),
        migrations.RenameField("backtestresult", "equity", "equity_json"),
        migrations.AddField(
            model_name="backtestresult",
            name="trades",
            field=backtester.runs.fields.ColumnsField(default=dict, editable=False),
        ),
        migrations.AddField(
            model_name="backtestresult",
            name="equity",
            field=backtester.runs.fields.ColumnsField(default=dict, editable=False),
        ),
        migrations.RunPython(forwards, backwards),
        migrations.RemoveField("backtestresult", "trades_json"),
        migrations.RemoveField("backtestresult", "equity_json"),
    ]
