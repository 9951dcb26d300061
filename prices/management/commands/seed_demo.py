from __future__ import annotations

import sys
import time

from django.core.management.base import BaseCommand, CommandError, CommandParser

from prices.models import PriceBar
from prices.services import demo_seed


class Command(BaseCommand):
    help = (
        "Create deterministic synthetic hourly prices (and derived daily bars) for "
        "up to 200 demo coins (48 well-known symbols, then DEMO049 to DEMO200), "
        "replacing any earlier demo data of those coins. A coin whose bars were "
        "imported (a file, the archive) is skipped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--symbols", default="48", help="Number of coins, 1-200 (48)."
        )
        parser.add_argument("--years", default="5", help="Years of hourly bars (5).")
        parser.add_argument("--seed", default="42", help="Random seed (42).")
        parser.add_argument(
            "--interval",
            default="1h",
            help="1h (default) or 1m: 1-minute bars, stored as day blocks, with "
            "the hourly and daily bars built from them.",
        )
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="Do nothing when any hourly bar exists (used by `make demo`).",
        )

    def _int(self, options: dict, name: str) -> int:
        try:
            return int(options[name])
        except ValueError:
            raise CommandError(
                f"--{name}: expected an integer, got {options[name]!r}"
            ) from None

    def handle(self, *args, **options) -> None:
        symbols, years = self._int(options, "symbols"), self._int(options, "years")
        seed = self._int(options, "seed")
        if options["if_empty"] and PriceBar.objects.filter(interval="1h").exists():
            self.stdout.write("prices exist; not seeding (drop --if-empty to reseed)")
            return
        interactive = sys.stderr.isatty()

        def progress(symbol: str, rows: int) -> None:
            if interactive:
                self.stderr.write(f"\r{symbol:>6}: {rows:,} rows", ending="")

        began = time.perf_counter()
        try:
            result = demo_seed(
                symbols=symbols,
                years=years,
                seed=seed,
                interval=options["interval"],
                progress=progress,
            )
        except ValueError as exc:
            raise CommandError(f"--{exc}") from None
        if interactive:
            self.stderr.write("")
        elapsed = time.perf_counter() - began
        if result.skipped:
            self.stdout.write(
                f"skipped {', '.join(result.skipped)}: their bars come from "
                "elsewhere (imported), so demo data would mix with them"
            )
        rows = result.rows
        unit = "hourly" if options["interval"] == "1h" else options["interval"]
        self.stdout.write(
            f"seeded {len(result.seeded)} coins x {years} years: {rows:,} {unit} "
            f"bars in {elapsed:.1f}s ({rows / max(elapsed, 1e-9):,.0f} rows/s)"
        )
