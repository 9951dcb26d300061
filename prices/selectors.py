"""Reads: coins and their bars as NumPy arrays (the hot path of every backtest)."""

from __future__ import annotations

import io
import logging
import struct
import time as _time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from django.db import connection
from django.db.models import (
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    Func,
    IntegerField,
    OuterRef,
    QuerySet,
    Subquery,
    Sum,
    Window,
)
from django.db.models.functions import Coalesce, Lag

from prices import cache
from prices.blocks import blocks_fetch, day_bounds_of_coin
from prices.models import (
    BLOCK_INTERVALS,
    Cryptocurrency,
    Interval,
    PriceBar,
    PriceBlock,
    Source,
)
from prices.timeframes import INTERVAL_SECONDS, resample, source_interval
from prices.types import PriceSeries

logger = logging.getLogger(__name__)

_VALUE_COLUMNS = ("open", "high", "low", "close", "volume")
_PG_EPOCH_OFFSET_S = 946_684_800  # 2000-01-01T00:00:00Z in Unix seconds
# PostgreSQL binary COPY framing: 19-byte header, per row an int16 field count,
# per field an int32 length and the value; a -1 int16 trailer. Big-endian.
_COPY_HEADER = 19
_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")
_INT64 = struct.Struct(">q")


class UnknownSymbolError(ValueError):
    """Symbols that name no coin in the database."""

    def __init__(self, symbols: Sequence[str]) -> None:
        self.symbols = list(symbols)
        super().__init__(f"unknown symbol(s): {', '.join(self.symbols)}")


class EpochSeconds(Func):
    """The bar time as integer epoch seconds, computed by the database."""

    output_field = IntegerField()

    def as_sql(self, compiler, connection, **extra):
        return (
            super().as_sql(
                compiler,
                connection,
                template="CAST(strftime('%%%%s', %(expressions)s) AS INTEGER)",
            )
            if connection.vendor == "sqlite"
            else super().as_sql(
                compiler,
                connection,
                template="CAST(EXTRACT(EPOCH FROM %(expressions)s) AS BIGINT)",
            )
        )


def to_epoch(value: datetime | None) -> int | None:
    """Return an aware datetime as epoch seconds (None stays None)."""
    return None if value is None else int(value.timestamp())


def coins_active() -> QuerySet[Cryptocurrency]:
    """Return the active coins, by symbol."""
    return Cryptocurrency.objects.filter(is_active=True).order_by("symbol")


def coins_by_symbols(symbols: Iterable[str] | None) -> list[Cryptocurrency]:
    """Return coins for the symbols (all active coins when None), in given order."""
    if symbols is None:
        return list(coins_active())
    wanted = [s.strip().upper() for s in symbols if s and s.strip()]
    found = {c.symbol: c for c in Cryptocurrency.objects.filter(symbol__in=wanted)}
    missing = [s for s in wanted if s not in found]
    if missing:
        raise UnknownSymbolError(missing)
    return [found[s] for s in dict.fromkeys(wanted)]


def symbols_synthetic(symbols: Iterable[str] | None = None) -> list[str]:
    """Return the symbols (of those given, or of all coins) holding demo data."""
    coins = Cryptocurrency.objects.filter(source=Source.DEMO)
    if symbols is not None:
        coins = coins.filter(symbol__in=list(symbols))
    return list(coins.order_by("symbol").values_list("symbol", flat=True))


def coins_with_stats() -> QuerySet[Cryptocurrency]:
    """Return every coin with its hourly and 1-minute bar counts and first/last
    hourly bar time."""
    # A correlated count beside coins_with_range's bounds, not a join with GROUP
    # BY: each coin's count is an Index Only Scan of its own entries, and the
    # changelist's COUNT(*) drops the annotations instead of aggregating
    # millions of joined rows.
    hourly = PriceBar.objects.filter(crypto=OuterRef("pk"), interval=Interval.HOUR)
    count = hourly.order_by().values("crypto").annotate(n=Count("*")).values("n")
    # Minute bars are counted from their day blocks' bar counts: a year is
    # 365 index entries, not 525,600.
    minute = PriceBlock.objects.filter(crypto=OuterRef("pk"), interval=Interval.MINUTE)
    minutes = minute.order_by().values("crypto").annotate(n=Sum("bars")).values("n")
    return coins_with_range(active_only=False).annotate(
        hourly_bars=Coalesce(Subquery(count), 0),
        minute_bars=Coalesce(Subquery(minutes), 0),
    )


@dataclass(frozen=True)
class Gap:
    """A stretch without bars: ``after`` is the last bar before it, ``before``
    the first bar after it."""

    after: datetime
    before: datetime
    missing_bars: int

    @property
    def hours(self) -> float:
        """Hours without a bar (the spacing of the interval not counted)."""
        return (self.before - self.after).total_seconds() / 3600 - 1


def coin_gaps(
    coin_id: int, *, interval: str = Interval.HOUR, limit: int = 20
) -> tuple[int, list[Gap]]:
    """Return (how many gaps, the ``limit`` longest) in a coin's bars.

    A window function pairs each bar with the one before it in the database,
    and only the pairs further apart than the interval come back, longest
    first: the coin's bars never reach Python (two queries, one index range
    each).
    """
    step = timedelta(seconds=INTERVAL_SECONDS[interval])
    spaced = (
        PriceBar.objects.filter(crypto_id=coin_id, interval=interval)
        .annotate(previous=Window(Lag("time"), order_by=F("time").asc()))
        .annotate(
            spacing=ExpressionWrapper(
                F("time") - F("previous"), output_field=DurationField()
            )
        )
        .filter(spacing__gt=step)
    )
    longest = spaced.order_by("-spacing", "time").values_list("previous", "time")
    gaps = [
        Gap(after=after, before=before, missing_bars=int((before - after) / step) - 1)
        for after, before in longest[:limit]
    ]
    return (spaced.count() if len(gaps) == limit else len(gaps)), gaps


def bars_queryset(
    coin_ids: Sequence[int],
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    interval: str = Interval.HOUR,
    epoch: bool = True,
) -> QuerySet:
    """Return the one batch query: coin, time and OHLCV for [start, end).

    With ``epoch`` the database converts time to epoch seconds; without it the
    raw column is selected (PostgreSQL's binary COPY sends it as an integer).
    """
    qs = PriceBar.objects.filter(interval=interval, crypto_id__in=list(coin_ids))
    if start is not None:
        qs = qs.filter(time__gte=start)
    if end is not None:
        qs = qs.filter(time__lt=end)
    qs = qs.order_by("crypto_id", "time")
    if not epoch:
        return qs.values_list("crypto_id", "time", *_VALUE_COLUMNS)
    return qs.annotate(epoch=EpochSeconds("time")).values_list(
        "crypto_id", "epoch", *_VALUE_COLUMNS
    )


def _fetch_postgres(
    coin_ids: Sequence[int], sql: str, params: Sequence
) -> dict[int, PriceSeries]:
    """Read the bars query packed into one row per coin, parsed into NumPy.

    The server folds each coin's rows into six byte strings (big-endian time
    and OHLCV columns, ``string_agg`` of the ``*send`` binary forms) and sends
    them with binary COPY. Row by row, libpq hands over one message per bar and
    the client takes the GIL back for each - 2.1M hand-offs that stall every
    thread computing backtests meanwhile; packed, it is one message per coin
    and about 40% less server time (no per-row COPY framing).
    """
    packed = ", ".join(
        f"string_agg({fn}(bars.{col}), ''::bytea)"
        for fn, col in [("timestamptz_send", '"time"')]
        + [("float8send", f'"{name}"') for name in _VALUE_COLUMNS]
    )
    buffer = io.BytesIO()
    with connection.cursor() as cursor:
        inner = cursor.mogrify(sql, params).decode()
        # The inner query is ordered by (coin, time) - the covering index's own
        # order - and the aggregates take rows as they come; the order is
        # checked below, not assumed.
        cursor.copy_expert(
            f"COPY (SELECT bars.crypto_id, {packed} FROM ({inner}) AS bars "
            "GROUP BY bars.crypto_id) TO STDOUT (FORMAT binary)",
            buffer,
        )
    data = buffer.getbuffer()
    out: dict[int, PriceSeries] = {}
    offset = _COPY_HEADER
    while True:
        (fields,) = _INT16.unpack_from(data, offset)
        offset += 2
        if fields == -1:
            break
        values = []
        for _ in range(fields):
            (size,) = _INT32.unpack_from(data, offset)
            offset += 4
            values.append((offset, size))
            offset += size
        (coin_at, _size), (time_at, time_size) = values[0], values[1]
        (coin_id,) = _INT64.unpack_from(data, coin_at)
        count = time_size // 8
        micros = np.frombuffer(data, ">i8", count, time_at)
        columns = [micros // 1_000_000 + _PG_EPOCH_OFFSET_S] + [
            np.frombuffer(data, ">f8", count, at).astype(np.float64)
            for at, _size in values[2:]
        ]
        out[coin_id] = _in_time_order(PriceSeries(*columns))
    return {coin_id: out.get(coin_id, PriceSeries.empty()) for coin_id in coin_ids}


def _in_time_order(series: PriceSeries) -> PriceSeries:
    """Return the series sorted by time (it already is, unless a plan changed)."""
    if len(series.time) < 2 or bool(np.all(series.time[1:] > series.time[:-1])):
        return series
    order = np.argsort(series.time, kind="stable")
    return PriceSeries(*(column[order] for column in series))


def _fetch_generic(sql: str, params: Sequence) -> np.ndarray:
    """Run ``sql`` through the DB-API cursor (SQLite and others)."""
    chunks = []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while True:
            rows = cursor.fetchmany(200_000)
            if not rows:
                break
            chunks.append(np.array(rows, dtype=np.float64))
    if not chunks:
        return np.empty((7, 0), dtype=np.float64)
    return np.concatenate(chunks).T


def _split_by_coin(
    table: np.ndarray, coin_ids: Sequence[int]
) -> dict[int, PriceSeries]:
    coins = table[0].astype(np.int64)
    times = table[1].astype(np.int64)
    result = {}
    for coin_id in coin_ids:
        lo = int(np.searchsorted(coins, coin_id, "left"))
        hi = int(np.searchsorted(coins, coin_id, "right"))
        result[coin_id] = PriceSeries(
            np.ascontiguousarray(times[lo:hi]),
            *(np.ascontiguousarray(table[row, lo:hi]) for row in range(2, 7)),
        )
    return result


def bars_fetch(
    coin_ids: Sequence[int],
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    interval: str = Interval.HOUR,
) -> dict[int, PriceSeries]:
    """Read bars of many coins from the database in one query (no cache)."""
    if not coin_ids:
        return {}
    if interval in BLOCK_INTERVALS:
        return blocks_fetch(coin_ids, interval=interval, start=start, end=end)
    if connection.vendor == "postgresql":
        sql, params = bars_queryset(
            coin_ids, start=start, end=end, interval=interval, epoch=False
        ).query.sql_with_params()
        return _fetch_postgres(coin_ids, sql, params)
    sql, params = bars_queryset(
        coin_ids, start=start, end=end, interval=interval
    ).query.sql_with_params()
    return _split_by_coin(_fetch_generic(sql, params), sorted(coin_ids))


def bars_load(
    symbols: Iterable[str] | None = None,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    interval: str = Interval.HOUR,
    coins: Sequence[Cryptocurrency] | None = None,
) -> dict[str, PriceSeries]:
    """Return each coin's bars in [start, end) as arrays, from cache or one query.

    ``symbols`` None means every active coin. Pass ``coins`` (already loaded) to
    skip the coin lookup. Unknown symbols raise :class:`UnknownSymbolError`.
    """
    if interval not in Interval.values:
        raise ValueError(f"interval: must be one of {', '.join(Interval.values)}")
    if start is not None and end is not None and start >= end:
        raise ValueError("start: must be before end")
    began = _time.perf_counter()
    if coins is None:
        coins = coins_by_symbols(symbols)
    lo, hi = to_epoch(start), to_epoch(end)
    keys = {
        c.id: cache.series_key(c.id, c.data_version, interval, lo, hi) for c in coins
    }
    found = cache.get_many(keys.values())
    series = {c.id: found[keys[c.id]] for c in coins if keys[c.id] in found}
    if lo is not None or hi is not None:
        # A range not cached as such is cut from a cached full history (what
        # the warm-up stores); asked for only for those coins.
        full = {
            c.id: cache.series_key(c.id, c.data_version, interval, None, None)
            for c in coins
            if c.id not in series
        }
        whole = cache.get_many(full.values())
        for coin_id, key in full.items():
            if key in whole:
                series[coin_id] = _cut(whole[key], lo, hi)
    missing = [c.id for c in coins if c.id not in series]
    cache.stats.add(hits=len(series), misses=len(missing))
    fetched = bars_build(missing, start=start, end=end, interval=interval)
    cache.set_many({keys[coin_id]: bars for coin_id, bars in fetched.items()})
    series.update(fetched)
    logger.info(
        "loaded %d coins (%d cached, %d from the database, %d bars) in %.0f ms",
        len(coins),
        len(coins) - len(missing),
        len(missing),
        sum(len(s.time) for s in fetched.values()),
        (_time.perf_counter() - began) * 1000,
    )
    return {c.symbol: series[c.id] for c in coins}


def intervals_stored(coin_ids: Sequence[int]) -> dict[int, list[str]]:
    """Return the intervals each coin has bars of (one query, an index probe each)."""
    probes = {
        name: Exists(
            (PriceBlock if name in BLOCK_INTERVALS else PriceBar).objects.filter(
                crypto=OuterRef("pk"), interval=name
            )
        )
        for name in Interval.values
    }
    rows = (
        Cryptocurrency.objects.filter(pk__in=list(coin_ids))
        .annotate(**{f"has_{n}": probe for n, probe in probes.items()})
        .values("pk", *(f"has_{n}" for n in probes))
    )
    return {row["pk"]: [n for n in probes if row[f"has_{n}"]] for row in rows}


def bars_build(
    coin_ids: Sequence[int],
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    interval: str = Interval.HOUR,
) -> dict[int, PriceSeries]:
    """Read bars of ``interval``, building them from a finer stored interval
    for coins that have none of their own (no cache).

    The stored bars are read first, so coins with bars of the interval cost no
    more than before; only coins left empty are probed for what they store.
    Built bars cover the whole buckets inside [start, end). Raise ValueError
    naming what is stored when a coin has only coarser bars.
    """
    if not coin_ids:
        return {}
    found = bars_fetch(coin_ids, start=start, end=end, interval=interval)
    empty = [coin_id for coin_id, bars in found.items() if not len(bars.time)]
    if not empty:
        return found
    step = INTERVAL_SECONDS[interval]
    # Whole buckets only: a bar never opens before start or holds bars from
    # after end.
    lo = None if start is None else -(-int(start.timestamp()) // step) * step
    hi = None if end is None else int(end.timestamp()) // step * step
    groups: dict[str, list[int]] = {}
    symbols = dict(
        Cryptocurrency.objects.filter(pk__in=empty).values_list("pk", "symbol")
    )
    for coin_id, stored in intervals_stored(empty).items():
        if not stored:
            continue
        try:
            source = source_interval(interval, stored)
        except ValueError as exc:
            raise ValueError(f"{exc} of {symbols[coin_id]}") from None
        groups.setdefault(source, []).append(coin_id)
    for source, ids in groups.items():
        if source == interval:
            continue
        finer = bars_fetch(
            ids,
            start=None if lo is None else datetime.fromtimestamp(lo, UTC),
            end=None if hi is None else datetime.fromtimestamp(hi, UTC),
            interval=source,
        )
        for coin_id, bars in finer.items():
            found[coin_id] = resample(bars, source, interval)
    return found


def _cut(series: PriceSeries, lo: int | None, hi: int | None) -> PriceSeries:
    """Return the bars of a time-ordered series in [lo, hi) (views, no copy)."""
    first = 0 if lo is None else int(np.searchsorted(series.time, lo, "left"))
    stop = len(series.time) if hi is None else int(np.searchsorted(series.time, hi))
    return PriceSeries(*(column[first:stop] for column in series))


def coins_uncached(interval: str = Interval.HOUR) -> list[Cryptocurrency]:
    """Return the active coins whose full history is not in the cache.

    Only existence is asked (no arrays move; one pipelined round trip on Redis).
    An unreachable cache gives [] - nothing to warm; runs read the database.
    """
    coins = list(coins_active())
    keys = {
        cache.series_key(c.id, c.data_version, interval, None, None): c for c in coins
    }
    return [keys[key] for key in cache.missing(keys) or ()]


def coins_with_range(*, active_only: bool = True) -> QuerySet[Cryptocurrency]:
    """Return coins annotated with their first and last hourly bar time (for a
    coin without hourly bars, the bounds of its sub-hour day blocks).

    Each bound is a correlated subquery that the (crypto, time) index answers
    with one probe per coin, so this stays fast on millions of bars (no COUNT).
    """
    hourly = PriceBar.objects.filter(crypto=OuterRef("pk"), interval=Interval.HOUR)
    first_day, last_day = day_bounds_of_coin()
    qs = Cryptocurrency.objects.all()
    if active_only:
        qs = qs.filter(is_active=True)
    return qs.annotate(
        first_bar=Coalesce(
            Subquery(hourly.order_by("time").values("time")[:1]), first_day
        ),
        last_bar=Coalesce(
            Subquery(hourly.order_by("-time").values("time")[:1]), last_day
        ),
    ).order_by("symbol")
