"""A web server keeps the price series it reads from Redis in front of it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Importing the ASGI application is what daphne does at start-up; no Redis
# need answer (nothing is read before the first request).
PROBE = """
import os
import backtester.asgi
from prices import cache
print(cache._local.limit, cache._local.largest, flush=True)
# Not waiting for the start-up threads (marking stale jobs, loading kernels),
# which may be inside the database or the compiler when the interpreter ends.
os._exit(0)
"""


def kept(**env: str) -> tuple[int, int]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "backtester.settings", **env},
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    limit, largest = done.stdout.split()[-2:]
    return int(limit), int(largest)


def test_a_server_on_redis_keeps_series_from_it():
    limit, largest = kept(
        REDIS_URL="redis://127.0.0.1:9/0",
        SERVER_PRICE_CACHE_MB="96",
        SERVER_PRICE_SERIES_MB="4",
        PRICE_CACHE_WARM="false",
    )
    assert (limit, largest) == (96 * 2**20, 4 * 2**20)


def test_a_server_without_redis_keeps_no_second_copy():
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "backtester.settings", "REDIS_URL": ""},
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    assert done.stdout.split()[-2:] == ["0", "0"]
