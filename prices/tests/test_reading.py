"""Hostile files are refused in bounded memory with short messages."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from prices import reading
from prices.importers import ImportFormatError, parse_file

HEADER = "timestamp,open,high,low,close,volume\n"
ROOT = Path(__file__).resolve().parents[2]
# Parse a file in a fresh interpreter; print the error and the peak resident set.
# The peak is the kernel's VmHWM of the new address space: getrusage's ru_maxrss
# of a child started by (v)fork also counts the parent's resident set before exec,
# so it would report the test runner's size. Elsewhere ru_maxrss is the fallback.
CHILD = """
import json, resource, sys
from prices.importers import ImportFormatError, parse_file
try:
    parse_file(sys.argv[1])
    error = None
except ImportFormatError as exc:
    error = str(exc)
try:
    with open("/proc/self/status") as status:
        line = next(s for s in status if s.startswith("VmHWM:"))
    peak = int(line.split()[1]) * 1024
except OSError:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"error": error, "peak": peak}))
"""


def parse_in_child(path: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_gzip_bomb_is_refused_in_bounded_memory(tmp_path):
    path = tmp_path / "BOMBUSDT.csv.gz"
    zeros = bytes(1 << 20)
    with gzip.open(path, "wb", compresslevel=9) as out:
        for _ in range(1024):  # 1 GiB of zero bytes, about 1 MB compressed
            out.write(zeros)
    assert path.stat().st_size < 2 << 20
    result = parse_in_child(path)
    assert result["error"] == f"{path}, line 1: line longer than 4,096 bytes"
    assert result["peak"] < 200 << 20


def test_a_file_decompressing_past_the_cap_is_refused(tmp_path):
    path = tmp_path / "BIGUSDT.csv.gz"
    row = "2024-01-01T00:00:00Z,10,12,9,11,4\n"
    with gzip.open(path, "wt") as out:
        out.write(HEADER + row * 40_000)  # about 1.4 MB decompressed
    with pytest.raises(ImportFormatError) as caught:
        parse_file(path, max_bytes=1 << 20)
    assert "file is larger than 1 MB decompressed (PRICE_IMPORT_MAX_MB)" in str(
        caught.value
    )
    assert len(parse_file(path, max_bytes=2 << 20).series.time) == 1


def test_a_very_long_line_is_refused_naming_it(tmp_path):
    rows = "".join(f"2024-01-01T{h:02d}:00:00Z,10,12,9,11,4\n" for h in range(5))
    long_row = "2024-01-01T05:00:00Z,10,12,9,11," + "4" * 5000 + "\n"
    path = tmp_path / "LONGUSDT.csv"
    path.write_text(HEADER + rows + long_row)
    with pytest.raises(ImportFormatError) as caught:
        parse_file(path)
    assert str(caught.value) == f"{path}, line 7: line longer than 4,096 bytes"


def test_a_kline_row_of_a_million_columns_is_refused_at_once(tmp_path):
    path = tmp_path / "WIDEUSDT-1h-2024-01.csv"
    path.write_text("1704067200000,10,12,9,11,4" + ",0" * 1_000_000 + "\n")
    with pytest.raises(ImportFormatError, match="line 1: line longer than"):
        parse_file(path)


def test_a_huge_header_gives_a_short_message(tmp_path):
    path = tmp_path / "HUGEUSDT.csv"
    path.write_text("timestamp," + "x" * (2 << 20) + "\n")
    with pytest.raises(ImportFormatError) as caught:
        parse_file(path)
    assert len(str(caught.value)) < len(str(path)) + 100


def test_a_long_bad_value_is_shown_cut_to_40_characters(tmp_path, monkeypatch):
    monkeypatch.setattr(reading, "MAX_LINE_BYTES", 1 << 20)
    path = tmp_path / "X.csv"
    path.write_text(HEADER + "2024-01-01T00:00:00Z," + "z" * 3000 + ",12,9,11,4\n")
    with pytest.raises(ImportFormatError) as caught:
        parse_file(path)
    # 40 characters of repr: the quote and 38 letters, then the ellipsis.
    shown = "'" + "z" * 38 + "\u2026 (3,000 characters)"
    assert str(caught.value) == f"{path}, line 2: bad open value {shown}"


def test_shown_cuts_long_values():
    assert reading.shown("abc") == "'abc'"
    cut = reading.shown("q" * 1000)
    assert len(cut) < 70 and cut.startswith("'qqq") and "1,000 characters" in cut


@pytest.mark.parametrize("block", [64, 100, 1 << 20])
def test_blocks_of_any_size_give_the_same_rows(tmp_path, monkeypatch, block):
    monkeypatch.setattr(reading, "BLOCK_BYTES", block)
    rows = [f"2024-01-01T{h:02d}:00:00Z,{10 + h},{12 + h},{9 + h},{11 + h},{h}\n"
            for h in range(24)]  # fmt: skip
    path = tmp_path / "BLKUSDT.csv.gz"
    path.write_bytes(gzip.compress((HEADER + "".join(rows) + "\n\n").encode()))
    series = parse_file(path).series
    # By hand: hour h opens at 10 + h, closes at 11 + h, volume h.
    assert series.time.tolist() == [1_704_067_200 + 3600 * h for h in range(24)]
    assert series.open.tolist() == [10.0 + h for h in range(24)]
    assert series.close.tolist() == [11.0 + h for h in range(24)]
    assert series.volume.tolist() == [float(h) for h in range(24)]
    bad = tmp_path / "BADUSDT.csv"
    bad.write_text(HEADER + "".join(rows[:20]) + "2024-01-01T20:00:00Z,1,1,1,1,1,1\n")
    with pytest.raises(ImportFormatError, match="line 22: expected 6 columns"):
        parse_file(bad)
