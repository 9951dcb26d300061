"""Download bars from the exchange's archive and import them, file by file.

Up to four files are fetched at once in a thread pool; the calling thread
imports each one as it arrives, as one transaction, and records it (name and
checksum) in ArchiveFile. Worker threads never touch the database, so this
works on SQLite as well as PostgreSQL. A rerun skips recorded files without a
request; ``recheck`` asks for their CHECKSUM files and re-imports the ones
replaced upstream.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from prices.archive import (
    DEFAULT_URL,
    ArchiveError,
    ArchiveItem,
    ArchiveMissing,
    archive_plan,
    checksum_parse,
    fetch,
    sha256_of,
    zip_csv,
)
from prices.importers import ImportFormatError
from prices.models import ArchiveFile, Cryptocurrency, DownloadJob, Source
from prices.services import ImportResult, file_import
from prices.symbols import symbol_problem

logger = logging.getLogger(__name__)

MAX_DOWNLOADS = 4
# A missing file whose period ended this long ago is recorded as absent (a
# coin listed later than --start) and not asked for again; a recent one may
# still be published, so it is asked for on the next run.
ABSENT_AFTER = timedelta(days=31)

Progress = Callable[[int, int, int], None]  # files done, files planned, rows


@dataclass
class DownloadResult:
    """What a download did: files imported, skipped, missing, failed."""

    planned: int = 0
    imported: int = 0
    unchanged: int = 0
    skipped: int = 0
    rows: int = 0
    missing: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """Return one line describing the outcome."""
        return (
            f"{self.imported} file(s) imported ({self.rows:,} rows), "
            f"{self.skipped} already stored, {self.unchanged} unchanged, "
            f"{len(self.missing)} missing, {len(self.failures)} failed"
        )


@dataclass(frozen=True)
class _Fetched:
    item: ArchiveItem
    sha256: str = ""
    csv: bytes | None = None  # None: unchanged since recorded
    missing: bool = False


def _setting(name: str, default):
    return getattr(settings, name, default)


def _import_file(
    path: Path, symbol: str, interval: str, *, base: str, supersede: bool
) -> ImportResult:
    """Import one kline CSV with the project's importer (one transaction), as
    bars from the archive at ``base``; ``supersede`` for a file replaced
    upstream, whose bars replace the ones it gave before."""
    return file_import(
        path,
        symbol=symbol,
        interval=interval,
        source=Source.ARCHIVE,
        detail=base,
        supersede=supersede,
    )


def _fetch_item(item: ArchiveItem, known: str | None) -> _Fetched:
    """Fetch the CHECKSUM, then the zip unless its checksum is ``known``."""
    base = _setting("MARKET_DATA_URL", DEFAULT_URL).rstrip("/")
    timeout = float(_setting("MARKET_DATA_TIMEOUT", 30.0))
    backoff = float(_setting("MARKET_DATA_BACKOFF", 1.0))
    url = f"{base}/{item.path}"
    try:
        text = fetch(f"{url}.CHECKSUM", timeout=timeout, backoff=backoff)
    except ArchiveMissing:
        return _Fetched(item, missing=True)
    expected = checksum_parse(text.decode("utf-8", "replace"), item.name)
    if expected == known:
        return _Fetched(item, expected)
    try:
        data = fetch(url, timeout=timeout, backoff=backoff)
    except ArchiveMissing:
        return _Fetched(item, missing=True)
    actual = sha256_of(data)
    if actual != expected:
        raise ArchiveError(
            f"{item.name}: checksum mismatch (expected {expected[:12]}..., "
            f"got {actual[:12]}...)"
        )
    return _Fetched(item, expected, zip_csv(data, item.name))


def _store(fetched: _Fetched, folder: Path) -> int:
    """Import a fetched file and record it, in one transaction; return its rows."""
    item = fetched.item
    path = folder / item.name.replace(".zip", ".csv")
    path.write_bytes(fetched.csv or b"")
    try:
        with transaction.atomic():
            base = _setting("MARKET_DATA_URL", DEFAULT_URL).rstrip("/")
            result = _import_file(
                path,
                item.symbol,
                item.interval,
                base=base,
                supersede=ArchiveFile.objects.filter(name=item.name).exists(),
            )
            coin = Cryptocurrency.objects.get(symbol=item.symbol)
            ArchiveFile.objects.update_or_create(
                crypto=coin,
                name=item.name,
                defaults={
                    "interval": item.interval,
                    "sha256": fetched.sha256,
                    "rows": result.rows,
                },
            )
    finally:
        path.unlink(missing_ok=True)
    return result.rows


def _record_absent(item: ArchiveItem) -> None:
    """Remember a file the archive will not have (its period is long over)."""
    coin = Cryptocurrency.objects.filter(symbol=item.symbol).first()
    if coin is None:  # a symbol the archive has nothing of: no coin is made
        return
    ArchiveFile.objects.update_or_create(
        crypto=coin,
        name=item.name,
        defaults={"interval": item.interval, "sha256": "", "rows": 0},
    )


def prices_download(
    *,
    symbols: Sequence[str],
    interval: str = "1h",
    start: date,
    end: date | None = None,
    quote: str = "USDT",
    recheck: bool = False,
    today: date | None = None,
    progress: Progress | None = None,
) -> DownloadResult:
    """Download and import the archive's files for the coins over [start, end].

    ``end`` defaults to yesterday (UTC). Recorded files are skipped, or with
    ``recheck`` compared by checksum and re-imported when replaced upstream.
    """
    if not symbols:
        raise ValueError("symbols: give at least one coin")
    for symbol in symbols:
        problem = symbol_problem(symbol)
        if problem:
            raise ValueError(f"symbols: {problem}")
    if not quote.isalnum() or not quote.isupper():
        raise ValueError(f"quote: {quote!r} must be upper-case letters or digits")
    today = today or datetime.now(UTC).date()
    end = end or today - timedelta(days=1)
    items = [
        item
        for symbol in symbols
        for item in archive_plan(
            symbol=symbol,
            interval=interval,
            quote=quote,
            start=start,
            end=end,
            today=today,
        )
    ]
    recorded = {
        (symbol, name): sha
        for symbol, name, sha in ArchiveFile.objects.filter(
            crypto__symbol__in=list(symbols), interval=interval
        ).values_list("crypto__symbol", "name", "sha256")
    }
    result = DownloadResult(planned=len(items))
    wanted = []
    for item in items:
        key = (item.symbol, item.name)
        if key in recorded and not recheck:
            result.skipped += 1
        else:
            wanted.append(item)
    done = result.skipped
    absent: list[ArchiveItem] = []
    if progress:
        progress(done, result.planned, 0)
    with (
        tempfile.TemporaryDirectory(prefix="archive-") as folder,
        ThreadPoolExecutor(MAX_DOWNLOADS, thread_name_prefix="archive") as pool,
    ):
        futures = {
            pool.submit(_fetch_item, item, recorded.get((item.symbol, item.name))): item
            for item in wanted
        }
        for future in as_completed(futures):
            item = futures[future]
            done += 1
            try:
                fetched = future.result()
                if fetched.missing:
                    result.missing.append(item.name)
                    if item.last < today - ABSENT_AFTER:
                        absent.append(item)
                elif fetched.csv is None:
                    result.unchanged += 1
                else:
                    result.rows += _store(fetched, Path(folder))
                    result.imported += 1
            except (ArchiveError, ImportFormatError) as exc:
                result.failures.append(str(exc))
            except Exception as exc:
                # Anything else (a value the database refuses, a bug) fails this
                # file only: its transaction is rolled back, the others go on.
                logger.debug("importing %s failed", item.name, exc_info=True)
                result.failures.append(f"{item.name}: {type(exc).__name__}: {exc}")
            if progress:
                progress(done, result.planned, result.rows)
    # After the imports, which create the coins the absent files belong to.
    for item in absent:
        _record_absent(item)
    return result


def download_job_start(
    *, symbols: Sequence[str], interval: str, start: date, quote: str = "USDT"
) -> tuple[DownloadJob, threading.Thread]:
    """Create a DownloadJob and run the download in a background thread."""
    job = DownloadJob.objects.create(symbols=",".join(symbols), interval=interval)
    thread = threading.Thread(
        target=_job_run,
        args=(job.pk, list(symbols), interval, start, quote),
        name=f"download-job-{job.pk}",
        daemon=True,
    )
    thread.start()
    return job, thread


def _job_run(
    job_id: int, symbols: list[str], interval: str, start: date, quote: str
) -> None:
    """Run one job's download, saving progress and the outcome on the job."""
    close_old_connections()

    def progress(done: int, total: int, rows: int) -> None:
        DownloadJob.objects.filter(pk=job_id).update(
            files_done=done, files_total=total, rows=rows
        )

    try:
        result = prices_download(
            symbols=symbols,
            interval=interval,
            start=start,
            quote=quote,
            progress=progress,
        )
        failed = bool(result.failures)
        message = result.summary()
        if failed:
            message += "\n" + "\n".join(result.failures)
        DownloadJob.objects.filter(pk=job_id).update(
            status=DownloadJob.Status.FAILED if failed else DownloadJob.Status.DONE,
            files_done=result.planned,
            files_total=result.planned,
            rows=result.rows,
            failures=len(result.failures),
            message=message,
            finished_at=timezone.now(),
        )
    except Exception as exc:  # noqa: BLE001 - the job must end with a status
        logger.exception("download job %s failed", job_id)
        DownloadJob.objects.filter(pk=job_id).update(
            status=DownloadJob.Status.FAILED,
            message=f"{type(exc).__name__}: {exc}",
            finished_at=timezone.now(),
        )
    finally:
        connection.close()
