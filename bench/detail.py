"""Size of a stored 288-result run and the time of its detail page and series.

Run against a seeded database (``manage.py seed_demo``; DATABASE_URL as usual):

    .venv/bin/python bench/detail.py [--run ID]

Without ``--run`` it runs all strategies on every coin first (the workload W of
the README) and measures that run. Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backtester.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from backtester.runs import replay  # noqa: E402
from backtester.runs.models import BacktestRun  # noqa: E402

TRADE_COLUMNS = 13  # what storing every trade would pack per trade (8 bytes each)


def stored_bytes(run: BacktestRun) -> dict[str, int]:
    """Return the bytes the run's rows hold, by column group."""
    length = "octet_length" if connection.vendor == "postgresql" else "length"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*), sum({length}(trades)), sum({length}(equity)), "
            f"sum({length}(CAST(metrics AS text))), sum(num_trades), sum(bars) "
            "FROM backtester_backtestresult WHERE run_id = %s",
            [run.pk],
        )
        rows, trades, equity, metrics, num_trades, bars = cursor.fetchone()
    return {
        "results": rows,
        "trades": trades or 0,
        "equity": equity or 0,
        "metrics": metrics or 0,
        "num_trades": num_trades or 0,
        "bars": bars or 0,
    }


def timed(client: Client, url: str, repeat: int = 5) -> tuple[float, float]:
    """Return (first, median of the rest) milliseconds of GET url."""
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return times[0], statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", type=int, help="measure this run")
    args = parser.parse_args()
    settings.ALLOWED_HOSTS = ["*"]
    if args.run:
        run = BacktestRun.objects.get(pk=args.run)
    else:
        out = io.StringIO()
        call_command("backtest", "--all-strategies", "--format", "json", stdout=out)
        run = BacktestRun.objects.get(pk=json.loads(out.getvalue())["run"]["id"])
    size = stored_bytes(run)
    print(f"run {run.pk}: {size['results']} results, {size['num_trades']:,} trades, "
          f"{size['bars']:,} bars ({connection.vendor})")  # fmt: skip
    stored = size["trades"] + size["equity"] + size["metrics"]
    print(f"stored: {stored / 1e6:.2f} MB (trade previews {size['trades'] / 1e6:.2f}"
          f" MB, 200-point curves {size['equity'] / 1e6:.2f} MB, metrics "
          f"{size['metrics'] / 1e6:.2f} MB)")  # fmt: skip
    every_trade = size["num_trades"] * TRADE_COLUMNS * 8
    every_bar = size["bars"] * 3 * 8  # time, strategy and buy & hold equity
    print(f"storing every trade instead: +{every_trade / 1e6:.1f} MB raw; every bar"
          f" of every curve: +{every_bar / 1e6:.1f} MB raw")  # fmt: skip

    client = Client()
    best = run.results.order_by("-total_return_pct").first()
    query = f"symbol={best.symbol}&strategy={best.strategy}"
    replay.cache_clear()
    for name, url in (
        ("detail page (HTML, replays the selected result)", f"/runs/{run.pk}/"),
        ("equity.json, 2000 points", f"/runs/{run.pk}/equity.json?{query}"),
        ("price.json, 2000 candles", f"/runs/{run.pk}/price.json?{query}"),
        ("trades.json, page 1", f"/runs/{run.pk}/trades.json?{query}"),
        ("trades.csv, every trade", f"/runs/{run.pk}/trades.csv?{query}"),
        ("equity.json, every bar", f"/runs/{run.pk}/equity.json?{query}&points=100000"),
    ):
        first, warm = timed(client, url)
        print(f"{name}: first {first:.0f} ms, then median {warm:.0f} ms")
    # A replay that has to recompute (another result, nothing kept).
    other = run.results.order_by("total_return_pct").first()
    replay.cache_clear()
    first, _ = timed(
        client,
        f"/runs/{run.pk}/equity.json?symbol={other.symbol}&strategy={other.strategy}",
        repeat=2,
    )
    print(f"recomputing one result (load + backtest + response): {first:.0f} ms")


if __name__ == "__main__":
    main()
