"""Portfolio sweep benchmark: a grid of portfolio runs over synthetic coins.

    .venv/bin/python bench/portfolio_sweep.py [--coins 12] [--bars 8760]

Grid: sma_crossover fast 5:50:5 (slow 100) x max_positions 1:10:1, rank
roc_24: 100 cells. Reports the whole ``portfolio_sweep`` (conditions once per
fast value, rank values once) against one ``run_portfolio`` per cell, checks
the two agree on every cell's final equity, and prints figures; asserts
nothing else.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine import synthetic  # noqa: E402

from strategies.portfolio import run_portfolio  # noqa: E402
from strategies.portfolio_pass import compile_kernels  # noqa: E402
from strategies.portfolio_sweep import portfolio_sweep  # noqa: E402


def main() -> None:
    """Time a 100-cell portfolio sweep both ways and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--coins", type=int, default=12)
    parser.add_argument("--bars", type=int, default=8760)
    args = parser.parse_args()
    coins = {f"C{i:02d}": b for i, b in enumerate(synthetic(args.coins, args.bars))}
    combos = [
        {"fast": fast, "slow": 100, "max_positions": m}
        for fast in range(5, 51, 5)
        for m in range(1, 11)
    ]
    compile_kernels()
    print(f"{args.coins} coins x {args.bars} bars, {len(combos)} cells")

    began = time.perf_counter()
    swept = dict(portfolio_sweep(coins, "sma_crossover", combos, rank="roc_24"))
    shared = time.perf_counter() - began
    print(f"portfolio_sweep (shared work):   {shared:.2f} s")

    began = time.perf_counter()
    singles = [
        run_portfolio(
            coins,
            "sma_crossover",
            {"fast": c["fast"], "slow": 100},
            max_positions=c["max_positions"],
            rank="roc_24",
        )  # fmt: skip
        for c in combos
    ]
    alone = time.perf_counter() - began
    print(f"one run_portfolio per cell:      {alone:.2f} s")
    same = all(
        swept[i].metrics["final_equity"] == single.metrics["final_equity"]
        for i, single in enumerate(singles)
    )
    print(f"every cell's final equity equal: {same}")


if __name__ == "__main__":
    main()
