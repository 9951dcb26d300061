"""Rule-language benchmark: compiled programs against the built-ins on W's
data (48 coins x 43,800 hourly bars, bench/engine.py's seeded random walks).
Prints figures; asserts nothing.

    .venv/bin/python bench/rules.py [--coins 48] [--bars 43800] [--repeat 3]

1. ``sma_crossover`` in the language against the built-in, through run_many
   (one fresh indicator cache per coin, so each side computes its averages);
   target: within 1.5x.
2. A five-indicator rule (sma, ema, rsi, atr, bb_lower) against the built-in
   sma_crossover; target: within 3x.
3. A sweep of 174 combinations (fast 5:50:5 x slow 20:200:10) of the program
   through sweep_coin (cell metrics), against the built-in's sweep_coin and
   against run_many of the same combinations.
The two sides of each pair alternate, so the machine's load affects both.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.engine import synthetic  # noqa: E402
from strategies.engine import run_many  # noqa: E402
from strategies.rules import compile_strategy  # noqa: E402
from strategies.rules.examples import BUILTINS
from strategies.sweep import SWEEP_KEYS, grid_expand, sweep_coin  # noqa: E402

FIVE = """\
param fast: int = 20 in 2..500
param slow: int = 50 in 2..1000
long entry: ema(close, fast) > sma(close, slow) and rsi(close, 14) < 70
    and close > bb_lower(close, 20, 2) + atr(14)
long exit:  ema(close, fast) < sma(close, slow) or rsi(close, 14) > 80
"""
COMMAND = "bench/rules.py"


def timed(run: Callable[[], object], repeat: int) -> list[float]:
    """Return the wall times of ``repeat`` runs after one warm-up."""
    run()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times


def pair(label: str, base: Callable, other: Callable, repeat: int, target: str) -> None:
    """Print the best and median times of two runs, alternated, and their ratio."""
    base(), other()
    a, b = [], []
    for _ in range(repeat):
        a += timed(base, 1)
        b += timed(other, 1)
    ratio = min(b) / min(a)
    print(
        f"{label}: built-in best {min(a):.3f} s (median {statistics.median(a):.3f}),"
        f" rules best {min(b):.3f} s (median {statistics.median(b):.3f}),"
        f" ratio {ratio:.2f}x (target {target})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coins", type=int, default=48)
    parser.add_argument("--bars", type=int, default=43_800)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sweep-coins", type=int, default=8)
    args = parser.parse_args()
    data = synthetic(args.coins, args.bars)
    sma = compile_strategy(BUILTINS["sma_crossover"], key="sma_crossover")
    five = compile_strategy(FIVE, key="five")
    print(
        f"$ python {COMMAND} --coins {args.coins} --bars {args.bars} "
        f"--repeat {args.repeat} --sweep-coins {args.sweep_coins}"
    )

    def runs(strategy: object) -> Callable[[], None]:
        return lambda: [run_many(bars, [(strategy, {})]) for bars in data]

    pair(
        f"sma_crossover x {args.coins} coins",
        runs("sma_crossover"),
        runs(sma),
        args.repeat,
        "<= 1.5x",
    )
    pair(
        f"five-indicator rule x {args.coins} coins (vs built-in sma_crossover)",
        runs("sma_crossover"),
        runs(five),
        args.repeat,
        "<= 3x",
    )

    grid = grid_expand("sma_crossover", {"fast": "5:50:5", "slow": "20:200:10"})
    combos = grid.combinations
    sweep_data = data[: args.sweep_coins]

    def sweeps(strategy: object) -> Callable[[], None]:
        return lambda: [
            sweep_coin(bars, strategy, combos, keys=SWEEP_KEYS) for bars in sweep_data
        ]

    label = f"sweep {len(combos)} combinations x {len(sweep_data)} coins"
    pair(
        f"{label}, sweep_coin",
        sweeps("sma_crossover"),
        sweeps(sma),
        args.repeat,
        "shared indicators",
    )
    jobs = [(sma, params) for params in combos]

    def many_runs() -> None:
        # 29 jobs at a time, each block's results dropped, as sweep_coin does.
        for bars in sweep_data:
            for start in range(0, len(jobs), 29):
                run_many(bars, jobs[start : start + 29])

    many = timed(many_runs, 1)
    print(
        f"{label}, rules through run_many (all metrics, equity curves): "
        f"{min(many):.3f} s"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (max RSS) {peak:.0f} MB")


if __name__ == "__main__":
    main()
