"""The exchange's public kline archive: file layout, fetching, checksums; no Django.

Monthly files sit at ``{base}/data/spot/monthly/klines/{PAIR}/{interval}/
{PAIR}-{interval}-{YYYY}-{MM}.zip``, daily ones under ``daily/klines/`` named
``{PAIR}-{interval}-{YYYY-MM-DD}.zip``, each beside ``{file}.CHECKSUM`` holding
``<sha256>  <file name>``. A zip holds one headerless kline CSV.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import re
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from datetime import date, timedelta

from prices.timeframes import INTERVALS

DEFAULT_URL = "https://data.binance.vision"
TRIES = 3
_SHA256 = re.compile(r"[0-9a-f]{64}")
# Answers worth asking again: rate limited, or the server is having trouble.
_RETRY_STATUS = {429, 500, 502, 503, 504}


class ArchiveMissing(Exception):
    """The archive has no such file (HTTP 404)."""


class ArchiveError(Exception):
    """A file could not be fetched or failed its checksum; the message says why."""


@dataclass(frozen=True)
class ArchiveItem:
    """One archive file: the coin and interval it holds, the period it covers."""

    symbol: str
    interval: str
    path: str  # relative to the base URL, without a leading slash
    first: date
    last: date

    @property
    def name(self) -> str:
        """Return the file name, e.g. ``BTCUSDT-1h-2024-01.zip``."""
        return self.path.rsplit("/", 1)[1]


def _month_end(day: date) -> date:
    following = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return following - timedelta(days=1)


def archive_plan(
    *, symbol: str, interval: str, quote: str, start: date, end: date, today: date
) -> list[ArchiveItem]:
    """Return the files covering [start, end]: whole months from monthly files,
    the current month's days up to yesterday from daily files."""
    if interval not in INTERVALS:
        raise ValueError(f"interval: {interval!r} is not one of {', '.join(INTERVALS)}")
    if start > end:
        raise ValueError("start: must not be after end")
    pair = f"{symbol}{quote}"
    folder = f"{pair}/{interval}"
    yesterday = today - timedelta(days=1)
    this_month = today.replace(day=1)
    items = []
    month = start.replace(day=1)
    while month <= end and month < this_month:
        stem = f"{pair}-{interval}-{month:%Y-%m}"
        items.append(
            ArchiveItem(
                symbol,
                interval,
                f"data/spot/monthly/klines/{folder}/{stem}.zip",
                month,
                _month_end(month),
            )
        )
        month = _month_end(month) + timedelta(days=1)
    day = max(start, this_month)
    while day <= min(end, yesterday):
        stem = f"{pair}-{interval}-{day:%Y-%m-%d}"
        path = f"data/spot/daily/klines/{folder}/{stem}.zip"
        items.append(ArchiveItem(symbol, interval, path, day, day))
        day += timedelta(days=1)
    return items


def fetch(url: str, *, timeout: float, backoff: float, tries: int = TRIES) -> bytes:
    """Return the body at ``url``, retrying 429, 5xx and timeouts with backoff.

    Raise ArchiveMissing on 404 and ArchiveError once the tries are used up.
    """
    problem = ""
    for attempt in range(tries):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise ArchiveMissing(url) from None
            if exc.code not in _RETRY_STATUS:
                raise ArchiveError(f"{url}: HTTP {exc.code}") from None
            problem = f"HTTP {exc.code}"
        except TimeoutError:
            problem = f"no answer within {timeout:g}s"
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError):
                problem = f"no answer within {timeout:g}s"
            else:
                problem = f"connection failed ({reason})"
    raise ArchiveError(f"{url}: {problem} after {tries} tries")


def checksum_parse(text: str, name: str) -> str:
    """Return the SHA-256 a CHECKSUM file states for ``name``."""
    parts = text.split()
    if len(parts) < 1 or not _SHA256.fullmatch(parts[0].lower()):
        raise ArchiveError(f"{name}.CHECKSUM: no SHA-256 in {text[:80]!r}")
    if len(parts) > 1 and parts[1].lstrip("*") != name:
        raise ArchiveError(f"{name}.CHECKSUM: names another file ({parts[1]})")
    return parts[0].lower()


def sha256_of(data: bytes) -> str:
    """Return the hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def zip_csv(data: bytes, name: str) -> bytes:
    """Return the one CSV a zip from the archive holds."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [m for m in archive.namelist() if m.endswith(".csv")]
            if len(members) != 1:
                raise ArchiveError(f"{name}: expected one CSV, found {len(members)}")
            return archive.read(members[0])
    except zipfile.BadZipFile as exc:
        raise ArchiveError(f"{name}: not a readable zip ({exc})") from None
