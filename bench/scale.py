"""The seed's scalability table: W (all six strategies per coin) over 10 to 200 coins.

Seeds one database with the most coins asked for (200 x 5 years hourly by default;
or uses DATABASE_URL/REDIS_URL if both are set and already hold data), then for
each size asks a fresh daphne process (started as bench/run_ws.py starts it) for
the first N demo coins through the websocket: one cold run (Redis emptied, so
the page's warm-up of all active coins runs beside it), then ``--repeat`` warm
runs, each after a second of idle server (``--pause``). Prints, per size, the
first result (ms), all results (s) and the peak resident memory (VmHWM) of that
daphne process over its cold and warm runs.

With ``--interval 1m`` (default then: 48 coins x 1 year) it seeds 1-minute bars
(``seed_demo --interval 1m``) and runs ask for ``"interval": "1m"``. With
``--executor celery --workers 2`` the runs go to ``celery -A backtester worker``
processes (started as bench/workers.py starts them), and the peak memory of
each worker process is printed beside daphne's.

    .venv/bin/python bench/scale.py [--sizes 10,25,48,100,200] [--years 5] [--repeat 3]
    .venv/bin/python bench/scale.py --interval 1m [--executor celery --workers 2]

Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
from run_ws import daphne, flush_redis, one_run, peak_rss_mb, seeded_env  # noqa: E402
from workers import children, start_worker, stop  # noqa: E402

from prices.demo import MAX_DEMO_COINS, demo_coins  # noqa: E402


def sizes(text: str) -> list[int]:
    """Parse ``--sizes``: comma-separated coin counts between 1 and 200."""
    try:
        out = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from None
    if not out or not 1 <= out[0] <= out[-1] <= MAX_DEMO_COINS:
        raise argparse.ArgumentTypeError(f"sizes must be 1 to {MAX_DEMO_COINS}")
    return out


def peaks(server: subprocess.Popen, worker: subprocess.Popen | None) -> dict:
    """Return the high-water mark of daphne and of each worker process, in MB."""
    peak = {"daphne": peak_rss_mb(server.pid)}
    if worker is not None:
        peak["worker main"] = peak_rss_mb(worker.pid)
        for i, child in enumerate(children(worker.pid), 1):
            peak[f"worker process {i}"] = peak_rss_mb(child)
    return peak


def reset_peaks(server: subprocess.Popen, worker: subprocess.Popen | None) -> None:
    """Start the processes' high-water marks again from their resident size."""
    pids = [server.pid]
    if worker is not None:
        pids += [worker.pid, *children(worker.pid)]
    for pid in pids:
        # Linux: writing 5 to clear_refs resets VmHWM (our own children only).
        Path(f"/proc/{pid}/clear_refs").write_text("5")


@contextlib.contextmanager
def celery_workers(env: dict, workers: int):
    """Start one Celery worker of ``workers`` processes, or none; yield it."""
    if not workers:
        yield None
        return
    log = Path(tempfile.mkdtemp(prefix="bench-scale-")) / "worker.log"
    worker = start_worker(env, workers, log)
    try:
        yield worker
    finally:
        stop(worker)


def measure(
    env: dict, count: int, repeat: int, pause: float, interval: str, workers: int
) -> dict:
    """Run W over the first ``count`` demo coins in a fresh daphne process."""
    symbols = [symbol for symbol, _, _ in demo_coins(count)]
    request = {"symbols": symbols, "no_cache": True, "interval": interval}
    with celery_workers(env, workers) as worker, daphne(env) as (port, server):
        # Cold: an empty price cache, so the socket's opening also starts the
        # page's warm-up of every active coin beside the run (as a browser
        # does). It fills the cache and the process's imports: not in the warm
        # figures, but in the peak memory (the process's high-water mark).
        flush_redis(env["REDIS_URL"])
        cold = one_run(port, **request)
        cold_peak = peaks(server, worker)
        reset_peaks(server, worker)
        warm = []
        for _ in range(repeat):
            # Each run starts on an idle server: right after a run of 1,200
            # results, PostgreSQL is still writing them and the previous run's
            # tail would be counted as this one's wait for its first result.
            time.sleep(pause)
            warm.append(one_run(port, **request))
        warm_peak = peaks(server, worker)
    peak = {name: max(mb, warm_peak.get(name, 0)) for name, mb in cold_peak.items()}
    return {
        "cold": cold,
        "warm": warm,
        "peak_mb": peak,
        "cold_mb": cold_peak,
        "warm_mb": warm_peak,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=sizes, help="Coin counts.")
    parser.add_argument(
        "--interval", choices=("1h", "1m"), default="1h", help="Bars seeded and run."
    )
    parser.add_argument("--years", type=int, help="Years of bars (5 hourly, 1 1m).")
    parser.add_argument("--repeat", type=int, default=3, help="Warm runs per size.")
    parser.add_argument(
        "--pause", type=float, default=1.0, help="Idle seconds before each warm run."
    )
    parser.add_argument("--executor", choices=("threads", "celery"), default="threads")
    parser.add_argument(
        "--workers", type=int, default=2, help="Celery worker processes."
    )
    args = parser.parse_args()
    minute = args.interval == "1m"
    if args.sizes is None:
        args.sizes = [48] if minute else [10, 25, 48, 100, 200]
    if args.years is None:
        args.years = 1 if minute else 5
    workers = args.workers if args.executor == "celery" else 0
    with contextlib.ExitStack() as stack:
        seeded = argparse.Namespace(
            symbols=args.sizes[-1], years=args.years, interval=args.interval
        )
        env = {**seeded_env(stack, seeded), "BACKTEST_EXECUTOR": args.executor}
        print(f"$ {' '.join([Path(sys.executable).name, *sys.argv])}")
        where = f"{workers} Celery worker processes" if workers else "daphne's pool"
        print(
            f"W = 6 strategies per coin, {args.years} years of {args.interval} bars, "
            f"through the websocket, computed by {where}; daphne on PostgreSQL + "
            "Redis, a fresh process per size; "
            f"warm = prices in Redis, best and median of {args.repeat}, each after "
            f"{args.pause:g} s idle; peak RSS = "
            "the process's VmHWM over its cold run (with the warm-up of "
            "every seeded coin) and warm runs, and over each alone"
        )
        header = (
            f"{'coins':>5} {'results':>7} {'first result ms':>22} "
            f"{'all results s':>20} {'cold first ms':>13} {'peak RSS MB':>11}"
        )
        print(header)
        print("-" * len(header))
        for count in args.sizes:
            row = measure(env, count, args.repeat, args.pause, args.interval, workers)
            warm = row["warm"]
            first = [r["first_ms"] for r in warm]
            every = [r["all_ms"] / 1000 for r in warm]
            peak = row["peak_mb"]
            print(
                f"{count:>5} {warm[0]['results']:>7} "
                f"{min(first):>9.1f} (med {statistics.median(first):6.1f}) "
                f"{min(every):>8.2f} (med {statistics.median(every):5.2f}) "
                f"{row['cold']['first_ms']:>13.1f} {peak['daphne']:>11.0f}",
                flush=True,
            )
            print(
                "      cold: all "
                f"{row['cold']['results']}/{row['cold']['total']} results in "
                f"{row['cold']['all_ms'] / 1000:.2f} s",
                flush=True,
            )
            for label in ("cold", "warm"):
                print(
                    f"      peak RSS over the {label} run(s): "
                    + ", ".join(
                        f"{k} {v:.0f} MB" for k, v in row[f"{label}_mb"].items()
                    ),
                    flush=True,
                )


if __name__ == "__main__":
    main()
