"""Minute-bar storage benchmark on PostgreSQL: bytes per bar, cold load, imports.

One coin-year of 1-minute bars made from the real hourly BTC candles (each hour
a seeded path through its open, high, low and close, written with the file's
own decimals; see ``prices/tests/minute_data.py``) is imported from a gzip CSV;
then printed: the import rate (parse + store, and store alone), the bytes per
bar of every table holding the bars (``pg_total_relation_size``: heap, TOAST
and indexes), the cold load of the year (the app's cache empty; the server's
and the OS's page caches warm after the import, so this is the warm-disk cold
case), the same year stored one row per bar for comparison, what other packings
of the same days would take, and with ``--coins N`` the synthetic demo minutes
of N coins x 1 year (``seed_demo --interval 1m``). Asserts nothing about time.

    .venv/bin/python bench/minute.py [--coins 48] [--symbol BTC]

Starts a PostgreSQL server of its own (scripts/services.py).
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import io
import lzma
import os
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))
from services import postgres_server  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "ohlcv-1h"
HOURS = 8760


def setup(url: str) -> None:
    """Point Django at the benchmark's server and create the tables."""
    os.environ.update(
        DATABASE_URL=url, DEBUG="false", SECRET_KEY="bench-only-" + "x" * 50,
        LOG_LEVEL="WARNING", DJANGO_SETTINGS_MODULE="backtester.settings",
    )  # fmt: skip
    os.environ.pop("REDIS_URL", None)  # the local-memory cache, emptied below
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def table_bytes(*tables: str) -> int:
    """Return heap + TOAST + indexes of the tables, after a VACUUM."""
    from django.db import connection

    total = 0
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM ANALYZE {table}")
            cursor.execute("SELECT pg_total_relation_size(%s)", [table])
            total += cursor.fetchone()[0]
    return total


def timed(fn, repeat: int = 5) -> str:
    """Return the median and best wall time of ``repeat`` calls, and the median
    CPU time of this process (the database server's not counted): on a shared
    machine the wall time swells with the load, the CPU time much less."""
    walls, cpus = [], []
    for _ in range(repeat):
        began, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append((time.perf_counter() - began) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
    return (
        f"median {statistics.median(walls):.0f} ms, best {min(walls):.0f} ms "
        f"(CPU here {statistics.median(cpus):.0f} ms)"
    )


def cold_load(symbol: str) -> None:
    from django.core.cache import cache

    from prices.selectors import bars_load

    cache.clear()
    bars_load([symbol], interval="1m")


def packings(series) -> None:
    """Print what other packings of the same UTC days would take, per bar."""
    from prices.packing import day_bounds, encode, places_of
    from prices.types import PriceSeries

    starts, bounds = day_bounds(series.time)
    places = places_of(series)
    sizes = dict.fromkeys(
        ["float64 as is", "float64 zlib", "float64 XOR planes zlib (fallback)",
         "decimal planes, no zlib", "decimal planes zlib-6 (chosen)",
         "decimal planes lzma", "decimal planes bz2"], 0,
    )  # fmt: skip
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        day = PriceSeries(*(column[lo:hi] for column in series))
        raw = np.stack(day[1:]).astype("<f8")
        sizes["float64 as is"] += raw.nbytes
        sizes["float64 zlib"] += len(zlib.compress(raw.tobytes(), 6))
        sizes["float64 XOR planes zlib (fallback)"] += len(
            encode(day, 60, (None, None))
        )
        block = encode(day, 60, places)
        sizes["decimal planes zlib-6 (chosen)"] += len(block)
        # The same planes kept raw, or squeezed harder by slower codecs.
        header = 6 + 5 + (0 if hi - lo == 1440 else 180)
        data = block[header:]
        planes = zlib.decompress(data) if block[1] & 8 else data
        sizes["decimal planes, no zlib"] += header + len(planes)
        sizes["decimal planes lzma"] += header + len(lzma.compress(planes))
        sizes["decimal planes bz2"] += header + len(bz2.compress(planes))
    print("  packings of the same days (values only, no row overhead):")
    for name, size in sizes.items():
        print(f"    {name:<32} {size / len(series.time):6.2f} B/bar")


def one_coin_year(data: Path, symbol: str) -> None:
    from django.db import transaction

    from prices.blocks import blocks_fetch
    from prices.models import Cryptocurrency, PriceBar
    from prices.services import _upsert_postgres, bars_delete, bars_import, file_import
    from prices.tests.minute_data import HEADER, minute_lines, real_hours

    hours = real_hours(data / f"{symbol}USDT.csv.gz", HOURS, 20_000)
    lines = minute_lines(hours)
    first, last = lines[0][:16], lines[-1][:16]
    print(
        f"{symbol}: {len(lines):,} 1-minute bars, {first} .. {last} (from real hours)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{symbol}USDT-1m.csv.gz"
        with gzip.open(path, "wt") as handle:
            handle.write(HEADER + "".join(lines))
        began = time.perf_counter()
        result = file_import(path)
        wall = time.perf_counter() - began
    print(f"  import_prices path (parse + store): {wall:.2f} s, "
          f"{result.rows / wall:,.0f} rows/s")  # fmt: skip
    coin = Cryptocurrency.objects.get(symbol=symbol)
    series = blocks_fetch([coin.id], interval="1m")[coin.id]
    size = table_bytes("prices_priceblock")
    print(f"  stored: {size:,} bytes with indexes and TOAST = "
          f"{size / len(series.time):.1f} B/bar")  # fmt: skip
    print("  cold load of the year (cache emptied; page caches warm): "
          + timed(lambda: cold_load(symbol)))  # fmt: skip
    print("    of which database + unpacking: "
          + timed(lambda: blocks_fetch([coin.id], interval="1m")))  # fmt: skip
    # Store alone (the parsed arrays imported again into an empty coin).
    bars_delete([coin])
    began = time.perf_counter()
    bars_import(symbol=symbol, series=series, interval="1m", replace=True)
    wall = time.perf_counter() - began
    print(f"  store alone (bars_import of parsed arrays): {wall:.2f} s, "
          f"{len(series.time) / wall:,.0f} rows/s")  # fmt: skip
    packings(series)
    # The same year one row per bar, as the hourly table keeps them.
    other = Cryptocurrency.objects.create(symbol="ROWS")
    before = table_bytes("prices_pricebar")
    began = time.perf_counter()
    with transaction.atomic():  # the staging table lives for a transaction
        _upsert_postgres(other.id, "1m", series)
    wall = time.perf_counter() - began
    rows_size = table_bytes("prices_pricebar") - before
    print(f"  one row per bar instead: {rows_size / len(series.time):.1f} B/bar, "
          f"written in {wall:.2f} s")  # fmt: skip
    PriceBar.objects.filter(crypto=other).delete()
    other.delete()


def many_coins(coins: int) -> None:
    from django.core.management import call_command

    from prices.blocks import blocks_fetch
    from prices.models import Cryptocurrency, PriceBlock
    from prices.services import bars_delete

    bars_delete(list(Cryptocurrency.objects.all()))
    began = time.perf_counter()
    call_command("seed_demo", "--interval", "1m", "--symbols", str(coins),
                 "--years", "1", stdout=io.StringIO())  # fmt: skip
    wall = time.perf_counter() - began
    bars = sum(PriceBlock.objects.values_list("bars", flat=True))
    size = table_bytes("prices_priceblock")
    print(
        f"seed_demo --interval 1m --symbols {coins} --years 1: {bars:,} bars in "
        f"{wall:.1f} s ({bars / wall:,.0f} bars/s, hourly and daily bars too)"
    )
    print(f"  stored: {size / 2**20:,.1f} MiB = {size / bars:.1f} B/bar "
          "(synthetic decimals)")  # fmt: skip
    print(f"  cold load of one coin-year among {coins}: "
          + timed(lambda: cold_load("BTC")))  # fmt: skip
    ids = list(Cryptocurrency.objects.values_list("id", flat=True))
    print(f"  all {coins} coin-years from the database: "
          + timed(lambda: blocks_fetch(ids, interval="1m"), repeat=3))  # fmt: skip


def load_average() -> str:
    """Return the 1-minute load average (how busy the shared machine was)."""
    return f"{os.getloadavg()[0]:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--symbol", default="BTC")
    parser.add_argument("--coins", type=int, default=0)
    args = parser.parse_args()
    print(f"load average {load_average()} on {os.cpu_count()} cores")
    with postgres_server() as url:
        setup(url)
        one_coin_year(args.data, args.symbol)
        if args.coins:
            many_coins(args.coins)
    print(f"load average {load_average()} at the end")


if __name__ == "__main__":
    main()
