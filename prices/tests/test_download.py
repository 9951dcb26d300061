"""download_prices against a real local HTTP server serving real candles as zips."""

from __future__ import annotations

import io
import threading
import zipfile
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from prices.download import prices_download
from prices.models import ArchiveFile, Cryptocurrency, DownloadJob, PriceBar
from prices.tests.archive_server import ArchiveServer, ArchiveTree, kline_csv

pytestmark = pytest.mark.django_db
MONTHS = [date(2021, 1, 1), date(2021, 2, 1), date(2021, 3, 1)]


@pytest.fixture
def tree(tmp_path, real_data_dir) -> ArchiveTree:
    return ArchiveTree(tmp_path / "archive", real_data_dir)


@pytest.fixture
def server(tree, settings):
    server = ArchiveServer(tree.root).start()
    settings.MARKET_DATA_URL = server.url
    settings.MARKET_DATA_TIMEOUT = 5.0
    settings.MARKET_DATA_BACKOFF = 0.01
    yield server
    server.stop()


def download(*args: str, err: io.StringIO | None = None) -> tuple[str, str]:
    out, err = io.StringIO(), err or io.StringIO()
    call_command("download_prices", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def months(symbols: str = "BTC,ETH", end: str = "2021-03-31") -> tuple[str, ...]:
    return ("--symbols", symbols, "--start", "2021-01-01", "--end", end)


def stored(symbol: str) -> pd.DataFrame:
    bars = PriceBar.objects.filter(crypto__symbol=symbol, interval="1h").order_by(
        "time"
    )
    frame = pd.DataFrame(
        list(bars.values_list("time", "open", "high", "low", "close", "volume")),
        columns=["time", "open", "high", "low", "close", "volume"],
    )
    if len(frame):
        frame["time"] = [int(t.timestamp()) for t in frame["time"]]
    return frame


def assert_same_bars(symbol: str, expected: pd.DataFrame) -> None:
    got = stored(symbol)
    assert got["time"].tolist() == expected["time"].tolist()
    for column in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(got[column], expected[column].to_numpy())


def test_full_download_then_a_rerun_fetches_nothing(tree, server):
    expected = {
        s: pd.concat([tree.add_month(s, m) for m in MONTHS]) for s in ("BTC", "ETH")
    }
    out, err = download(*months())
    assert "6 file(s) imported" in out
    for symbol, rows in expected.items():
        assert len(rows) > 2000  # three months of real hours
        assert_same_bars(symbol, rows)
    # Each file: its CHECKSUM, then the zip.
    assert len(server.seen(".CHECKSUM")) == 6
    assert len(server.seen(".zip")) == 6
    assert ArchiveFile.objects.count() == 6

    server.requests.clear()
    out, _ = download(*months())
    assert server.requests == []
    assert "6 already stored" in out


def test_current_month_comes_from_daily_files_up_to_yesterday(tree, server):
    month = tree.add_month("BTC", date(2021, 3, 1))
    days = [tree.add_day("BTC", date(2021, 4, d)) for d in (1, 2)]
    tree.add_day("BTC", date(2021, 4, 3))  # today: not complete, not asked for
    result = prices_download(
        symbols=["BTC"], start=date(2021, 3, 1), today=date(2021, 4, 3)
    )
    assert (result.imported, result.failures) == (3, [])
    assert_same_bars("BTC", pd.concat([month, *days]))
    assert not server.seen("2021-04-03.zip")


def test_corrupted_zip_is_refused_and_reported(tree, server):
    for m in MONTHS:
        tree.add_month("ETH", m)
    good = tree.month_path("ETH", MONTHS[1])
    # A zip whose bytes are not those the CHECKSUM file states.
    tree.write(good, b"1,2,3\n", checksum_of=b"the original zip")
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 file.*checksum mismatch"):
        download(*months("ETH"), err=err)
    assert "error: ETHUSDT-1h-2021-02.zip: checksum mismatch" in err.getvalue()
    times = stored("ETH")["time"]
    february = datetime(2021, 2, 1, tzinfo=UTC).timestamp()
    march = datetime(2021, 3, 1, tzinfo=UTC).timestamp()
    assert len(times) > 0
    assert not ((times >= february) & (times < march)).any()
    assert not ArchiveFile.objects.filter(name__contains="2021-02").exists()


def test_missing_month_is_reported_skipped_and_remembered(tree, server):
    tree.add_month("BTC", MONTHS[0])
    tree.add_month("BTC", MONTHS[2])
    out, err = download(*months("BTC"))  # exit status zero: nothing failed
    assert "missing: BTCUSDT-1h-2021-02.zip" in err
    assert "2 file(s) imported" in out and "1 missing" in out
    server.requests.clear()
    download(*months("BTC"))
    # The month ended long ago: the archive will not publish it any more.
    assert server.requests == []


def test_503_twice_then_success_is_retried(tree, server):
    tree.add_month("BTC", MONTHS[0])
    path = tree.month_path("BTC", MONTHS[0])
    server.fail_503[path] = 2
    out, _ = download(*months("BTC", end="2021-01-31"))
    assert "1 file(s) imported" in out
    assert server.seen(path.rsplit("/", 1)[1]) == [path] * 3
    assert len(stored("BTC")) == 744  # every hour of January 2021


def test_hanging_file_times_out_and_the_rest_goes_on(tree, server, settings):
    settings.MARKET_DATA_TIMEOUT = 0.3
    expected = [tree.add_month("BTC", m) for m in MONTHS]
    hanging = tree.month_path("BTC", MONTHS[0])
    server.hang.add(hanging)
    with pytest.raises(CommandError, match="1 file.*no answer within 0.3s"):
        download(*months("BTC"))
    assert server.seen(hanging.rsplit("/", 1)[1]) == [hanging] * 3
    assert_same_bars("BTC", pd.concat(expected[1:]))


def test_microsecond_open_times_from_2025(tree, server):
    rows = [
        tree.add_month("ADA", m)
        for m in (date(2024, 12, 1), date(2025, 1, 1), date(2025, 2, 1))
    ]
    for month, digits in (("2024-12", 13), ("2025-01", 16)):
        path = tree.root / tree.month_path("ADA", date.fromisoformat(f"{month}-01"))
        with zipfile.ZipFile(path) as archive:
            first = archive.read(archive.namelist()[0]).split(b",")[0]
        assert len(first) == digits  # milliseconds, then microseconds
    download("--symbols", "ADA", "--start", "2024-12-01", "--end", "2025-02-28")
    assert_same_bars("ADA", pd.concat(rows))


def test_file_replaced_upstream_is_reimported_on_recheck(tree, server):
    for m in MONTHS:
        tree.add_month("BTC", m)
    download(*months("BTC"))
    march = tree.rows("BTC", date(2021, 3, 1), date(2021, 3, 31)).copy()
    march.loc[march.index[5], "volume"] = 123456.5
    path = tree.month_path("BTC", MONTHS[2])
    tree.write(path, kline_csv(march))

    server.requests.clear()
    download(*months("BTC"))
    assert server.requests == []  # without --recheck recorded files are final

    out, _ = download(*months("BTC"), "--recheck")
    assert "1 file(s) imported" in out and "2 unchanged" in out
    assert len(server.seen(".CHECKSUM")) == 3
    assert server.seen(".zip") == [path]
    volume = PriceBar.objects.get(
        crypto__symbol="BTC",
        interval="1h",
        time=datetime.fromtimestamp(int(march["time"].iloc[5]), UTC),
    ).volume
    assert volume == 123456.5
    sha = ArchiveFile.objects.get(name=path.rsplit("/", 1)[1]).sha256
    assert sha == (tree.root / f"{path}.CHECKSUM").read_text().split()[0]


def test_bad_arguments_are_one_line_errors(server):
    with pytest.raises(CommandError, match="not a date"):
        download("--symbols", "BTC", "--start", "2021-13-01")
    with pytest.raises(CommandError, match="start: must not be after end"):
        download("--symbols", "BTC", "--start", "2021-02-01", "--end", "2021-01-01")
    with pytest.raises(CommandError, match="symbols: symbol 'B-TC'"):
        download("--symbols", "B-TC", "--start", "2021-01-01")


@pytest.mark.django_db(transaction=True)
def test_admin_action_downloads_in_the_background_and_shows_the_job(
    tree, server, admin_client
):
    expected = pd.concat([tree.add_month("BTC", m) for m in MONTHS])
    coin = Cryptocurrency.objects.create(symbol="BTC")
    response = admin_client.post(
        reverse("admin:prices_cryptocurrency_changelist"),
        {"action": "download_from_archive", "_selected_action": [coin.pk]},
        follow=True,
    )
    assert "Downloading 1 coin(s) in the background" in response.content.decode()
    for thread in threading.enumerate():
        if thread.name.startswith("download-job-"):
            thread.join(60)
    job = DownloadJob.objects.get()
    assert job.status == DownloadJob.Status.DONE, job.message
    assert (job.rows, job.failures) == (len(expected), 0)
    assert job.files_done == job.files_total > 3  # months since 2020, mostly 404
    assert_same_bars("BTC", expected)
    page = admin_client.get(reverse("admin:prices_downloadjob_changelist"))
    assert f"{job.files_total:,} of {job.files_total:,} (100%)" in page.content.decode()
    detail = admin_client.get(reverse("admin:prices_downloadjob_change", args=[job.pk]))
    assert "3 file(s) imported" in detail.content.decode()
