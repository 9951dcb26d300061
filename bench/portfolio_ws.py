"""End-to-end portfolio benchmark: one account over every demo coin through the
websocket, on the thread pool's control threads.

48 demo coins x 5 years of hourly bars, SMA crossover, 5 slots ranked by
roc_24. Starts throwaway PostgreSQL and Redis servers (or uses
DATABASE_URL/REDIS_URL if both are set and hold data), serves the app with
daphne and times, from sending ``portfolio`` with a warm price cache: ``start``,
the first ``progress``, the ``portfolio`` message and ``complete``.

    .venv/bin/python bench/portfolio_ws.py [--symbols 48] [--years 5] [--repeat 3]

Prints figures; asserts nothing about time.
"""

from __future__ import annotations

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
from run_ws import PY, peak_rss_mb, seeded_env, workload_args  # noqa: E402
from services import _wait_for_port, free_port  # noqa: E402

REQUEST = {
    "type": "portfolio",
    "strategy": "sma_crossover",
    "max_positions": 5,
    "rank": "roc_24",
}


def one_run(port: int) -> dict:
    """Send one portfolio request; return when each message arrived (ms)."""
    from websockets.sync.client import connect

    with connect(
        f"ws://127.0.0.1:{port}/ws/backtests/",
        origin=f"http://127.0.0.1:{port}",
        max_size=None,
    ) as ws:
        began = time.perf_counter()
        ws.send(json.dumps(REQUEST))
        seen: dict[str, float] = {}
        while True:
            message = json.loads(ws.recv(timeout=300))
            now = (time.perf_counter() - began) * 1000
            seen.setdefault(message["type"], now)
            if message["type"] == "portfolio":
                seen["points"] = len(message["equity"]["time"])
                seen["trades"] = message["metrics"]["num_trades"]
            if message["type"] in ("complete", "error", "cancelled"):
                if message["type"] != "complete":
                    raise RuntimeError(f"portfolio run ended with {message}")
                seen["server_s"] = message["elapsed_s"]
                return seen


@contextlib.contextmanager
def served(args):
    """Yield (port, daphne process) of the app on a seeded database."""
    with contextlib.ExitStack() as stack:
        env = seeded_env(stack, args)
        port = free_port()
        log_path = Path(tempfile.mkdtemp(prefix="portfolio-ws-")) / "daphne.log"
        log = stack.enter_context(log_path.open("w"))
        server = subprocess.Popen(
            [str(Path(PY).parent / "daphne"), "-b", "127.0.0.1", "-p", str(port),
             "backtester.asgi:application"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            _wait_for_port(port, timeout=30)
            yield port, server
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


def main() -> None:
    args = workload_args(__doc__.splitlines()[0])
    with served(args) as (port, server):
        one_run(port)  # imports, JIT, pools, the price cache: not timed
        runs = [one_run(port) for _ in range(args.repeat)]
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(
            f"portfolio over {args.symbols} coins x {args.years} years "
            f"through the websocket, warm ({args.repeat} runs, median):"
        )
        print(
            f"  start {med['start']:.1f} ms · first progress "
            f"{med['progress']:.1f} ms · portfolio {med['portfolio']:.1f} ms · "
            f"complete {med['complete']:.1f} ms (best "
            f"{min(r['complete'] for r in runs):.1f} ms)"
        )
        print(
            f"  server elapsed {med['server_s']:.3f} s · {runs[0]['trades']:,} "
            f"trades · {runs[0]['points']:,} chart points"
        )
        print(f"  daphne peak RSS {peak_rss_mb(server.pid):.0f} MB")


if __name__ == "__main__":
    main()
