"""End-to-end portfolio sweep benchmark: a grid of portfolio runs over every
demo coin through the websocket, each cell stored and sent as it finishes.

48 demo coins x 5 years of hourly bars, SMA crossover with fast 5, 10, 20, 30
(slow 100) x max_positions 1..5 (20 cells), ranked by roc_24. Starts
throwaway PostgreSQL and Redis servers (as portfolio_ws.py does) and times,
from sending ``portfolio_sweep`` with a warm price cache: ``sweep_start``,
the first ``cell``, and ``sweep_complete``; and the same cells as separate
``portfolio`` runs one after another, for the ratio.

    .venv/bin/python bench/portfolio_sweep_ws.py [--symbols 48] [--years 5] [--repeat 3]

Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from portfolio_ws import served  # noqa: E402
from run_ws import peak_rss_mb, workload_args  # noqa: E402

FAST = [5, 10, 20, 30]
POSITIONS = [1, 2, 3, 4, 5]
SWEEP = {
    "type": "portfolio_sweep", "strategy": "sma_crossover", "rank": "roc_24",
    "grid": {"max_positions": POSITIONS, "fast": FAST}, "params": {"slow": 100},
}  # fmt: skip


def _socket(port: int):
    from websockets.sync.client import connect

    return connect(
        f"ws://127.0.0.1:{port}/ws/backtests/",
        origin=f"http://127.0.0.1:{port}",
        max_size=None,
    )


def one_sweep(port: int) -> dict:
    """Send the sweep; return when each message kind first arrived (ms)."""
    with _socket(port) as ws:
        began = time.perf_counter()
        ws.send(json.dumps(SWEEP))
        seen: dict[str, float] = {}
        cells = 0
        while True:
            message = json.loads(ws.recv(timeout=600))
            seen.setdefault(message["type"], (time.perf_counter() - began) * 1000)
            cells += message["type"] == "cell"
            if message["type"] in ("sweep_complete", "error", "cancelled"):
                if message["type"] != "sweep_complete" or cells != 20:
                    raise RuntimeError(f"the sweep ended with {message}")
                return seen


def cells_one_by_one(port: int) -> float:
    """Run the sweep's 20 cells as separate portfolio runs; return the ms."""
    with _socket(port) as ws:
        began = time.perf_counter()
        for fast in FAST:
            for positions in POSITIONS:
                ws.send(json.dumps({
                    "type": "portfolio", "strategy": "sma_crossover",
                    "rank": "roc_24", "params": {"fast": fast, "slow": 100},
                    "max_positions": positions,
                }))  # fmt: skip
                while (kind := json.loads(ws.recv(timeout=600))["type"]) not in (
                    "complete",
                    "error",
                    "cancelled",
                ):
                    pass
                if kind != "complete":
                    raise RuntimeError(f"a portfolio run ended with {kind}")
        return (time.perf_counter() - began) * 1000


def main() -> None:
    args = workload_args(__doc__.splitlines()[0])
    # Twenty runs a minute and more: the per-minute throttle would refuse them.
    os.environ["BACKTEST_RUNS_PER_MINUTE"] = "0"
    with served(args) as (port, server):
        one_sweep(port)  # imports, JIT, pools, the price cache: not timed
        runs = [one_sweep(port) for _ in range(args.repeat)]
        single = [cells_one_by_one(port) for _ in range(args.repeat)]
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(
            f"portfolio sweep of 20 cells over {args.symbols} coins x {args.years} "
            f"years through the websocket, warm ({args.repeat} runs, median):"
        )
        print(
            f"  sweep_start {med['sweep_start']:.1f} ms · first cell "
            f"{med['cell']:.1f} ms · sweep_complete {med['sweep_complete']:.1f} ms"
        )
        print(
            f"  the same 20 cells as portfolio runs one after another "
            f"{statistics.median(single):.1f} ms (ratio "
            f"{statistics.median(single) / med['sweep_complete']:.2f})"
        )
        print(f"  daphne peak RSS {peak_rss_mb(server.pid):.0f} MB")


if __name__ == "__main__":
    main()
