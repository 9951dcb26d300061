"""Data benchmark: ``import_prices`` of real candles and ``seed_demo``.

Imports every ``*.csv.gz`` of a folder of real hourly candles (default: the
shared ``data/ohlcv-1h`` folder next to the checkout) into a throwaway
PostgreSQL server twice, and checks the second import left the same row counts;
then seeds the demo data (48 coins x 5 years) on a fresh SQLite file and on
PostgreSQL. Prints rows/s and wall times; asserts nothing about time.

    .venv/bin/python bench/data.py [--data DIR] [--symbols 48] [--years 5]

Uses DATABASE_URL when it points at PostgreSQL (its prices are replaced);
otherwise starts a server of its own.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from services import postgres_server  # noqa: E402

PY = sys.executable
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "ohlcv-1h"


def manage(*args: str, env: dict) -> tuple[float, str]:
    """Run a management command; return its wall time and last output line."""
    began = time.perf_counter()
    done = subprocess.run(
        [PY, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - began
    if done.returncode:
        raise SystemExit(f"manage.py {args[0]} failed: {done.stderr.strip()}")
    lines = done.stdout.strip().splitlines()
    return wall, lines[-1] if lines else ""


def counts(env: dict) -> dict[str, int]:
    """Return the number of stored bars per interval."""
    code = (
        "import django, json; django.setup();"
        "from django.db.models import Count;"
        "from prices.models import PriceBar;"
        "print(json.dumps({r['interval']: r['n'] for r in PriceBar.objects"
        ".values('interval').annotate(n=Count('id')).order_by()}))"
    )
    done = subprocess.run(
        [PY, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    import json

    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--symbols", default="48")
    parser.add_argument("--years", default="5")
    args = parser.parse_args()
    files = sorted(str(p) for p in args.data.glob("*.csv.gz"))
    base = dict(os.environ, DEBUG="false", SECRET_KEY="bench-only-" + "x" * 50)
    base.update(LOG_LEVEL="WARNING", DJANGO_SETTINGS_MODULE="backtester.settings")
    base.pop("REDIS_URL", None)  # the local-memory cache: this measures writes

    with contextlib.ExitStack() as stack:
        url = os.environ.get("DATABASE_URL", "")
        if not url.startswith(("postgres", "postgresql")):
            url = stack.enter_context(postgres_server())
        pg = {**base, "DATABASE_URL": url}
        manage("migrate", "-v0", env=pg)

        if files:
            print(f"import_prices, {len(files)} files from {args.data}, PostgreSQL:")
            for attempt in ("first", "again"):
                wall, line = manage("import_prices", *files, env=pg)
                print(f"  {attempt:<6} {wall:6.1f} s wall  | {line}")
                if attempt == "first":
                    before = counts(pg)
            after = counts(pg)
            same = "identical" if before == after else "DIFFERENT"
            print(f"  row counts after each import: {before} / {after} ({same})")
        else:
            print(f"no *.csv.gz under {args.data}: import not measured")

        with tempfile.TemporaryDirectory() as tmp:
            lite = {**base, "DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3"}
            manage("migrate", "-v0", env=lite)
            for label, env in (("SQLite", lite), ("PostgreSQL", pg)):
                wall, line = manage(
                    "seed_demo", "--symbols", args.symbols, "--years", args.years,
                    env=env,
                )  # fmt: skip
                print(f"seed_demo on {label:<10} {wall:6.1f} s wall  | {line}")


if __name__ == "__main__":
    main()
