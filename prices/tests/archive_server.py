"""A real HTTP server on 127.0.0.1 serving an archive tree built from real candles."""

from __future__ import annotations

import hashlib
import io
import threading
import zipfile
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd

# The archive's open times are microseconds from this day on, milliseconds before.
MICROS_FROM = datetime(2025, 1, 1, tzinfo=UTC)


def real_frame(directory: Path, symbol: str) -> pd.DataFrame:
    """Return a coin's real hourly candles with an epoch-seconds ``time`` column."""
    frame = pd.read_csv(directory / f"{symbol}USDT.csv.gz")
    times = pd.to_datetime(frame["timestamp"], utc=True)
    frame["time"] = (times - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    return frame


def kline_csv(frame: pd.DataFrame, step: int = 3600) -> bytes:
    """Return rows as the archive writes them: 12 columns, no header."""
    lines = []
    for row in frame.itertuples(index=False):
        unit = 1_000_000 if row.time >= MICROS_FROM.timestamp() else 1000
        opened = row.time * unit
        lines.append(
            f"{opened},{row.open!r},{row.high!r},{row.low!r},{row.close!r},"
            f"{row.volume!r},{opened + step * unit - 1},0,0,0,0,0\n"
        )
    return "".join(lines).encode()


class ArchiveTree:
    """Writes zips and CHECKSUM files in the archive's layout under ``root``."""

    def __init__(self, root: Path, directory: Path) -> None:
        self.root = root
        self.directory = directory
        self.frames: dict[str, pd.DataFrame] = {}

    def frame(self, symbol: str) -> pd.DataFrame:
        if symbol not in self.frames:
            self.frames[symbol] = real_frame(self.directory, symbol)
        return self.frames[symbol]

    def rows(self, symbol: str, first: date, last: date) -> pd.DataFrame:
        """Return the real rows of the days first..last (inclusive)."""
        frame = self.frame(symbol)
        lo = datetime(first.year, first.month, first.day, tzinfo=UTC).timestamp()
        hi = datetime(last.year, last.month, last.day, tzinfo=UTC).timestamp() + 86400
        return frame[(frame["time"] >= lo) & (frame["time"] < hi)]

    def month_path(self, symbol: str, month: date) -> str:
        stem = f"{symbol}USDT-1h-{month:%Y-%m}"
        return f"data/spot/monthly/klines/{symbol}USDT/1h/{stem}.zip"

    def day_path(self, symbol: str, day: date) -> str:
        stem = f"{symbol}USDT-1h-{day:%Y-%m-%d}"
        return f"data/spot/daily/klines/{symbol}USDT/1h/{stem}.zip"

    def write(self, path: str, csv: bytes, checksum_of: bytes | None = None) -> None:
        """Write the zip holding ``csv`` and its CHECKSUM (of other bytes if given)."""
        name = path.rsplit("/", 1)[1]
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(name.replace(".zip", ".csv"), csv)
        data = buffer.getvalue()
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        digest = hashlib.sha256(checksum_of or data).hexdigest()
        Path(f"{target}.CHECKSUM").write_text(f"{digest}  {name}\n")

    def add_month(self, symbol: str, month: date) -> pd.DataFrame:
        last = (pd.Timestamp(month) + pd.offsets.MonthEnd(0)).date()
        rows = self.rows(symbol, month, last)
        self.write(self.month_path(symbol, month), kline_csv(rows))
        return rows

    def add_day(self, symbol: str, day: date) -> pd.DataFrame:
        rows = self.rows(symbol, day, day)
        self.write(self.day_path(symbol, day), kline_csv(rows))
        return rows


class ArchiveServer:
    """Serves ``root``; records every request; can answer 503 or hang on a path."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[str] = []
        self.fail_503: dict[str, int] = {}
        self.hang: set[str] = set()
        self.release = threading.Event()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server name
                path = self.path.lstrip("/")
                with server._lock:
                    server.requests.append(path)
                    failing = server.fail_503.get(path, 0)
                    if failing:
                        server.fail_503[path] = failing - 1
                if path in server.hang:
                    server.release.wait(30)
                    return
                if failing:
                    self.send_error(503)
                    return
                target = server.root / path
                if not target.is_file():
                    self.send_error(404)
                    return
                body = target.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> ArchiveServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def seen(self, suffix: str = "") -> list[str]:
        """Return the requested paths ending with ``suffix``."""
        with self._lock:
            return [p for p in self.requests if p.endswith(suffix)]
