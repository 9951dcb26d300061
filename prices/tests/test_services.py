"""Imports (command and service), derived daily bars, loading and its cache."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from prices import cache
from prices.models import Cryptocurrency, PriceBar
from prices.selectors import (
    UnknownSymbolError,
    _in_time_order,
    bars_fetch,
    bars_load,
    coins_uncached,
)
from prices.services import bars_import, daily_from_hourly
from prices.types import PriceSeries

pytestmark = pytest.mark.django_db(transaction=True)
HEADER = "timestamp,open,high,low,close,volume\n"


def csv_rows(start_hour: int, count: int, day: str = "2024-01-01", base: float = 10):
    rows = []
    for h in range(start_hour, start_hour + count):
        price = base + h
        rows.append(
            f"{day}T{h:02d}:00:00Z,{price},{price + 2},{price - 1},{price + 1},{h}\n"
        )
    return "".join(rows)


def importing(*paths: Path, **options) -> str:
    out = io.StringIO()
    call_command("import_prices", *map(str, paths), stdout=out, stderr=io.StringIO(),
                 **options)  # fmt: skip
    return out.getvalue()


def test_import_is_idempotent(tmp_path):
    path = tmp_path / "ABCUSDT.csv"
    path.write_text(HEADER + csv_rows(0, 24))
    importing(path)
    first = list(PriceBar.objects.order_by("interval", "time").values_list())
    importing(path)
    assert list(PriceBar.objects.order_by("interval", "time").values_list()) == first
    assert PriceBar.objects.filter(interval="1h").count() == 24
    assert Cryptocurrency.objects.get().symbol == "ABC"


def test_bad_file_writes_nothing_and_good_files_still_import(tmp_path):
    good = tmp_path / "GOODUSDT.csv"
    good.write_text(HEADER + csv_rows(0, 5))
    bad = tmp_path / "BADUSDT.csv"
    bad.write_text(HEADER + csv_rows(0, 5) + "2024-01-01T05:00:00Z,10,9,11,10,1\n")
    with pytest.raises(CommandError, match="1 file"):
        importing(bad, good)
    assert not Cryptocurrency.objects.filter(symbol="BAD").exists()
    assert PriceBar.objects.filter(crypto__symbol="GOOD", interval="1h").count() == 5


def test_daily_bars_by_hand_with_missing_hours(tmp_path):
    # Day 1: hours 0..23 but 5 and 6 missing; day 2: hours 0..2 only.
    text = HEADER + csv_rows(0, 5) + csv_rows(7, 17) + csv_rows(0, 3, "2024-01-02", 100)
    path = tmp_path / "DDDUSDT.csv"
    path.write_text(text)
    importing(path)
    days = list(PriceBar.objects.filter(interval="1d").order_by("time"))
    assert [d.time for d in days] == [
        datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC)
    ]  # fmt: skip
    # Day 1: first open 10 (hour 0), max high 23+10+2=35, min low 9, last close
    # 34 (hour 23), volume sum of hours present = 0+..+23 - 5 - 6 = 265.
    d1 = days[0]
    assert (d1.open, d1.high, d1.low, d1.close, d1.volume) == (10, 35, 9, 34, 265)
    d2 = days[1]
    assert (d2.open, d2.high, d2.low, d2.close, d2.volume) == (100, 104, 99, 103, 3)

    # Hours 5 and 6 arrive later: the day is re-derived.
    late = tmp_path / "DDDUSDT-late.csv"
    late.write_text(HEADER + "2024-01-01T05:00:00Z,15,50,1,16,100\n"
                    "2024-01-01T06:00:00Z,16,17,15,16,200\n")  # fmt: skip
    importing(late, symbol="DDD")
    d1 = PriceBar.objects.get(interval="1d", time=datetime(2024, 1, 1, tzinfo=UTC))
    assert (d1.open, d1.high, d1.low, d1.close, d1.volume) == (10, 50, 1, 34, 565)


def test_daily_from_hourly_arrays():
    t = np.array([0, 3600, 86_400 + 7200], dtype=np.int64)
    hourly = PriceSeries(t, np.array([1.0, 2, 3]), np.array([5.0, 6, 7]),
                         np.array([0.5, 1, 2]), np.array([2.0, 3, 4]),
                         np.array([1.0, 1, 1]))  # fmt: skip
    daily = daily_from_hourly(hourly)
    assert daily.time.tolist() == [0, 86_400]
    assert daily.open.tolist() == [1, 3] and daily.high.tolist() == [6, 7]
    assert daily.low.tolist() == [0.5, 2] and daily.close.tolist() == [3, 4]
    assert daily.volume.tolist() == [2, 1]


def series(n: int, start: int = 1_704_067_200, price: float = 100.0) -> PriceSeries:
    t = start + 3600 * np.arange(n, dtype=np.int64)
    close = price + np.arange(n, dtype=float)
    return PriceSeries(t, close, close + 1, close - 1, close, np.ones(n))


def test_load_returns_what_was_imported_with_exact_bounds():
    bars_import(symbol="AAA", series=series(48))
    loaded = bars_load(["AAA"])["AAA"]
    assert loaded.time.dtype == np.int64 and len(loaded.time) == 48
    np.testing.assert_array_equal(loaded.close, series(48).close)
    start = datetime(2024, 1, 1, 10, tzinfo=UTC)
    end = datetime(2024, 1, 1, 20, tzinfo=UTC)
    window = bars_load(["AAA"], start=start, end=end)["AAA"]
    # [10:00, 20:00): hours 10..19.
    assert len(window.time) == 10
    assert window.time[0] == start.timestamp() and window.close[0] == 110
    with pytest.raises(UnknownSymbolError, match="ZZZ"):
        bars_load(["AAA", "ZZZ"])
    with pytest.raises(ValueError, match="start"):
        bars_load(["AAA"], start=end, end=start)


def test_real_files_round_trip(real_data_dir):
    from prices.importers import parse_file

    for name in ("ETHUSDT.csv.gz", "SOLUSDT.csv.gz"):
        importing(real_data_dir / name)
    loaded = bars_load(["ETH", "SOL"])
    for symbol in ("ETH", "SOL"):
        parsed = parse_file(real_data_dir / f"{symbol}USDT.csv.gz").series
        for got, want in zip(loaded[symbol], parsed, strict=True):
            np.testing.assert_array_equal(got, want)


def test_batch_fetch_matches_the_rows_bar_for_bar():
    """The batch reader (packed per coin on PostgreSQL) against a plain ORM read."""
    rng = np.random.default_rng(7)
    for i, n in enumerate((500, 37, 1)):
        base = series(n, price=1 + i)
        # Gaps in time, prices with no short decimal form, exact ties.
        time = base.time + 3600 * np.cumsum(rng.integers(0, 3, n))
        close = base.close * rng.uniform(0.9, 1.1, n) / 3
        close[1::7] = close[0]
        s = PriceSeries(time, close, close * 1.01, close * 0.99, close, base.volume)
        bars_import(symbol=f"F{i}", series=s)
    Cryptocurrency.objects.create(symbol="EMPTY", name="No bars")
    coins = {c.symbol: c.id for c in Cryptocurrency.objects.all()}
    start = datetime(2024, 1, 2, tzinfo=UTC)
    fetched = bars_fetch(list(coins.values()), start=start)
    for symbol, coin_id in coins.items():
        rows = list(
            PriceBar.objects.filter(crypto_id=coin_id, interval="1h", time__gte=start)
            .order_by("time")
            .values_list("time", "open", "high", "low", "close", "volume")
        )
        got = fetched[coin_id]
        assert len(got.time) == len(rows), symbol
        assert got.time.tolist() == [int(r[0].timestamp()) for r in rows]
        for column, index in (("open", 1), ("high", 2), ("low", 3), ("close", 4)):
            assert getattr(got, column).tolist() == [r[index] for r in rows]
        assert got.volume.tolist() == [r[5] for r in rows]
    assert len(fetched[coins["EMPTY"]].time) == 0


def test_out_of_order_rows_are_put_in_time_order():
    s = series(5)
    order = np.array([3, 0, 4, 1, 2])
    shuffled = PriceSeries(*(column[order] for column in s))
    fixed = _in_time_order(shuffled)
    for got, want in zip(fixed, s, strict=True):
        np.testing.assert_array_equal(got, want)
    assert _in_time_order(s) is s


def test_one_query_for_any_number_of_coins(django_assert_num_queries):
    for i in range(5):
        bars_import(symbol=f"C{i}", series=series(30, price=10 + i))
    # Coin lookup + one batch query for the bars, whether 1 coin or 5.
    with django_assert_num_queries(2):
        bars_load(["C0"])
    cache.stats.reset()
    from django.core.cache import cache as django_cache

    django_cache.clear()
    with django_assert_num_queries(2):
        loaded = bars_load([f"C{i}" for i in range(5)])
    assert [s.close[0] for s in loaded.values()] == [10, 11, 12, 13, 14]
    # Warm: only the coin lookup touches the database.
    with django_assert_num_queries(1):
        again = bars_load([f"C{i}" for i in range(5)])
    assert cache.stats.snapshot()["hits"] == 5
    np.testing.assert_array_equal(again["C3"].close, loaded["C3"].close)


def test_uncached_coins_are_found_without_moving_arrays(django_assert_num_queries):
    for i in range(3):
        bars_import(symbol=f"W{i}", series=series(40, price=10 + i))
    Cryptocurrency.objects.filter(symbol="W2").update(is_active=False)
    # Active coins only; the coin list is the one query.
    with django_assert_num_queries(1):
        cold = coins_uncached()
    assert [c.symbol for c in cold] == ["W0", "W1"]
    bars_load(coins=cold)
    # Warm: existence checks only (no hits or misses counted: no arrays moved).
    cache.stats.reset()
    with django_assert_num_queries(1):
        assert coins_uncached() == []
    assert cache.stats.snapshot() == {"hits": 0, "misses": 0, "errors": 0}
    # New bars for one coin: only that coin is uncached again.
    bars_import(symbol="W0", series=series(41, price=10))
    assert [c.symbol for c in coins_uncached()] == ["W0"]


def test_a_range_is_cut_from_the_cached_full_history(django_assert_num_queries):
    bars_import(symbol="AAA", series=series(100))
    bars_import(symbol="BBB", series=series(60, start=1_704_067_200 + 7200))
    coin_ids = list(Cryptocurrency.objects.values_list("id", flat=True))
    bars_load(["AAA", "BBB"])  # the full histories, as a warm-up caches them

    def at(hour: int) -> datetime:
        return datetime.fromtimestamp(1_704_067_200 + 3600 * hour, UTC)

    ranges = [
        (at(10), at(20)),  # inside both
        (None, at(5)),  # up to an end; BBB starts at hour 2
        (at(-50), None),  # from before the first bar
        (at(30), at(500)),  # past the last bar
        (at(1), at(2)),  # one bar of AAA, none of BBB
        (at(300), None),  # nothing
    ]
    for start, end in ranges:
        expected = bars_fetch(coin_ids, start=start, end=end)
        cache.stats.reset()
        with django_assert_num_queries(1):  # the coin lookup; no bars read
            got = bars_load(["AAA", "BBB"], start=start, end=end)
        assert cache.stats.snapshot() == {"hits": 2, "misses": 0, "errors": 0}
        for coin_id, symbol in zip(sorted(coin_ids), ("AAA", "BBB"), strict=True):
            for a, b in zip(got[symbol], expected[coin_id], strict=True):
                np.testing.assert_array_equal(a, b)
                assert a.dtype == b.dtype


def test_no_coin_to_warm_with_the_cache_down(monkeypatch):
    bars_import(symbol="AAA", series=series(10))

    def down(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(cache, "_cache", down)
    assert coins_uncached() == []  # no error; runs read the database as usual


def test_import_invalidates_the_cache():
    bars_import(symbol="AAA", series=series(10))
    assert bars_load(["AAA"])["AAA"].close[0] == 100
    version = Cryptocurrency.objects.get(symbol="AAA").data_version
    changed = series(10, price=500)
    bars_import(symbol="AAA", series=changed, replace=True)
    assert Cryptocurrency.objects.get(symbol="AAA").data_version == version + 1
    assert bars_load(["AAA"])["AAA"].close[0] == 500


def test_codec_round_trip():
    original = series(7)
    decoded = cache.decode(cache.encode(original))
    for got, want in zip(decoded, original, strict=True):
        np.testing.assert_array_equal(got, want)
        assert got.dtype == want.dtype
    with pytest.raises(ValueError):
        cache.decode(cache.encode(original)[:-8])


@pytest.mark.parametrize(
    ("bad_name", "bad_text", "options", "problem"),
    [
        # A date that datetime cannot represent, a bar before the epoch.
        ("YEARUSDT.csv", HEADER + "9999-12-31T23:00:00Z,10,12,9,11,4\n", {},
         "line 2: timestamp is more than a day in the future"),
        ("OLDUSDT.csv", HEADER + "0001-01-01T00:00:00Z,10,12,9,11,4\n", {},
         "line 2: timestamp is before 1970-01-01"),
        # A file name giving a symbol longer than the column (was a DataError).
        ("AVERYLONGFILENAMEFORACOINUSDT.csv", HEADER + csv_rows(0, 2), {},
         "symbol 'AVERYLONGFILENAMEFORACOIN' must be"),
        ("=CMD.csv", HEADER + csv_rows(0, 2), {}, "symbol '=CMD' must be"),
    ],
)  # fmt: skip
def test_every_problem_of_a_file_is_reported_and_the_next_file_imports(
    tmp_path, bad_name, bad_text, options, problem
):
    bad = tmp_path / bad_name
    bad.write_text(bad_text)
    good = tmp_path / "GOODUSDT.csv"
    good.write_text(HEADER + csv_rows(0, 5))
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 file"):
        call_command("import_prices", str(bad), str(good), stdout=io.StringIO(),
                     stderr=err, **options)  # fmt: skip
    assert f"error: {bad}" in err.getvalue() and problem in err.getvalue()
    assert list(Cryptocurrency.objects.values_list("symbol", flat=True)) == ["GOOD"]
    hourly = PriceBar.objects.filter(crypto__symbol="GOOD", interval="1h")
    # The good file's rows, by hand from csv_rows: hour h opens at 10 + h.
    assert list(hourly.order_by("time").values_list("open", "volume")) == [
        (10.0 + h, float(h)) for h in range(5)
    ]


def test_a_bad_symbol_option_fails_every_file_and_writes_nothing(tmp_path):
    path = tmp_path / "GOODUSDT.csv"
    path.write_text(HEADER + csv_rows(0, 3))
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 file"):
        call_command("import_prices", str(path), symbol="<svg/onload=alert(1)>",
                     stdout=io.StringIO(), stderr=err)  # fmt: skip
    assert f"error: {path}: symbol '<SVG/ONLOAD=ALERT(1)>' must be" in err.getvalue()
    assert not Cryptocurrency.objects.exists() and not PriceBar.objects.exists()


def test_an_unexpected_error_fails_only_its_file(tmp_path, monkeypatch):
    from prices import services

    real = services.bars_upsert

    def flaky(coin, series, **kwargs):
        if coin.symbol == "BOOM":
            raise RuntimeError("disk on fire")
        return real(coin, series, **kwargs)

    monkeypatch.setattr(services, "bars_upsert", flaky)
    boom, good = tmp_path / "BOOMUSDT.csv", tmp_path / "GOODUSDT.csv"
    boom.write_text(HEADER + csv_rows(0, 3))
    good.write_text(HEADER + csv_rows(0, 4))
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 file"):
        call_command("import_prices", str(boom), str(good), stdout=io.StringIO(),
                     stderr=err)  # fmt: skip
    assert f"error: {boom}: RuntimeError: disk on fire" in err.getvalue()
    assert not Cryptocurrency.objects.filter(symbol="BOOM").exists()
    assert PriceBar.objects.filter(crypto__symbol="GOOD", interval="1h").count() == 4


def test_coins_are_never_created_with_a_bad_symbol():
    from django.core.exceptions import ValidationError

    from prices.services import coin_get_or_create

    with pytest.raises(ValueError, match="symbol '=CMD' must be"):
        coin_get_or_create("=CMD")
    with pytest.raises(ValidationError, match="symbol 'btc' must be"):
        Cryptocurrency(symbol="btc").full_clean()
    assert not Cryptocurrency.objects.exists()
