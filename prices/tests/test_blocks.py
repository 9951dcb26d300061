"""Sub-hour bars in day blocks: round trips, merges, gaps, timestamps, migration."""

from __future__ import annotations

import importlib
import io
import json
from datetime import UTC, date, datetime

import numpy as np
import pytest
from django.apps import apps
from django.core.management import CommandError, call_command

from prices.blocks import blocks_write
from prices.importers import ImportFormatError, parse_file
from prices.minute_demo import minute_year
from prices.models import Cryptocurrency, PriceBar, PriceBlock
from prices.packing import BlockError, decode, decode_many, encode
from prices.provenance import ImportConflict
from prices.selectors import (
    bars_fetch,
    bars_load,
    coins_with_range,
    coins_with_stats,
)
from prices.services import bars_import, file_import
from prices.tests.archive_server import ArchiveServer, ArchiveTree
from prices.tests.minute_data import (
    HEADER,
    minute_lines,
    plain_aggregate,
    plain_read,
    real_hours,
)
from prices.types import PriceSeries

DAY = 86_400


def rows_of(series: PriceSeries) -> list[tuple]:
    return list(zip(*(column.tolist() for column in series), strict=True))


def assert_bars(series: PriceSeries, expected: list[tuple]) -> None:
    """Times and prices exactly; summed volumes to the last few bits."""
    got = rows_of(series)
    assert [row[:5] for row in got] == [row[:5] for row in expected]
    assert [row[5] for row in got] == pytest.approx([row[5] for row in expected])


def write(path, lines: list[str]):
    path.write_text(HEADER + "".join(lines))
    return path


def blocks_snapshot() -> list[tuple]:
    return list(
        PriceBlock.objects.order_by("crypto", "interval", "day").values_list(
            "crypto__symbol", "interval", "day", "bars", "data"
        )
    )


@pytest.fixture
def minutes(real_data_dir) -> dict[str, list[str]]:
    """Four real days of BTC and of DOGE as 1-minute CSV lines."""
    return {
        symbol: minute_lines(
            real_hours(real_data_dir / f"{symbol}USDT.csv.gz", 96, 20_000)
        )
        for symbol in ("BTC", "DOGE")
    }


# --- the codec alone ---------------------------------------------------------


def test_codec_round_trips_decimals_floats_and_gaps_bit_for_bit():
    rng = np.random.default_rng(3)
    slots = np.sort(rng.choice(1440, 900, replace=False))
    times = 5 * DAY + 60 * slots
    close = np.round(100 + rng.normal(0, 1, 900).cumsum(), 3)
    decimal = PriceSeries(
        times,
        close + 0.5,
        close + 1.25,
        close - 1.5,
        close,
        np.round(rng.random(900), 4),
    )
    noise = PriceSeries(times, *(rng.random(900) + 1 for _ in range(5)))
    for series in (decimal, noise):
        back = decode(5 * DAY, encode(series, 60), 60)
        for got, want in zip(back, series, strict=True):
            assert got.tobytes() == np.asarray(want).tobytes()
    # Two days packed differently read back together, in order.
    later = PriceSeries(*(np.asarray(c)[:10] for c in noise))
    later = PriceSeries(later.time + DAY, *later[1:])
    both = decode_many([5 * DAY, 6 * DAY], [encode(decimal, 60), encode(later, 60)], 60)
    assert both.time.tolist() == decimal.time.tolist() + later.time.tolist()
    assert both.close.tolist() == decimal.close.tolist() + later.close.tolist()
    # Days of floats read together: what one day's closes carry is undone.
    next_day = PriceSeries(noise.time + DAY, *(column[::-1] for column in noise[1:]))
    floats = decode_many(
        [5 * DAY, 6 * DAY], [encode(noise, 60), encode(next_day, 60)], 60
    )
    for got, first, second in zip(floats, noise, next_day, strict=True):
        assert got.tobytes() == np.concatenate([first, second]).tobytes()


def test_codec_refuses_bad_blocks_and_days():
    one = PriceSeries(*(np.array([x]) for x in (60, 1.0, 2.0, 0.5, 1.5, 3.0)))
    block = encode(one, 60)
    with pytest.raises(BlockError, match="shorter than its header"):
        decode(0, block[:3], 60)
    with pytest.raises(BlockError, match="layout 9"):
        decode(0, b"\x09" + block[1:], 60)
    with pytest.raises(BlockError, match="wrong length"):
        decode(0, block[:-2], 60)
    two_days = PriceSeries(*(np.array([x, x]) for x in (60, 1.0, 2.0, 0.5, 1.5, 3.0)))
    two_days = PriceSeries(np.array([60, DAY + 60]), *two_days[1:])
    with pytest.raises(ValueError, match="one UTC day"):
        encode(two_days, 60)


# --- imports and loads --------------------------------------------------------

pytestmark_db = pytest.mark.django_db(transaction=True)


@pytestmark_db
def test_real_minutes_round_trip_and_build_coarser_bars(tmp_path, minutes):
    counts, wanted = {}, {}
    for symbol, lines in minutes.items():
        # Gaps: a missing day (the third) and minutes missing here and there.
        dates = sorted({line[:10] for line in lines})
        kept = [line for line in lines if line[:10] != dates[2]]
        kept = [line for i, line in enumerate(kept) if i % 97 != 5]
        file_import(write(tmp_path / f"{symbol}USDT-1m.csv", kept))
        expected = plain_read(kept)
        counts[symbol] = len(expected)
        wanted[symbol] = expected
        coin = Cryptocurrency.objects.get(symbol=symbol)
        days = len(dates) - 1
        assert PriceBlock.objects.filter(crypto=coin).count() == days
        assert PriceBar.objects.filter(crypto=coin).count() == 0
        loaded = bars_load([symbol], interval="1m")[symbol]
        assert rows_of(loaded) == expected
        for interval, seconds in (("5m", 300), ("1h", 3600), ("1d", DAY)):
            built = bars_load([symbol], interval=interval)[symbol]
            assert_bars(built, plain_aggregate(expected, seconds))
        # A range inside the days: only its bars, cut at both ends.
        lo, hi = expected[100][0], expected[2000][0]
        part = bars_load(
            [symbol],
            interval="1m",
            start=datetime.fromtimestamp(lo, UTC),
            end=datetime.fromtimestamp(hi, UTC),
        )[symbol]
        assert rows_of(part) == [row for row in expected if lo <= row[0] < hi]
    # Both coins in one read (no cache): each gets its own days, in order.
    both = bars_fetch(
        list(Cryptocurrency.objects.values_list("id", flat=True)), interval="1m"
    )
    for coin_id, series in both.items():
        assert rows_of(series) == wanted[Cryptocurrency.objects.get(pk=coin_id).symbol]
    # The coin list counts the minutes from the blocks.
    assert {c.symbol: c.minute_bars for c in coins_with_stats()} == counts


@pytestmark_db
def test_overlapping_imports_merge_and_reimports_change_nothing(tmp_path, minutes):
    lines = minutes["BTC"]
    first = write(tmp_path / "BTCUSDT-1m-a.csv", lines[:3000])
    second = write(tmp_path / "BTCUSDT-1m-b.csv", lines[2000:])
    file_import(first)
    result = file_import(second)
    assert (result.new_rows, result.unchanged_rows) == (len(lines) - 3000, 1000)
    loaded = bars_load(["BTC"], interval="1m")["BTC"]
    assert rows_of(loaded) == plain_read(lines)
    coin = Cryptocurrency.objects.get()
    before, version = blocks_snapshot(), coin.data_version
    again = file_import(second)
    assert (again.new_rows, again.changed_rows) == (0, 0)
    assert blocks_snapshot() == before
    coin.refresh_from_db()
    assert coin.data_version == version
    # A changed bar is refused and nothing is written; --replace takes it.
    stamp, o, h, lo, c, v = lines[10].strip().split(",")
    changed = lines[:10] + [f"{stamp},{o},{h},{lo},{c},{float(v) + 1}\n"]
    path = write(tmp_path / "BTCUSDT-1m-c.csv", changed)
    with pytest.raises(ImportConflict, match="1m"):
        file_import(path)
    assert blocks_snapshot() == before
    result = file_import(path, replace=True)
    assert result.removed_rows == len(lines)
    assert rows_of(bars_load(["BTC"], interval="1m")["BTC"]) == plain_read(changed)


def test_clean_and_untidy_files_parse_to_the_same_bars(tmp_path, minutes):
    # A clean file takes the numeric reader; spaces after the commas send the
    # same rows through the text reader. Both must give what float() gives.
    lines = minutes["DOGE"][:3000]
    clean = write(tmp_path / "DOGEUSDT-1m.csv", lines)
    untidy = write(
        tmp_path / "DOGEUSDT-1m-x.csv", [x.replace(",", ", ") for x in lines]
    )
    expected = plain_read(lines)
    for path in (clean, untidy):
        assert rows_of(parse_file(path).series) == expected
    bad = write(tmp_path / "DOGEUSDT-1m-y.csv", lines[:2500] + ["someday,1,1,1,1,1\n"])
    with pytest.raises(ImportFormatError, match="line 2502: bad timestamp"):
        parse_file(bad)


@pytestmark_db
def test_new_minutes_are_loaded_after_an_import_not_the_cached_ones(tmp_path, minutes):
    lines = minutes["DOGE"]
    file_import(write(tmp_path / "DOGEUSDT-1m-a.csv", lines[:1440]))
    assert len(bars_load(["DOGE"], interval="1m")["DOGE"].time) == 1440
    assert len(bars_load(["DOGE"], interval="1h")["DOGE"].time) == 24
    file_import(write(tmp_path / "DOGEUSDT-1m-b.csv", lines[1440:2000]))
    assert len(bars_load(["DOGE"], interval="1m")["DOGE"].time) == 2000
    assert len(bars_load(["DOGE"], interval="1h")["DOGE"].time) == 34


@pytestmark_db
def test_kline_minutes_in_milliseconds_and_microseconds_meet(tmp_path):
    # The exchange wrote open times in ms before 2025 and in µs from then on.
    new_year = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp())
    lines = []
    expected = []
    for minute in range(-3, 3):
        t = new_year + 60 * minute
        stamp = t * 1000 if t < new_year else t * 1_000_000
        price = 100 + minute
        lines.append(f"{stamp},{price},{price + 1},{price - 1},{price},{minute + 3}\n")
        expected.append((t, price, price + 1, price - 1, price, minute + 3))
    path = tmp_path / "ABCUSDT-1m-2024-12.csv"
    path.write_text("".join(lines))
    file_import(path)
    assert rows_of(bars_load(["ABC"], interval="1m")["ABC"]) == expected
    days = sorted(PriceBlock.objects.values_list("day", flat=True))
    assert [str(d) for d in days] == ["2024-12-31", "2025-01-01"]


@pytestmark_db
def test_migration_moves_sub_hour_rows_into_blocks_and_back(monkeypatch):
    migration = importlib.import_module(
        "prices.migrations.0007_sub_hour_bars_to_blocks"
    )
    # Small chunks: days split by a chunk's end wait for the next chunk.
    monkeypatch.setattr(migration, "CHUNK_ROWS", 1000)
    coin = Cryptocurrency.objects.create(symbol="OLD")
    rng = np.random.default_rng(5)
    stored = {}
    for interval, step, count in (("1m", 60, 3000), ("5m", 300, 700)):
        times = DAY * 10 + step * np.sort(rng.choice(count * 2, count, replace=False))
        close = np.round(50 + rng.normal(0, 0.1, count).cumsum(), 2)
        bars = [
            (int(t), c, c + 0.5, c - 0.25, c + 0.125, float(i))
            for i, (t, c) in enumerate(zip(times.tolist(), close.tolist(), strict=True))
        ]
        PriceBar.objects.bulk_create(
            PriceBar(
                crypto=coin, interval=interval, time=datetime.fromtimestamp(t, UTC),
                open=o, high=h, low=lo, close=c, volume=v,
            )
            for t, o, h, lo, c, v in bars
        )  # fmt: skip
        stored[interval] = bars
    PriceBar.objects.create(
        crypto=coin, interval="1h", time=datetime(2020, 1, 1, tzinfo=UTC),
        open=1, high=1, low=1, close=1, volume=1,
    )  # fmt: skip
    migration.rows_to_blocks(apps, None)
    assert list(PriceBar.objects.values_list("interval", flat=True)) == ["1h"]
    for interval, bars in stored.items():
        assert rows_of(bars_load(["OLD"], interval=interval)["OLD"]) == bars
    migration.blocks_to_rows(apps, None)
    assert not PriceBlock.objects.exists()
    for interval, bars in stored.items():
        back = [
            (int(t.timestamp()), o, h, lo, c, v)
            for t, o, h, lo, c, v in PriceBar.objects.filter(interval=interval)
            .order_by("time")
            .values_list("time", "open", "high", "low", "close", "volume")
        ]
        assert back == bars


@pytestmark_db
def test_seed_demo_minutes_are_deterministic_and_hours_are_built_from_them():
    def seed() -> list[tuple]:
        call_command(
            "seed_demo", "--interval", "1m", "--symbols", "2", "--years", "1",
            stdout=io.StringIO(), stderr=io.StringIO(),
        )  # fmt: skip
        return blocks_snapshot()

    first = seed()
    assert len(first) == 2 * 365
    assert sum(row[3] for row in first) == 2 * 525_600
    assert seed() == first
    minutes = bars_load(["BTC"], interval="1m")["BTC"]
    assert minutes.time[-1] == int(
        datetime(2025, 12, 31, 23, 59, tzinfo=UTC).timestamp()
    )
    assert np.all(np.diff(minutes.time) == 60)
    assert np.all(minutes.high >= np.maximum(minutes.open, minutes.close))
    assert np.all(minutes.low <= np.minimum(minutes.open, minutes.close))
    assert np.all(minutes.low > 0)
    hours = PriceBar.objects.filter(crypto__symbol="BTC", interval="1h")
    assert hours.count() == 8760
    stored = bars_load(["BTC"], interval="1h")["BTC"]
    head = rows_of(PriceSeries(*(column[: 60 * 48] for column in minutes)))
    assert_bars(
        PriceSeries(*(column[:48] for column in stored)), plain_aggregate(head, 3600)
    )
    with pytest.raises(CommandError, match="--interval: must be 1h or 1m"):
        call_command("seed_demo", "--interval", "5m", stdout=io.StringIO())


@pytestmark_db
def test_seed_demo_leaves_a_coin_with_imported_minutes_alone():
    times = np.arange(3) * 60
    ones = np.ones(3)
    bars_import(symbol="BTC", series=PriceSeries(times, *(ones,) * 5), interval="1m")
    out = io.StringIO()
    call_command(
        "seed_demo", "--interval", "1m", "--symbols", "1", "--years", "1",
        stdout=out, stderr=io.StringIO(),
    )  # fmt: skip
    assert "skipped BTC" in out.getvalue()
    assert sum(PriceBlock.objects.values_list("bars", flat=True)) == 3


@pytestmark_db
def test_download_prices_stores_a_month_of_minutes_in_blocks(
    tmp_path, real_data_dir, settings
):
    tree = ArchiveTree(tmp_path / "archive", real_data_dir)
    hours = tree.rows("BTC", date(2021, 1, 1), date(2021, 1, 31))
    lines = minute_lines(
        [
            [row.timestamp, *(repr(float(x)) for x in row[1:6])]
            for row in hours.itertuples(index=False)
        ]
    )
    expected = plain_read(lines)
    klines = "".join(
        f"{t * 1000},{line.split(',', 1)[1].strip()},{t * 1000 + 59_999},0,0,0,0,0\n"
        for (t, *_), line in zip(expected, lines, strict=True)
    )
    stem = "BTCUSDT-1m-2021-01"
    tree.write(f"data/spot/monthly/klines/BTCUSDT/1m/{stem}.zip", klines.encode())
    server = ArchiveServer(tree.root).start()
    settings.MARKET_DATA_URL = server.url
    try:
        args = ["--symbols", "BTC", "--interval", "1m", "--start", "2021-01-01",
                "--end", "2021-01-31"]  # fmt: skip
        call_command(
            "download_prices", *args, stdout=io.StringIO(), stderr=io.StringIO()
        )
        assert rows_of(bars_load(["BTC"], interval="1m")["BTC"]) == expected
        assert PriceBlock.objects.count() == 31
        assert not PriceBar.objects.exists()
        server.requests.clear()
        out = io.StringIO()
        call_command("download_prices", *args, stdout=out, stderr=io.StringIO())
        assert server.requests == [] and "1 already stored" in out.getvalue()
    finally:
        server.stop()


@pytestmark_db
def test_admin_coin_list_counts_minute_bars_from_the_blocks(admin_client):
    times = 86_400 * 3 + 60 * np.r_[np.arange(1000), 1440 + np.arange(234)]
    ones = np.ones(len(times))
    bars_import(symbol="MIN", series=PriceSeries(times, *(ones,) * 5), interval="1m")
    html = admin_client.get("/admin/prices/cryptocurrency/").content.decode()
    assert "1-minute bars" in html
    assert '<td class="field-minute_bars">1234</td>' in html, html


@pytestmark_db
def test_an_import_rewrites_only_the_days_it_brings_bars_for():
    def day_of(offset: int, minutes: np.ndarray) -> PriceSeries:
        times = DAY * (100 + offset) + 60 * minutes
        prices = 10.0 + minutes / 100
        return PriceSeries(times, prices, prices + 1, prices - 1, prices, prices)

    first = day_of(0, np.arange(0, 600, 2))
    middle = day_of(1, np.arange(100))
    bars_import(symbol="GAP", series=first, interval="1m")
    bars_import(symbol="GAP", series=middle, interval="1m")
    kept = PriceBlock.objects.get(day=date(1970, 4, 12))  # epoch day 101
    # New bars on the first and the third day only, around the middle one.
    late = PriceSeries(
        *(np.concatenate(pair) for pair in zip(
            day_of(0, np.arange(1, 600, 2)), day_of(2, np.arange(5)), strict=True
        ))
    )  # fmt: skip
    coin = Cryptocurrency.objects.get(symbol="GAP")
    assert blocks_write(coin.id, "1m", late) == 2  # the first and third days
    again = PriceBlock.objects.get(day=date(1970, 4, 12))
    assert (again.pk, bytes(again.data)) == (kept.pk, bytes(kept.data))
    loaded = bars_load(["GAP"], interval="1m")["GAP"]
    expected = sorted(rows_of(first) + rows_of(middle) + rows_of(late))
    assert rows_of(loaded) == expected
    assert PriceBlock.objects.count() == 3


@pytestmark_db
def test_a_coin_with_only_minutes_has_a_range_and_runs_over_one(tmp_path, minutes):
    lines = minutes["BTC"][1440:]  # the last three of four real days of minutes
    file_import(write(tmp_path / "BTCUSDT-1m.csv", lines))
    expected = plain_read(lines)
    coin = coins_with_range().get(symbol="BTC")
    first_day = expected[0][0] // DAY * DAY
    last_day = expected[-1][0] // DAY * DAY
    assert int(coin.first_bar.timestamp()) == first_day
    assert int(coin.last_bar.timestamp()) == last_day + DAY - 60
    # A run over part of it is not refused as "no prices yet".
    start = datetime.fromtimestamp(first_day + DAY, UTC)
    out = io.StringIO()
    call_command(
        "backtest", "--strategy", "sma_crossover", "--symbols", "BTC",
        "--interval", "5m", "--start", f"{start:%Y-%m-%d}", "--no-save",
        "--format", "json", stdout=out, stderr=io.StringIO(),
    )  # fmt: skip
    (result,) = json.loads(out.getvalue())["results"]
    later = [row for row in expected if row[0] >= first_day + DAY]
    assert result["bars"] == len(plain_aggregate(later, 300))


def test_price_cache_entries_of_a_year_of_minutes_and_of_nothing_round_trip():
    from prices import cache

    for series in (minute_year(3, 0, 1, 42), PriceSeries.empty()):
        back = cache.decode(cache.encode(series))
        for got, want in zip(back, series, strict=True):
            assert got.tobytes() == np.asarray(want).tobytes()
