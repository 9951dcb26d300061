"""Parse price files into arrays, validating every row; no database access.

Files are read in bounded blocks of whole lines (see ``prices.reading``), so
memory stays bounded whatever a file holds.

Two formats are read, plain or gzip-compressed:

* ``timestamp,open,high,low,close,volume`` with a header and ISO-8601 UTC times;
* Binance kline CSVs: no header, the open time in milliseconds or microseconds
  (Binance switched spot files to microseconds in 2025), then open, high, low,
  close, volume and columns that are ignored.
"""

from __future__ import annotations

import io
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from prices.reading import MAX_FILE_BYTES, ReadError, blocks, shown
from prices.symbols import symbol_problem
from prices.timeframes import INTERVAL_SECONDS, INTERVALS
from prices.types import PriceSeries

# pandas is imported by the functions that read a file, on their first call:
# the web server and the Celery workers import this module (through the admin
# and the download service) but rarely read a file, and pandas costs each of
# them about 40 MB of resident memory and a third of a second at start.
if TYPE_CHECKING:
    import pandas as pd

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


def _first_bad(mask: np.ndarray) -> int | None:
    bad = np.flatnonzero(mask)
    return int(bad[0]) if bad.size else None


def _kind(first_line: str) -> tuple[str, int]:
    """Return the file's format and header lines from its first line."""
    first_field = first_line.split(",")[0].strip().lower()
    if first_field.isdigit():
        return "kline", 0
    if first_field in ("timestamp", "open_time"):
        return ("csv" if first_field == "timestamp" else "kline"), 1
    raise ReadError(
        1,
        "unrecognised format: expected the header "
        "'timestamp,open,high,low,close,volume' or a Binance kline row",
    )


def _read_block(data: bytes, kind: str, skip: int) -> pd.DataFrame:
    import pandas as pd  # on first use (see the note at the imports)

    try:
        return pd.read_csv(
            io.BytesIO(data),
            header=None,
            skiprows=skip,
            dtype=str,
            keep_default_na=False,
            # Keep blank lines so reported line numbers match the file.
            skip_blank_lines=False,
            on_bad_lines="error",
            engine="c",
            encoding="utf-8",
        )
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except UnicodeDecodeError as exc:
        raise ReadError(None, "not a UTF-8 text file") from exc
    except pd.errors.ParserError as exc:
        match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if match:
            expected, line, saw = (int(g) for g in match.groups())
            raise ReadError(line, f"expected {expected} columns, found {saw}") from exc
        raise ReadError(None, f"unreadable CSV ({str(exc)[:80]})") from exc


def _parse_block(
    frame: pd.DataFrame, line_of: np.ndarray, kind: str, interval: str
) -> tuple[np.ndarray, np.ndarray]:
    """Return one block's times and (5, n) values, or raise ReadError on a bad row."""
    import pandas as pd

    needed = 6
    if frame.shape[1] < needed or (kind == "csv" and frame.shape[1] != needed):
        raise ReadError(
            int(line_of[0]), f"expected {needed} columns, found {frame.shape[1]}"
        )
    values = np.empty((5, len(frame)), dtype=np.float64)
    for index, name in enumerate(HEADER[1:], start=1):
        column = pd.to_numeric(frame[index].str.strip(), errors="coerce")
        values[index - 1] = column.to_numpy(np.float64)
        bad = _first_bad(~np.isfinite(values[index - 1]))
        if bad is not None:
            raise ReadError(
                int(line_of[bad]), f"bad {name} value {shown(frame[index].iloc[bad])}"
            )
    raw_time = frame[0].str.strip()
    if kind == "csv":
        parsed = pd.to_datetime(raw_time, format="ISO8601", utc=True, errors="coerce")
        bad = _first_bad(parsed.isna().to_numpy())
        if bad is not None:
            raise ReadError(
                int(line_of[bad]), f"bad timestamp {shown(raw_time.iloc[bad])}"
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
            raise ReadError(
                int(line_of[bad]), f"bad open time {shown(raw_time.iloc[bad])}"
            )
        stamps = numbers.astype(np.int64)
        # Milliseconds have 13 digits until 2286; microseconds have 16.
        divisor = np.where(stamps >= 10**14, 1_000_000, 1000)
        times = stamps // divisor
        bad = _first_bad(stamps % divisor != 0)
        if bad is not None:
            raise ReadError(
                int(line_of[bad]),
                f"open time {shown(raw_time.iloc[bad])} is not on a second",
            )
    _check_rows(times, values, line_of, interval)
    return times, values


def _fast_block(
    data: bytes, kind: str, skip: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Return a block's times and (5, n) values parsed as numbers by the C
    reader, or None when anything is unusual (blank lines, spaces, bad values,
    other column counts): the text path then finds and names the problem.

    Most files are clean; reading their numbers directly is about twice as fast
    as reading text and converting it column by column, and gives the same
    float64 for every decimal as float() does (tests compare them bit for bit).
    """
    import pandas as pd

    try:
        frame = pd.read_csv(
            io.BytesIO(data),
            header=None,
            skiprows=skip,
            usecols=range(6) if kind == "kline" else None,
            dtype={0: str if kind == "csv" else np.int64}
            | {column: np.float64 for column in range(1, 6)},
            skip_blank_lines=False,
            engine="c",
        )
    except (ValueError, TypeError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return None
    if frame.shape[1] != 6 or not len(frame):
        return None
    values = frame.iloc[:, 1:6].to_numpy(np.float64).T.copy()
    if not np.isfinite(values).all():
        return None
    if kind == "csv":
        parsed = pd.to_datetime(frame[0], format="ISO8601", utc=True, errors="coerce")
        if parsed.isna().any():
            return None
        times = (parsed.dt.tz_localize(None).to_numpy().astype("datetime64[s]")).astype(
            np.int64
        )
    else:
        stamps = frame[0].to_numpy(np.int64)
        divisor = np.where(stamps >= 10**14, 1_000_000, 1000)
        if (stamps <= 0).any() or (stamps % divisor).any():
            return None
        times = stamps // divisor
    return times, values


def _check_rows(
    times: np.ndarray, values: np.ndarray, line_of: np.ndarray, interval: str
) -> None:
    open_, high, low, close, volume = values
    latest = int(time.time()) + FUTURE_MARGIN_S
    checks = [
        (times < 0, "timestamp is before 1970-01-01"),
        (times > latest, "timestamp is more than a day in the future"),
        (
            times % INTERVAL_SECONDS[interval] != 0,
            f"timestamp is not aligned to the {interval} interval",
        ),
        (
            (open_ <= 0) | (high <= 0) | (low <= 0) | (close <= 0),
            "prices must be positive",
        ),
        (high < low, "high is below low"),
        (high < np.maximum(open_, close), "high is below open or close"),
        (low > np.minimum(open_, close), "low is above open or close"),
        (volume < 0, "volume is negative"),
    ]
    for mask, problem in checks:
        bad = _first_bad(mask)
        if bad is not None:
            raise ReadError(int(line_of[bad]), problem)


def _is_blank(frame: pd.DataFrame) -> np.ndarray:
    """Return which rows of a block are blank lines."""
    if frame.shape[1] == 1:
        return (frame[0].fillna("").str.strip() == "").to_numpy()
    return (frame.fillna("") == "").all(axis=1).to_numpy()


def _read_rows(
    path: Path, interval: str, max_bytes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return times, (5, n) values and file lines of every data row, in file order."""
    kind = ""
    header_lines = 0
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    blank_at: int | None = None  # a blank line that must be the file's tail
    for block in blocks(path, max_bytes=max_bytes):
        skip = 0
        if not kind:
            text = block.data.decode("utf-8", errors="replace")
            if not text.strip():
                continue
            first_line = text.split("\n", 1)[0].strip()
            kind, header_lines = _kind(first_line)
            if kind == "csv":
                header = [h.strip().lower() for h in first_line.split(",")]
                if header != HEADER:
                    raise ReadError(
                        1,
                        f"header must be {','.join(HEADER)}, got {shown(first_line)}",
                    )
            skip = header_lines
        fast = _fast_block(block.data, kind, skip)
        if fast is not None and blank_at is None:
            line_of = np.arange(len(fast[0])) + block.first_line + skip
            _check_rows(*fast, line_of, interval)
            parts.append((*fast, line_of))
            continue
        try:
            frame = _read_block(block.data, kind, skip)
        except ReadError as exc:
            if exc.line is None:
                raise
            raise ReadError(exc.line + block.first_line - 1, exc.problem) from exc
        if frame.empty:
            continue
        line_of = np.arange(len(frame)) + block.first_line + skip
        blank = _is_blank(frame)
        if blank.all():
            blank_at = blank_at or int(line_of[0])
            continue
        if blank_at is not None:
            raise ReadError(blank_at, "blank line between data rows")
        # Blank lines at the very end are harmless; blank lines inside are errors.
        filled = np.flatnonzero(~blank)
        if filled[-1] < len(frame) - 1:
            blank_at = int(line_of[filled[-1] + 1])
            frame, line_of = frame.iloc[: filled[-1] + 1], line_of[: filled[-1] + 1]
        times, values = _parse_block(frame, line_of, kind, interval)
        parts.append((times, values, line_of))
    if not kind:
        raise ReadError(None, "file is empty")
    if not parts:
        raise ReadError(None, "no data rows")
    return (
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts], axis=1),
        np.concatenate([p[2] for p in parts]),
    )


def parse_file(
    path: str | Path,
    *,
    symbol: str | None = None,
    interval: str | None = None,
    name: str | None = None,
    max_bytes: int = MAX_FILE_BYTES,
) -> ParsedFile:
    """Read one price file into sorted, validated arrays or raise ImportFormatError.

    ``name`` (default: the path) names the file in messages and gives the
    symbol and interval when they are not passed (an upload's own name).
    """
    path = Path(path)
    label = name or str(path)
    interval = interval or interval_from_path(label) or "1h"
    if interval not in INTERVAL_SECONDS:
        raise ImportFormatError(label, None, f"unsupported interval {shown(interval)}")
    symbol = symbol.upper() if symbol else symbol_from_path(label)
    problem = symbol_problem(symbol)
    if problem:
        raise ImportFormatError(label, None, problem)
    try:
        times, values, lines = _read_rows(path, interval, max_bytes)
    except ReadError as exc:
        raise ImportFormatError(label, exc.line, exc.problem) from exc

    order = np.argsort(times, kind="stable")
    times, stacked, lines = times[order], values[:, order], lines[order]
    same_time = np.flatnonzero(times[1:] == times[:-1])
    if same_time.size:
        differs = (stacked[:, same_time] != stacked[:, same_time + 1]).any(axis=0)
        bad = _first_bad(differs)
        if bad is not None:
            i = same_time[bad]
            raise ImportFormatError(
                label,
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
        path=label,
        symbol=symbol,
        interval=interval,
        series=series,
        duplicates_dropped=int(same_time.size),
    )
