"""The portfolio page in headless Chromium: 48 demo coins, 5 slots ranked by
roc_24, progress per coin, then the charts, contributions and trade list."""

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
# Every progress text the page showed, to prove it counted coin by coin.
RECORDER = """
window.__progress = [];
new MutationObserver(() => {
  window.__progress.push(document.getElementById('progress-text').textContent);
}).observe(document.getElementById('progress-text'), {childList: true, subtree: true});
"""


def test_a_48_coin_portfolio_completes_with_charts_and_trades(page, server):  # noqa: F811
    page.goto(f"{server}/portfolio/")
    page.wait_for_selector("#connection.ok")
    assert page.inner_text("#coin-count") == "48 of 48"
    # A bad slot count is refused by the server, named beside its field.
    page.fill("#max-positions", "0")
    page.click("#run-button")
    page.wait_for_selector("[data-error-for=max_positions]:not(:empty)")
    assert "between 1 and 100" in page.inner_text("[data-error-for=max_positions]")

    page.fill("#max-positions", "5")
    page.select_option("#rank", "roc_24")
    page.evaluate(RECORDER)
    page.click("#run-button")
    page.wait_for_selector("#portfolio-results[data-ready=true]", timeout=120_000)
    assert page.inner_text("#progress-text").startswith("done in")
    counts = [
        int(m.group(1))
        for text in page.evaluate("window.__progress")
        if (m := re.match(r"(\d+) / 48 ", text))
    ]
    assert counts and counts == sorted(counts) and counts[-1] == 48
    assert len(set(counts)) > 1  # counted as coins were ready, not once

    # The metrics, with their formulas on hover.
    final = number(page.inner_text("[data-metric=final_equity]"))
    ret = number(page.inner_text("[data-metric=total_return_pct]").rstrip("%"))
    assert final == pytest.approx(10_000 * (1 + ret / 100), rel=1e-3)
    assert (
        "equal-weight"
        in page.get_attribute("#metrics dt:has-text('Benchmark')", "title").lower()
    )
    held = int(number(page.inner_text("[data-metric=max_positions_held]")))
    assert 1 <= held <= 5

    # One figure of four panels on one x axis, and the contributions' bars.
    assert page.locator("#portfolio-chart .main-svg").count() > 0
    traces = page.evaluate(
        "document.getElementById('portfolio-chart').data.map(t => t.name)"
    )
    assert traces == [
        "Account", "Equal-weight buy & hold", "Drawdown", "Positions", "Held",
    ]  # fmt: skip
    assert page.evaluate(
        "document.getElementById('portfolio-chart').data.every(t => t.xaxis"
        " === undefined || t.xaxis === 'x')"
    )
    bars = page.evaluate("document.getElementById('contributions-chart').data[0].x")
    assert len(bars) == 48

    # The trade list: rows, paging, a coin's own trades.
    count = int(re.search(r"\d+", page.inner_text("#trades-count")).group())
    assert count > 50
    assert page.locator("#trades tbody tr").count() == 50
    first_page = page.inner_text("#trades tbody tr:first-child")
    page.click("#trades-next")
    page.wait_for_selector("#trades-page:has-text('Page 2')")
    assert page.inner_text("#trades tbody tr:first-child") != first_page
    coin = page.inner_text("#trades tbody tr:first-child th")
    page.select_option("#trade-symbol", coin)
    page.wait_for_function(
        "c => [...document.querySelectorAll('#trades tbody th')]"
        ".every(th => th.textContent === c)",
        arg=coin,
    )
    page.screenshot(path=str(shots() / "portfolio-48-1280.png"), full_page=True)

    # The stored run opens from its link with the same numbers.
    page.click("#run-link a")
    page.wait_for_selector("#portfolio-results[data-ready=true]")
    assert number(page.inner_text("[data-metric=final_equity]")) == final
    assert page.errors == []
    assert page.csp_violations == []


# Every cell count the heatmap drew, to prove it filled cell by cell.
DRAWN = """
window.__drawn = [];
new MutationObserver(() => {
  window.__drawn.push(Number(document.getElementById('psweep-canvas').dataset.drawn));
}).observe(document.getElementById('psweep-canvas'), {attributes: true});
"""


def test_a_portfolio_sweep_fills_its_heatmap_live_then_is_in_history(page, server):  # noqa: F811
    page.goto(f"{server}/portfolio/?mode=sweep")
    page.wait_for_selector("#connection.ok")
    assert page.is_visible("#sweep-axes")
    # A bad axis is refused by the server, named beside its field.
    page.fill("#axis-max-positions", "0:2:1")
    page.click("#run-button")
    page.wait_for_selector("[data-error-for='grid.max_positions']:not(:empty)")
    assert "between 1 and 100" in page.inner_text(
        "[data-error-for='grid.max_positions']"
    )

    page.fill("#axis-max-positions", "1:3:1")
    page.select_option("#axis-param", "fast")
    page.fill("#axis-values", "5,10,15")
    page.select_option("#rank", "roc_24")
    page.evaluate(DRAWN)
    page.click("#run-button")
    page.wait_for_selector("#psweep-best:has-text('Saved as')", timeout=120_000)
    drawn = [n for n in page.evaluate("window.__drawn") if n]
    assert drawn and drawn[-1] == 9 and drawn == sorted(drawn)
    assert len(set(drawn)) > 1  # drawn as cells arrived, not once at the end
    assert page.inner_text("#progress-text").startswith("done in")
    page.screenshot(path=str(shots() / "portfolio-sweep-1280.png"), full_page=True)

    # The stored sweep opens from its link: the same heatmap and a table.
    page.click("#psweep-best a")
    page.wait_for_selector("#psweep-canvas[data-drawn='9']")
    assert page.locator("#psweep-cells tbody tr").count() == 9
    page.click(".results-head a[href='/portfolio/sweeps/']")
    page.wait_for_selector("#portfolio-sweeps")
    assert "max_positions (3) × fast (3)" in page.inner_text("#portfolio-sweeps")
    assert page.errors == []
    assert page.csp_violations == []


def keep_followed(tab) -> None:
    """Keep the job the page follows in its session storage until it reloads.

    A warm run of 48 coin-years can end between the page showing it and the
    reload; the page would then forget it (its end was shown) and the reloaded
    page follow nothing. The reloaded page attaches to a run still going and
    to one that has ended (its result at once) alike.
    """
    tab.evaluate("() => { Storage.prototype.removeItem = function () {}; }")


def test_a_reloaded_page_follows_its_portfolio_run_and_sweep_again(page, server):  # noqa: F811
    page.goto(f"{server}/portfolio/")
    page.wait_for_selector("#connection.ok")
    page.click("#run-button")
    page.wait_for_selector("#progress-text:has-text('/ 48 coins')")
    keep_followed(page)
    page.reload()  # the run goes on; the page attaches to it again
    page.wait_for_selector("#portfolio-results[data-ready=true]", timeout=120_000)
    assert page.inner_text("#run-link").startswith("Saved as portfolio #")

    page.goto(f"{server}/portfolio/?mode=sweep")
    page.wait_for_selector("#connection.ok")
    page.fill("#axis-max-positions", "1:4:1")
    page.select_option("#axis-param", "fast")
    page.fill("#axis-values", "5,10,15,20")
    page.click("#run-button")
    page.wait_for_selector("#psweep-canvas:not([data-drawn='0'])[data-drawn]")
    keep_followed(page)
    page.reload()
    page.wait_for_selector("#psweep-best:has-text('Saved as')", timeout=120_000)
    assert page.get_attribute("#psweep-canvas", "data-drawn") == "16"
    assert page.errors == []
    assert page.csp_violations == []
