"""Parsing price files: both formats and every kind of bad row."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from prices.importers import ImportFormatError, parse_file, symbol_from_path
from prices.tests.hostile_files import (
    BAD,
    BAD_SYMBOLS,
    HEADER,
    OUT_OF_RANGE,
    UNUSABLE,
)


def write(path: Path, text: str, gz: bool = False) -> Path:
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def test_header_csv(tmp_path):
    path = write(
        tmp_path / "BTCUSDT.csv.gz",
        HEADER
        + "2024-01-01T01:00:00Z,11,13,10,12,5\n"
        + "2024-01-01T00:00:00Z,10,12,9,11,4.5\n",
        gz=True,
    )
    parsed = parse_file(path)
    assert parsed.symbol == "BTC" and parsed.interval == "1h"
    # Sorted by time; 2024-01-01T00:00Z is 1704067200.
    assert parsed.series.time.tolist() == [1704067200, 1704070800]
    assert parsed.series.open.tolist() == [10, 11]
    assert parsed.series.volume.tolist() == [4.5, 5]


@pytest.mark.parametrize("scale", [1000, 1_000_000])
def test_binance_klines_ms_and_us(tmp_path, scale):
    rows = [
        f"{1704067200 * scale},10,12,9,11,4,{1704070799 * scale},44,7,2,22,0",
        f"{1704070800 * scale},11,13,10,12,5,{1704074399 * scale},60,9,3,33,0",
    ]
    path = write(tmp_path / "ETHUSDT-1h-2024-01.csv", "\n".join(rows) + "\n")
    parsed = parse_file(path)
    assert parsed.symbol == "ETH" and parsed.interval == "1h"
    assert parsed.series.time.tolist() == [1704067200, 1704070800]
    assert parsed.series.close.tolist() == [11, 12]


def test_identical_duplicates_are_dropped(tmp_path):
    row = "2024-01-01T00:00:00Z,10,12,9,11,4\n"
    parsed = parse_file(write(tmp_path / "X.csv", HEADER + row + row))
    assert len(parsed.series.time) == 1 and parsed.duplicates_dropped == 1


def test_symbol_from_path():
    assert symbol_from_path("data/BTCUSDT.csv.gz") == "BTC"
    assert symbol_from_path("SOLUSDT-1h-2024-01.csv") == "SOL"
    assert symbol_from_path("doge.csv") == "DOGE"


@pytest.mark.parametrize(("row", "line", "problem"), BAD)
def test_bad_rows_name_file_line_and_problem(tmp_path, row, line, problem):
    good = "2024-01-01T01:00:00Z,10,12,9,11,4\n"
    path = write(tmp_path / "BAD.csv", HEADER + row + good)
    with pytest.raises(ImportFormatError) as caught:
        parse_file(path)
    message = str(caught.value)
    assert str(path) in message and f"line {line}" in message and problem in message


def test_bad_row_at_the_end_is_found_on_its_line(tmp_path):
    rows = "".join(f"2024-01-01T{h:02d}:00:00Z,10,12,9,11,4\n" for h in range(20))
    path = write(
        tmp_path / "X.csv", HEADER + rows + "2024-01-02T00:00:00Z,10,1,9,11,4\n"
    )
    with pytest.raises(ImportFormatError, match="line 22: high is below"):
        parse_file(path)


def test_conflicting_duplicate_time(tmp_path):
    path = write(
        tmp_path / "X.csv",
        HEADER
        + "2024-01-01T00:00:00Z,10,12,9,11,4\n"
        + "2024-01-01T01:00:00Z,10,12,9,11,4\n"
        + "2024-01-01T00:00:00Z,10,12,9,11.5,4\n",
    )
    with pytest.raises(
        ImportFormatError, match="line 4: duplicate time with different"
    ):
        parse_file(path)


@pytest.mark.parametrize(("text", "problem"), UNUSABLE)
def test_unusable_files(tmp_path, text, problem):
    with pytest.raises(ImportFormatError, match=problem):
        parse_file(write(tmp_path / "X.csv", text))


def test_real_file_parses(real_data_dir):
    parsed = parse_file(real_data_dir / "BTCUSDT.csv.gz")
    # Numbers from the data set's README: 43,764 rows from 2018-12-30T19:00Z.
    assert len(parsed.series.time) == 43_764
    assert parsed.series.time[0] == 1546196400
    assert np.all(np.diff(parsed.series.time) >= 3600)


@pytest.mark.parametrize(("stamp", "problem"), OUT_OF_RANGE)
def test_csv_bars_outside_1970_to_tomorrow_are_refused(tmp_path, stamp, problem):
    good = "2024-01-01T01:00:00Z,10,12,9,11,4\n"
    path = write(tmp_path / "X.csv", HEADER + good + f"{stamp},10,12,9,11,4\n")
    with pytest.raises(ImportFormatError, match=f"line 3: timestamp is {problem}"):
        parse_file(path)


@pytest.mark.parametrize(
    ("open_time", "problem"),
    [
        # 2200-01-01 in milliseconds and 2100-01-01 in microseconds.
        (7_258_118_400_000, "more than a day in the future"),
        (4_102_444_800_000_000, "more than a day in the future"),
    ],
)
def test_kline_bars_in_the_future_are_refused(tmp_path, open_time, problem):
    rows = f"1704067200000,10,12,9,11,4\n{open_time},10,12,9,11,4\n"
    path = write(tmp_path / "ETHUSDT-1h-2024-01.csv", rows)
    with pytest.raises(ImportFormatError, match=f"line 2: timestamp is {problem}"):
        parse_file(path)


def test_a_bar_of_today_is_accepted(tmp_path):
    import time

    hour = int(time.time()) // 3600 * 3600
    path = write(tmp_path / "ETHUSDT-1h-now.csv", f"{hour * 1000},10,12,9,11,4\n")
    assert parse_file(path).series.time.tolist() == [hour]


@pytest.mark.parametrize(("name", "symbol", "shown"), BAD_SYMBOLS)
def test_bad_symbols_are_refused_naming_the_symbol(tmp_path, name, symbol, shown):
    path = write(tmp_path / name, HEADER + "2024-01-01T00:00:00Z,10,12,9,11,4\n")
    with pytest.raises(ImportFormatError) as caught:
        parse_file(path, symbol=symbol)
    message = str(caught.value)
    assert message.startswith(f"{path}: symbol {shown} must be 1 to 20 upper-case")


def test_symbol_rule():
    from prices.symbols import symbol_problem

    for good in ("BTC", "1INCH", "A", "X" * 20):
        assert symbol_problem(good) is None
    for bad in ("", "btc", "X" * 21, "BT C", "BTC-USD", "\u0130", None, 5):
        assert "must be 1 to 20 upper-case ASCII letters or digits" in symbol_problem(
            bad
        )
