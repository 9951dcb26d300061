"""Engine benchmark: workload W (6 strategies x 48 coins x 43,800 hourly bars,
default parameters, prices in memory). Prints figures; asserts nothing.

W runs on one thread with the risk settings off and with a 5% stop, a 10%
target, a 3% trailing stop and both directions, the two alternating; their
ratio is measured within the one run, so the machine's load affects both alike.

    .venv/bin/python bench/engine.py [--coins 48] [--bars 43800] [--repeat 3]

Each mode runs W once to warm up (imports, caches, scratch memory), then
``--repeat`` more times; best and median wall times are reported. Modes: one
thread; a ThreadPoolExecutor over coins (run_many per coin), which shows how
much NumPy's GIL release buys at this array size; and, for comparison, a
process pool over coins, each worker building the same synthetic data itself.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from strategies.engine import run_many  # noqa: E402
from strategies.registry import STRATEGIES  # noqa: E402
from strategies.risk import Risk  # noqa: E402
from strategies.types import Bars  # noqa: E402

JOBS = [(key, {}) for key in STRATEGIES]
RISK = Risk(stop_loss_pct=5, take_profit_pct=10, trailing_stop_pct=3, direction="both")


def synthetic(coins: int, bars: int, seed: int = 42) -> list[Bars]:
    """Return deterministic geometric random walks with valid OHLC."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(coins):
        vol = rng.uniform(0.004, 0.02)
        start = rng.uniform(0.1, 50_000)
        close = start * np.exp(np.cumsum(rng.normal(0, vol, bars)))
        open_ = np.r_[start, close[:-1]]
        high = np.maximum(open_, close) * (1 + rng.uniform(0, vol, bars))
        low = np.minimum(open_, close) * (1 - rng.uniform(0, vol, bars))
        time_ = 1_577_836_800 + 3600 * np.arange(bars, dtype=np.int64)
        out.append(Bars(time_, open_, high, low, close, rng.uniform(1, 1e6, bars)))
    return out


def coin(bars: Bars, risk: Risk | None = None) -> tuple[int, float]:
    """Run every job on one coin; return (trades, sum of final equities).

    Every mode reduces a coin's results as soon as they exist, so none keeps
    more results alive than another (keeping all 288 costs about 20 ms).
    """
    trades, final = 0, 0.0
    for result in run_many(bars, JOBS, risk=risk):
        trades += result.metrics["num_trades"]
        final += result.metrics["final_equity"]
    return trades, final


def work(data: list[Bars], risk: Risk | None = None) -> tuple[int, float]:
    """Run every job on every coin; return (trades, sum of final equities)."""
    totals = [coin(bars, risk) for bars in data]
    return sum(t for t, _ in totals), sum(f for _, f in totals)


_worker_data: list[Bars] = []


def _worker_init(coins: int, bars: int) -> None:
    _worker_data.extend(synthetic(coins, bars))


def _worker_run(index: int, workers: int) -> tuple[int, float]:
    return work(_worker_data[index::workers])


def measure(label: str, run: Callable[[], object], repeat: int, backtests: int,
            bars_per_test: int) -> float:  # fmt: skip
    """Warm up, time ``repeat`` runs, print best, median and throughput and
    return the best time."""
    run()
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        run()
        times.append(time.perf_counter() - began)
    best, median = min(times), statistics.median(times)
    print(
        f"{label:>13}: best {best:.3f} s, median {median:.3f} s | "
        f"{best / backtests * 1000:.2f} ms per backtest | "
        f"{backtests * bars_per_test / best / 1e6:.0f} M bars/s"
    )
    return best


def measure_pair(
    first: tuple[str, Callable[[], object]],
    second: tuple[str, Callable[[], object]],
    repeat: int,
    backtests: int,
    bars_per_test: int,
) -> tuple[float, float, float, float]:
    """Warm up both, time them alternately ``repeat`` times each, print each
    one's best and median and return the two best wall times, then the two
    best CPU times (this process's; on a shared machine the wall time also
    counts the time other jobs held the cores)."""
    times: dict[str, list[float]] = {first[0]: [], second[0]: []}
    cpu: dict[str, list[float]] = {first[0]: [], second[0]: []}
    first[1]()
    second[1]()
    for _ in range(repeat):
        for label, run in (first, second):
            began, began_cpu = time.perf_counter(), time.process_time()
            run()
            times[label].append(time.perf_counter() - began)
            cpu[label].append(time.process_time() - began_cpu)
    for label, measured in times.items():
        best, median = min(measured), statistics.median(measured)
        print(
            f"{label:>13}: best {best:.3f} s, median {median:.3f} s | "
            f"{best / backtests * 1000:.2f} ms per backtest | "
            f"{backtests * bars_per_test / best / 1e6:.0f} M bars/s | "
            f"CPU best {min(cpu[label]):.3f} s"
        )
    return (
        min(times[first[0]]), min(times[second[0]]),
        min(cpu[first[0]]), min(cpu[second[0]]),
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coins", type=int, default=48)
    parser.add_argument("--bars", type=int, default=43_800)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--single", action="store_true", help="one thread only (no pools)"
    )
    args = parser.parse_args()

    data = synthetic(args.coins, args.bars)
    backtests = args.coins * len(JOBS)
    print(
        f"W: {len(JOBS)} strategies x {args.coins} coins x {args.bars:,} bars = "
        f"{backtests} backtests ({backtests * args.bars / 1e6:.1f} M bars); "
        f"{os.cpu_count()} CPUs"
    )
    trades, final = work(data)
    print(f"check: {trades:,} trades, mean final equity {final / backtests:,.2f}")

    # The two modes alternate, so a change in the machine's load reaches both.
    trades, final = work(data, RISK)
    print(
        f"with risk {RISK.as_dict()}: {trades:,} trades, "
        f"mean final equity {final / backtests:,.2f}"
    )
    plain, risky, plain_cpu, risky_cpu = measure_pair(
        ("1 thread", lambda: work(data)),
        ("1 thread+risk", lambda: work(data, RISK)),
        args.repeat, backtests, args.bars,
    )  # fmt: skip
    print(
        f"risk settings on / off, one thread: {risky / plain:.2f}x wall, "
        f"{risky_cpu / plain_cpu:.2f}x CPU"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS after one thread, both settings: {peak:.0f} MB")
    if args.single:
        return
    with ThreadPoolExecutor(args.workers) as pool:

        def threaded() -> None:
            list(pool.map(coin, data))

        measure(f"{args.workers} threads", threaded, args.repeat, backtests, args.bars)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS (this process, 1 thread and threads): {peak:.0f} MB")

    with ProcessPoolExecutor(
        args.workers, initializer=_worker_init, initargs=(args.coins, args.bars)
    ) as pool:

        def processes() -> None:
            indexes = range(args.workers)
            list(pool.map(_worker_run, indexes, [args.workers] * args.workers))

        measure(
            f"{args.workers} processes", processes, args.repeat, backtests, args.bars
        )


if __name__ == "__main__":
    main()
