"""Market data benchmark: ``download_prices`` from a local archive, and timeframes.

Builds an archive tree (monthly zips and CHECKSUM files) from the real hourly
candles, serves it on 127.0.0.1, and runs ``download_prices`` on a fresh
SQLite file twice: the full download, then the rerun (which should fetch
nothing). Then aggregates one synthetic coin-year of 1-minute bars into every
coarser timeframe. Prints wall times, rows/s, requests and peak memory;
asserts nothing about time.

    .venv/bin/python bench/download.py [--data DIR] [--coins 4] [--months 12]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from prices.tests.archive_server import ArchiveServer, ArchiveTree  # noqa: E402
from prices.timeframes import INTERVALS, aggregate, interval_seconds  # noqa: E402
from prices.types import PriceSeries  # noqa: E402

PY = sys.executable
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "ohlcv-1h"
COINS = ["BTC", "ETH", "BNB", "ADA", "XRP", "SOL", "DOGE", "LTC"]


def manage(*args: str, env: dict) -> tuple[float, str]:
    """Run a management command; return its wall time and last output line."""
    began = time.perf_counter()
    done = subprocess.run(
        [PY, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - began
    if done.returncode:
        sys.exit(f"manage.py {args[0]} failed:\n{done.stderr[-2000:]}")
    lines = done.stdout.strip().splitlines()
    return wall, lines[-1] if lines else ""


def download_bench(data: Path, coins: int, months: int) -> None:
    """Print the full download and the rerun of ``coins`` x ``months`` files."""
    with tempfile.TemporaryDirectory(prefix="bench-archive-") as work:
        tree = ArchiveTree(Path(work) / "archive", data)
        symbols = COINS[:coins]
        first = date(2022, 1, 1)
        rows = 0
        for symbol in symbols:
            for index in range(months):
                month = date(first.year + index // 12, index % 12 + 1, 1)
                rows += len(tree.add_month(symbol, month))
        server = ArchiveServer(tree.root).start()
        env = {
            **os.environ,
            "DEBUG": "true",
            "DATABASE_URL": f"sqlite:///{work}/bench.sqlite3",
            "REDIS_URL": "",
            "MARKET_DATA_URL": server.url,
        }
        manage("migrate", "-v0", env=env)
        last = date(first.year + (months - 1) // 12, (months - 1) % 12 + 1, 28)
        args = [
            "--symbols",
            ",".join(symbols),
            "--start",
            f"{first}",
            "--end",
            f"{last}",
        ]
        try:
            wall, line = manage("download_prices", *args, env=env)
            print(
                f"download {coins} coins x {months} months ({rows:,} rows, "
                f"{len(server.requests)} requests): {wall:.2f} s "
                f"({rows / wall:,.0f} rows/s incl. start-up) - {line}"
            )
            server.requests.clear()
            wall, line = manage("download_prices", *args, env=env)
            print(f"rerun: {wall:.2f} s, {len(server.requests)} requests - {line}")
        finally:
            server.stop()
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak memory of a download_prices process: {peak:,.0f} MB")


def timeframes_bench() -> None:
    """Print the time to build each timeframe from one coin-year of 1m bars."""
    n = 525_600
    rng = np.random.default_rng(1)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    opened = np.r_[close[0], close[:-1]]
    spread = np.abs(rng.normal(0, 1e-3, n)) * close
    minute = PriceSeries(
        np.arange(n, dtype=np.int64) * 60 + 1_704_067_200,
        opened,
        np.maximum(opened, close) + spread,
        np.minimum(opened, close) - spread,
        close,
        rng.random(n),
    )
    tracemalloc.start()
    for interval in INTERVALS[1:]:
        began = time.perf_counter()
        built = aggregate(minute, interval_seconds(interval))
        ms = (time.perf_counter() - began) * 1000
        print(f"1m -> {interval}: {len(built.time):,} bars in {ms:.1f} ms")
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    print(
        f"aggregation peak extra memory: {peak:.1f} MB (input {48 * n / 2**20:.0f} MB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--coins", type=int, default=4)
    parser.add_argument("--months", type=int, default=12)
    options = parser.parse_args()
    download_bench(options.data, min(options.coins, len(COINS)), options.months)
    timeframes_bench()


if __name__ == "__main__":
    main()
