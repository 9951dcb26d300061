"""End to end in real headless Chromium against daphne on a loopback port."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from services import _wait_for_port, free_port  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed"),
]
ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip

# Records, in the page, when the first result row appears and what the progress
# bar said at that moment (MutationObserver callbacks run before the next socket
# message is handled).
RECORDER = """
window.__seen = {};
new MutationObserver(() => {
  const rows = document.querySelectorAll('#results tbody tr').length;
  if (rows && !window.__seen.firstRow) {
    window.__seen.firstRow = document.getElementById('progress-text').textContent;
  }
}).observe(document.querySelector('#results tbody'), {childList: true});
"""


@pytest.fixture(scope="module")
def server():
    work = Path(tempfile.mkdtemp(prefix="btlab-browser-"))
    env = {
        k: v for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL")
    }  # fmt: skip
    env.update(DATABASE_URL=f"sqlite:///{work / 'db.sqlite3'}", BACKTEST_WORKERS="1")

    def manage(*args: str) -> None:
        subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                       check=True, capture_output=True)  # fmt: skip

    manage("migrate", "-v0")
    manage("seed_demo", "--symbols", "48", "--years", "2")
    port = free_port()
    daphne = subprocess.Popen(
        [str(Path(sys.executable).parent / "daphne"), "-b", "127.0.0.1",
         "-p", str(port), "backtester.asgi:application"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_for_port(port, timeout=30)
        yield f"http://127.0.0.1:{port}", work
    finally:
        daphne.terminate()
        daphne.wait(timeout=20)
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
def page(server):
    from playwright.sync_api import sync_playwright

    shots = Path(tempfile.mkdtemp(prefix="btlab-screens-"))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        try:
            yield page, server[0], errors
        except Exception:
            raise
        finally:
            page.screenshot(path=str(shots / "last.png"), full_page=True)
            print(f"screenshots in {shots}")
            browser.close()


def test_run_stream_cancel_and_detail(page):
    page, base, errors = page
    page.goto(f"{base}/")
    page.wait_for_selector("#connection.ok", timeout=15_000)
    page.evaluate(RECORDER)

    # All strategies on 12 coins: 72 results streamed into the table.
    page.select_option("#strategy", "all")
    page.click("#coins-none")
    for symbol in ["BTC", "ETH", "SOL", "XRP", "ADA", "DOGE", "DOT", "LTC", "LINK",
                   "BNB", "TRX", "AVAX"]:  # fmt: skip
        page.check(f"#coin-list input[value='{symbol}']")
    page.click("#run-button")
    page.wait_for_selector("#summary:not([hidden])", timeout=60_000)
    first_row_progress = page.evaluate("window.__seen.firstRow")
    # The first row was drawn while the progress bar said 1 of 72: streamed, not
    # delivered at the end.
    assert first_row_progress.startswith("1 / 72"), first_row_progress
    assert page.locator("#results tbody tr").count() == 72
    assert page.get_attribute("#progress", "aria-valuenow") == "100"
    assert page.locator("#heatmap tbody tr").count() == 6
    summary = page.inner_text("#summary")
    assert "Backtests" in summary and "72" in summary
    detail_link = page.get_attribute("#summary a", "href")

    # Sorting by return keeps the best row on top.
    page.click("#results th[data-key='total_return_pct'] button")
    top = page.locator("#results tbody tr").first.locator("td").first.inner_text()
    returns = [
        float(t.replace("+", "").replace("–", "nan"))
        for t in page.locator("#results tbody tr td:nth-of-type(1)").all_inner_texts()
    ]
    assert float(top.replace("+", "")) == max(returns)

    # A second, longer run (cold range, one worker) is cancelled.
    page.select_option("#strategy", "all")
    page.click("#coins-all")
    page.fill("#start", "2024-03-01")
    page.click("#run-button")
    page.wait_for_function(
        "document.getElementById('cancel-button').disabled === false"
    )
    page.click("#cancel-button")
    page.wait_for_function(
        "document.getElementById('progress-text').textContent.includes('cancelled')",
        timeout=15_000,
    )
    assert page.get_attribute("#progress", "aria-valuenow") != "100"
    assert page.is_disabled("#cancel-button")

    # The saved first run: its charts render.
    page.goto(f"{base}{detail_link}")
    page.wait_for_selector("#price-chart .main-svg", timeout=20_000)
    page.wait_for_selector("#equity-chart .main-svg")
    page.wait_for_selector("#drawdown-chart .main-svg")
    assert page.locator("#price-chart path.js-line").count() >= 1
    # Strategy and buy & hold: a line each (plus their legend swatches).
    assert page.locator("#equity-chart .scatterlayer .trace").count() == 2
    assert page.inner_text("#chart-status") == ""
    assert errors == []


def test_phone_width_layout(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 375, "height": 800})
        page.goto(f"{server[0]}/")
        # The form stacks above the results and nothing overflows the viewport.
        form_box = page.locator(".form-panel").bounding_box()
        results_box = page.locator(".results-panel").bounding_box()
        assert results_box["y"] > form_box["y"] + form_box["height"] - 1
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375
        browser.close()
