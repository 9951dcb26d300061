# ruff: noqa: F811 (the shared fixtures are imported, then named as arguments)
"""In Chromium: the full-fidelity detail page, settings in the address, and the
problems a new user met on the pages (fixtures shared with test_browser)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

import pytest

from backtester.runs.tests.test_browser import (  # noqa: F401 (fixtures)
    CHROMIUM,
    browser,
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


def run_rsi(page, server: str) -> str:
    """Run RSI(2) on BTC from the form; return the detail page's path."""
    page.goto(f"{server}/")
    page.wait_for_selector("#connection.ok")
    page.select_option("#strategy", "rsi_reversion")
    page.fill("#param-period", "2")
    page.click("#coins-none")
    page.check("#coin-list input[value='BTC']")
    page.click("#run-button")
    page.wait_for_selector("#summary:not([hidden])")
    return page.get_attribute("#summary a", "href")


def test_every_trade_every_bar_and_linked_zoom(page, server):
    detail = run_rsi(page, server)
    page.goto(f"{server}{detail}")
    page.wait_for_selector("#charts[data-loaded] .main-svg")
    total = int(page.inner_text("[data-metric='num_trades']").replace(",", ""))
    assert total >= 400

    # The trade list pages through every trade, numbered 1..num_trades.
    page.wait_for_selector("#trades tbody tr")
    seen = []
    while True:
        seen += [
            int(n)
            for n in page.locator("#trades tbody td:first-child").all_inner_texts()
        ]
        if page.is_disabled("#trades-next"):
            break
        before = page.inner_text("#trades-page")
        page.click("#trades-next")
        page.wait_for_function(
            "(text) => document.getElementById('trades-page').textContent !== text",
            arg=before,
        )
    assert seen == list(range(1, total + 1))
    # Server-side sort and filter: the best trade first; winners only.
    page.click("#trades th[data-key='return_pct'] button")
    page.wait_for_selector("#trades th[data-key='return_pct'][aria-sort='descending']")
    page.select_option("#trade-outcome", "losers")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#trades tbody td:nth-child(7)')]"
        ".every((td) => td.textContent.startsWith('\u2212'))"
    )

    # Zoom the shared time axis to one week: every panel follows (one axis),
    # and the equity comes back at one point per hourly bar.
    times = page.evaluate(
        "document.getElementById('charts').data.find((t) => t.name === 'Equity').x"
    )
    first = datetime.fromisoformat(times[len(times) // 2]).replace(minute=0, second=0)
    week = [
        f"{first:%Y-%m-%d %H:%M:%S}",
        f"{first + timedelta(hours=167):%Y-%m-%d %H:%M:%S}",
    ]
    loaded = page.get_attribute("#charts", "data-loaded")
    page.evaluate(
        "(range) => Plotly.relayout('charts', {'xaxis.range[0]': range[0],"
        " 'xaxis.range[1]': range[1]})",
        week,
    )
    page.wait_for_function(
        "(n) => document.getElementById('charts').dataset.loaded !== n", arg=loaded
    )
    figure = page.evaluate(
        "(() => { const el = document.getElementById('charts');"
        " return {data: el.data.map((t) => ({name: t.name, type: t.type, x: t.x,"
        " yaxis: t.yaxis})), range: el.layout.xaxis.range}; })()"
    )
    equity = next(t for t in figure["data"] if t["name"] == "Equity")
    stamps = [datetime.fromisoformat(x) for x in equity["x"]]
    assert 160 <= len(stamps) <= 169  # a week of hourly bars, every one
    assert {
        (b - a).total_seconds() for a, b in zip(stamps, stamps[1:], strict=False)
    } == {3600.0}
    # Price, drawdown and the RSI panel were re-fetched for the same window.
    price = next(t for t in figure["data"] if t["yaxis"] == "y" and t["x"])
    assert price["type"] == "candlestick"  # zoomed in: candles, one per bar
    assert len(price["x"]) == len(stamps)
    panel = next(t for t in figure["data"] if t["yaxis"] == "y2")
    assert panel["x"] == price["x"]
    drawdown = next(t for t in figure["data"] if t["name"] == "Drawdown")
    assert drawdown["x"] == equity["x"]
    assert figure["range"][0].startswith(week[0][:13])
    # The crosshair readout follows the pointer.
    drag = page.locator("#charts .nsewdrag[data-subplot='xy3']")
    drag.hover(position={"x": 300, "y": 60})
    drag.hover(position={"x": 310, "y": 60})
    page.wait_for_function(
        "() => document.getElementById('readout').textContent.includes('UTC')"
    )
    readout = page.inner_text("#readout")
    assert "close " in readout and "Equity " in readout and "Drawdown " in readout
    assert "RSI " in readout  # the panel too, whichever panel the pointer is on
    # 7: a log scale over a decade labels the powers of ten only.
    page.click("[data-axis='equity'][data-scale='log']")
    layout = page.evaluate("document.getElementById('charts').layout.yaxis3")
    assert layout["type"] == "log"
    assert page.errors == [] and page.csp_violations == []


def test_back_restores_exactly_what_was_run(page, server):
    page.goto(f"{server}/")
    page.wait_for_selector("#connection.ok")
    page.select_option("#strategy", "sma_crossover")
    page.fill("#param-fast", "7")
    page.fill("#param-slow", "40")
    page.click("#coins-none")
    page.check("#coin-list input[value='BTC']")
    page.click(".quick .chip[data-years='1']")
    page.fill("#fee", "0.002")
    page.click("#run-button")
    page.wait_for_selector("#summary:not([hidden])")
    shared = page.url
    assert "strategy=sma_crossover" in shared and "p.fast=7" in shared
    page.click("#summary a")
    page.wait_for_selector("#charts[data-loaded]")
    page.go_back()
    page.wait_for_selector("#connection.ok")
    assert page.input_value("#param-fast") == "7"
    assert page.input_value("#param-slow") == "40"
    assert page.input_value("#fee") == "0.002"
    assert page.inner_text("#coin-count") == "1 of 48"  # not "48 of 48"
    assert page.get_attribute(".quick .chip[data-years='1']", "aria-pressed") == "true"
    assert page.get_attribute(".quick .chip[data-years='0']", "aria-pressed") == "false"
    # A shared link opens with the same settings.
    other = page.context.new_page()
    other.goto(shared)
    other.wait_for_selector("#coin-list input")
    assert other.input_value("#param-fast") == "7"
    assert other.inner_text("#coin-count") == "1 of 48"
    other.close()
    # "Edit & re-run" from the run detail opens the form with its settings.
    page.goto(f"{server}/runs/")
    page.locator("#runs tbody th a").first.click()
    page.click("#rerun-link")
    page.wait_for_selector("#coin-list input")
    assert page.input_value("#param-slow") == "40"
    assert page.inner_text("#coin-count") == "1 of 48"
    assert page.errors == []


def test_new_user_problems_on_the_pages(page, server):
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{server}/")
    page.wait_for_selector("#connection.ok")
    # 2: no coin ticked: the error is on screen, above the sticky Run bar, and
    # a coin has the focus, not the filter box.
    page.click("#coins-none")
    page.click("#run-button")
    error = page.locator('[data-error-for="symbols"]')
    assert error.inner_text() == "Pick at least one coin."
    box = error.bounding_box()
    bar = page.locator(".form-panel .actions").bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= bar["y"]
    assert page.evaluate("document.activeElement.name") == "symbols"
    # 4: a range without prices is refused before sending; a range shorter than
    # the warm-up is warned about once.
    page.check("#coin-list input[value='BTC']")
    page.fill("#start", "2030-01-01")
    page.fill("#end", "2031-01-01")
    page.click("#run-button")
    assert page.inner_text('[data-error-for="start"]').startswith(
        "No prices in this range"
    )
    assert page.inner_text("#progress-text") == "Idle"
    last = json.loads(page.text_content("#range-data"))["last"][:10]
    page.fill("#start", last)
    page.fill("#end", "")
    page.select_option("#strategy", "sma_crossover")
    page.click("#run-button")
    assert "warm-up" in page.inner_text("#banner-text")
    assert page.inner_text("#progress-text") == "Idle"
    # 6 and 7: after a run, rows link to their charts; drawdowns are negative.
    page.fill("#start", "")
    page.click("#run-button")
    page.wait_for_selector("#summary:not([hidden])")
    # 5: on a phone the page jumped to the results, and the summary's long
    # values take a row each.
    panel = page.locator(".results-panel").bounding_box()
    assert -5 <= panel["y"] <= 60, panel
    widths = page.evaluate(
        "[...document.querySelectorAll('#summary .summary-wide')]"
        ".map((box) => box.getBoundingClientRect().width)"
    )
    inner = page.evaluate("document.getElementById('summary').clientWidth")
    assert len(widths) == 2 and all(w > inner * 0.8 for w in widths)
    row = page.locator("#results tbody tr").first
    assert re.search(r"/runs/\d+/\?symbol=BTC", row.locator("a").get_attribute("href"))
    dd = row.locator("td").nth(6).inner_text()
    assert dd.startswith("\u2212"), dd
    # 9: an unknown run is the site's own page.
    response = page.goto(f"{server}/runs/999999/")
    assert response.status == 404 and page.inner_text("h1") == "Not found"
    page.errors.remove(  # the browser logs the 404 this visit asked for
        "Failed to load resource: the server responded with a status of 404 (Not Found)"
    )
    # 10: dark mode follows the system, the charts too.
    page.emulate_media(color_scheme="dark")
    page.goto(f"{server}/runs/")
    page.locator("#runs tbody th a").first.click()
    page.wait_for_selector("#charts[data-loaded]")
    background = page.evaluate(
        "getComputedStyle(document.documentElement).backgroundColor"
    )
    ink = page.evaluate("document.getElementById('charts').layout.font.color")
    assert background == "rgb(15, 19, 24)" and ink == "#e6e9ee"
    # 5: no chart toolbar over the charts on a phone.
    assert page.locator("#charts .modebar").count() == 0
    page.screenshot(path=str(shots() / "detail-dark-390.png"), full_page=True)
    assert page.errors == [] and page.csp_violations == []


def test_reload_mid_run_reattaches_and_ends_with_every_result(page, server):
    page.goto(f"{server}/")
    page.wait_for_selector("#connection.ok")
    page.select_option("#strategy", "all")
    page.click("#run-button")
    page.wait_for_function(
        "() => document.querySelectorAll('#results tbody tr').length >= 6"
    )
    assert page.is_hidden("#summary")  # still running
    page.reload()  # leaving does not stop the run: the page picks it up again
    page.wait_for_selector("#summary:not([hidden])", timeout=60_000)
    total = 48 * 6
    assert page.locator("#results tbody tr").count() == total
    assert page.inner_text("#progress-text").startswith(f"{total} / {total}")
    detail = page.get_attribute("#summary a", "href")
    page.goto(f"{server}{detail}")
    assert page.inner_text("#run-title .badge") == "Complete"
    assert page.locator("#results tbody tr").count() == total
    assert page.errors == [] and page.csp_violations == []
