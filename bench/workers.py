"""Workload W and sweep S through Celery workers vs the thread pool.

Starts throwaway PostgreSQL and Redis servers (or uses DATABASE_URL/REDIS_URL if
both are set and hold data), seeds 48 coins x 5 years, and serves the app with
daphne three times: with the thread pool (BACKTEST_EXECUTOR=threads), then with
Celery and one worker of 1 and of 2 processes (``celery -A backtester worker -c
N``). Each time, with a warm Redis cache (a first, untimed run and sweep fill
it), it times through the websocket W (6 strategies x every coin, 288
backtests) and sweep S (SMA crossover fast 5:50:5 x slow 20:200:10, 174
combinations x every coin): first result or cell, and all of them. Prints the
peak RSS of daphne and of every worker process, and the 2-vs-1 throughput
ratio, measured within this one invocation (the machine is shared: compare
ratios, not absolute times across invocations).

    .venv/bin/python bench/workers.py [--symbols 48] [--years 5] [--repeat 3]

Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "bench"))
from run_ws import PY, one_run, peak_rss_mb, seeded_env, workload_args  # noqa: E402
from services import (  # noqa: E402
    _wait_for_port,
    free_port,
)
from sweep_ws import one_sweep  # noqa: E402


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(c) for c in text]
    return found


def start_worker(env: dict, concurrency: int, log: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [PY, "-m", "celery", "-A", "backtester", "worker", "-P", "prefork",
         "-c", str(concurrency), "--loglevel=info", "--without-gossip",
         "--without-mingle", "-n", f"bench{concurrency}@%h"],
        cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while b" ready." not in log.read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the worker did not start: {log}")
        time.sleep(0.1)
    return process


def stop(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def measure(env: dict, label: str, workers: int, repeat: int) -> dict:
    """Serve with the given executor; return the best W and S figures."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    executor = "celery" if workers else "threads"
    env = {**env, "BACKTEST_EXECUTOR": executor}
    worker = start_worker(env, workers, tmp / "worker.log") if workers else None
    port = free_port()
    server = subprocess.Popen(
        [str(Path(PY).parent / "daphne"), "-b", "127.0.0.1", "-p", str(port),
         "backtester.asgi:application"],
        cwd=ROOT, env=env, stdout=(tmp / "daphne.log").open("wb"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        _wait_for_port(port, timeout=30)
        # Untimed: imports, pools, connections, and the cache filled.
        one_run(port, no_cache=True)
        one_sweep(port)
        runs = [one_run(port, no_cache=True) for _ in range(repeat)]
        sweeps = [one_sweep(port) for _ in range(repeat)]
        rss = {"daphne": peak_rss_mb(server.pid)}
        if worker is not None:
            rss["worker main"] = peak_rss_mb(worker.pid)
            for i, child in enumerate(children(worker.pid), 1):
                rss[f"worker process {i}"] = peak_rss_mb(child)
    except Exception:
        print(f"logs: {tmp}")
        raise
    finally:
        server.terminate()
        server.wait(timeout=20)
        if worker is not None:
            stop(worker)
    result = {
        "w_first": min(r["first_ms"] for r in runs),
        "w_all": min(r["all_ms"] for r in runs),
        "w_median": statistics.median(r["all_ms"] for r in runs),
        "s_first": min(r["first_ms"] for r in sweeps),
        "s_all": min(r["all_ms"] for r in sweeps),
        "s_median": statistics.median(r["all_ms"] for r in sweeps),
        "rss": rss,
    }
    print(
        f"{label:<28} W: first {result['w_first']:6.0f} ms, all 288 "
        f"{result['w_all']:6.0f} ms (median {result['w_median']:6.0f})   "
        f"S: first cell {result['s_first']:6.0f} ms, all 174 "
        f"{result['s_all']:6.0f} ms (median {result['s_median']:6.0f})"
    )
    print("    peak RSS: " + ", ".join(f"{k} {v:.0f} MB" for k, v in rss.items()))
    return result


def compare(args: argparse.Namespace) -> None:
    """Seed (``args``: symbols, years, repeat) and print W and S with the
    thread pool, 1 and 2 worker processes, and the 2-vs-1 throughput."""
    with contextlib.ExitStack() as stack:
        env = seeded_env(stack, args)
        print(f"warm Redis cache, best of {args.repeat} (median in brackets):")
        measure(env, "thread pool (daphne)", 0, args.repeat)
        one = measure(env, "Celery, 1 worker process", 1, args.repeat)
        two = measure(env, "Celery, 2 worker processes", 2, args.repeat)
        w, s = one["w_all"] / two["w_all"], one["s_all"] / two["s_all"]
        print(f"throughput, 2 worker processes vs 1 (best): W {w:.2f}x, S {s:.2f}x")


def main() -> None:
    compare(workload_args(__doc__.splitlines()[0]))


if __name__ == "__main__":
    main()
