"""Synthetic demo prices are labelled wherever a coin's price or result shows:
the run form, the live results, the detail page and history. A coin imported
from a file is not."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from backtester.runs.tests.test_browser import (  # noqa: F401 (fixtures)
    browser,
    demo_server,
    page,
    pytestmark,
)
from backtester.runs.tests.test_timeframes_browser import five_minute_bars
from backtester.runs.tests.test_timeframes_run import buckets, write_csv


@pytest.fixture(scope="module")
def mixed_server(tmp_path_factory) -> Iterator[str]:
    """Two demo coins (BTC, ETH) and one imported from a file (REAL)."""
    hourly = buckets(five_minute_bars(24 * 12 * 60), 3600)  # 60 days of hours
    path = write_csv(Path(tmp_path_factory.mktemp("bars")) / "REAL.csv", hourly)
    command = ["import_prices", str(path), "--symbol", "REAL", "--interval", "1h"]
    with demo_server(["--symbols", "2", "--years", "1"], commands=(command,)) as base:
        yield base


def tagged(view, selector: str) -> dict[str, bool]:
    """Return, for each element matched, its text's first word and whether it
    holds the demo tag."""
    out = {}
    for element in view.locator(selector).all():
        word = element.inner_text().split()[0]
        out[word] = element.locator(".tag.demo").count() == 1
    return out


def test_demo_coins_are_labelled_and_imported_ones_are_not(page, mixed_server):  # noqa: F811
    base = mixed_server
    page.goto(f"{base}/")
    page.wait_for_selector("#connection.ok")
    assert tagged(page, "#coin-list label") == {
        "BTC": True, "ETH": True, "REAL": False,
    }  # fmt: skip
    assert "synthetic" in page.inner_text("#demo-note")

    page.select_option("#strategy", "sma_crossover")
    page.fill("#param-fast", "5")
    page.fill("#param-slow", "20")
    page.click("#run-button")
    page.wait_for_selector("#summary:not([hidden])")
    assert tagged(page, "#results tbody tr > :first-child") == {
        "BTC": True, "ETH": True, "REAL": False,
    }  # fmt: skip

    detail = page.get_attribute("#summary a", "href")
    page.goto(f"{base}{detail}")
    note = page.inner_text("#demo-note")
    assert "BTC, ETH" in note and "REAL" not in note

    page.goto(f"{base}/runs/")
    coins = page.locator("td[data-col='coins']").first
    assert coins.locator(".tag.demo").count() == 1
    assert "BTC, ETH" in coins.locator(".tag.demo").get_attribute("title")
    assert page.errors == [] and page.csp_violations == []
