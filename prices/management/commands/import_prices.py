from __future__ import annotations

import logging
import sys
import time

from django.core.management.base import BaseCommand, CommandError, CommandParser

from prices.importers import ImportFormatError, symbol_from_path
from prices.models import Interval
from prices.provenance import ImportConflict
from prices.services import file_import

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Import OHLCV candles from CSV files (timestamp,open,high,low,close,volume "
        "with ISO-8601 UTC times, or Binance kline CSVs), plain or gzip-compressed. "
        "Each file is one transaction; re-importing a file changes nothing. A file "
        "whose bars would change a coin's stored bars, or mix them with bars from "
        "elsewhere (the synthetic demo), is refused unless --replace."
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
        parser.add_argument(
            "--replace",
            action="store_true",
            help="Delete the coin's stored bars (every interval) before importing, "
            "in the same transaction, instead of refusing a conflicting file.",
        )

    def handle(self, *args, **options) -> None:
        files = options["files"]
        if options["symbol"] and len(files) > 1:
            self.stderr.write(f"note: every file is imported as {options['symbol']}")
        began = time.perf_counter()
        total = failures = 0
        interactive = sys.stderr.isatty()
        # --replace clears a coin once: its later files (the months of one
        # pair) add to what the first one brought instead of replacing it again.
        replaced: set[str] = set()

        for path in files:
            symbol = (options["symbol"] or symbol_from_path(path)).upper()

            def progress(done: int, count: int, path: str = path) -> None:
                if interactive and count > 0:
                    self.stderr.write(f"\r{path}: {done:,}/{count:,} rows", ending="")

            try:
                result = file_import(
                    path,
                    symbol=options["symbol"],
                    interval=options["interval"],
                    replace=options["replace"] and symbol not in replaced,
                    progress=progress,
                )
            except Exception as exc:
                # Whatever goes wrong with one file (a bad row, a value the
                # database refuses, a bug) is that file's failure: its
                # transaction is rolled back and the other files go on.
                failures += 1
                if interactive:
                    self.stderr.write("")
                if isinstance(exc, ImportConflict):
                    self.stderr.write(
                        f"error: {path}: {exc}; nothing imported from this file "
                        "(--replace deletes the coin's stored bars first)"
                    )
                    continue
                elif not isinstance(exc, ImportFormatError):
                    logger.debug("importing %s failed", path, exc_info=True)
                    exc = ImportFormatError(
                        path, None, f"{type(exc).__name__}: {exc}".strip()
                    )
                self.stderr.write(f"error: {exc} (nothing imported from this file)")
                continue
            if interactive:
                self.stderr.write("")
            if options["replace"]:
                replaced.add(result.symbol)
            total += result.rows
            removed = (
                f", replacing {result.removed_rows:,} stored bars"
                if result.removed_rows
                else ""
            )
            self.stdout.write(
                f"{path}: {result.symbol} {result.interval} {result.rows:,} rows "
                f"({result.new_rows:,} new, {result.unchanged_rows:,} unchanged, "
                f"{result.changed_rows:,} changed{removed}; "
                f"{result.daily_rows:,} daily bars derived) in {result.seconds:.2f}s "
                f"({result.rows / max(result.seconds, 1e-9):,.0f} rows/s)"
            )
        elapsed = time.perf_counter() - began
        self.stdout.write(
            f"imported {total:,} rows from {len(files) - failures} of {len(files)} "
            f"file(s) in {elapsed:.1f}s ({total / max(elapsed, 1e-9):,.0f} rows/s)"
        )
        if failures:
            raise CommandError(f"{failures} file(s) failed to import")
