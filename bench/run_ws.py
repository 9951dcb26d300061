"""End-to-end benchmark: all six strategies x every coin through the websocket.

Starts throwaway PostgreSQL and Redis servers, seeds 48 coins x 5 years of hourly
bars (or uses DATABASE_URL/REDIS_URL if both are set and already hold data),
serves the app with daphne on a free loopback port and measures, for a cold cache
(emptied Redis: prices come from PostgreSQL) and a warm one, the time from
sending ``run`` to the first ``result`` and to ``complete``: warm as served by
default (the server keeps its last runs' series, in front of Redis) and, on a
server that keeps none, from Redis and cold. Then the same workload through
``manage.py backtest --all-strategies --format json``.

    .venv/bin/python bench/run_ws.py [--symbols 48] [--years 5] [--repeat 3]

Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "bench"))
from services import (  # noqa: E402
    _wait_for_port,
    free_port,
    postgres_server,
    redis_server,
)

PY = sys.executable


def manage(*args: str, env: dict, capture: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PY, "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=capture,
        text=True,
    )


def flush_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def one_run(port: int, **extra: object) -> dict:
    from websockets.sync.client import connect

    with connect(
        f"ws://127.0.0.1:{port}/ws/backtests/",
        origin=f"http://127.0.0.1:{port}",
        max_size=None,
    ) as ws:
        began = time.perf_counter()
        ws.send(json.dumps({"type": "run", "strategies": "all", **extra}))
        first = None
        results = 0
        while True:
            message = json.loads(ws.recv(timeout=120))
            if message["type"] == "result":
                results += 1
                if first is None:
                    first = time.perf_counter() - began
            elif message["type"] == "start":
                total = message["total"]
            elif message["type"] in ("complete", "error", "cancelled"):
                done = time.perf_counter() - began
                if message["type"] != "complete":
                    raise RuntimeError(f"run ended with {message}")
                return {
                    "first_ms": first * 1000,
                    "all_ms": done * 1000,
                    "results": results,
                    "total": total,
                    "server_s": message["elapsed_s"],
                    "cached_from": message.get("cached_from"),
                }


ENGINE = """
import sys, time
import django
django.setup()
from prices.models import Cryptocurrency
from prices.selectors import bars_load
from strategies.engine import run_many
from strategies.registry import STRATEGIES
from strategies.types import Bars
coins = list(Cryptocurrency.objects.filter(is_active=True).order_by("symbol"))
series = bars_load(coins=coins, start=None, end=None, interval="1h")
jobs = [(key, {}) for key in STRATEGIES]
best = float("inf")
for _ in range(int(sys.argv[1]) + 1):
    began = time.perf_counter()
    for coin in coins:
        run_many(Bars(*series[coin.symbol]), jobs)
    best = min(best, time.perf_counter() - began)
print(best)
"""


def engine_alone(env: dict, repeat: int) -> float:
    """Return the best time of W through run_many alone on the same bars."""
    done = subprocess.run(
        [PY, "-c", ENGINE, str(repeat)],
        cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE": "backtester.settings"},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(done.stdout.strip().splitlines()[-1])


def report(label: str, runs: list[dict]) -> None:
    first = [r["first_ms"] for r in runs]
    every = [r["all_ms"] for r in runs]
    median_first = statistics.median(first)
    print(
        f"{label:<22} first result {min(first):7.1f} ms (median {median_first:7.1f})"
        f"   all {runs[0]['results']}/{runs[0]['total']} {min(every):7.1f} ms"
        f" (median {statistics.median(every):7.1f})"
    )


LOADER = """
import time
from prices.models import Cryptocurrency
from prices.selectors import bars_fetch, bars_load
ids = list(Cryptocurrency.objects.filter(is_active=True).values_list("id", flat=True))
best = {}
for label, load in (
    ("database (binary COPY into NumPy)", lambda: bars_fetch(ids)),
    ("Redis (one MGET of raw array bytes)", lambda: bars_load()),
):
    load()  # warms connections; for Redis, fills the cache
    times = []
    for _ in range(3):
        began = time.perf_counter()
        series = load()
        times.append(time.perf_counter() - began)
    rows = sum(len(s.time) for s in series.values())
    print(f"  from {label:<36} {min(times) * 1000:7.0f} ms for {rows:,} bars")
"""


def bench_loader(env: dict) -> None:
    """Time loading every active coin's full history, without the engine."""
    print("price loading, every active coin, full history (best of 3):")
    done = manage("shell", "-c", LOADER, env=env)
    lines = done.stdout.splitlines()
    print("\n".join(line for line in lines if line.startswith("  from")))


@contextlib.contextmanager
def daphne(env: dict, stages: Path | None = None):
    """Serve the app with daphne on a free loopback port; yield (port, process).

    With ``stages``, daphne is started by ws_stages.py, which times each stage
    of a run into that file.
    """
    port = free_port()
    serve = (
        [PY, str(ROOT / "bench" / "ws_stages.py"), str(stages)]
        if stages
        else [str(Path(PY).parent / "daphne")]
    )
    server = subprocess.Popen(
        [*serve, "-b", "127.0.0.1", "-p", str(port), "backtester.asgi:application"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_for_port(port, timeout=30)
        yield port, server
    finally:
        server.terminate()
        server.wait(timeout=20)


def bench(env: dict, args: argparse.Namespace) -> None:
    # A server keeps the series of its last runs in front of Redis
    # (SERVER_PRICE_CACHE_MB): emptying Redis does not empty it. So cold runs
    # (prices from PostgreSQL) and warm runs from Redis are measured on a server
    # that keeps none; warm runs as served by default on a second server.
    with daphne({**env, "SERVER_PRICE_CACHE_MB": "0"}) as (port, server):
        # Imports, thread pool, DB connections: not part of the figures.
        one_run(port, no_cache=True)
        cold, from_redis = [], []
        for _ in range(args.repeat):
            flush_redis(env["REDIS_URL"])
            cold.append(one_run(port, no_cache=True))
            from_redis.append(one_run(port, no_cache=True))
        plain_peak = peak_rss_mb(server.pid)
    stages = Path(tempfile.mkdtemp()) / "stages.json" if args.stages else None
    with daphne(env, stages) as (port, server):
        one_run(port, no_cache=True)
        warm, cached = [], []
        for _ in range(args.repeat):
            warm.append(one_run(port, no_cache=True))
            # The identical request again: answered from the stored results.
            cached.append(one_run(port))
        assert all(r["cached_from"] for r in cached), "the rerun was computed"
        engine = engine_alone(env, args.repeat)
        print(f"websocket, daphne on PostgreSQL + Redis ({args.repeat} runs each):")
        report("  cold (empty cache)", cold)
        report("  warm, from Redis", from_redis)
        report("  warm (default)", warm)
        report("  identical rerun", cached)
        print(
            f"  daphne peak RSS      {peak_rss_mb(server.pid):.0f} MB "
            f"(keeping no series: {plain_peak:.0f} MB)"
        )
        warm_all = statistics.median(r["all_ms"] for r in warm) / 1000
        print(
            f"engine alone (run_many, one thread, bars in memory): {engine:.3f} s; "
            f"websocket warm / engine = {warm_all / engine:.2f}x"
        )
    if stages is not None and stages.exists():
        from ws_stages import report as stages_report

        print("stages (--stages; timers add a little to every figure):")
        labels = [""]
        for i in range(1, args.repeat + 1):
            labels += [f"warm {i}", f"identical rerun {i}"]
        stages_report(stages, labels)

    for label, flush in (("cold", True), ("warm", False)):
        if flush:
            flush_redis(env["REDIS_URL"])
        began = time.perf_counter()
        done = subprocess.run(
            ["/usr/bin/time", "-f", "%M", PY, "manage.py", "backtest",
             "--all-strategies", "--format", "json", "--no-save", "--no-cache"],
            cwd=ROOT, env=env, capture_output=True, text=True, check=True,
        ) if Path("/usr/bin/time").exists() else subprocess.run(
            [PY, "manage.py", "backtest", "--all-strategies", "--format", "json",
             "--no-save", "--no-cache"],
            cwd=ROOT, env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        wall = time.perf_counter() - began
        payload = json.loads(done.stdout)
        rss = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
        rss_mb = f"{int(rss) / 1024:.0f} MB" if rss.isdigit() else "n/a"
        print(
            f"manage.py backtest --all-strategies ({label} cache): "
            f"{len(payload['results'])} results, {wall:.2f} s wall incl. start-up, "
            f"run {payload['summary']['elapsed_s']:.3f} s, peak RSS {rss_mb}"
        )


def workload_args(description: str) -> argparse.Namespace:
    """Parse the workload flags the end-to-end benchmarks share."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--symbols", type=int, default=48)
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--stages",
        action="store_true",
        help="time each stage of the websocket runs (bench/ws_stages.py)",
    )
    return parser.parse_args()


def seeded_env(stack: contextlib.ExitStack, args: argparse.Namespace) -> dict:
    """Return the environment of a migrated, seeded PostgreSQL + Redis.

    DATABASE_URL and REDIS_URL when both are set, else throwaway servers that
    ``stack`` stops. Production settings: DEBUG off (no SQL logging), a
    throwaway secret key, warnings only.
    """
    base = dict(os.environ, DEBUG="false", SECRET_KEY="bench-only-" + "x" * 50)
    base["LOG_LEVEL"] = "WARNING"
    if os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"):
        env = base
    else:
        database_url = stack.enter_context(postgres_server())
        redis = stack.enter_context(redis_server())
        env = {**base, "DATABASE_URL": database_url, "REDIS_URL": redis.url}
    manage("migrate", "-v0", env=env)
    began = time.perf_counter()
    # ``args.interval`` (bench/scale.py's minute mode) seeds 1-minute bars.
    manage(
        "seed_demo", "--symbols", str(args.symbols), "--years", str(args.years),
        "--interval", getattr(args, "interval", "1h"), "--if-empty", env=env,
    )  # fmt: skip
    print(f"seeded in {time.perf_counter() - began:.1f} s")
    return env


def main() -> None:
    args = workload_args(__doc__.splitlines()[0])
    with contextlib.ExitStack() as stack:
        env = seeded_env(stack, args)
        with contextlib.suppress(Exception):
            import psycopg2

            with psycopg2.connect(env["DATABASE_URL"]) as conn:
                conn.autocommit = True
                conn.cursor().execute("VACUUM ANALYZE prices_pricebar")
        bench_loader(env)
        bench(env, args)


if __name__ == "__main__":
    main()
