"""Where a coin's bars came from: imports never change or mix them silently."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from prices.demo import ANCHOR_END, HOURS_PER_YEAR, coin_series
from prices.models import Cryptocurrency, PriceBar
from prices.provenance import ImportConflict, bars_compare
from prices.selectors import bars_load, symbols_synthetic
from prices.services import bars_import
from prices.types import PriceSeries

pytestmark = pytest.mark.django_db(transaction=True)
HEADER = "timestamp,open,high,low,close,volume\n"
# The demo's first bar for one year of data.
DEMO_FIRST = ANCHOR_END - 3600 * (HOURS_PER_YEAR - 1)


def stamp(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def bar_rows(start: int, count: int, price: float = 10.0) -> str:
    """Return CSV rows of hourly bars from epoch ``start``: hour i opens at price+i."""
    rows = []
    for i in range(count):
        p = price + i
        rows.append(f"{stamp(start + 3600 * i)},{p},{p + 2},{p - 1},{p + 1},{i}\n")
    return "".join(rows)


def write(path: Path, text: str) -> Path:
    path.write_text(HEADER + text)
    return path


def run(command: str, *args: str, **options) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(command, *args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def failing(command: str, *args: str, **options) -> str:
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command(command, *args, stdout=io.StringIO(), stderr=err, **options)
    return err.getvalue()


def hourly(symbol: str) -> list[tuple]:
    bars = PriceBar.objects.filter(crypto__symbol=symbol, interval="1h")
    return list(bars.order_by("time").values_list("time", "open", "close"))


def test_import_after_the_demo_seed_is_refused_and_writes_nothing(tmp_path):
    run("seed_demo", "--symbols", "1", "--years", "1")  # BTC, synthetic
    before = hourly("BTC")
    btc = Cryptocurrency.objects.get(symbol="BTC")
    # Real-looking bars over the demo's last 10 hours and 5 hours past its end.
    path = write(tmp_path / "BTCUSDT.csv", bar_rows(ANCHOR_END - 9 * 3600, 15))
    err = failing("import_prices", str(path))
    demo = coin_series(0, HOURS_PER_YEAR, 42)
    first = HOURS_PER_YEAR - 10  # the demo's index of the file's first bar
    assert f"error: {path}: BTC: its bars come from demo" in err
    assert "these from file" in err
    # The first conflicting bar and its two values, by hand from both sides.
    when = stamp(ANCHOR_END - 9 * 3600)[:16]
    assert f"10 stored 1h bar(s) would change, the first at {when}Z" in err
    assert f"(open stored {float(demo.open[first])!r}, incoming 10.0)" in err
    assert hourly("BTC") == before
    after = Cryptocurrency.objects.get(symbol="BTC")
    assert after.source == "demo" and after.data_version == btc.data_version
    late = datetime.fromtimestamp(ANCHOR_END, UTC)
    assert not PriceBar.objects.filter(crypto=after, time__gt=late).exists()


def test_an_identical_reimport_is_all_unchanged_and_succeeds(tmp_path):
    path = write(tmp_path / "ABCUSDT.csv", bar_rows(1_704_067_200, 30))
    first, _ = run("import_prices", str(path))
    assert "30 new, 0 unchanged, 0 changed" in first
    version = Cryptocurrency.objects.get(symbol="ABC").data_version
    stored = hourly("ABC")
    again, _ = run("import_prices", str(path))  # no CommandError: exit status 0
    assert "0 new, 30 unchanged, 0 changed" in again
    assert hourly("ABC") == stored
    # Nothing written, so every cached array of the coin stays valid.
    assert Cryptocurrency.objects.get(symbol="ABC").data_version == version
    coin = Cryptocurrency.objects.get(symbol="ABC")
    assert (coin.source, coin.source_detail) == ("file", "ABCUSDT.csv")


def test_a_changed_value_is_refused_naming_time_and_both_values(tmp_path):
    start = 1_704_067_200  # 2024-01-01T00:00Z
    write(tmp_path / "ABCUSDT.csv", bar_rows(start, 10))
    run("import_prices", str(tmp_path / "ABCUSDT.csv"))
    stored = hourly("ABC")
    # Hour 3 (close 14 by bar_rows) closes at 13.5 now; hours 10-11 are new.
    rows = bar_rows(start, 12).splitlines(keepends=True)
    rows[3] = f"{stamp(start + 3 * 3600)},13,15,12,13.5,3\n"
    path = write(tmp_path / "ABCUSDT-v2.csv", "".join(rows))
    err = failing("import_prices", str(path), symbol="ABC")
    assert (
        "ABC: 1 stored 1h bar(s) would change, the first at 2024-01-01T03:00Z "
        "(close stored 14.0, incoming 13.5)"
    ) in err
    assert "nothing imported from this file" in err
    assert hourly("ABC") == stored  # hours 10-11 not added either


def test_replace_deletes_the_old_bars_in_the_same_transaction(tmp_path):
    run("seed_demo", "--symbols", "2", "--years", "1")  # BTC and ETH
    path = write(tmp_path / "BTCUSDT.csv", bar_rows(DEMO_FIRST + 100 * 3600, 48))
    out, _ = run("import_prices", str(path), replace=True)
    # Hours 0..47 of the file against the demo's: every value differs.
    assert "0 new, 0 unchanged, 48 changed" in out
    assert f"replacing {HOURS_PER_YEAR + 365:,} stored bars" in out
    bars = hourly("BTC")
    assert len(bars) == 48
    assert [(o, c) for _, o, c in bars] == [(10.0 + i, 11.0 + i) for i in range(48)]
    # Daily bars derived from the file's hours only (48 hours over 2 or 3 days).
    days = PriceBar.objects.filter(crypto__symbol="BTC", interval="1d").count()
    first_day = (DEMO_FIRST + 100 * 3600) // 86_400
    last_day = (DEMO_FIRST + 147 * 3600) // 86_400
    assert days == last_day - first_day + 1
    btc = Cryptocurrency.objects.get(symbol="BTC")
    assert (btc.source, btc.source_detail) == ("file", "BTCUSDT.csv")
    assert not btc.is_synthetic
    assert len(hourly("ETH")) == HOURS_PER_YEAR  # the other demo coin untouched
    assert symbols_synthetic() == ["ETH"]


def test_replace_of_several_files_of_one_coin_keeps_them_all(tmp_path):
    run("seed_demo", "--symbols", "1", "--years", "1")
    jan = write(tmp_path / "BTCUSDT-1h-2024-01.csv", bar_rows(1_704_067_200, 5))
    feb = write(tmp_path / "BTCUSDT-1h-2024-02.csv", bar_rows(1_706_745_600, 5))
    run("import_prices", str(jan), str(feb), replace=True)
    assert len(hourly("BTC")) == 10
    assert Cryptocurrency.objects.get(symbol="BTC").source_detail == (
        "BTCUSDT-1h-2024-01.csv, BTCUSDT-1h-2024-02.csv"
    )


def test_bars_from_another_source_are_refused_even_without_overlap(tmp_path):
    start = 1_704_067_200
    t = start + 3600 * np.arange(5, dtype=np.int64)
    flat = np.full(5, 2.0)
    bars_import(symbol="XYZ", series=PriceSeries(t, *[flat] * 5), source="archive",
                detail="https://archive.test/data")  # fmt: skip
    later = write(tmp_path / "XYZUSDT.csv", bar_rows(start + 10 * 3600, 3))
    err = failing("import_prices", str(later))
    assert "XYZ: its bars come from archive (https://archive.test/data), " in err
    assert "these from file" in err and "would change" not in err
    assert len(hourly("XYZ")) == 5
    with pytest.raises(ImportConflict, match="XYZ: its bars come from archive"):
        bars_import(symbol="XYZ", series=PriceSeries(t, *[flat] * 5), source="file")
    with pytest.raises(ValueError, match="source: must be one of"):
        bars_import(symbol="XYZ", series=PriceSeries(t, *[flat] * 5), source="web")


def test_seed_demo_never_touches_an_imported_coin(tmp_path):
    path = write(tmp_path / "BTCUSDT.csv", bar_rows(1_704_067_200, 24))
    run("import_prices", str(path))
    imported = hourly("BTC")
    out, _ = run("seed_demo", "--symbols", "2", "--years", "1")
    assert "skipped BTC: their bars come from elsewhere" in out
    assert "seeded 1 coins" in out
    assert hourly("BTC") == imported
    assert Cryptocurrency.objects.get(symbol="BTC").source == "file"
    eth = bars_load(["ETH"])["ETH"]
    np.testing.assert_array_equal(eth.close, coin_series(1, HOURS_PER_YEAR, 42).close)
    assert symbols_synthetic() == ["ETH"]
    assert symbols_synthetic(["BTC", "ETH", "SOL"]) == ["ETH"]
    assert Cryptocurrency.objects.get(symbol="ETH").is_synthetic


def test_a_coin_without_bars_takes_any_source():
    coin = Cryptocurrency.objects.create(symbol="NEW")
    assert coin.source == "" and not coin.is_synthetic
    t = 1_704_067_200 + 3600 * np.arange(3, dtype=np.int64)
    flat = np.full(3, 1.0)
    result = bars_import(symbol="NEW", series=PriceSeries(t, *[flat] * 5),
                         source="archive", detail="base")  # fmt: skip
    assert (result.new_rows, result.unchanged_rows, result.changed_rows) == (3, 0, 0)
    coin.refresh_from_db()
    assert (coin.source, coin.source_detail) == ("archive", "base")


def compare_by_loop(stored: PriceSeries, incoming: PriceSeries):
    """Reference: count new, unchanged and changed bars one by one."""
    at = {int(t): i for i, t in enumerate(stored.time)}
    new = unchanged = changed = 0
    first = None
    for j, t in enumerate(incoming.time):
        i = at.get(int(t))
        if i is None:
            new += 1
            continue
        diff = [n for n in ("open", "high", "low", "close", "volume")
                if getattr(stored, n)[i] != getattr(incoming, n)[j]]  # fmt: skip
        if not diff:
            unchanged += 1
            continue
        changed += 1
        if first is None:
            n = diff[0]
            first = (int(t), n, getattr(stored, n)[i], getattr(incoming, n)[j])
    return new, unchanged, changed, first


@pytest.mark.django_db(transaction=False)
@pytest.mark.parametrize("seed", range(5))
def test_bars_compare_matches_a_plain_loop(seed):
    rng = np.random.default_rng(seed)

    def random_series(n: int) -> PriceSeries:
        t = np.unique(rng.integers(0, 60, n)) * 3600
        values = rng.integers(1, 3, (5, len(t))).astype(float)
        return PriceSeries(t, *values)

    stored, incoming = random_series(40), random_series(40)
    got = bars_compare(stored, incoming)
    new, unchanged, changed, first = compare_by_loop(stored, incoming)
    assert (got.new_count, got.unchanged_count, got.changed_count) == (
        new, unchanged, changed
    )  # fmt: skip
    assert got.first_change == first
    empty = bars_compare(PriceSeries.empty(), incoming)
    assert empty.new_count == len(incoming.time) and empty.first_change is None


def test_the_admin_import_follows_the_same_rule(admin_client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    run("seed_demo", "--symbols", "1", "--years", "1")
    before = hourly("BTC")
    url = "/admin/prices/cryptocurrency/import/"
    assert 'href="/admin/prices/cryptocurrency/import/"' in (
        admin_client.get("/admin/prices/cryptocurrency/").content.decode()
    )
    text = HEADER + bar_rows(ANCHOR_END - 3600, 3)  # 2 stored hours, 1 new

    def upload(**fields):
        file = SimpleUploadedFile("BTCUSDT.csv", text.encode())
        return admin_client.post(url, {"file": file, **fields})

    refused = upload()
    assert refused.status_code == 200  # the form again, with the reason
    html = refused.content.decode()
    assert "BTC: its bars come from demo" in html
    assert "2 stored 1h bar(s) would change" in html
    assert hourly("BTC") == before
    done = upload(replace="on")
    assert done.status_code == 302
    assert [(o, c) for _, o, c in hourly("BTC")] == [(10.0, 11.0), (11.0, 12.0),
                                                     (12.0, 13.0)]  # fmt: skip
    btc = Cryptocurrency.objects.get(symbol="BTC")
    assert (btc.source, btc.source_detail) == ("file", "BTCUSDT.csv")
    again = upload()  # identical: all unchanged
    assert again.status_code == 302
    listing = admin_client.get("/admin/prices/cryptocurrency/?source=file")
    assert "3 unchanged" in listing.content.decode()
    assert [c.symbol for c in listing.context["cl"].result_list] == ["BTC"]
    page = admin_client.get(f"/admin/prices/cryptocurrency/{btc.pk}/change/")
    assert "BTCUSDT.csv" in page.content.decode()


def test_the_backtest_table_names_the_synthetic_coins(tmp_path):
    run("seed_demo", "--symbols", "2", "--years", "1")  # BTC and ETH
    write(tmp_path / "ABCUSDT.csv", bar_rows(1_704_067_200, 200))
    run("import_prices", str(tmp_path / "ABCUSDT.csv"))
    sma = ["--strategy", "sma_crossover", "--param", "fast=5", "--param", "slow=20"]
    out, _ = run("backtest", *sma, "--symbols", "BTC,ABC", no_save=True)
    assert "synthetic demo data: BTC" in out.splitlines()
    real, _ = run("backtest", *sma, "--symbols", "ABC", no_save=True)
    assert "synthetic demo data" not in real
