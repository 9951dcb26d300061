"""Where a big run's memory goes: W over many coins in this process, traced.

Runs the same run loop daphne runs (the process's thread-pool runner), unsaved,
over the first N demo coins of the database in DATABASE_URL (prices from the
cache in REDIS_URL: run bench/scale.py first, or seed_demo), after a warm-up of
the price cache and, with ``--page``, the warm-up a page opening starts. Samples
the resident memory every 5 ms and, with ``--trace``, prints the allocation
sites holding the most at tracemalloc's peak (tracing slows the run: its times
mean nothing then).

    DATABASE_URL=... REDIS_URL=... .venv/bin/python bench/scale_memory.py \
        [--symbols 200] [--interval 1m] [--page] [--trace]

Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def rss_mb() -> float:
    """Return this process's resident memory now."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Sampler(threading.Thread):
    """Record the highest resident memory, and a trace snapshot at its peak."""

    def __init__(self, trace: bool) -> None:
        super().__init__(daemon=True)
        self.trace, self.peak, self.snapshot = trace, 0.0, None
        self.stop = threading.Event()
        self.traced_peak = 0

    def run(self) -> None:
        while not self.stop.wait(0.005):
            now = rss_mb()
            self.peak = max(self.peak, now)
            if self.trace:
                current, _peak = tracemalloc.get_traced_memory()
                # A snapshot only when the traced total grew by 16 MB: each
                # one walks every live block.
                if current > self.traced_peak + 16 * 2**20:
                    self.traced_peak = current
                    self.snapshot = tracemalloc.take_snapshot()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=200, help="First N coins.")
    parser.add_argument("--page", action="store_true", help="Warm as a page does.")
    parser.add_argument("--trace", action="store_true", help="tracemalloc sites.")
    parser.add_argument("--interval", default="1h", help="Bars run (1h, 1m, ...).")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backtester.settings")
    import django

    django.setup()
    from backtester.execution.pool import get_runner
    from backtester.runs.validation import run_spec
    from prices.demo import demo_coins
    from prices.selectors import bars_load, coins_by_symbols

    symbols = [symbol for symbol, _, _ in demo_coins(args.symbols)]
    coins = coins_by_symbols(symbols)
    spec = run_spec(
        {"strategies": "all", "symbols": symbols, "interval": args.interval}
    )
    runner = get_runner()
    # Imports, kernels, connections and the shared cache: not in the figures.
    bars_load(coins=coins[:2], interval=args.interval)
    handle = runner.submit(
        run_id=-1, spec=spec, coins=coins[:2], publish=lambda event: None
    )
    handle.done.wait()
    print(f"before the run: {rss_mb():.0f} MB resident")
    sampler = Sampler(args.trace)
    if args.trace:
        tracemalloc.start(8)
    sampler.start()
    began = time.perf_counter()
    if args.page:
        runner.warm()
    first: list[float] = []

    def publish(event: dict) -> None:
        if event["type"] == "run.results" and not first:
            first.append(time.perf_counter() - began)

    handle = runner.submit(run_id=-2, spec=spec, coins=coins, publish=publish)
    handle.done.wait()
    while runner._warm_loads:  # a page's warm-up may outlast the run
        time.sleep(0.05)
    sampler.stop.set()
    sampler.join()
    print(
        f"{len(coins)} coins, {len(handle.rows)} results {handle.status} in "
        f"{time.perf_counter() - began:.2f} s (first {first[0] * 1000:.0f} ms); "
        f"peak resident {sampler.peak:.0f} MB"
    )
    if sampler.snapshot is not None:
        print(f"traced at the peak: {sampler.traced_peak / 2**20:.0f} MB, by site:")
        for stat in sampler.snapshot.statistics("traceback")[:8]:
            frames = " <- ".join(
                f"{Path(f.filename).name}:{f.lineno}" for f in stat.traceback[:4]
            )
            print(f"  {stat.size / 2**20:7.1f} MB {stat.count:>7} blocks  {frames}")


if __name__ == "__main__":
    main()
