"""Sub-hour bars in the database: one packed row per coin, interval and UTC day.

Reads select the days a range touches, by the unique (crypto, interval, day)
index, and unpack them with NumPy; writes merge incoming bars into the days
already stored. The caller owns the transaction and the import rules
(``prices.services``); this module only moves bars in and out of blocks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import numpy as np
from django.db.models import (
    DateTimeField,
    Expression,
    ExpressionWrapper,
    OuterRef,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import Cast

from prices.models import PriceBlock
from prices.packing import (
    DAY_SECONDS,
    day_bounds,
    decode_many,
    encode,
    merge,
    places_of,
)
from prices.timeframes import INTERVAL_SECONDS
from prices.types import PriceSeries

# Blocks written per INSERT: a day of 1-minute bars packs to ~5-15 kB.
WRITE_BATCH = 500
_EPOCH_DAY = date(1970, 1, 1).toordinal()


def _day(epoch: int) -> date:
    return date.fromordinal(_EPOCH_DAY + epoch // DAY_SECONDS)


def _epoch(day: date) -> int:
    return (day.toordinal() - _EPOCH_DAY) * DAY_SECONDS


def blocks_queryset(
    coin_ids: Sequence[int],
    *,
    interval: str,
    start: datetime | None = None,
    end: datetime | None = None,
) -> QuerySet:
    """Return (coin, day, data) of the days overlapping [start, end), in order."""
    qs = PriceBlock.objects.filter(crypto_id__in=list(coin_ids), interval=interval)
    if start is not None:
        qs = qs.filter(day__gte=_day(int(start.timestamp())))
    if end is not None:
        # The day holding the last second before end.
        qs = qs.filter(day__lte=_day(math.ceil(end.timestamp()) - 1))
    return qs.order_by("crypto_id", "day").values_list("crypto_id", "day", "data")


def blocks_fetch(
    coin_ids: Sequence[int],
    *,
    interval: str,
    start: datetime | None = None,
    end: datetime | None = None,
) -> dict[int, PriceSeries]:
    """Return each coin's bars of a sub-hour ``interval`` in [start, end)."""
    step = INTERVAL_SECONDS[interval]
    # Bars are whole seconds: t >= start and t < end hold for t >= ceil(start)
    # and t < ceil(end).
    lo = None if start is None else math.ceil(start.timestamp())
    hi = None if end is None else math.ceil(end.timestamp())
    out = {coin_id: PriceSeries.empty() for coin_id in coin_ids}
    days: list[int] = []
    payloads: list[bytes] = []

    def unpack(coin_id: int) -> None:
        series = decode_many(days, payloads, step)
        out[coin_id] = series if lo is None and hi is None else series.slice(lo, hi)
        days.clear()
        payloads.clear()

    # Rows come coin by coin: each coin is unpacked as soon as its days are
    # in, so only one coin's packed bytes are held at a time.
    current = None
    for coin_id, day, data in blocks_queryset(
        coin_ids, interval=interval, start=start, end=end
    ).iterator(chunk_size=2000):
        if coin_id != current and current is not None:
            unpack(current)
        current = coin_id
        days.append(_epoch(day))
        payloads.append(data)
    if current is not None:
        unpack(current)
    return out


def blocks_build(coin_id: int, interval: str, series: PriceSeries) -> list[PriceBlock]:
    """Return unsaved blocks holding time-ordered bars, one per UTC day."""
    step = INTERVAL_SECONDS[interval]
    starts, bounds = day_bounds(series.time)
    # Decimal places found once for all the days, not day by day; bars that
    # are not decimals as a whole leave each day to find its own.
    places = places_of(series)
    return [
        PriceBlock(
            crypto_id=coin_id,
            interval=interval,
            day=_day(int(day)),
            bars=int(hi - lo),
            data=encode(
                PriceSeries(*(column[lo:hi] for column in series)),
                step,
                None if None in places else places,
            ),
        )
        for day, lo, hi in zip(starts, bounds[:-1], bounds[1:], strict=True)
    ]


def blocks_write(coin_id: int, interval: str, series: PriceSeries) -> int:
    """Merge time-ordered bars into the coin's day blocks; return blocks written.

    Bars at times already stored replace them (the caller decided they may);
    every other stored bar of those days is kept.
    """
    if not len(series.time):
        return 0
    first = int(series.time[0]) // DAY_SECONDS * DAY_SECONDS
    last = int(series.time[-1]) // DAY_SECONDS * DAY_SECONDS
    stored = blocks_fetch(
        [coin_id],
        interval=interval,
        start=datetime.fromtimestamp(first, UTC),
        end=datetime.fromtimestamp(last + DAY_SECONDS, UTC),
    )[coin_id]
    merged = merge(stored, series)
    # Only the days the incoming bars fall on are rewritten; a day between
    # them that gets nothing new keeps its block as it is.
    touched = np.isin(merged.time // DAY_SECONDS, np.unique(series.time // DAY_SECONDS))
    blocks = blocks_build(
        coin_id, interval, PriceSeries(*(column[touched] for column in merged))
    )
    PriceBlock.objects.bulk_create(
        blocks,
        batch_size=WRITE_BATCH,
        update_conflicts=True,
        unique_fields=["crypto", "interval", "day"],
        update_fields=["bars", "data"],
    )
    return len(blocks)


def day_bounds_of_coin() -> tuple[Expression, Expression]:
    """Return expressions for the outer coin's first and last sub-hour bar, to
    the day: its first block's 00:00 and its last block's 23:59.

    For coins without hourly bars (their bounds come from those); the exact
    minute would mean unpacking a block, and a range check needs the day.
    """
    days = PriceBlock.objects.filter(crypto=OuterRef("pk"))
    stamp = DateTimeField()
    first = Cast(Subquery(days.order_by("day").values("day")[:1]), stamp)
    last = ExpressionWrapper(
        Cast(Subquery(days.order_by("-day").values("day")[:1]), stamp)
        + timedelta(seconds=DAY_SECONDS - 60),
        output_field=stamp,
    )
    return first, last


def blocks_count(coin_id: int, interval: str) -> int:
    """Return how many bars of ``interval`` the coin's blocks hold."""
    total = PriceBlock.objects.filter(crypto_id=coin_id, interval=interval).aggregate(
        n=Sum("bars")
    )["n"]
    return int(total or 0)
