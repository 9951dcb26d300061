"""The sweep page in headless Chromium: the design's sweep S fills its heatmap
live, the best cell opens its coins, and a coin opens as a normal run."""

from __future__ import annotations

import re

import pytest

from backtester.runs.tests.test_browser import (  # noqa: F401
    CHROMIUM,
    browser,
    demo_server,
    number,
    page,
    server,
    shots,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
    ),
]
# Records every cell count the heatmap drew, to show it filled in stages.
RECORDER = """
window.__drawn = [];
new MutationObserver(() => {
  window.__drawn.push(Number(document.getElementById('heatmap-canvas').dataset.drawn));
}).observe(document.getElementById('heatmap-canvas'), {attributes: true});
"""
# SMA fast 5:50:5 x slow 20:200:10: 10 x 19 = 190 pairs, 16 with fast >= slow.
S_CELLS, S_SKIPPED = 174, 16


def fill_axes(tab, *, x: tuple[str, str, str], y: tuple[str, str, str]) -> None:
    """Type each axis's start, stop and step into the sweep form of ``tab``."""
    for axis, values in (("x", x), ("y", y)):
        for key, value in zip(("start", "stop", "step"), values, strict=True):
            tab.fill(f"#{axis}-{key}", value)


@pytest.fixture(scope="module")
def server_s():
    """Sweep S's data: the demo's 48 coins over 5 years, with the default
    thread pool."""
    with demo_server(["--symbols", "48", "--years", "5"]) as base:
        yield base


def test_sweep_s_fills_the_heatmap_and_the_best_cell_opens_a_run(page, server_s):  # noqa: F811
    server = server_s  # noqa: F811
    page.goto(f"{server}/sweeps/")
    page.wait_for_selector("#connection.ok")
    # The page starts on the design's sweep S: SMA crossover over every coin.
    assert page.input_value("#strategy") == "sma_crossover"
    assert [page.input_value(f"#x-{k}") for k in ("start", "stop", "step")] == [
        "5", "50", "5",
    ]  # fmt: skip
    assert [page.input_value(f"#y-{k}") for k in ("start", "stop", "step")] == [
        "20", "200", "10",
    ]  # fmt: skip
    assert page.inner_text("#coin-count") == "48 of 48"

    # A bad range is refused by the server, named beside its axis.
    page.fill("#x-step", "0")
    page.click("#run-button")
    page.wait_for_selector("#x-error:not(:empty)")
    # Under its axis, the message starts capitalized without the field name.
    assert "Step must be positive" in page.inner_text("#x-error")
    page.fill("#x-step", "5")

    page.evaluate(RECORDER)
    page.click("#run-button")
    page.wait_for_function(
        "() => document.getElementById('progress-text').textContent.includes('done')",
        timeout=120_000,
    )
    assert page.inner_text("#progress-text").startswith(f"{S_CELLS} / {S_CELLS} ")
    assert page.get_attribute("#progress", "aria-valuenow") == "100"
    assert f"{S_SKIPPED} invalid combinations skipped" in page.inner_text(
        "#skipped-note"
    )
    # One canvas, every cell drawn.
    page.wait_for_selector(f"#heatmap-canvas[data-drawn='{S_CELLS}']")
    assert page.inner_text("#x-error") == ""
    # Cells were drawn as blocks of combinations finished, not all at the end.
    drawn = page.evaluate("window.__drawn")
    assert any(0 < n < S_CELLS for n in drawn), drawn
    page.screenshot(path=str(shots() / "sweep-s-1280.png"), full_page=True)

    # Hovering a cell shows its numbers.
    box = page.locator("#heatmap-canvas").bounding_box()
    page.mouse.move(box["x"] + box["width"] - 20, box["y"] + 20)
    page.wait_for_selector("#heatmap-tip:not([hidden])")
    assert "Median return" in page.inner_text("#heatmap-tip")

    # The best combination, listed first, opens its per-coin results.
    best = page.locator("#best-list li").first
    assert page.locator("#best-list li").count() == 5
    best_text = best.inner_text()
    best.locator("button").click()
    page.wait_for_selector("#cell-coins tbody tr")
    assert page.locator("#cell-coins tbody tr").count() == 48
    params = page.inner_text("#cell-title")
    fast, slow = (int(v) for v in re.findall(r"=(\d+)", params))
    assert best_text.startswith(params)
    first = page.locator("#cell-coins tbody tr").first
    symbol = first.locator("th").inner_text()
    coin_return = number(first.locator("td").first.inner_text())

    # ... and one coin of it opens as a normal run of that coin.
    first.locator("button", has_text="Open run").click()
    page.wait_for_url(re.compile(r"/runs/\d+/\?symbol="))
    detail = page.inner_text("main")
    assert f"fast={fast}, slow={slow}" in detail
    assert page.locator("#results tbody tr").count() == 1
    row = page.locator("#results tbody tr").first
    assert row.locator("th").inner_text() == symbol
    # The run's return is the one the sweep listed for that coin.
    assert abs(number(row.locator("td.num").first.inner_text()) - coin_return) < 0.006

    # The stored sweep's page draws the same heatmap.
    page.goto(f"{server}/sweeps/history/")
    page.locator("#sweeps tbody tr").first.locator("th a").click()
    page.wait_for_selector(f"#heatmap-canvas[data-drawn='{S_CELLS}']")
    assert page.locator("#best-list li").first.inner_text() == best_text
    assert page.errors == [] and page.csp_violations == []


def test_walk_forward_draws_folds_and_the_stitched_equity(page, server):  # noqa: F811
    page.goto(f"{server}/sweeps/")
    page.wait_for_selector("#connection.ok")
    fill_axes(page, x=("10", "20", "10"), y=("40", "60", "20"))
    page.click("#coins-none")
    for symbol in ("BTC", "ETH", "SOL"):
        page.check(f"#coin-list input[value='{symbol}']")
    page.fill("#train-bars", "2000")
    page.fill("#test-bars", "1000")
    page.fill("#folds", "5")
    page.click("#wf-button")
    page.wait_for_selector("#wf-wrap:not([hidden])", timeout=60_000)
    rows = page.locator("#wf-table tbody tr")
    assert rows.count() == 5
    summary = page.inner_text("#wf-summary")
    assert summary.startswith("5 folds of 2000 train + 1000 test bars")
    assert "buy & hold" in summary
    # Test windows follow each other: each fold's test starts where the
    # previous one's ended (same day at the latest).
    tests = [rows.nth(i).locator("td").nth(1).inner_text() for i in range(5)]
    for before, after in zip(tests, tests[1:], strict=False):
        assert before.split(" → ")[1] <= after.split(" → ")[0]
    assert page.evaluate("document.getElementById('wf-equity').height") > 0
    page.screenshot(path=str(shots() / "walk-forward-1280.png"), full_page=True)
    assert page.errors == [] and page.csp_violations == []


def test_a_2500_cell_grid_is_drawn_in_batches(page, server):  # noqa: F811
    page.goto(f"{server}/sweeps/")
    page.wait_for_selector("#connection.ok")
    page.select_option("#strategy", "ema_crossover")
    fill_axes(page, x=("2", "51", "1"), y=("52", "101", "1"))
    page.click("#coins-none")
    page.check("#coin-list input[value='BTC']")
    page.evaluate(RECORDER)
    page.click("#run-button")
    page.wait_for_selector("#heatmap-canvas[data-drawn='2500']", timeout=120_000)
    page.wait_for_function(
        "() => document.getElementById('progress-text').textContent.includes('done')"
    )
    assert page.inner_text("#progress-text").startswith("2500 / 2500 ")
    # One canvas, redrawn once per animation frame for many cells at a time,
    # never once per cell.
    draws = page.evaluate("window.__drawn")
    assert 1 <= len(draws) < 2500 / 10, len(draws)
    assert page.locator("#heatmap-wrap canvas").count() == 1
    assert page.errors == [] and page.csp_violations == []


def test_a_reload_follows_the_sweep_and_cancel_still_stops_it(page, server):  # noqa: F811
    page.goto(f"{server}/sweeps/")
    page.wait_for_selector("#connection.ok")
    # A grid long enough to be under way at the reload (one compute thread).
    page.select_option("#strategy", "ema_crossover")
    fill_axes(page, x=("2", "61", "1"), y=("62", "161", "1"))
    page.click("#run-button")
    page.wait_for_function(
        "() => Number(document.getElementById('heatmap-canvas').dataset.drawn) > 0",
        timeout=60_000,
    )
    sweep_id = page.evaluate("sessionStorage.getItem('btlab.sweep')")
    assert sweep_id
    page.reload()
    # The page attaches again: the cells so far, then the live ones.
    page.wait_for_function(
        "() => Number(document.getElementById('heatmap-canvas').dataset.drawn) > 0",
        timeout=30_000,
    )
    assert page.is_enabled("#cancel-button")
    assert page.evaluate("sessionStorage.getItem('btlab.sweep')") == sweep_id
    assert " / 6000 " in page.inner_text("#progress-text")
    page.click("#cancel-button")
    page.wait_for_function(
        "() => document.getElementById('progress-text')"
        ".textContent.includes('cancelled')"
    )
    assert page.evaluate("sessionStorage.getItem('btlab.sweep')") is None
    # The stored sweep says so too.
    page.goto(f"{server}/sweeps/history/")
    assert "cancelled" in page.locator("#sweeps tbody tr").first.inner_text().lower()
    assert page.errors == [] and page.csp_violations == []
