from __future__ import annotations

import logging
import sys
import time

from django.core.management.base import BaseCommand, CommandError, CommandParser

from prices.importers import ImportFormatError
from prices.models import Interval
from prices.services import file_import

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Import OHLCV candles from CSV files (timestamp,open,high,low,close,volume "
        "with ISO-8601 UTC times, or Binance kline CSVs), plain or gzip-compressed. "
        "Each file is one transaction; re-importing a file changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", metavar="FILE", help="CSV files.")
        parser.add_argument(
            "--symbol",
            help="Coin symbol for every file (default: from the file name, "
            "BTCUSDT.csv.gz -> BTC).",
        )
        parser.add_argument(
            "--interval",
            choices=Interval.values,
            help="Bar interval of the files (default: from a Binance file name, "
            "else 1h).",
        )

    def handle(self, *args, **options) -> None:
        files = options["files"]
        if options["symbol"] and len(files) > 1:
            self.stderr.write(f"note: every file is imported as {options['symbol']}")
        began = time.perf_counter()
        total = failures = 0
        interactive = sys.stderr.isatty()

        for path in files:

            def progress(done: int, count: int, path: str = path) -> None:
                if interactive and count > 0:
                    self.stderr.write(f"\r{path}: {done:,}/{count:,} rows", ending="")

            try:
                result = file_import(
                    path,
                    symbol=options["symbol"],
                    interval=options["interval"],
                    progress=progress,
                )
            except Exception as exc:
                # Whatever goes wrong with one file (a bad row, a value the
                # database refuses, a bug) is that file's failure: its
                # transaction is rolled back and the other files go on.
                failures += 1
                if interactive:
                    self.stderr.write("")
                if not isinstance(exc, ImportFormatError):
                    logger.debug("importing %s failed", path, exc_info=True)
                    exc = ImportFormatError(
                        path, None, f"{type(exc).__name__}: {exc}".strip()
                    )
                self.stderr.write(f"error: {exc} (nothing imported from this file)")
                continue
            if interactive:
                self.stderr.write("")
            total += result.rows
            self.stdout.write(
                f"{path}: {result.symbol} {result.interval} {result.rows:,} rows "
                f"({result.new_rows:,} new, {result.daily_rows:,} daily bars "
                f"derived) in {result.seconds:.2f}s "
                f"({result.rows / max(result.seconds, 1e-9):,.0f} rows/s)"
            )
        elapsed = time.perf_counter() - began
        self.stdout.write(
            f"imported {total:,} rows from {len(files) - failures} of {len(files)} "
            f"file(s) in {elapsed:.1f}s ({total / max(elapsed, 1e-9):,.0f} rows/s)"
        )
        if failures:
            raise CommandError(f"{failures} file(s) failed to import")
