"""A 15-minute backtest from the run form, on a coin that stores 5-minute bars."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from backtester.runs.tests.test_browser import (  # noqa: F401 (fixtures)
    browser,
    demo_server,
    page,
    pytestmark,
)
from backtester.runs.tests.test_timeframes_run import buckets, write_csv
from strategies.engine import run_many
from strategies.types import Bars


def five_minute_bars(n: int = 4000) -> Bars:
    rng = np.random.default_rng(11)
    time = 1_704_067_200 + 300 * np.arange(n, dtype=np.int64)  # from 2024-01-01
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.003, n)))
    open_ = np.concatenate([[close[0]], close[:-1]])
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.002, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.002, n))
    return Bars(time, open_, high, low, close, rng.uniform(1, 9, n))


@pytest.fixture(scope="module")
def minute_server(tmp_path_factory) -> Iterator[tuple[str, Bars]]:
    bars = five_minute_bars()
    path = write_csv(Path(tmp_path_factory.mktemp("bars")) / "MINI.csv", bars)
    command = ["import_prices", str(path), "--symbol", "MINI", "--interval", "5m"]
    with demo_server(["--symbols", "2", "--years", "1"], commands=(command,)) as base:
        yield base, bars


def test_a_15m_backtest_from_the_form(page, minute_server):  # noqa: F811
    base, bars = minute_server
    page.goto(f"{base}/")
    page.wait_for_selector("#connection.ok")
    assert page.input_value("#interval") == "1h"  # the default stays hourly
    page.select_option("#strategy", "sma_crossover")
    page.fill("#param-fast", "10")
    page.fill("#param-slow", "30")
    page.click("#coins-none")
    page.check("#coin-list input[value='MINI']")
    page.select_option("#interval", "15m")
    page.click("#run-button")
    page.wait_for_selector("#summary:not([hidden])")
    assert page.locator("#results tbody tr").count() == 1
    run_url = page.get_attribute("#summary a", "href")

    exported = page.request.get(f"{base}{run_url}export.json").json()
    assert exported["run"]["interval"] == "15m"
    (result,) = exported["results"]
    # Against the engine on 15-minute buckets made by a plain loop.
    quarter = buckets(bars, 900)
    (expected,) = run_many(quarter, [("sma_crossover", {"fast": 10, "slow": 30})],
                           interval="15m")  # fmt: skip
    assert result["bars"] == len(quarter.time)
    assert result["metrics"]["num_trades"] == expected.metrics["num_trades"]
    assert result["metrics"]["total_return_pct"] == pytest.approx(
        expected.metrics["total_return_pct"], rel=1e-9
    )
    # The URL keeps the interval: a reload shows what was run.
    assert "interval=15m" in page.url
    assert page.errors == [] and page.csp_violations == []
