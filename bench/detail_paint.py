"""First paint of a run's detail page in Chromium, on a seeded database.

Serves the app with daphne on a free loopback port against DATABASE_URL (a
database with the demo prices and a stored run, e.g. the one bench/detail.py
makes), opens ``/runs/<id>/`` in headless Chromium and times, from the start
of the navigation, the moment the linked figure has drawn (``#charts`` marked
loaded with its SVG in place). The first visit warms the server; the figures
are for the visits after it.

    DATABASE_URL=sqlite:////path/db.sqlite3 .venv/bin/python bench/detail_paint.py \
        --run 1 [--repeat 5]

Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from services import _wait_for_port, free_port  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=int, default=1, help="stored run id")
    parser.add_argument("--repeat", type=int, default=5, help="timed visits")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL"):
        sys.exit("set DATABASE_URL to a seeded database with a stored run")
    if not CHROMIUM.exists():
        sys.exit(f"needs Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    port = free_port()
    # The settings of `make demo` (the checkout's .env): daphne serves the
    # static files itself, as on a demo server.
    env = dict(os.environ)
    daphne = subprocess.Popen(
        [str(Path(sys.executable).parent / "daphne"), "-b", "127.0.0.1",
         "-p", str(port), "backtester.asgi:application"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/runs/{args.run}/"
    try:
        _wait_for_port(port, timeout=30)
        times = []
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=str(CHROMIUM), args=["--no-sandbox"]
            )
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            for visit in range(args.repeat + 1):
                began = time.perf_counter()
                page.goto(url)
                page.wait_for_selector("#charts[data-loaded] .main-svg")
                elapsed = time.perf_counter() - began
                if visit:  # the first visit warms the server's caches
                    times.append(elapsed)
            browser.close()
    finally:
        daphne.terminate()
        daphne.wait(timeout=20)
    print(
        f"detail page of run {args.run} in Chromium, 1440x900, "
        f"navigation to the linked figure drawn ({args.repeat} warm visits):"
    )
    print(
        f"  best {min(times) * 1000:.0f} ms, median "
        f"{statistics.median(times) * 1000:.0f} ms, worst {max(times) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
