"""Another user's 1-coin run beside a 10,000-combination sweep on Celery workers.

Starts throwaway PostgreSQL and Redis servers (or uses DATABASE_URL/REDIS_URL
if both are set and hold data), seeds the coins, and serves the app with
daphne and one Celery worker of 2 processes, twice: with every piece of a job
sent at once (BACKTEST_TASKS_IN_FLIGHT=0) and with the bound (default 8). Each
time one client starts a sweep of 10,000 combinations (SMA crossover, fast
2:101 x slow 102:201), and once its first cell has come and a second more has
passed, a second client sends a 1-coin run; prints how long that run took to
its first result and to its end, and how many of the sweep's cells were done
by then; and, before that, sweep S alone (174 combinations x every coin), what
the bound costs a job on idle workers. Ratios within one invocation are what
to compare (the machine is shared).

    .venv/bin/python bench/fairness.py [--symbols 12] [--years 2] [--in-flight 8]

Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "bench"))
from run_ws import PY, one_run, seeded_env  # noqa: E402
from services import _wait_for_port, free_port  # noqa: E402
from sweep_ws import one_sweep  # noqa: E402
from workers import start_worker, stop  # noqa: E402

BIG_SWEEP = {
    "type": "sweep",
    "strategy": "sma_crossover",
    "grid": {
        "fast": {"start": 2, "stop": 101, "step": 1},
        "slow": {"start": 102, "stop": 201, "step": 1},
    },
}


class SweepClient:
    """A websocket client that starts the big sweep and counts its cells."""

    def __init__(self, port: int) -> None:
        from websockets.sync.client import connect

        self.ws = connect(
            f"ws://127.0.0.1:{port}/ws/backtests/",
            origin=f"http://127.0.0.1:{port}",
            max_size=None,
        ).__enter__()
        self.cells = 0
        self.combinations = 0
        self.first_cell = threading.Event()
        self.ended = threading.Event()
        self.ws.send(json.dumps(BIG_SWEEP))
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            message = json.loads(self.ws.recv(timeout=600))
            if message["type"] == "sweep_start":
                self.combinations = message["combinations"]
            elif message["type"] == "cell":
                self.cells += 1
                self.first_cell.set()
            elif message["type"] in ("sweep_complete", "cancelled", "error"):
                self.ended.set()
                return

    def cancel(self) -> None:
        self.ws.send(json.dumps({"type": "cancel"}))
        self.ended.wait(60)
        self.ws.close()


def first_symbol(env: dict) -> str:
    import psycopg2

    connection = psycopg2.connect(env["DATABASE_URL"])
    with contextlib.closing(connection), connection.cursor() as cursor:
        cursor.execute(
            "SELECT symbol FROM prices_cryptocurrency WHERE is_active "
            "ORDER BY symbol LIMIT 1"
        )
        return cursor.fetchone()[0]


def beside_a_sweep(env: dict, in_flight: int, label: str) -> dict:
    """Serve with ``in_flight``; return the small run's figures."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-fairness-"))
    env = {
        **env,
        "BACKTEST_EXECUTOR": "celery",
        "BACKTEST_TASKS_IN_FLIGHT": str(in_flight),
        "BACKTEST_RUNS_PER_MINUTE": "0",
    }
    worker = start_worker(env, 2, tmp / "worker.log")
    port = free_port()
    server = subprocess.Popen(
        [str(Path(PY).parent / "daphne"), "-b", "127.0.0.1", "-p", str(port),
         "backtester.asgi:application"],
        cwd=ROOT, env=env, stdout=(tmp / "daphne.log").open("wb"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    small = {
        "strategies": ["sma_crossover"],
        "symbols": [first_symbol(env)],
        "no_cache": True,  # computed, not answered from stored results
    }
    try:
        _wait_for_port(port, timeout=30)
        one_run(port, **small)  # untimed: imports, connections, the cache
        one_sweep(port)
        # Sweep S alone, best of 2: what the bound costs a job on idle workers.
        alone = min(one_sweep(port)["all_ms"] for _ in range(2))
        sweep = SweepClient(port)
        if not sweep.first_cell.wait(120):
            raise RuntimeError(f"no cell within 120 s; logs: {tmp}")
        time.sleep(1.0)
        run = one_run(port, **small)
        cells = sweep.cells
        sweep.cancel()
    except Exception:
        print(f"logs: {tmp}")
        raise
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        stop(worker)
    print(
        f"{label:<34} 1-coin run: first result {run['first_ms']:8.0f} ms, "
        f"done {run['all_ms']:8.0f} ms; the sweep had {cells} of "
        f"{sweep.combinations} cells by then; sweep S alone {alone:.0f} ms"
    )
    return {**run, "sweep_s_ms": alone}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=12)
    parser.add_argument("--years", type=int, default=2)
    parser.add_argument("--in-flight", type=int, default=8)
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        env = seeded_env(stack, args)
        before = beside_a_sweep(env, 0, "every piece sent at once")
        after = beside_a_sweep(
            env, args.in_flight, f"{args.in_flight} pieces in flight"
        )
        print(
            "all at once vs bounded: the small run's first result "
            f"{before['first_ms'] / after['first_ms']:.2f}x, sweep S alone "
            f"{before['sweep_s_ms'] / after['sweep_s_ms']:.2f}x"
        )


if __name__ == "__main__":
    main()
