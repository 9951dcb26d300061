from __future__ import annotations

import sys
from datetime import date

from django.core.management.base import BaseCommand, CommandError, CommandParser

from prices.download import prices_download
from prices.selectors import coins_active
from prices.timeframes import INTERVALS


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"not a date (YYYY-MM-DD): {text!r}") from None


class Command(BaseCommand):
    help = (
        "Download spot klines from the exchange's public archive (MARKET_DATA_URL) "
        "and import them: whole months from monthly files, the current month from "
        "daily files up to yesterday. Each file is checked against its SHA-256 and "
        "imported as one transaction; files already imported are not fetched again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument(
            "--symbols", help="Comma-separated coin symbols, e.g. BTC,ETH."
        )
        which.add_argument(
            "--all-active", action="store_true", help="Every active coin."
        )
        parser.add_argument(
            "--interval", default="1h", choices=INTERVALS, help="Bar interval."
        )
        parser.add_argument(
            "--start", default="2020-01-01", help="First day (YYYY-MM-DD)."
        )
        parser.add_argument(
            "--end", help="Last day (YYYY-MM-DD; default: yesterday, UTC)."
        )
        parser.add_argument(
            "--quote", default="USDT", help="Quote asset: coin BTC is pair BTCUSDT."
        )
        parser.add_argument(
            "--recheck",
            action="store_true",
            help="Also ask for the checksums of files already imported and "
            "re-import those replaced in the archive.",
        )

    def handle(self, *args, **options) -> None:
        if options["all_active"]:
            symbols = list(coins_active().values_list("symbol", flat=True))
            if not symbols:
                raise CommandError("no active coins")
        else:
            symbols = [s.strip().upper() for s in options["symbols"].split(",")]
            symbols = [s for s in dict.fromkeys(symbols) if s]
        interactive = sys.stderr.isatty()

        def progress(done: int, total: int, rows: int) -> None:
            if interactive and total:
                width = 30
                filled = width * done // total
                self.stderr.write(
                    f"\r[{'#' * filled}{'.' * (width - filled)}] "
                    f"{done:,}/{total:,} files, {rows:,} rows",
                    ending="",
                )

        try:
            result = prices_download(
                symbols=symbols,
                interval=options["interval"],
                start=_date(options["start"]),
                end=_date(options["end"]) if options["end"] else None,
                quote=options["quote"].upper(),
                recheck=options["recheck"],
                progress=progress,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if interactive:
            self.stderr.write("")
        for name in result.missing:
            self.stderr.write(f"missing: {name} (not in the archive; skipped)")
        for problem in result.failures:
            self.stderr.write(f"error: {problem} (nothing imported from this file)")
        self.stdout.write(result.summary())
        if result.failures:
            raise CommandError(
                f"{len(result.failures)} file(s) failed: {result.failures[0]}"
            )
