"""Engine benchmark: workload W (6 strategies x 48 coins x 43,800 hourly bars)
with prices in memory. Prints figures; asserts nothing about time.

    .venv/bin/python bench/engine.py [--coins 48] [--bars 43800] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from strategies.engine import run_many  # noqa: E402
from strategies.registry import STRATEGIES  # noqa: E402
from strategies.types import Bars  # noqa: E402


def synthetic(coins: int, bars: int, seed: int = 42) -> list[Bars]:
    """Return deterministic geometric random walks with valid OHLC."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(coins):
        vol = rng.uniform(0.004, 0.02)
        close = rng.uniform(0.1, 50_000) * np.exp(np.cumsum(rng.normal(0, vol, bars)))
        open_ = np.r_[close[0], close[:-1]]
        high = np.maximum(open_, close) * (1 + rng.uniform(0, vol, bars))
        low = np.minimum(open_, close) * (1 - rng.uniform(0, vol, bars))
        time_ = 1_577_836_800 + 3600 * np.arange(bars, dtype=np.int64)
        out.append(Bars(time_, open_, high, low, close, rng.uniform(1, 1e6, bars)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coins", type=int, default=48)
    parser.add_argument("--bars", type=int, default=43_800)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    data = synthetic(args.coins, args.bars)
    jobs = [(key, {}) for key in STRATEGIES]
    backtests = args.coins * len(jobs)
    total_bars = args.coins * args.bars

    def serial() -> None:
        for bars in data:
            run_many(bars, jobs)

    pool = ThreadPoolExecutor(os.cpu_count() or 2)

    def threaded() -> None:
        list(pool.map(lambda bars: run_many(bars, jobs), data))

    print(
        f"workload: {len(jobs)} strategies x {args.coins} coins x {args.bars:,} bars "
        f"= {backtests} backtests, {total_bars:,} bars; {os.cpu_count()} CPUs"
    )
    for label, work in (
        ("1 thread", serial),
        (f"{pool._max_workers} threads", threaded),
    ):
        work()  # warm-up: imports, allocator, caches
        times = []
        for _ in range(args.repeat):
            began = time.perf_counter()
            work()
            times.append(time.perf_counter() - began)
        best, median = min(times), statistics.median(times)
        print(
            f"{label:>10}: best {best:.3f} s, median {median:.3f} s | "
            f"{best / backtests * 1000:.2f} ms per backtest | "
            f"{len(jobs) * total_bars / best / 1e6:.1f} M bar-evaluations/s"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak:.0f} MB")


if __name__ == "__main__":
    main()
