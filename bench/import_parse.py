"""Parsing benchmark: rows/s of the importer's parser on real candles, and peak memory.

Run from the project root: ``python bench/import_parse.py [--files 12]``. Prints
figures; asserts nothing about time. The peak is this process's VmHWM (Linux).
"""

from __future__ import annotations

import argparse
import gzip
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prices.importers import ImportFormatError, parse_file  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "ohlcv-1h"


def peak_mb() -> float:
    """Return this process's peak resident set in MB (0 where /proc is absent)."""
    try:
        with open("/proc/self/status") as status:
            line = next(s for s in status if s.startswith("VmHWM:"))
    except OSError:
        return 0.0
    return int(line.split()[1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--files", type=int, default=12)
    parser.add_argument("--bomb", action="store_true", help="also a 1 GiB gzip bomb")
    args = parser.parse_args()
    files = sorted(args.data.glob("*.csv.gz"))[: args.files]
    if not files:
        print(f"no *.csv.gz under {args.data}")
        return
    began = time.perf_counter()
    rows = sum(len(parse_file(path).series.time) for path in files)
    elapsed = time.perf_counter() - began
    print(
        f"parse_file, {len(files)} real files: {rows:,} rows in {elapsed:.2f} s "
        f"({rows / elapsed:,.0f} rows/s), peak {peak_mb():.0f} MB"
    )
    if args.bomb:
        with tempfile.TemporaryDirectory() as tmp:
            bomb = Path(tmp) / "BOMBUSDT.csv.gz"
            with gzip.open(bomb, "wb") as out:
                for _ in range(1024):
                    out.write(bytes(1 << 20))
            began = time.perf_counter()
            try:
                parse_file(bomb)
            except ImportFormatError as exc:
                message = str(exc).removeprefix(str(bomb))
            print(
                f"gzip bomb ({bomb.stat().st_size / 1e6:.1f} MB -> 1 GiB): refused in "
                f"{time.perf_counter() - began:.3f} s ('{message}'), "
                f"peak {peak_mb():.0f} MB"
            )


if __name__ == "__main__":
    main()
