"""Sweep benchmark: sweep S (SMA crossover fast 5:50:5 x slow 20:200:10, 174
valid combinations) x 48 coins x 43,800 hourly bars = 8,352 backtests.
Prints figures; asserts nothing.

    .venv/bin/python bench/sweep.py [--coins 48] [--bars 43800] [--repeat 3]
                                    [--real DIR] [--sections engine,...]

Prices are the demo's synthetic ones (prices/demo.py, the series seed_demo
stores), or with ``--real`` the real hourly candles of DIR (each coin's own
history, the last ``--bars`` of it). Each section is a function taking the
Setup and printing its lines; add a section by writing one and listing it in
SECTIONS. ``--sections engine,servers`` adds sweep S through the websocket
with the thread pool and with 1 and 2 Celery worker processes (the same
measurement as bench/workers.py).
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from prices.demo import coin_series  # noqa: E402
from strategies.engine import run_many  # noqa: E402
from strategies.sweep import (  # noqa: E402
    SWEEP_KEYS,
    Grid,
    aggregate,
    grid_expand,
    sweep_coin,
)
from strategies.types import Bars  # noqa: E402
from strategies.walkforward import walk_forward  # noqa: E402

STRATEGY = "sma_crossover"
GRID_S = {"fast": "5:50:5", "slow": "20:200:10"}


@dataclass
class Setup:
    """What every section shares: the grid, the coins' bars and the options."""

    grid: Grid
    data: dict[str, Bars]
    repeat: int
    source: str

    @property
    def backtests(self) -> int:
        return len(self.grid.combinations) * len(self.data)

    @property
    def bars(self) -> int:
        return sum(len(b.close) for b in self.data.values())


def timed(run: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Run once to warm up, then ``repeat`` times; return the best wall time
    and the best CPU time of this process, in seconds.

    On a shared machine the CPU time is the figure to compare: it leaves out
    the time other processes held the core.
    """
    run()
    walls, cpus = [], []
    for _ in range(repeat):
        began, began_cpu = time.perf_counter(), time.process_time()
        run()
        walls.append(time.perf_counter() - began)
        cpus.append(time.process_time() - began_cpu)
    return min(walls), min(cpus)


def peak_rss_mb() -> float:
    """Return this process' peak resident memory so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def engine_cells(setup: Setup, keys: tuple[str, ...] | None = SWEEP_KEYS) -> list:
    """Run the sweep on every coin and reduce it to cells (what a sweep does)."""
    per_coin = [
        sweep_coin(bars, STRATEGY, setup.grid.combinations, keys=keys)
        for bars in setup.data.values()
    ]
    return [aggregate(list(column)) for column in zip(*per_coin, strict=True)]


def baseline_cells(setup: Setup) -> list:
    """The same cells through run_many, one backtest after another."""
    jobs = [(STRATEGY, c) for c in setup.grid.combinations]
    per_coin = [[r.metrics for r in run_many(b, jobs)] for b in setup.data.values()]
    return [aggregate(list(column)) for column in zip(*per_coin, strict=True)]


def max_relative_difference(cells: list, expected: list) -> float:
    """Return the largest difference between two lists of cells, relative
    (absolute for values below 1 in size, such as a Sharpe ratio near 0);
    infinite where one value is None and the other is not, or a count
    differs."""
    worst = 0.0
    for cell, other in zip(cells, expected, strict=True):
        for key, value in other.items():
            found = cell[key]
            if (
                value is None
                or found is None
                or key in ("trades", "coins", "beat_buy_hold")
            ):
                worst = worst if found == value else math.inf
            elif found != value:
                worst = max(worst, abs(found - value) / max(abs(value), 1.0))
    return worst


def section_engine(setup: Setup) -> None:
    """Engine alone, one thread: sweep_coin per coin then aggregate, against
    run_many per coin (today's path) in the same process. The engine runs
    first, so the peak memory printed after it is the engine's own."""
    count = setup.backtests
    cells = engine_cells(setup)
    wall, cpu = timed(lambda: engine_cells(setup), setup.repeat)
    full_wall, full_cpu = timed(lambda: engine_cells(setup, keys=None), setup.repeat)
    print(
        f"engine, 1 thread, sweep S ({', '.join(SWEEP_KEYS)}): {cpu:.3f} s CPU "
        f"({wall:.3f} s wall) | {count / cpu:,.0f} backtests/s | "
        f"{cpu / count * 1e6:.0f} us per backtest"
    )
    print(
        f"engine, 1 thread, all metrics: {full_cpu:.3f} s CPU ({full_wall:.3f} s wall)"
    )
    print(f"peak RSS after the engine: {peak_rss_mb():.0f} MB")
    # Not an assertion on time: a wrong number makes the figures moot. The
    # cell metrics come from per-trade sums (strategies.segments), equal to
    # run_many's to rounding: print the largest relative difference.
    worst = max_relative_difference(cells, baseline_cells(setup))
    print(f"cells vs run_many: largest difference {worst:.1e} (relative)")
    if worst > 1e-9:
        print("engine: cells differ from run_many's!")
    base_wall, base_cpu = timed(lambda: baseline_cells(setup), setup.repeat)
    print(
        f"run_many baseline, 1 thread: {base_cpu:.3f} s CPU ({base_wall:.3f} s "
        f"wall) | sweep_coin is {base_cpu / cpu:.2f}x faster "
        f"({base_cpu / full_cpu:.2f}x with all metrics)"
    )


def section_walkforward(setup: Setup) -> None:
    """Walk-forward of sweep S, one year of training and a quarter of testing
    per fold, one thread (run it with --sections walkforward)."""
    began, began_cpu = time.perf_counter(), time.process_time()
    run = walk_forward(
        setup.data, STRATEGY, setup.grid, train_bars=8_760, test_bars=2_190
    )
    cpu = time.process_time() - began_cpu
    wall = time.perf_counter() - began
    backtests = sum(len(f.coins) for f in run.folds) * (
        len(setup.grid.combinations) + 1
    )
    print(
        f"walk-forward of S, {len(run.folds)} folds of 8,760 + 2,190 bars: "
        f"{cpu:.3f} s CPU ({wall:.3f} s wall), {backtests:,} backtests | "
        f"stitched mean equity {run.final['equity']:,.0f} vs buy & hold "
        f"{run.final['buy_hold']:,.0f}"
    )


def section_servers(setup: Setup) -> None:
    """Sweep S (and W) end to end through the websocket, warm Redis cache:
    daphne's thread pool, then Celery with 1 and 2 worker processes, on 48
    demo coins x 5 years in PostgreSQL (bench/workers.py; throwaway servers
    unless DATABASE_URL and REDIS_URL are set)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from workers import compare

    print("through the websocket (bench/workers.py):")
    compare(argparse.Namespace(symbols=48, years=5, repeat=setup.repeat))


SECTIONS: dict[str, Callable[[Setup], None]] = {
    "engine": section_engine,
    "walkforward": section_walkforward,
    "servers": section_servers,
}
DEFAULT_SECTIONS = "engine"


def load(args: argparse.Namespace) -> tuple[dict[str, Bars], str]:
    """Return the coins' bars and a line saying where they came from."""
    if args.real:
        from strategies.tests.realdata import load_bars

        files = sorted(Path(args.real).glob("*USDT.csv.gz"))[: args.coins]
        symbols = [f.name.removesuffix("USDT.csv.gz") for f in files]
        data = {s: load_bars(Path(args.real), s, last=args.bars) for s in symbols}
        return data, f"real candles from {args.real} (last {args.bars:,} bars each)"
    data = {
        str(i): Bars(*coin_series(i, args.bars, args.seed)) for i in range(args.coins)
    }
    return data, f"synthetic demo prices (prices/demo.py, seed {args.seed})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coins", type=int, default=48)
    parser.add_argument("--bars", type=int, default=43_800)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--real", help="directory of SYMBOLUSDT.csv.gz candles")
    parser.add_argument(
        "--sections",
        default=DEFAULT_SECTIONS,
        help=f"comma-separated, of: {', '.join(SECTIONS)}",
    )
    args = parser.parse_args()

    data, source = load(args)
    setup = Setup(grid_expand(STRATEGY, GRID_S), data, args.repeat, source)
    print(
        f"sweep S: {len(setup.grid.combinations)} combinations "
        f"({setup.grid.skipped} skipped) x {len(data)} coins = "
        f"{setup.backtests:,} backtests, {setup.bars / 1e6:.2f} M bars; {source}; "
        f"{os.cpu_count()} CPUs"
    )
    for name in args.sections.split(","):
        SECTIONS[name](setup)


if __name__ == "__main__":
    main()
