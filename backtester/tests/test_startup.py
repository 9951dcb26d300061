"""What a server process loads at start: the engine, not the file readers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# What daphne does at start: import the ASGI application (which sets Django up
# and loads the engine's kernels), then report which libraries are loaded.
PROBE = """
import json, sys
import backtester.asgi
from strategies.compiled import kernels_load
kernels_load()
print(json.dumps(sorted(name for name in sys.modules if "." not in name)))
"""


def loaded_at_start() -> set[str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "backtester.settings"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_a_server_starts_without_pandas_or_celery():
    loaded = loaded_at_start()
    # The probe sees what it should: Django, NumPy and the compiled engine.
    assert {"django", "numpy", "numba", "strategies", "prices"} <= loaded
    # pandas reads price files (about 40 MB resident); Celery is loaded by the
    # Celery executor only. A server that reads no file needs neither.
    assert "pandas" not in loaded
    assert "celery" not in loaded
