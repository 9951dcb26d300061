"""Move stored sub-hour bar rows into day blocks (and back when reversed)."""

from datetime import UTC, date, datetime

import numpy as np
from django.db import migrations

from prices.packing import DAY_SECONDS, day_bounds, decode_many, encode, places_of
from prices.types import PriceSeries

SUB_HOUR = {"1m": 60, "5m": 300, "15m": 900, "30m": 1800}
CHUNK_ROWS = 200_000
EPOCH_DAY = date(1970, 1, 1).toordinal()


def _blocks(block_model, coin_id, interval, series):
    starts, bounds = day_bounds(series.time)
    places = places_of(series)
    return [
        block_model(
            crypto_id=coin_id,
            interval=interval,
            day=date.fromordinal(EPOCH_DAY + int(day) // DAY_SECONDS),
            bars=int(hi - lo),
            data=encode(
                PriceSeries(*(column[lo:hi] for column in series)),
                SUB_HOUR[interval],
                None if None in places else places,
            ),
        )
        for day, lo, hi in zip(starts, bounds[:-1], bounds[1:], strict=True)
    ]


def _series(rows):
    table = np.array(
        [(row[0].timestamp(), *row[1:]) for row in rows], dtype=np.float64
    ).T
    return PriceSeries(table[0].astype(np.int64), *table[1:])


def rows_to_blocks(apps, schema_editor):
    bar_model = apps.get_model("prices", "PriceBar")
    block_model = apps.get_model("prices", "PriceBlock")
    sub_hour = bar_model.objects.filter(interval__in=list(SUB_HOUR))
    pairs = sub_hour.values_list("crypto_id", "interval").distinct().order_by()
    for coin_id, interval in list(pairs):
        rows = sub_hour.filter(crypto_id=coin_id, interval=interval).order_by("time")
        pending = []
        # Whole days are packed as they are read; a day split by a chunk's
        # end waits for the next chunk.
        for row in rows.values_list(
            "time", "open", "high", "low", "close", "volume"
        ).iterator(chunk_size=CHUNK_ROWS):
            pending.append(row)
            if len(pending) >= CHUNK_ROWS:
                series = _series(pending)
                cut = int(
                    np.searchsorted(
                        series.time, series.time[-1] // DAY_SECONDS * DAY_SECONDS
                    )
                )
                if cut:
                    block_model.objects.bulk_create(
                        _blocks(
                            block_model,
                            coin_id,
                            interval,
                            series.slice(None, int(series.time[cut])),
                        )
                    )
                    pending = pending[cut:]
        if pending:
            block_model.objects.bulk_create(
                _blocks(block_model, coin_id, interval, _series(pending))
            )
        rows.delete()


def blocks_to_rows(apps, schema_editor):
    bar_model = apps.get_model("prices", "PriceBar")
    block_model = apps.get_model("prices", "PriceBlock")
    pairs = (
        block_model.objects.values_list("crypto_id", "interval").distinct().order_by()
    )
    for coin_id, interval in list(pairs):
        blocks = block_model.objects.filter(crypto_id=coin_id, interval=interval)
        for day, data in (
            blocks.order_by("day").values_list("day", "data").iterator(chunk_size=100)
        ):
            epoch = (day.toordinal() - EPOCH_DAY) * DAY_SECONDS
            series = decode_many([epoch], [data], SUB_HOUR[interval])
            bar_model.objects.bulk_create(
                bar_model(
                    crypto_id=coin_id,
                    interval=interval,
                    time=datetime.fromtimestamp(int(t), UTC),
                    open=o,
                    high=h,
                    low=lo,
                    close=c,
                    volume=v,
                )
                for t, o, h, lo, c, v in zip(*(column.tolist() for column in series))
            )
        blocks.delete()


class Migration(migrations.Migration):
    dependencies = [
        ("prices", "0006_price_blocks"),
    ]

    operations = [
        migrations.RunPython(rows_to_blocks, blocks_to_rows, elidable=False),
    ]
