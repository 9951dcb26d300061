"""Writes: bulk upserts of bars, derived daily bars, imports; all transactional.

The bulk path bypasses model instances: PostgreSQL gets a binary COPY into a
temporary staging table followed by one ``INSERT ... ON CONFLICT`` and SQLite an
``executemany`` upsert. Every write bumps the coin's ``data_version`` in the same
transaction, which makes every cached array of that coin unreachable at once.
"""

from __future__ import annotations

import io
import logging
import struct
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Sum

from prices.blocks import WRITE_BATCH, blocks_build, blocks_write
from prices.demo import HOURS_PER_YEAR, coin_series, demo_coins
from prices.importers import ParsedFile, parse_file
from prices.minute_demo import minute_year
from prices.models import (
    BLOCK_INTERVALS,
    SOURCE_DETAIL_MAX_LENGTH,
    Cryptocurrency,
    Interval,
    PriceBar,
    PriceBlock,
    Source,
)
from prices.provenance import (
    ImportConflict,
    bars_compare,
    change_problem,
    detail_merge,
    mix_problem,
)
from prices.selectors import bars_fetch
from prices.symbols import symbol_problem
from prices.timeframes import MINUTES_PER_YEAR, aggregate
from prices.types import PriceSeries

logger = logging.getLogger(__name__)

BATCH_ROWS = 50_000
# Decompressed megabytes one imported file may hold (setting PRICE_IMPORT_MAX_MB):
# a year of 1-minute bars is about 40 MB.
DEFAULT_IMPORT_MAX_MB = 256
_PG_EPOCH_OFFSET_US = 946_684_800 * 1_000_000  # 2000-01-01 in Unix microseconds
_TABLE = PriceBar._meta.db_table
_VALUES = ("open", "high", "low", "close", "volume")
_STAGE_ROW = np.dtype(
    [("n", ">i2"), ("l_time", ">i4"), ("time", ">i8")]
    + [(f, t) for name in _VALUES for f, t in ((f"l_{name}", ">i4"), (name, ">f8"))]
)

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ImportResult:
    symbol: str
    interval: str
    rows: int
    new_rows: int
    unchanged_rows: int
    changed_rows: int  # replaced (an import without replace refuses changes)
    removed_rows: int  # every stored bar of the coin, deleted by replace
    daily_rows: int
    source: str
    seconds: float


def coin_get_or_create(symbol: str, *, name: str = "") -> Cryptocurrency:
    """Return the coin with this symbol, creating it (active) if missing.

    Raise ValueError naming the symbol when it breaks the symbol rule.
    """
    problem = symbol_problem(symbol)
    if problem:
        raise ValueError(problem)
    coin, _ = Cryptocurrency.objects.get_or_create(
        symbol=symbol, defaults={"name": name}
    )
    return coin


def coin_cache_clear(coin_ids: list[int]) -> None:
    """Make every cached array of these coins unreachable (bump data_version)."""
    Cryptocurrency.objects.filter(pk__in=coin_ids).update(
        data_version=F("data_version") + 1
    )


def _upsert_postgres(coin_id: int, interval: str, series: PriceSeries) -> None:
    rows = np.empty(len(series.time), dtype=_STAGE_ROW)
    rows["n"] = 6
    rows["l_time"] = 8
    rows["time"] = series.time.astype(np.int64) * 1_000_000 - _PG_EPOCH_OFFSET_US
    for name, column in zip(_VALUES, series[1:], strict=True):
        rows[f"l_{name}"] = 8
        rows[name] = column
    payload = (
        b"PGCOPY\n\xff\r\n\x00"
        + struct.pack(">ii", 0, 0)
        + rows.tobytes()
        + struct.pack(">h", -1)
    )
    columns = ", ".join(_VALUES)
    excluded = ", ".join(f"EXCLUDED.{c}" for c in _VALUES)
    current = ", ".join(f"{_TABLE}.{c}" for c in _VALUES)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS prices_stage (time timestamptz, "
            "open float8, high float8, low float8, close float8, volume float8) "
            "ON COMMIT DELETE ROWS"
        )
        cursor.execute("TRUNCATE prices_stage")
        cursor.copy_expert(
            f"COPY prices_stage (time, {columns}) FROM STDIN (FORMAT binary)",
            io.BytesIO(payload),
        )
        cursor.execute(
            f"INSERT INTO {_TABLE} (crypto_id, interval, time, {columns}) "
            f"SELECT %s, %s, time, {columns} FROM prices_stage "
            "ON CONFLICT (crypto_id, interval, time) DO UPDATE SET "
            + ", ".join(f"{c} = EXCLUDED.{c}" for c in _VALUES)
            + f" WHERE ({current}) IS DISTINCT FROM ({excluded})",
            [coin_id, interval],
        )


def _upsert_generic(
    coin_id: int, interval: str, series: PriceSeries, progress: Progress | None
) -> None:
    # Django stores aware datetimes in SQLite as naive UTC text in this format.
    stamps = np.datetime_as_string(series.time.astype("datetime64[s]"), unit="s")
    stamps = np.char.replace(stamps, "T", " ").tolist()
    columns = ", ".join(_VALUES)
    sql = (
        f"INSERT INTO {_TABLE} (crypto_id, interval, time, {columns}) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (crypto_id, interval, time) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in _VALUES)
    )
    values = [column.tolist() for column in series[1:]]
    total = len(stamps)
    with connection.cursor() as cursor:
        for lo in range(0, total, BATCH_ROWS):
            hi = min(lo + BATCH_ROWS, total)
            cursor.executemany(
                sql,
                zip(
                    [coin_id] * (hi - lo),
                    [interval] * (hi - lo),
                    stamps[lo:hi],
                    *(v[lo:hi] for v in values),
                    strict=True,
                ),
            )
            if progress:
                progress(hi, total)


def bars_upsert(
    coin: Cryptocurrency,
    series: PriceSeries,
    *,
    interval: str = Interval.HOUR,
    progress: Progress | None = None,
) -> None:
    """Insert or update bars of one coin (caller owns the transaction)."""
    if not len(series.time):
        return
    if interval in BLOCK_INTERVALS:
        blocks_write(coin.id, interval, series)
        if progress:
            progress(len(series.time), len(series.time))
    elif connection.vendor == "postgresql":
        _upsert_postgres(coin.id, interval, series)
        if progress:
            progress(len(series.time), len(series.time))
    else:
        _upsert_generic(coin.id, interval, series, progress)


def bars_delete(coins: list[Cryptocurrency]) -> int:
    """Delete every stored bar of the coins (rows and blocks); return how many."""
    blocks = PriceBlock.objects.filter(crypto__in=coins)
    packed = blocks.aggregate(n=Sum("bars"))["n"] or 0
    blocks.delete()
    rows, _ = PriceBar.objects.filter(crypto__in=coins).delete()
    return rows + packed


def daily_from_hourly(hourly: PriceSeries) -> PriceSeries:
    """Aggregate hourly bars into UTC days: first open, max high, min low, last
    close, summed volume. Days with missing hours use the hours present."""
    if not len(hourly.time):
        return PriceSeries.empty()
    day = hourly.time // 86_400
    starts = np.flatnonzero(np.r_[True, day[1:] != day[:-1]])
    ends = np.r_[starts[1:], len(day)] - 1
    return PriceSeries(
        day[starts] * 86_400,
        hourly.open[starts],
        np.maximum.reduceat(hourly.high, starts),
        np.minimum.reduceat(hourly.low, starts),
        hourly.close[ends],
        np.add.reduceat(hourly.volume, starts),
    )


def daily_refresh(coin: Cryptocurrency, first: int, last: int) -> int:
    """Re-derive the daily bars of the UTC days spanning epoch seconds first..last."""
    day_start = first // 86_400 * 86_400
    day_end = (last // 86_400 + 1) * 86_400
    hourly = bars_fetch(
        [coin.id],
        start=datetime.fromtimestamp(day_start, UTC),
        end=datetime.fromtimestamp(day_end, UTC),
        interval=Interval.HOUR,
    )[coin.id]
    daily = daily_from_hourly(hourly)
    bars_upsert(coin, daily, interval=Interval.DAY)
    return len(daily.time)


def _stored_bars(coin: Cryptocurrency, series: PriceSeries, interval: str):
    """Return the coin's stored bars over the incoming series' time span."""
    return bars_fetch(
        [coin.id],
        start=datetime.fromtimestamp(int(series.time[0]), UTC),
        end=datetime.fromtimestamp(int(series.time[-1]) + 1, UTC),
        interval=interval,
    )[coin.id]


def bars_import(
    *,
    symbol: str,
    series: PriceSeries,
    source: str = Source.FILE,
    detail: str = "",
    replace: bool = False,
    supersede: bool = False,
    interval: str = Interval.HOUR,
    name: str = "",
    progress: Progress | None = None,
) -> ImportResult:
    """Import one coin's bars atomically under the provenance rule.

    Every import path (files, admin uploads, archive downloads) comes here.
    Bars that would change stored bars, or bars from another source than the
    coin's, are refused with ImportConflict and nothing is written, unless
    ``replace``: then every stored bar of the coin (all intervals) is deleted
    first, in the same transaction. ``supersede``: the incoming bars replace
    stored bars of the same source at the same times (an archive file that was
    replaced upstream is the new truth for its own period); other sources are
    still refused. Daily bars are re-derived from hourly ones.
    """
    if source not in Source.values or source == Source.NONE:
        raise ValueError(f"source: must be one of demo, file, archive, got {source!r}")
    began = time.perf_counter()
    with transaction.atomic():
        coin = coin_get_or_create(symbol, name=name)
        # Lock the coin row: two imports of one coin must not both pass the check.
        coin = Cryptocurrency.objects.select_for_update().get(pk=coin.pk)
        has_bars = (
            PriceBar.objects.filter(crypto=coin).exists()
            or PriceBlock.objects.filter(crypto=coin).exists()
        )
        stored_source = coin.source if has_bars else Source.NONE
        if has_bars and len(series.time):
            comparison = bars_compare(_stored_bars(coin, series, interval), series)
        else:
            comparison = bars_compare(PriceSeries.empty(), series)
        removed = 0
        if replace:
            removed = bars_delete([coin])
            written = series
        elif supersede and stored_source in (source, Source.NONE):
            keep = comparison.new | comparison.changed
            written = PriceSeries(*(column[keep] for column in series))
        else:
            problems = [
                mix_problem(coin.symbol, stored_source, source, coin.source_detail),
                change_problem(coin.symbol, interval, comparison),
            ]
            if any(problems):
                raise ImportConflict("; ".join(p for p in problems if p))
            written = PriceSeries(*(column[comparison.new] for column in series))
        bars_upsert(coin, written, interval=interval, progress=progress)
        daily = 0
        if interval == Interval.HOUR and len(written.time):
            daily = daily_refresh(coin, int(written.time[0]), int(written.time[-1]))
        kept = coin.source_detail if stored_source == source and not replace else ""
        coin.source = source
        coin.source_detail = detail_merge(kept, detail, limit=SOURCE_DETAIL_MAX_LENGTH)
        coin.save(update_fields=["source", "source_detail", "updated_at"])
        if len(written.time) or removed:
            coin_cache_clear([coin.id])
    return ImportResult(
        symbol=coin.symbol,
        interval=interval,
        rows=len(series.time),
        new_rows=comparison.new_count,
        unchanged_rows=comparison.unchanged_count,
        changed_rows=comparison.changed_count,
        removed_rows=removed,
        daily_rows=daily,
        source=source,
        seconds=time.perf_counter() - began,
    )


def file_import(
    path: str | Path,
    *,
    symbol: str | None = None,
    interval: str | None = None,
    source: str = Source.FILE,
    detail: str | None = None,
    replace: bool = False,
    supersede: bool = False,
    name: str | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    """Parse and import one file: all of it or, on any bad row or conflict, nothing.

    ``name`` (default: the path) names the file in messages, and ``detail``
    (default: the file's name) is recorded as where the bars came from.
    """
    max_mb = getattr(settings, "PRICE_IMPORT_MAX_MB", DEFAULT_IMPORT_MAX_MB)
    parsed: ParsedFile = parse_file(
        path,
        symbol=symbol,
        interval=interval,
        name=name,
        max_bytes=int(max_mb * 2**20),
    )
    return bars_import(
        symbol=parsed.symbol,
        series=parsed.series,
        source=source,
        detail=Path(name or path).name if detail is None else detail,
        replace=replace,
        supersede=supersede,
        interval=parsed.interval,
        progress=progress,
    )


def upload_import(
    upload: UploadedFile,
    *,
    symbol: str | None = None,
    interval: str | None = None,
    replace: bool = False,
) -> ImportResult:
    """Import an uploaded file (the admin's form) exactly as a file on disk."""
    # Copied to disk in chunks: the parser reads a path in bounded blocks.
    with tempfile.NamedTemporaryFile(suffix=".upload") as copy:
        for chunk in upload.chunks():
            copy.write(chunk)
        copy.flush()
        return file_import(
            copy.name,
            symbol=symbol,
            interval=interval,
            name=Path(upload.name or "upload").name,
            replace=replace,
        )


@dataclass(frozen=True)
class SeedResult:
    rows: int
    seeded: list[str]
    skipped: list[str]  # coins whose bars come from elsewhere, left untouched


def _seed_minutes(coin: Cryptocurrency, index: int, years: int, seed: int):
    """Write a demo coin's 1-minute blocks a year at a time; return its hourly bars."""
    hourly, close = [], None
    for year in range(years):
        minutes = minute_year(index, year, years, seed, close)
        PriceBlock.objects.bulk_create(
            blocks_build(coin.id, Interval.MINUTE, minutes), batch_size=WRITE_BATCH
        )
        hourly.append(aggregate(minutes, 3600))
        close = float(minutes.close[-1])
    return PriceSeries(*(np.concatenate(parts) for parts in zip(*hourly, strict=True)))


def demo_seed(
    *,
    symbols: int = 48,
    years: int = 5,
    seed: int = 42,
    interval: str = Interval.HOUR,
    progress: Callable[[str, int], None] | None = None,
) -> SeedResult:
    """Replace the demo coins' bars with fresh synthetic data.

    Deterministic for a given seed. A coin whose bars came from elsewhere (a
    file, the archive) is skipped: demo data never overwrites or mixes with
    real bars. One transaction: a failure leaves the old data in place.
    ``interval`` 1m makes 1-minute bars (packed day blocks) and the hourly and
    daily bars built from them, so every page reading hourly bars has them.
    """
    if interval not in (Interval.HOUR, Interval.MINUTE):
        raise ValueError(f"interval: must be 1h or 1m, got {interval!r}")
    wanted = demo_coins(symbols)  # ValueError naming --symbols when out of range
    if not 1 <= years <= 10:
        raise ValueError("years: must be between 1 and 10")
    bars = years * HOURS_PER_YEAR
    total = 0
    with transaction.atomic():
        stored = Exists(PriceBar.objects.filter(crypto=OuterRef("pk"))) | Exists(
            PriceBlock.objects.filter(crypto=OuterRef("pk"))
        )
        foreign = set(
            Cryptocurrency.objects.filter(
                stored, symbol__in=[symbol for symbol, _, _ in wanted]
            )
            .exclude(source__in=[Source.NONE, Source.DEMO])
            .values_list("symbol", flat=True)
        )
        coins = []
        for index, (symbol, name, _) in enumerate(wanted):
            if symbol in foreign:
                continue
            coin, _ = Cryptocurrency.objects.update_or_create(
                symbol=symbol,
                defaults={
                    "name": name,
                    "is_active": True,
                    "source": Source.DEMO,
                    "source_detail": f"seed_demo --seed {seed} --years {years}"
                    + ("" if interval == Interval.HOUR else f" --interval {interval}"),
                },
            )
            coins.append((index, coin))
        bars_delete([coin for _, coin in coins])
        for index, coin in coins:
            if interval == Interval.MINUTE:
                series = _seed_minutes(coin, index, years, seed)
                total += years * MINUTES_PER_YEAR
            else:
                series = coin_series(index, bars, seed)
                total += len(series.time)
            bars_upsert(coin, series, interval=Interval.HOUR)
            bars_upsert(coin, daily_from_hourly(series), interval=Interval.DAY)
            if progress:
                progress(coin.symbol, total)
        coin_cache_clear([coin.id for _, coin in coins])
    return SeedResult(
        rows=total,
        seeded=[coin.symbol for _, coin in coins],
        skipped=[symbol for symbol, _, _ in wanted if symbol in foreign],
    )
