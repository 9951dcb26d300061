"""End-to-end sweep benchmark: sweep S through the websocket on the thread pool.

Sweep S is the design's: SMA crossover fast 5:50:5 x slow 20:200:10 (174 valid
combinations) x every coin (48 demo coins x 5 years of hourly bars = 8,352
backtests). Starts throwaway PostgreSQL and Redis servers (or uses
DATABASE_URL/REDIS_URL if both are set and hold data), serves the app with daphne
and times, from sending ``sweep`` with a cold cache (emptied Redis) and a warm
one: ``sweep_start``, the first ``cell``, and the last cell with
``sweep_complete``. Then the same sweep through ``manage.py sweep``.

    .venv/bin/python bench/sweep_ws.py [--symbols 48] [--years 5] [--repeat 3]

Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "bench"))
from run_ws import PY, flush_redis, manage, peak_rss_mb, seeded_env, workload_args  # noqa: E402
from services import (  # noqa: E402
    _wait_for_port,
    free_port,
)

SWEEP_S = {
    "type": "sweep",
    "strategy": "sma_crossover",
    "grid": {
        "fast": {"start": 5, "stop": 50, "step": 5},
        "slow": {"start": 20, "stop": 200, "step": 10},
    },
}


def one_sweep(port: int) -> dict:
    from websockets.sync.client import connect

    with connect(
        f"ws://127.0.0.1:{port}/ws/backtests/",
        origin=f"http://127.0.0.1:{port}",
        max_size=None,
    ) as ws:
        began = time.perf_counter()
        ws.send(json.dumps(SWEEP_S))
        first = start = None
        cells = 0
        while True:
            message = json.loads(ws.recv(timeout=300))
            now = time.perf_counter() - began
            if message["type"] == "cell":
                cells += 1
                first = now if first is None else first
            elif message["type"] == "sweep_start":
                start, combinations = now, message["combinations"]
            elif message["type"] in ("sweep_complete", "error", "cancelled"):
                if message["type"] != "sweep_complete":
                    raise RuntimeError(f"sweep ended with {message}")
                return {
                    "start_ms": start * 1000,
                    "first_ms": first * 1000,
                    "all_ms": now * 1000,
                    "cells": cells,
                    "combinations": combinations,
                    "server_s": message["elapsed_s"],
                }


def report(label: str, runs: list[dict]) -> None:
    first = [r["first_ms"] for r in runs]
    every = [r["all_ms"] for r in runs]
    print(
        f"{label:<22} sweep_start {min(r['start_ms'] for r in runs):6.1f} ms"
        f"   first cell {min(first):7.1f} ms (median {statistics.median(first):7.1f})"
        f"   all {runs[0]['cells']}/{runs[0]['combinations']} cells"
        f" {min(every):7.1f} ms (median {statistics.median(every):7.1f})"
    )


def bench(env: dict, args: argparse.Namespace) -> None:
    port = free_port()
    log_path = Path(tempfile.mkdtemp(prefix="sweep-ws-")) / "daphne.log"
    log = log_path.open("w")  # noqa: SIM115 - closed in the finally below
    server = subprocess.Popen(
        [str(Path(PY).parent / "daphne"), "-b", "127.0.0.1", "-p", str(port),
         "backtester.asgi:application"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        _wait_for_port(port, timeout=30)
        one_sweep(port)  # imports, pools, connections: not part of the figure
        cold, warm = [], []
        for _ in range(args.repeat):
            flush_redis(env["REDIS_URL"])
            cold.append(one_sweep(port))
            warm.append(one_sweep(port))
        print(f"sweep S through the websocket, thread pool ({args.repeat} each):")
        report("  cold (empty cache)", cold)
        report("  warm (Redis cache)", warm)
        print(f"  daphne peak RSS      {peak_rss_mb(server.pid):.0f} MB")
    except Exception:
        print(f"the server's log: {log_path}")
        raise
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
    began = time.perf_counter()
    done = manage(
        "sweep", "--strategy", "sma_crossover", "--grid", "fast=5:50:5",
        "--grid", "slow=20:200:10", "--format", "json", env=env,
    )  # fmt: skip
    wall = time.perf_counter() - began
    payload = json.loads(done.stdout)
    print(
        f"manage.py sweep (warm cache): {len(payload['cells'])} cells, "
        f"{wall:.2f} s wall incl. start-up, sweep {payload['sweep']['elapsed_s']:.3f} s"
    )


def main() -> None:
    args = workload_args(__doc__.splitlines()[0])
    with contextlib.ExitStack() as stack:
        env = seeded_env(stack, args)
        bench(env, args)


if __name__ == "__main__":
    main()
