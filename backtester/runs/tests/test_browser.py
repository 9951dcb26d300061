"""End to end in real headless Chromium against daphne on a loopback port."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
    ),
]
# Enough demo data that an all-strategies run takes long enough to cancel (about
# a second on one worker) while the whole module stays well under a minute.
SEED = ["--symbols", "48", "--years", "1"]
COINS = ["BTC", "ETH", "SOL", "XRP", "ADA", "DOGE", "DOT", "LTC", "LINK", "BNB",
         "TRX", "AVAX"]  # fmt: skip

# Records, inside the page, what the table and progress bar showed when the first
# result row appeared. A MutationObserver callback runs before the next socket
# message is handled, so this is the state between two events.
RECORDER = """
window.__seen = null;
new MutationObserver(() => {
  const rows = document.querySelectorAll('#results tbody tr').length;
  if (rows && !window.__seen) {
    window.__seen = {
      rows,
      progress: document.getElementById('progress-text').textContent,
      summaryHidden: document.getElementById('summary').hidden,
    };
  }
}).observe(document.querySelector('#results tbody'), {childList: true});
"""


CSP_LISTENER = """
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolation(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'}`
                        + ` at ${e.sourceFile}:${e.lineNumber}`);
});
"""


@functools.cache
def shots() -> Path:
    """Return the folder screenshots go to (made on first use)."""
    return Path(tempfile.mkdtemp(prefix="btlab-screens-"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"daphne exited with {process.returncode}")
        with contextlib.suppress(OSError):
            urllib.request.urlopen(url, timeout=1).close()
            return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


@contextlib.contextmanager
def demo_server(
    seed: list[str], *, commands: tuple[list[str], ...] = (), **settings: str
) -> Iterator[str]:
    """Migrate and seed a temporary SQLite file (``seed_demo`` arguments), run
    any further manage.py ``commands``, then serve it with daphne under extra
    environment ``settings``; yield its URL."""
    work = Path(tempfile.mkdtemp(prefix="btlab-browser-"))
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(DATABASE_URL=f"sqlite:///{work / 'db.sqlite3'}", **settings)
    python = str(ROOT / ".venv" / "bin" / "python")
    if not Path(python).exists():
        python = sys.executable
    for args in (["migrate", "-v0"], ["seed_demo", *seed], *commands):
        subprocess.run(
            [python, "manage.py", *args], cwd=ROOT, env=env, check=True,
            capture_output=True, timeout=300,
        )  # fmt: skip
    port = free_port()
    log = (work / "daphne.log").open("w")
    daphne = subprocess.Popen(
        [str(Path(python).parent / "daphne"), "-b", "127.0.0.1", "-p", str(port),
         "backtester.asgi:application"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base}/healthz", daphne)
        yield base
    finally:
        daphne.terminate()
        try:
            daphne.wait(timeout=20)
        except subprocess.TimeoutExpired:
            daphne.kill()
        log.close()
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """The demo's 48 coins over one year, served with one compute thread and
    prices read cold (no warm-up when the page opens): an all-strategies run
    lasts long enough to cancel."""
    with demo_server(SEED, BACKTEST_WORKERS="1", PRICE_CACHE_WARM="false") as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, request):
    """A 1280x800 page; on failure a screenshot is saved and its folder printed."""
    failed_before = request.session.testsfailed
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    # Every Content-Security-Policy violation of any page, reported by the
    # browser's securitypolicyviolation event (its console message also lands in
    # page.errors).
    violations: list[str] = []
    context.expose_function("__cspViolation", lambda text: violations.append(text))
    context.add_init_script(CSP_LISTENER)
    page = context.new_page()
    page.csp_violations = violations
    page.set_default_timeout(20_000)
    page.errors = []  # uncaught exceptions and console errors
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on(
        "console",
        lambda m: page.errors.append(m.text) if m.type == "error" else None,
    )
    yield page
    # The call phase is reported before teardown, so a failure is counted by now.
    if request.session.testsfailed > failed_before:
        with contextlib.suppress(Exception):
            page.screenshot(
                path=str(shots() / f"{request.node.name}.png"), full_page=True
            )
        print(f"\nscreenshots in {shots()}")
    context.close()


def number(text: str) -> float:
    """Parse a signed table figure such as +12.30 or −4.50 (– is no value)."""
    text = text.replace("\u2212", "-").replace(",", "").strip()
    return float("nan") if text in ("", "\u2013") else float(text)


def column(page, key: str) -> list[float]:
    """Return the figures of the live results column whose heading has ``key``."""
    keys = [
        th.get_attribute("data-key") for th in page.locator("#results thead th").all()
    ]
    cells = page.locator(f"#results tbody tr > :nth-child({keys.index(key) + 1})")
    return [number(t) for t in cells.all_inner_texts()]


def test_run_stream_sort_cancel_and_detail(page, server):
    page.goto(f"{server}/")
    page.wait_for_selector("#connection.ok")
    page.evaluate(RECORDER)

    # Client-side validation mirrors the server: fast must be below slow.
    page.select_option("#strategy", "sma_crossover")
    page.fill("#param-fast", "60")
    page.fill("#param-slow", "50")
    page.click("#run-button")
    error = page.locator('[data-error-for="params.fast"]')
    assert "less than slow" in error.inner_text()
    assert page.get_attribute("#param-fast", "aria-invalid") == "true"
    assert page.inner_text("#progress-text") == "Idle"  # nothing was sent
    page.select_option("#strategy", "rsi_reversion")  # the same rule on floats
    page.fill("#param-lower", "70")
    page.fill("#param-upper", "30")
    page.click("#run-button")
    assert "less than upper (30)" in page.inner_text('[data-error-for="params.lower"]')
    assert page.inner_text("#progress-text") == "Idle"
    page.select_option("#strategy", "sma_crossover")  # the values typed are kept
    assert page.input_value("#param-fast") == "60"

    # Quick picks set the start relative to the latest bar; "All" clears it.
    last = json.loads(page.text_content("#range-data"))["last"]
    page.click(".quick .chip[data-years='1']")
    assert page.input_value("#start") == f"{int(last[:4]) - 1}{last[4:10]}"
    page.click(".quick .chip[data-years='0']")
    assert page.input_value("#start") == ""

    # One strategy over twelve coins: rows stream in one by one.
    page.fill("#param-fast", "10")
    page.fill("#param-slow", "30")
    page.click("#coins-none")
    for symbol in COINS:
        page.check(f"#coin-list input[value='{symbol}']")
    assert page.inner_text("#coin-count") == f"{len(COINS)} of 48"
    page.click("#run-button")
    page.wait_for_selector("#summary:not([hidden])")
    seen = page.evaluate("window.__seen")
    # The first row was drawn while the bar said 1 of 12 and no summary existed:
    # streamed as it was computed, not delivered at the end.
    assert seen["rows"] == 1 and seen["summaryHidden"], seen
    assert seen["progress"].startswith(f"1 / {len(COINS)} "), seen
    assert page.locator("#results tbody tr").count() == len(COINS)
    assert page.get_attribute("#progress", "aria-valuenow") == "100"
    assert page.inner_text("#progress-text").startswith(f"{len(COINS)} / {len(COINS)}")
    assert page.locator("#heatmap-wrap").is_hidden()  # one strategy: no heatmap
    summary = page.inner_text("#summary")
    assert "Beat buy & hold" in summary and "Median return" in summary
    detail = page.get_attribute("#summary a", "href")
    assert re.fullmatch(r"/runs/\d+/", detail)

    # Sorting by any column: return, then coin name.
    page.click("#results th[data-key='total_return_pct'] button")
    returns = column(page, "total_return_pct")
    assert returns == sorted(returns, reverse=True)
    page.click("#results th[data-key='symbol'] button")
    coins = page.locator("#results tbody tr th").all_inner_texts()
    assert coins == sorted(coins)
    page.click("#results th[data-key='total_return_pct'] button")

    # All strategies over all coins, sorted by return while it fills; cancelled.
    page.select_option("#strategy", "all")
    assert page.locator("#params").is_hidden()
    page.click("#coins-all")
    page.click("#run-button")
    # Predicates are functions, not strings: a string is run with eval, which the
    # page's Content-Security-Policy forbids.
    page.wait_for_function(
        "() => document.querySelectorAll('#results tbody tr').length >= 6"
        " && !document.getElementById('cancel-button').disabled"
    )
    page.screenshot(path=str(shots() / "run-mid-1280.png"))
    page.click("#cancel-button")
    page.wait_for_function(
        "() => document.getElementById('progress-text').textContent"
        ".includes('cancelled')"
    )
    assert page.get_attribute("#progress", "aria-valuenow") != "100"
    assert page.is_disabled("#cancel-button") and page.is_enabled("#run-button")
    assert page.locator("#summary").is_hidden()
    rows = page.locator("#results tbody tr")
    assert 6 <= rows.count() < 48 * 6
    keys = [rows.nth(i).get_attribute("data-key") for i in range(rows.count())]
    assert len(keys) == len(set(keys))  # one row per coin and strategy
    returns = column(page, "total_return_pct")
    assert returns == sorted(returns, reverse=True)  # the sort held as rows came
    # A coin's six strategies arrive together: the heatmap has a row for each.
    page.wait_for_selector("#heatmap-wrap:not([hidden])")
    assert page.locator("#heatmap tbody tr").count() == 6

    # The cancelled run's page: no summary, yet its heatmap and charts are drawn.
    deadline = time.monotonic() + 20
    while True:
        page.goto(f"{server}/runs/")
        newest = page.locator("tbody tr").first
        if "Cancelled" in newest.inner_text() or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert "Cancelled" in newest.inner_text()
    newest.locator("th a").click()
    page.wait_for_selector("#heatmap tbody tr")
    assert page.locator("#heatmap tbody tr").count() == 6
    page.wait_for_selector("#charts[data-loaded] .main-svg")
    assert page.locator("#chart-status").is_hidden()

    # The saved first run: one linked figure with price, equity and drawdown.
    page.goto(f"{server}{detail}")
    page.wait_for_selector("#charts[data-loaded] .main-svg")
    names = page.evaluate("document.getElementById('charts').data.map((t) => t.name)")
    assert {"Equity", "Buy & hold", "Drawdown", "Long entry ▲"} <= set(names)
    assert any(name.startswith("Exit: ") for name in names)
    # The strategy's own lines: its fast and slow SMA.
    assert len([name for name in names if name.startswith("SMA ")]) == 2
    assert page.locator("#chart-status").is_hidden()
    assert page.locator("#results tbody tr").count() == len(COINS)
    page.wait_for_selector("#trades tbody tr")
    page.click("[data-axis='yaxis'][data-scale='log']")
    assert page.evaluate("document.getElementById('charts').layout.yaxis.type") == "log"
    page.screenshot(path=str(shots() / "detail-1280.png"), full_page=True)
    # Another result, picked from the table, loads its own charts in place.
    page.evaluate("window.__sameDocument = true")
    page.locator("#results tbody tr:not(.selected) th a").first.click()
    page.wait_for_url(re.compile(r"symbol="))
    page.wait_for_selector("#charts[data-loaded] .main-svg")
    assert page.locator("#results tbody tr.selected").count() == 1
    assert page.evaluate("window.__sameDocument") is True  # no reload
    assert page.errors == []
    assert page.csp_violations == []

    # Without the chart library the page says so instead of loading forever.
    page.route("**/plotly.min.js", lambda route: route.abort())
    page.reload()
    page.wait_for_selector("#chart-status.chart-error")
    assert "chart library did not load" in page.inner_text("#chart-status")
    assert page.csp_violations == []


def test_risk_settings_from_the_form_to_the_exit_markers(page, server):
    """A `both` run with a stop, a target and a trailing stop, end to end."""
    page.goto(f"{server}/")
    page.wait_for_selector("#connection.ok")
    page.select_option("#strategy", "sma_crossover")
    # Off by default: the group is closed and says so.
    assert page.inner_text("#risk-state") == "off"
    assert not page.is_visible("#stop_loss_pct")
    page.click("#risk summary")
    # Checked as the server checks it: 100 is not a stop below 100%.
    page.fill("#stop_loss_pct", "100")
    page.click("#run-button")
    assert "below 100" in page.inner_text('[data-error-for="stop_loss_pct"]')
    assert page.inner_text("#progress-text") == "Idle"  # nothing was sent
    page.fill("#stop_loss_pct", "2")
    page.fill("#take_profit_pct", "4")
    page.fill("#trailing_stop_pct", "3")
    page.select_option("#direction", "both")
    label = "both · stop 2% · target 4% · trail 3%"
    assert page.inner_text("#risk-state") == label
    page.click("#coins-none")
    for symbol in COINS[:3]:
        page.check(f"#coin-list input[value='{symbol}']")
    page.click("#run-button")
    page.wait_for_selector("#summary:not([hidden])")
    # The live table shows the settings on every row.
    assert page.is_visible("#results th[data-key='risk']")
    cells = page.locator("#results tbody tr td.risk-col").all_inner_texts()
    assert cells == [label] * 3
    page.click("#summary a")

    page.wait_for_selector("#charts[data-loaded] .main-svg")
    assert page.inner_text("#run-risk") == label
    assert page.locator("#results tbody td.risk-cell").all_inner_texts() == [label] * 3
    # The trade list: a side and an exit reason for each trade, both sides
    # traded and the stops at work.
    page.wait_for_selector("#trades tbody tr")
    heads = page.locator("#trades thead th").all_inner_texts()
    assert {"Side", "Exit reason"} <= set(heads), heads
    side_column, reason_column = heads.index("Side"), heads.index("Exit reason")
    assert heads[-2:] == ["Exit reason", "Gap"]
    page.select_option("#trade-side", "")  # every trade on one page
    cells = page.locator("#trades tbody td")
    sides = page.locator(
        f"#trades tbody td:nth-child({side_column + 1})"
    ).all_inner_texts()
    reasons = [
        text.split(" · ")[0]  # a reason may carry a note, e.g. "stop · gap"
        for text in page.locator(
            f"#trades tbody td:nth-child({reason_column + 1})"
        ).all_inner_texts()
    ]
    assert cells.count() and len(sides) == len(reasons) > 0
    assert {s.split()[-1] for s in sides} == {"long", "short"}
    assert {"▲ long", "▼ short"} == set(sides)
    assert {"stop", "target", "trailing"} & set(reasons), reasons
    # The demo's bars have no gaps: no trade is flagged.
    gaps = page.locator(
        f"#trades tbody td:nth-child({heads.index('Gap') + 1})"
    ).all_inner_texts()
    assert len(gaps) == len(reasons) and set(gaps) == {""}
    assert set(reasons) <= {"signal", "stop", "target", "trailing", "end",
                            "liquidation"}  # fmt: skip
    # The chart: one marker trace per side and per exit reason of the trades,
    # named in the legend.
    markers = page.evaluate(
        "document.getElementById('charts').data"
        ".filter((t) => t.mode === 'markers')"
        ".map((t) => [t.name, t.marker.symbol])"
    )
    names = [name for name, _ in markers]
    wanted = {"▲ long": "Long entry ▲", "▼ short": "Short entry ▼"}
    assert {wanted[s] for s in sides} <= set(names)
    legend = {"signal": "Exit: signal ●", "stop": "Exit: stop ■",
              "target": "Exit: target ◆", "trailing": "Exit: trailing ✚",
              "end": "Exit: end ○", "liquidation": "Exit: liquidation ✖"}  # fmt: skip
    assert {legend[r] for r in reasons} <= set(names)
    symbols = [symbol for _, symbol in markers]
    assert len(symbols) == len(set(symbols))  # all distinct
    page.screenshot(path=str(shots() / "detail-risk-1280.png"), full_page=True)
    assert page.errors == []


def test_errors_reconnect_and_rerun_with_a_scripted_socket(page, server):
    """Field errors, a banner, a dropped run, reconnecting and re-running."""
    sockets, requests = [], []

    def on_socket(ws):
        sockets.append(ws)

        def on_message(message):
            data = json.loads(message)
            requests.append(data)
            n = len(requests)
            if n == 1:
                ws.send(
                    json.dumps(
                        {
                            "type": "error",
                            "field": "params.slow",
                            "message": "slow: must be between 2 and 1000",
                        }
                    )
                )
            elif n == 2:
                ws.send(json.dumps({"type": "error", "message": "the server is busy"}))
            elif n == 3:  # a run whose connection drops mid-way
                ws.send(json.dumps({"type": "start", "run_id": 7, "total": 3}))
                # BTC twice (the same seq): one row
                for seq, symbol in ((1, "BTC"), (1, "BTC"), (2, "ETH")):
                    ws.send(json.dumps(result_event(symbol, seq, 3, run_id=7)))
                ws.close(code=1011)
            elif n == 4:  # the new connection attaches: stored, then live
                attached = {"type": "start", "run_id": 7, "total": 3,
                            "attached": True, "status": "running"}  # fmt: skip
                ws.send(json.dumps(attached))
                # Result 2 is lost on the way: the page asks for it at the end.
                for seq, symbol in ((1, "BTC"), (3, "SOL")):
                    ws.send(json.dumps(result_event(symbol, seq, 3, run_id=7)))
                ws.send(
                    json.dumps(
                        {
                            "type": "complete",
                            "run_id": 7,
                            "summary": SUMMARY,
                            "elapsed_s": 0.1,
                        }
                    )
                )
            elif n == 5:  # the page noticed the gap
                assert data == {"type": "resend", "run_id": 7, "seqs": [2]}
                ws.send(json.dumps(result_event("ETH", 2, 3, run_id=7)))

        ws.on_message(on_message)

    page.route_web_socket(re.compile(r".*/ws/backtests/$"), on_socket)
    page.goto(f"{server}/")
    page.wait_for_selector("#connection.ok")
    page.select_option("#strategy", "sma_crossover")

    page.click("#run-button")  # a server error naming a field: shown beside it
    page.wait_for_selector('[data-error-for="params.slow"]:not(:empty)')
    assert "between 2 and 1000" in page.inner_text('[data-error-for="params.slow"]')
    assert page.is_enabled("#run-button")
    page.click("#run-button")  # an error without a field: the banner
    page.wait_for_selector("#banner:not([hidden])")
    assert page.inner_text("#banner-text") == "the server is busy"
    assert page.locator('[data-error-for="params.slow"]').inner_text() == ""

    page.click("#run-button")  # the connection drops mid-run: the run goes on
    page.wait_for_selector("#summary:not([hidden])")
    # The page reconnected and attached to the same run, which it follows to
    # its end: nothing was re-run.
    assert len(sockets) == 2
    assert requests[3] == {"type": "attach", "run_id": 7}
    page.wait_for_function(
        "() => document.querySelectorAll('#results tbody tr').length === 3"
    )
    assert requests[4] == {"type": "resend", "run_id": 7, "seqs": [2]}
    assert page.locator("#results tbody tr").count() == 3
    assert page.locator("#banner").is_hidden()
    assert page.get_attribute("#summary a", "href") == "/runs/7/"
    # Only the result whose range has a gap over a day is flagged, saying why.
    badges = page.locator("#results tbody tr th .badge.gap")
    assert badges.count() == 1
    assert page.locator("#results tbody tr th").all_inner_texts().count("SOL gap") == 1
    assert "50 bars missing" in badges.first.get_attribute("title")
    assert page.errors == []
    assert page.csp_violations == []


SUMMARY = {
    "results": 3, "skipped": 0, "beat_buy_hold": 1, "median_return_pct": 1.5,
    "mean_return_pct": 2.0, "mean_sharpe": 0.4,
    "best": {"symbol": "SOL", "strategy": "sma_crossover", "total_return_pct": 9.0},
    "worst": {"symbol": "BTC", "strategy": "sma_crossover", "total_return_pct": -3.0},
}  # fmt: skip


def result_event(
    symbol: str, completed: int, total: int, *, run_id: int = 1, seq: int | None = None
) -> dict:
    metrics = {"total_return_pct": completed * 2.0 - 3, "buy_hold_return_pct": 1.0,
               "sharpe": 0.5, "max_drawdown_pct": 12.0, "num_trades": 4,
               "win_rate_pct": 50.0}  # fmt: skip
    if symbol == "SOL":  # a range with 50 hours without bars: flagged
        metrics.update(missing_bars=50, longest_gap_hours=50.0)
    return {
        "type": "result", "completed": completed, "total": total, "run_id": run_id,
        "seq": completed if seq is None else seq,
        "data": {"symbol": symbol, "strategy": "sma_crossover", "params": {},
                 "first_bar": None, "last_bar": None, "bars": 10, "metrics": metrics},
    }  # fmt: skip


def test_phone_width_layout(browser, server):
    context = browser.new_context(viewport={"width": 375, "height": 800})
    page = context.new_page()
    try:
        page.goto(f"{server}/")
        page.wait_for_selector("#connection.ok")
        # The form stacks above the results and nothing overflows the viewport;
        # the wide results table scrolls inside its own box.
        form = page.locator(".form-panel").bounding_box()
        results = page.locator(".results-panel").bounding_box()
        assert results["y"] >= form["y"] + form["height"]
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        assert page.evaluate(
            "(() => { const box = document.querySelector('.results-scroll');"
            " return box.scrollWidth > box.clientWidth; })()"
        )
        page.screenshot(path=str(shots() / "run-375.png"), full_page=True)
        print(f"\nphone screenshot in {shots()}")
    finally:
        context.close()
