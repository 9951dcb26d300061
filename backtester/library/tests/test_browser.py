# ruff: noqa: F811 (the shared fixtures are imported, then named as arguments)
"""The strategy editor in headless Chromium: write, check, preview, save, run
on the demo's 48 coins, sweep a parameter, edit, and the earlier run still
replays the version it ran."""

from __future__ import annotations

import re
import statistics
from pathlib import Path

import numpy as np
import pytest

from backtester.library.tests.reference import cross_entries
from backtester.runs.tests.test_browser import (  # noqa: F401 (fixtures)
    CHROMIUM,
    browser,
    demo_server,
    number,
    page,
)
from prices.demo import DEMO_COINS, HOURS_PER_YEAR, coin_series
from strategies.engine import run_many
from strategies.registry import STRATEGIES
from strategies.rules.program import compile_strategy
from strategies.types import Bars

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
    ),
]
SHOTS = Path("/tmp/shots-editor")
USER, PASSWORD = "trader", "a-long-test-password-17"
COINS = 48
# The sweep: fast over 5:15:5, slow at its default, on three coins.
SWEPT = (5, 10, 15)
SWEEP_COINS = ("BTC", "ETH", "SOL")
KEY = "trend-cross"
# Version 1, as first typed: line 5 calls a function that does not exist.
TYPED = """\
# Two moving averages: in when the fast one crosses above.
param fast: int = 12 in 2..100
param slow: int = 48 in 5..400

long entry: crosses_above(smaa(close, fast), sma(close, slow))
long exit:  crosses_below(sma(close, fast), sma(close, slow))
"""
V1 = TYPED.replace("smaa(", "sma(")
# Version 2: a slower exit (the fast average against a fixed 96-bar one).
V2 = V1.replace(
    "long exit:  crosses_below(sma(close, fast), sma(close, slow))",
    "long exit:  crosses_below(sma(close, fast), sma(close, 96))",
)
# The mistake's place, counted by hand: "long entry: " is 12 characters and
# "crosses_above(" 14 more, so "smaa" starts in column 27 of line 5.
MISTAKE = "line 5, col 27: unknown function 'smaa' (did you mean 'sma'?)"


@pytest.fixture(scope="module")
def server():
    """The demo's 48 coins over one year and a user who can save strategies."""
    create = (
        "from django.contrib.auth.models import User; "
        f"User.objects.create_user({USER!r}, password={PASSWORD!r})"
    )
    seed = ["--symbols", str(COINS), "--years", "1"]
    with demo_server(seed, commands=(["shell", "-c", create],)) as base:
        yield base


def demo_bars(symbol: str) -> Bars:
    """Return a demo coin's hourly bars, generated here as seed_demo makes them."""
    index = next(i for i, (s, _, _) in enumerate(DEMO_COINS) if s == symbol)
    return Bars(*coin_series(index, HOURS_PER_YEAR, 42))


def entries_of(exit_slow: int, symbol: str) -> list[float]:
    """Return the entry fills of version 1 (exit_slow 48) or 2 (96) on a coin,
    by the plain loop."""
    bars = demo_bars(symbol)
    return cross_entries(bars.open.tolist(), bars.close.tolist(), 12, 48, exit_slow)


def median_return(fast: int) -> float:
    """Return a sweep cell's median_return_pct for version 1 at ``fast`` (slow
    48): each coin's total return from the engine on the compiled source, and
    their median, as the sweep reduces a cell across coins."""
    spec = compile_strategy(V1, key=KEY)
    returns = [
        run_many(demo_bars(s), [(spec, {"fast": fast, "slow": 48})])[0].metrics[
            "total_return_pct"
        ]
        for s in SWEEP_COINS
    ]
    return statistics.median(returns)


def rgb(css: str) -> tuple[float, ...]:
    """Return the numbers of a computed ``rgb(...)``/``rgba(...)`` colour."""
    return tuple(float(x) for x in re.findall(r"[\d.]+", css))


def contrast(a: str, b: str) -> float:
    """Return the WCAG 2 contrast ratio of two opaque computed colours."""

    def luminance(css: str) -> float:
        def channel(c: float) -> float:
            c /= 255
            return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

        r, g, b = (channel(c) for c in rgb(css)[:3])
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def no_overflow(page) -> bool:
    """Return whether the page fits its viewport's width."""
    return page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )


def tab_to(page, element_id: str, limit: int = 40) -> None:
    """Press Tab until the element with ``element_id`` has the focus."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == element_id:
            return
    raise AssertionError(f"#{element_id} not reached with Tab")


def log_in(page, server: str, then: str) -> None:
    page.goto(f"{server}/accounts/login/?next={then}")
    page.fill("#id_username", USER)
    page.fill("#id_password", PASSWORD)
    page.click(".login-form button[type=submit]")
    page.wait_for_url(f"{server}{then}")


def test_write_check_preview_save_run_edit_and_replay(page, server):
    SHOTS.mkdir(exist_ok=True)
    page.set_viewport_size({"width": 1440, "height": 900})
    log_in(page, server, "/strategies/new")
    page.wait_for_selector("#check-status.ok")  # the starter text checks clean

    # A mistake is named at its line and column, and marked in the gutter.
    page.fill("#source", TYPED)
    page.wait_for_selector("#problems .problem")
    assert page.locator("#problems .problem").all_inner_texts() == [MISTAKE]
    assert page.locator("#gutter .bad").all_inner_texts() == ["5"]
    assert page.locator("#highlight .tok-error").all_inner_texts() == ["smaa"]
    assert page.get_attribute("#source", "aria-invalid") == "true"
    # Choosing the problem puts the caret on it; the fix is typed there.
    page.click("#problems .problem")
    offset = len("".join(TYPED.splitlines(keepends=True)[:4])) + 26
    assert page.evaluate("document.getElementById('source').selectionStart") == offset
    for _ in range(4):
        page.keyboard.press("Delete")
    page.keyboard.type("sma")
    page.wait_for_selector("#check-status.ok")
    assert page.input_value("#source") == V1
    assert page.locator("#problems li").count() == 0
    assert page.locator("#gutter .bad").count() == 0

    # The parameter panel comes from the param lines.
    rows = [
        r.split("\t") for r in page.locator("#param-panel tbody tr").all_inner_texts()
    ]
    assert rows == [
        ["fast", "", "int", "12", "2", "100", "–"],
        ["slow", "", "int", "48", "5", "400", "–"],
    ]
    assert page.input_value("#param-panel input[name=fast]") == "12"

    # Preview: the close with an entry and an exit marker per trade. The
    # default range is the coin's last year, the whole demo here.
    symbol = page.input_value("#preview-symbol")  # the first coin by symbol
    assert symbol == "1INCH"
    page.click("#preview")
    page.wait_for_selector("#preview-chart .main-svg")
    figure = page.evaluate(
        "document.getElementById('preview-chart').data.map("
        "(t) => ({name: t.name, n: t.x.length, y: t.y}))"
    )
    reference = entries_of(48, symbol)
    expected = len(reference)
    assert expected > 5
    bars = demo_bars(symbol)
    assert [t["name"] for t in figure] == [f"{symbol} close", "entries", "exits"]
    price, entries, exits = figure
    # The close, thinned to at most 4000 points: each one a bar's close, in
    # order, from the first bar to the last.
    at = [int(np.flatnonzero(bars.close == y)[0]) for y in price["y"]]
    assert 2000 <= len(at) <= 4000 and at == sorted(at)
    assert (at[0], at[-1]) == (0, len(bars.close) - 1)
    assert (entries["n"], exits["n"]) == (expected, expected)
    assert np.allclose(entries["y"], reference, rtol=1e-12)
    assert page.inner_text("#preview-status") == (
        f"{symbol}: {len(bars.close)} bars, {expected} trades."
    )
    assert no_overflow(page)
    assert (page.errors, page.csp_violations) == ([], [])
    # The "shared" box is a checkbox's size, on one line with its words.
    box = page.locator("#shared").bounding_box()
    label = page.locator("label:has(#shared)").bounding_box()
    assert box["width"] <= 24 and label["height"] <= 40, (box, label)
    page.screenshot(path=str(SHOTS / "editor-1440.png"), full_page=True)

    # Unsaved, Run and Sweep lead nowhere: they take no focus.
    for link in ("run-link", "sweep-link"):
        page.focus(f"#{link}")
        assert page.evaluate("document.activeElement.id") != link
    # A bad key is named, marked on its field, and the field has the focus.
    page.fill("#key", "Bad Key")
    page.click("#save")
    page.wait_for_selector("#key[aria-invalid='true']")
    assert page.inner_text("#save-status").startswith("key: 1-40 characters")
    assert page.evaluate("document.activeElement.id") == "key"
    page.errors.remove(  # the browser logs the refusal (400) this asked for
        "Failed to load resource: the server responded with a status of 400 "
        "(Bad Request)"
    )
    # Save: version 1, and the page is the strategy's; Run opens the form on it.
    page.fill("#key", KEY)
    page.fill("#name", "Trend cross")
    page.click("#save")
    page.wait_for_function(
        "() => document.getElementById('save-status').textContent"
        " === 'Saved version 1.'"
    )
    assert page.url == f"{server}/strategies/{KEY}/edit"
    assert page.get_attribute("#key", "aria-invalid") is None
    assert page.inner_text("#editor-title") == "Trend cross v1"
    assert page.title().startswith(f"{KEY} ")
    page.click("#run-link")
    page.wait_for_url(re.compile(rf"/\?strategy={KEY}"))
    page.wait_for_selector("#connection.ok")
    assert page.input_value("#strategy") == KEY
    # Listed after the six built-ins, its parameters as the form's inputs.
    options = page.eval_on_selector_all(
        "#strategy option", "os => os.map(o => o.value)"
    )
    assert options == [*STRATEGIES, KEY, "all"]
    assert page.inner_text(f"#strategy option[value='{KEY}']") == "Trend cross (saved)"
    assert page.input_value("#param-fast") == "12"
    assert page.input_value("#param-slow") == "48"
    assert page.locator("#coin-list input").count() == COINS
    page.click("#run-button")
    page.wait_for_selector("#summary:not([hidden])", timeout=180_000)
    assert page.inner_text("#progress-text").startswith(f"{COINS} / {COINS}")
    detail = page.get_attribute("#summary a", "href")

    # The sweep page lists it too, its parameters as the axes.
    page.goto(f"{server}/sweeps/?strategy={KEY}")
    page.wait_for_selector("#connection.ok")
    assert page.input_value("#strategy") == KEY
    options = page.eval_on_selector_all(
        "#strategy option", "os => os.map(o => o.value)"
    )
    assert options == [*STRATEGIES, KEY]
    # Its parameters, then the risk settings every strategy may sweep.
    axes = page.locator("#x-param option").all_inner_texts()
    assert [a for a in axes if "(risk)" not in a] == ["fast", "slow"]
    # A link naming only the strategy is read like any sweep address: no y
    # axis in it, one row.
    assert page.input_value("#y-param") == ""
    # Sweep one parameter: fast over 5:15:5, slow at its default (one row).
    page.select_option("#y-param", "")
    assert page.is_disabled("#y-start")
    for key, value in zip(("start", "stop", "step"), ("5", "15", "5"), strict=True):
        page.fill(f"#x-{key}", value)
    page.click("#coins-none")
    for coin in SWEEP_COINS:
        page.check(f"#coin-list input[value='{coin}']")
    assert page.inner_text("#coin-count") == f"{len(SWEEP_COINS)} of {COINS}"
    page.click("#run-button")
    page.wait_for_function(
        "() => document.getElementById('progress-text').textContent.includes('done')",
        timeout=60_000,
    )
    assert page.inner_text("#progress-text").startswith("3 / 3 ")
    page.wait_for_selector("#heatmap-canvas[data-drawn='3']")
    # Each cell's median return, as listed, against the engine run here on
    # the same bars; best first.
    expected_cells = {fast: median_return(fast) for fast in SWEPT}
    listed = page.locator("#best-list li").all_inner_texts()
    ranking = sorted(SWEPT, key=lambda f: -expected_cells[f])
    assert [t.split(" ")[0] for t in listed] == [f"fast={f}" for f in ranking]
    for text, fast in zip(listed, ranking, strict=True):
        shown = number(text.split(": ")[-1].rstrip("%"))
        assert abs(shown - expected_cells[fast]) <= 0.005 + 1e-9, (text, fast)
    # One cell opened: its coins, and its stored median to full precision.
    page.locator("#best-list li button", has_text="fast=10").click()
    page.wait_for_selector("#cell-coins tbody tr")
    assert page.inner_text("#cell-title") == "fast=10"
    assert sorted(page.locator("#cell-coins tbody th").all_inner_texts()) == sorted(
        SWEEP_COINS
    )
    stored = page.get_attribute("#sweep-summary a", "href")  # /sweeps/ID/
    index = page.get_attribute("#best-list li button:has-text('fast=10')", "data-index")
    cell = page.evaluate(
        "async (url) => (await fetch(url)).json()", f"{stored}cells/{index}/"
    )
    assert cell["done"] and cell["metrics"]["coins"] == len(SWEEP_COINS)
    assert abs(cell["metrics"]["median_return_pct"] - expected_cells[10]) < 1e-9
    assert (page.errors, page.csp_violations) == ([], [])

    # Edit by keyboard: a changed rule, saved with Enter as version 2.
    page.goto(f"{server}/strategies/{KEY}/edit")
    page.wait_for_selector("#check-status.ok")
    assert page.inner_text("#version-badge") == "v1"
    page.focus("#key")
    tab_to(page, "source")
    page.keyboard.press("Control+End")
    page.keyboard.press("Tab")  # indents inside the editor
    assert page.input_value("#source").endswith("\n    ")
    for _ in range(4):
        page.keyboard.press("Backspace")
    for _ in range(3):  # back over the newline and the two closing parentheses
        page.keyboard.press("ArrowLeft")
    for _ in range(4):  # the last "slow"
        page.keyboard.press("Backspace")
    page.keyboard.type("96")
    assert page.input_value("#source") == V2
    page.wait_for_selector("#check-status.ok")
    page.keyboard.press("Escape")
    tab_to(page, "save")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => document.getElementById('save-status').textContent"
        " === 'Saved version 2.'"
    )
    assert page.inner_text("#version-badge") == "v2"
    # Preview by keyboard: Space on the button draws the new version.
    tab_to(page, "preview")
    page.keyboard.press("Space")
    page.wait_for_selector("#preview-chart .main-svg")
    changed = len(entries_of(96, symbol))
    assert changed != expected  # so the replay below tells the versions apart
    page.wait_for_function(
        "(n) => document.getElementById('preview-status').textContent"
        ".includes(`${n} trades`)",
        arg=changed,
    )

    # The earlier run still replays version 1.
    page.goto(f"{server}{detail}")
    page.click(f"#results tbody th a:text-is('{symbol}')")
    page.wait_for_function(
        "(s) => document.querySelector('#results tr.selected th')?.textContent === s",
        arg=symbol,
    )
    page.wait_for_selector("#charts[data-loaded]")
    shown = int(page.inner_text("[data-metric='num_trades']").replace(",", ""))
    assert shown == expected
    # The trade list is recomputed from the recorded version, not stored.
    page.wait_for_function(
        "() => document.getElementById('trades-page').textContent.includes('trades')"
    )
    assert page.inner_text("#trades-page").endswith(f" \u00b7 {expected} trades")
    assert (page.errors, page.csp_violations) == ([], [])

    # The sweep ran version 1 too: a coin of its fast=10 cell, opened as a
    # run after the edit, trades as version 1 does (the plain loop).
    page.goto(f"{server}{stored}")
    page.locator("#best-list li button", has_text="fast=10").click()
    page.wait_for_selector("#cell-coins tbody tr")
    coin = SWEEP_COINS[0]
    opened = page.locator(f"#cell-coins tbody tr:has(th:text-is('{coin}'))")
    opened.locator("button", has_text="Open run").click()
    page.wait_for_url(re.compile(r"/runs/\d+/\?symbol="))
    page.click(f"#results tbody th a:text-is('{coin}')")
    page.wait_for_selector("#charts[data-loaded]")
    bars = demo_bars(coin)
    v1_trades = len(cross_entries(bars.open.tolist(), bars.close.tolist(), 10, 48, 48))
    assert v1_trades != len(
        cross_entries(bars.open.tolist(), bars.close.tolist(), 10, 48, 96)
    )
    shown = int(page.inner_text("[data-metric='num_trades']").replace(",", ""))
    assert shown == v1_trades
    assert (page.errors, page.csp_violations) == ([], [])

    # The list shows version 2; Delete looks dangerous and asks first.
    page.goto(f"{server}/strategies/")
    row = page.locator(f"#own-strategies tr:has(a:text-is('{KEY}'))")
    assert row.locator("td").nth(1).inner_text() == "v2"
    delete = row.locator("button", has_text="Delete")
    assert delete.evaluate(
        "(b) => { const probe = document.createElement('span');"
        " probe.style.color = 'var(--loss)'; document.body.append(probe);"
        " const same = getComputedStyle(probe).color === getComputedStyle(b).color;"
        " probe.remove(); return same; }"
    )
    asked = []
    page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    delete.click()
    assert len(asked) == 1 and KEY in asked[0]
    assert page.url == f"{server}/strategies/"
    assert row.count() == 1  # dismissed: still there

    # A phone: the editor fits, nothing overflows sideways.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{server}/strategies/{KEY}/edit")
    page.wait_for_selector("#check-status.ok")
    page.click("#preview")
    page.wait_for_selector("#preview-chart .main-svg")
    assert no_overflow(page)
    # The preview values, the panel's inputs, are on screen without scrolling.
    frame = page.locator("#param-panel").locator("xpath=..").bounding_box()
    for field in page.locator("#param-panel input").all():
        box = field.bounding_box()
        assert box["x"] + box["width"] <= frame["x"] + frame["width"], (box, frame)
    page.screenshot(path=str(SHOTS / "editor-390.png"), full_page=True)
    assert (page.errors, page.csp_violations) == ([], [])

    # Dark mode: the text's colours stay readable (WCAG AA, 4.5:1, against
    # the editor) and the chart takes the panel's colours, not white.
    page.emulate_media(color_scheme="dark")
    page.reload()
    page.wait_for_selector("#check-status.ok")
    page.click("#preview")
    page.wait_for_selector("#preview-chart .main-svg")
    colours = page.evaluate(
        """() => {
          const css = (el, p) => getComputedStyle(el)[p];
          const spans = [...document.querySelectorAll('#highlight span')];
          return {
            ground: css(document.getElementById('editor'), 'backgroundColor'),
            panel: css(document.querySelector('.panel'), 'backgroundColor'),
            ink: [...new Set(spans.map((s) => css(s, 'color')))],
            paper: css(document.querySelector('#preview-chart .main-svg'),
                       'backgroundColor'),
          };
        }"""
    )
    assert len(colours["ink"]) >= 4  # plain text, keywords, functions, numbers
    for ink in colours["ink"]:
        assert contrast(ink, colours["ground"]) >= 4.5, (ink, colours["ground"])
    assert rgb(colours["paper"])[:3] in (rgb(colours["panel"])[:3], (0, 0, 0))
    assert contrast(colours["panel"], "rgb(255, 255, 255)") > 3
    page.screenshot(path=str(SHOTS / "editor-dark-390.png"), full_page=True)
    assert (page.errors, page.csp_violations) == ([], [])
