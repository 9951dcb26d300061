"""Parsing price files: both formats and every kind of bad row."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from prices.importers import ImportFormatError, parse_file, symbol_from_path

HEADER = "timestamp,open,high,low,close,volume\n"


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


BAD = [
    ("2024-01-01T00:00:00Z,ten,12,9,11,4\n", 2, "bad open value 'ten'"),
    ("2024-01-01T00:00:00Z,10,12,9,,4\n", 2, "bad close value"),
    ("2024-13-01T00:00:00Z,10,12,9,11,4\n", 2, "bad timestamp"),
    ("2024-01-01T00:00:00Z,10,8,9,9.5,4\n", 2, "high is below low"),
    ("2024-01-01T00:00:00Z,10,12,9,11,-4\n", 2, "volume is negative"),
    ("2024-01-01T00:00:00Z,0,12,9,11,4\n", 2, "prices must be positive"),
    ("2024-01-01T00:30:00Z,10,12,9,11,4\n", 2, "not aligned"),
    ("2024-01-01T00:00:00Z,10,12,9,11,4,7\n", 2, "expected 6 columns, found 7"),
]


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


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "file is empty"),
        (HEADER, "no data rows"),
        ("time,o,h,l,c,v\n2024-01-01T00:00:00Z,1,1,1,1,1\n", "unrecognised format"),
        ("timestamp,open,high,low,close\n2024-01-01T00:00:00Z,1,1,1,1\n", "header"),
    ],
)
def test_unusable_files(tmp_path, text, problem):
    with pytest.raises(ImportFormatError, match=problem):
        parse_file(write(tmp_path / "X.csv", text))


def test_real_file_parses(real_data_dir):
    parsed = parse_file(real_data_dir / "BTCUSDT.csv.gz")
    # Numbers from the data set's README: 43,764 rows from 2018-12-30T19:00Z.
    assert len(parsed.series.time) == 43_764
    assert parsed.series.time[0] == 1546196400
    assert np.all(np.diff(parsed.series.time) >= 3600)
