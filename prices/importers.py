"""Parse price files into arrays, validating every row; no database access.

Two formats are read, plain or gzip-compressed:

* ``timestamp,open,high,low,close,volume`` with a header and ISO-8601 UTC times;
* Binance kline CSVs: no header, the open time in milliseconds or microseconds
  (Binance switched spot files to microseconds in 2025), then open, high, low,
  close, volume and columns that are ignored.
"""

from __future__ import annotations

import gzip
import io
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from prices.symbols import symbol_problem
from prices.timeframes import INTERVAL_SECONDS, INTERVALS
from prices.types import PriceSeries

HEADER = ["timestamp", "open", "high", "low", "close", "volume"]
_KLINE_INTERVAL = re.compile(rf"-({'|'.join(INTERVALS)})(?:-|\.|$)")
# Bars are accepted from the Unix epoch to one day past the clock: a bar dated
# year 1 or 9999 is a typo that datetime cannot even represent in every time
# zone, and one such bar would break every run over that coin.
FUTURE_MARGIN_S = 86_400


class ImportFormatError(ValueError):
    """A file that cannot be imported; the message names file, line and problem."""

    def __init__(self, path: str | Path, line: int | None, problem: str) -> None:
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}, line {line}" if line else self.path
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class ParsedFile:
    path: str
    symbol: str
    interval: str
    series: PriceSeries
    duplicates_dropped: int


def symbol_from_path(path: str | Path) -> str:
    """Return the coin symbol a file name implies: ``BTCUSDT.csv.gz`` -> ``BTC``."""
    name = Path(path).name
    for suffix in (".gz", ".csv", ".zip"):
        name = name.removesuffix(suffix)
    name = name.split("-")[0].split("_")[0].upper()
    for quote in ("USDT", "BUSD", "USDC", "USD"):
        if name.endswith(quote) and len(name) > len(quote):
            return name[: -len(quote)]
    return name


def interval_from_path(path: str | Path) -> str | None:
    """Return the interval a file name states (Binance names do), e.g. ``1h``."""
    match = _KLINE_INTERVAL.search(Path(path).name)
    return match.group(1) if match else None


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ImportFormatError(
            path, None, f"cannot read file ({exc.strerror})"
        ) from exc
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ImportFormatError(path, None, f"corrupt gzip data ({exc})") from exc
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFormatError(path, None, "not a UTF-8 text file") from exc


def _first_bad(mask: np.ndarray) -> int | None:
    bad = np.flatnonzero(mask)
    return int(bad[0]) if bad.size else None


def parse_file(
    path: str | Path, *, symbol: str | None = None, interval: str | None = None
) -> ParsedFile:
    """Read one price file into sorted, validated arrays or raise ImportFormatError."""
    path = Path(path)
    text = _read_text(path)
    first_line = text.lstrip().split("\n", 1)[0].strip()
    if not first_line:
        raise ImportFormatError(path, None, "file is empty")
    first_field = first_line.split(",")[0].strip().lower()
    if first_field.isdigit():
        kind, header_lines = "kline", 0
    elif first_field in ("timestamp", "open_time"):
        kind, header_lines = ("csv" if first_field == "timestamp" else "kline"), 1
    else:
        raise ImportFormatError(
            path,
            1,
            "unrecognised format: expected the header "
            "'timestamp,open,high,low,close,volume' or a Binance kline row",
        )
    interval = interval or interval_from_path(path) or "1h"
    if interval not in INTERVAL_SECONDS:
        raise ImportFormatError(path, None, f"unsupported interval '{interval}'")
    symbol = symbol.upper() if symbol else symbol_from_path(path)
    problem = symbol_problem(symbol)
    if problem:
        raise ImportFormatError(path, None, problem)

    try:
        frame = pd.read_csv(
            io.StringIO(text),
            header=None,
            skiprows=header_lines,
            dtype=str,
            keep_default_na=False,
            # Keep blank lines so reported line numbers match the file.
            skip_blank_lines=False,
            on_bad_lines="error",
            engine="c",
        )
    except pd.errors.EmptyDataError as exc:
        raise ImportFormatError(path, None, "no data rows") from exc
    except pd.errors.ParserError as exc:
        match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if match:
            expected, line, saw = (int(g) for g in match.groups())
            raise ImportFormatError(
                path, line, f"expected {expected} columns, found {saw}"
            ) from exc
        raise ImportFormatError(path, None, f"unreadable CSV ({exc})") from exc
    if kind == "csv":
        header = [h.strip().lower() for h in first_line.split(",")]
        if header != HEADER:
            raise ImportFormatError(
                path, 1, f"header must be {','.join(HEADER)}, got {first_line!r}"
            )
    # Blank lines at the very end are harmless; blank lines inside are errors.
    while len(frame) and (frame.iloc[-1].fillna("") == "").all():
        frame = frame.iloc[:-1]
    if frame.empty:
        raise ImportFormatError(path, None, "no data rows")
    needed = 6
    if frame.shape[1] < needed or (kind == "csv" and frame.shape[1] != needed):
        raise ImportFormatError(
            path,
            header_lines + 1,
            f"expected {needed} columns, found {frame.shape[1]}",
        )
    line_of = np.arange(len(frame)) + header_lines + 1  # 1-based file lines

    columns = {}
    for index, name in enumerate(HEADER[1:], start=1):
        values = pd.to_numeric(frame[index].str.strip(), errors="coerce").to_numpy(
            np.float64
        )
        bad = _first_bad(~np.isfinite(values))
        if bad is not None:
            raise ImportFormatError(
                path, int(line_of[bad]), f"bad {name} value {frame[index].iloc[bad]!r}"
            )
        columns[name] = values

    raw_time = frame[0].str.strip()
    if kind == "csv":
        parsed = pd.to_datetime(raw_time, format="ISO8601", utc=True, errors="coerce")
        bad = _first_bad(parsed.isna().to_numpy())
        if bad is not None:
            raise ImportFormatError(
                path, int(line_of[bad]), f"bad timestamp {raw_time.iloc[bad]!r}"
            )
        times = (
            parsed.dt.tz_convert("UTC")
            .dt.tz_localize(None)
            .to_numpy()
            .astype("datetime64[s]")
            .astype(np.int64)
        )
    else:
        numbers = pd.to_numeric(raw_time, errors="coerce").to_numpy(np.float64)
        bad = _first_bad(~np.isfinite(numbers) | (numbers <= 0))
        if bad is not None:
            raise ImportFormatError(
                path, int(line_of[bad]), f"bad open time {raw_time.iloc[bad]!r}"
            )
        stamps = numbers.astype(np.int64)
        # Milliseconds have 13 digits until 2286; microseconds have 16.
        divisor = np.where(stamps >= 10**14, 1_000_000, 1000)
        times = stamps // divisor
        bad = _first_bad(stamps % divisor != 0)
        if bad is not None:
            raise ImportFormatError(
                path,
                int(line_of[bad]),
                f"open time {raw_time.iloc[bad]} is not on a second",
            )

    step = INTERVAL_SECONDS[interval]
    latest = int(time.time()) + FUTURE_MARGIN_S
    checks = [
        (times < 0, "timestamp is before 1970-01-01"),
        (times > latest, "timestamp is more than a day in the future"),
        (times % step != 0, f"timestamp is not aligned to the {interval} interval"),
        (
            (columns["open"] <= 0)
            | (columns["high"] <= 0)
            | (columns["low"] <= 0)
            | (columns["close"] <= 0),
            "prices must be positive",
        ),
        (columns["high"] < columns["low"], "high is below low"),
        (
            columns["high"] < np.maximum(columns["open"], columns["close"]),
            "high is below open or close",
        ),
        (
            columns["low"] > np.minimum(columns["open"], columns["close"]),
            "low is above open or close",
        ),
        (columns["volume"] < 0, "volume is negative"),
    ]
    for mask, problem in checks:
        bad = _first_bad(mask)
        if bad is not None:
            raise ImportFormatError(path, int(line_of[bad]), problem)

    order = np.argsort(times, kind="stable")
    times = times[order]
    stacked = np.vstack([columns[name][order] for name in HEADER[1:]])
    lines = line_of[order]
    same_time = np.flatnonzero(times[1:] == times[:-1])
    if same_time.size:
        differs = (stacked[:, same_time] != stacked[:, same_time + 1]).any(axis=0)
        bad = _first_bad(differs)
        if bad is not None:
            i = same_time[bad]
            raise ImportFormatError(
                path,
                int(max(lines[i], lines[i + 1])),
                "duplicate time with different values (also on line "
                f"{int(min(lines[i], lines[i + 1]))})",
            )
        keep = np.ones(len(times), dtype=bool)
        keep[same_time + 1] = False
        times, stacked = times[keep], stacked[:, keep]

    series = PriceSeries(
        np.ascontiguousarray(times, dtype=np.int64), *map(np.ascontiguousarray, stacked)
    )
    return ParsedFile(
        path=str(path),
        symbol=symbol,
        interval=interval,
        series=series,
        duplicates_dropped=int(same_time.size),
    )
