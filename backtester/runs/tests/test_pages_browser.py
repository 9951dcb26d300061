# ruff: noqa: F811 (the shared fixtures are imported, then named as arguments)
"""In Chromium: defects a new user met on the pages, each shown first, then fixed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from backtester.runs.tests.test_browser import (  # noqa: F401 (fixtures)
    CHROMIUM,
    browser,
    demo_server,
    page,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
    ),
]
SHOTS = Path("/tmp/shots-pages")


# ADA misses 19 days of bars (456 hours) in June: a gap to draw.
GAP = ("2025-06-01T00:00:00Z", "2025-06-20T00:00:00Z")
CUT_GAP = [
    "shell", "-c",
    "from prices.models import PriceBar; PriceBar.objects.filter("
    f"crypto__symbol='ADA', time__gte='{GAP[0]}', time__lt='{GAP[1]}').delete()",
]  # fmt: skip


ADMIN = ("admin", "not-a-real-password-1")
MAKE_ADMIN = [
    "shell", "-c",
    "from django.contrib.auth import get_user_model; get_user_model().objects"
    f".create_superuser('{ADMIN[0]}', 'admin@example.com', '{ADMIN[1]}')",
]  # fmt: skip


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """Six demo coins over one year (one with a gap) and an admin: quick to seed."""
    seed = ["--symbols", "6", "--years", "1"]
    with demo_server(seed, commands=(CUT_GAP, MAKE_ADMIN)) as base:
        yield base


def shoot(page, name: str) -> None:
    """Save the page at a laptop's and a phone's size (outside the repository)."""
    SHOTS.mkdir(exist_ok=True)
    for width, height in ((1440, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(300)
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})


def run_from_link(page, server: str, query: str) -> str:
    """Open the run page at ``query``, run it, return the detail page's path."""
    page.goto(f"{server}/?{query}")
    page.wait_for_selector("#connection.ok")
    page.click("#run-button")
    page.wait_for_selector("#summary:not([hidden])")
    return page.get_attribute("#summary a", "href")


def drawn_scales(page) -> dict:
    """Return, per axis, the scale drawn and the chip shown pressed."""
    return page.evaluate(
        """() => {
          const layout = document.getElementById('charts').layout;
          const pressed = (axis) => document.querySelector(
            `[data-axis="${axis}"][aria-pressed="true"]`).dataset.scale;
          return {equity: [layout.yaxis3.type, pressed('equity')],
                  price: [layout.yaxis.type, pressed('yaxis')]};
        }"""
    )


def test_equity_scale_drawn_is_the_chip_pressed(page, server):
    # A 1% fee on RSI(2)'s hundreds of trades takes the equity down more than a
    # decade: the case where the chart picks a log axis by itself.
    detail = run_from_link(
        page, server, "strategy=rsi_reversion&p.period=2&symbols=BTC&fee=0.01"
    )
    page.goto(f"{server}{detail}")
    page.wait_for_selector("#charts[data-loaded] .main-svg")
    values = page.evaluate(
        "document.getElementById('charts').data.filter((t) => t.yaxis === 'y3')"
        ".flatMap((t) => t.y).filter((v) => v > 0)"
    )
    assert max(values) / min(values) > 10  # the case in question
    scales = drawn_scales(page)
    assert scales["equity"][0] == scales["equity"][1]
    assert scales["price"][0] == scales["price"][1]
    for scale in ("linear", "log", "linear"):
        page.click(f"[data-axis='equity'][data-scale='{scale}']")
        page.wait_for_function(
            "(s) => document.getElementById('charts').layout.yaxis3.type === s",
            arg=scale,
        )
        assert drawn_scales(page)["equity"] == [scale, scale]
    # A zoom redraws the figure: the chosen scale stays, and so does the chip.
    loaded = page.get_attribute("#charts", "data-loaded")
    page.evaluate(
        "() => { const x = document.getElementById('charts').data[0].x;"
        " Plotly.relayout('charts', {'xaxis.range[0]': x[10],"
        " 'xaxis.range[1]': x[Math.floor(x.length / 2)]}); }"
    )
    page.wait_for_function(
        "(n) => document.getElementById('charts').dataset.loaded !== n", arg=loaded
    )
    assert drawn_scales(page)["equity"] == ["linear", "linear"]
    assert not page.errors
    shoot(page, "detail")


def tone_of(page, selector: str) -> list[tuple[str, str]]:
    """Return (text, class) of each element matching ``selector``."""
    return page.eval_on_selector_all(
        selector, "els => els.map((e) => [e.textContent, e.className])"
    )


def test_best_and_worst_coloured_by_sign(page, server):
    # A 1% fee on RSI(2) loses on every coin: the best result is a loss too.
    detail = run_from_link(
        page, server, "strategy=rsi_reversion&p.period=2&symbols=BTC,ETH&fee=0.01"
    )
    boxes = page.eval_on_selector_all(
        "#summary > div",
        "els => els.map((e) => [e.querySelector('.label')?.textContent,"
        " e.querySelector('strong')?.textContent,"
        " e.querySelector('strong')?.className])",
    )
    picks = {label: (text, cls) for label, text, cls in boxes if label}
    for label in ("Best", "Worst"):
        text, cls = picks[label]
        assert "\u2212" in text  # a loss, written with a minus
        assert cls == "loss", (label, text, cls)
    page.goto(f"{server}{detail}")
    for label in ("Best", "Worst"):
        dd = page.locator(f"dl.meta div:has(> dt:text-is('{label}')) dd span")
        assert dd.inner_text().startswith("\u2212")
        assert dd.get_attribute("class") == "loss"


def test_sweep_tooltip_shows_the_drawdown_as_a_loss(page, server):
    page.goto(f"{server}/sweeps/")
    lines = page.evaluate(
        """() => import('/static/sweeps/js/heatmap.js').then((m) => m.cellLines(
             {params: {fast: 5}, metrics: {median_max_drawdown_pct: 12.5, coins: 2}},
             ['fast']).map((n) => n.textContent))"""
    )
    assert "Median max drawdown: \u221212.50%" in lines
    assert not page.errors


def test_a_link_with_unknown_values_says_what_it_dropped(page, server):
    page.goto(
        f"{server}/?strategy=nosuch&symbols=NOPE,BTC&start=2024-13-45&fee=abc"
        "&interval=7m"
    )
    page.wait_for_selector("#connection.ok")
    notice = page.locator("#url-notice")
    assert notice.is_visible()
    items = notice.locator("li").all_inner_texts()
    assert len(items) == 5, items
    text = "\n".join(items)
    for dropped in ("nosuch", "NOPE", "2024-13-45", "abc", "7m"):
        assert dropped in text
    assert "BTC" not in text  # kept: a coin that exists
    checked = page.eval_on_selector_all(
        "#coin-list input:checked", "els => els.map((e) => e.value)"
    )
    assert checked == ["BTC"]
    shoot(page, "run-url-notice")
    # A clean link shows no notice.
    page.goto(f"{server}/?strategy=sma_crossover&symbols=BTC")
    page.wait_for_selector("#connection.ok")
    assert page.locator("#url-notice").is_hidden()
    assert not page.errors


OVERLAPS = """() => {
  const bar = document.querySelector('#charts .modebar');
  if (!bar) return ['no toolbar'];
  const b = bar.getBoundingClientRect();
  return [...document.querySelectorAll('#charts .legend .traces')]
    .map((e) => [e.textContent, e.getBoundingClientRect()])
    .filter(([, r]) => r.left < b.right && b.left < r.right
      && r.top < b.bottom && b.top < r.bottom)
    .map(([name]) => name);
}"""


def test_chart_toolbar_leaves_the_legend_readable(page, server):
    detail = run_from_link(
        page,
        server,
        "strategy=bollinger_reversion&symbols=BTC&direction=both&stop_loss_pct=3"
        "&take_profit_pct=5&trailing_stop_pct=4",
    )
    for width in (1440, 1280, 1000):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"{server}{detail}")
        page.wait_for_selector("#charts[data-loaded] .legend .traces")
        page.hover("#charts")  # the toolbar shows on hover
        names = page.eval_on_selector_all(
            "#charts .legend .traces", "els => els.map((e) => e.textContent)"
        )
        assert len(names) >= 6, names
        assert page.evaluate(OVERLAPS) == [], width


def test_sweep_range_inputs_show_their_whole_value(page, server):
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{server}/sweeps/")
    page.wait_for_selector("#connection.ok")
    for field in ("x-start", "x-stop", "x-step", "y-start", "y-stop", "y-step"):
        page.fill(f"#{field}", "2000.5")
        # The text fits the box: nothing scrolled out of sight ("20(" for "200").
        fits = page.eval_on_selector(
            f"#{field}", "(e) => e.scrollWidth <= e.clientWidth"
        )
        assert fits, field
    shoot(page, "sweep")


def test_formulas_open_with_a_tap(browser, server):
    # A phone: no pointer to hover a title, so each formula opens with a tap.
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True
    )
    page = context.new_page()
    try:
        page.goto(f"{server}/?strategy=sma_crossover&symbols=BTC")
        page.wait_for_selector("#connection.ok")
        page.tap("#run-button")
        page.wait_for_selector("#summary:not([hidden])")
        page.goto(server + page.get_attribute("#summary a", "href"))
        label = page.locator("#metrics dt", has_text="Sharpe").first
        formula = page.locator("#metrics [data-formula='sharpe']")
        assert not formula.is_visible()
        label.tap()
        assert formula.is_visible()
        assert "standard deviation" in formula.inner_text()
    finally:
        context.close()


def shown_rows(page) -> set[tuple[str, str]]:
    """Return the (coin, strategy) pairs of the live results table."""
    return {
        tuple(t.split("\t")[:2])
        for t in page.locator("#results tbody tr").all_inner_texts()
    }


def test_back_shows_the_run_of_the_settings_shown(page, server):
    page.goto(f"{server}/?strategy=sma_crossover&p.fast=10&p.slow=30&symbols=BTC,ETH")
    page.wait_for_selector("#connection.ok")
    page.click("#run-button")
    page.wait_for_selector("#summary:not([hidden])")
    run_a = shown_rows(page)
    assert {coin for coin, _ in run_a} == {"BTC", "ETH"}
    # Run B from the form, on the same page.
    page.select_option("#strategy", "rsi_reversion")
    page.click("#coins-none")
    for coin in ("BTC", "SOL", "XRP"):
        page.check(f"#coin-list input[value='{coin}']")
    page.click("#run-button")
    page.wait_for_function(
        "() => !document.getElementById('summary').hidden"
        " && document.querySelectorAll('#results tbody tr').length === 3"
    )
    run_b = shown_rows(page)
    assert {coin for coin, _ in run_b} == {"BTC", "SOL", "XRP"}

    page.go_back()
    page.wait_for_function("() => document.getElementById('strategy').value"
                           " === 'sma_crossover'")  # fmt: skip
    page.wait_for_function(
        "() => !document.getElementById('summary').hidden"
        " && document.querySelectorAll('#results tbody tr').length === 2"
    )
    assert shown_rows(page) == run_a
    assert "Open run" in page.inner_text("#summary")
    page.go_forward()
    page.wait_for_function(
        "() => document.querySelectorAll('#results tbody tr').length === 3"
        " && !document.getElementById('summary').hidden"
    )
    assert shown_rows(page) == run_b
    # Settings no run was made with (the first page of all): an empty panel.
    page.go_back()
    page.go_back()
    page.wait_for_function(
        "() => document.querySelectorAll('#results tbody tr').length === 0"
    )
    assert page.locator("#summary").is_hidden()
    assert not page.errors


def test_trade_list_jumps_resizes_and_zooms_to_a_trade(page, server):
    detail = run_from_link(
        page, server, "strategy=rsi_reversion&p.period=2&symbols=BTC"
    )
    page.goto(f"{server}{detail}")
    page.wait_for_selector("#charts[data-loaded] .main-svg")
    page.wait_for_selector("#trades tbody tr")
    total = int(page.inner_text("[data-metric='num_trades']").replace(",", ""))
    assert total > 300
    # A bigger page: fewer pages, counted by hand.
    page.select_option("#trades-per-page", "100")
    pages = -(-total // 100)
    page.wait_for_function(
        "(p) => document.getElementById('trades-page').textContent.includes(`of ${p}`)",
        arg=pages,
    )
    assert page.locator("#trades tbody tr").count() == 100
    # The last page in one step: its last trade is the last of all.
    page.fill("#trades-goto", str(pages))
    page.press("#trades-goto", "Enter")
    page.wait_for_function(
        "(n) => [...document.querySelectorAll('#trades tbody td:first-child')]"
        ".some((td) => td.textContent === String(n))",
        arg=total,
    )
    numbers = [
        int(n) for n in page.locator("#trades tbody td:first-child").all_inner_texts()
    ]
    assert numbers == list(range((pages - 1) * 100 + 1, total + 1))
    # A page beyond the last is brought back to the last, not refused.
    page.fill("#trades-goto", str(pages + 7))
    page.press("#trades-goto", "Enter")
    page.wait_for_function(
        "(p) => document.getElementById('trades-goto').value === String(p)", arg=pages
    )

    # Clicking a trade zooms the figure to it: the window holds the trade, and is
    # a small part of the year.
    row = page.locator("#trades tbody tr").nth(3)
    entry, leave = (
        row.locator("td").nth(1).inner_text(),
        row.locator("td").nth(2).inner_text(),
    )
    loaded = page.get_attribute("#charts", "data-loaded")
    row.click()
    page.wait_for_function(
        "(n) => document.getElementById('charts').dataset.loaded !== n", arg=loaded
    )
    shown = page.evaluate("document.getElementById('charts').layout.xaxis.range")
    start, end = (datetime.fromisoformat(x[:19]) for x in shown)
    assert (
        start <= datetime.fromisoformat(entry) and datetime.fromisoformat(leave) <= end
    )
    assert end - start < timedelta(days=30)
    assert row.get_attribute("aria-current") == "true"
    assert not page.errors


def test_history_fits_the_window_with_the_key_columns_first(page, server):
    for query in (
        "strategy=sma_crossover&p.fast=10&p.slow=30",
        "strategy=macd_crossover&symbols=BTC,ETH,SOL,XRP,ADA&fee=0.002&slippage_bps=5",
    ):
        run_from_link(page, server, query)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{server}/runs/")
    heads = [h.strip() for h in page.locator("#runs thead th").all_inner_texts()]
    # What a run came to, before how it was set up.
    for key in ("Status", "Median return", "Beat B&H"):
        assert heads.index(key) < heads.index("Strategy"), heads
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1440, width
    for key in ("Status", "Median return", "Beat B&H"):
        box = page.locator("#runs thead th", has_text=key).first.bounding_box()
        assert box["x"] + box["width"] <= 1440
    # Settings every run on the page shares go above the table, not in a column.
    # (Runs of other tests may be on the page: a column stays only if it varies.)
    for key in ("range", "fee", "risk"):
        texts = page.locator(f"#runs td[data-col='{key}']").all_inner_texts()
        assert not texts or len(set(texts)) > 1, (key, texts)
    assert "first bar \u2192 last bar" in page.inner_text("#shared-settings")
    shoot(page, "history")
    # A phone keeps each run's status and return in view.
    page.set_viewport_size({"width": 390, "height": 844})
    for key in ("status", "return"):
        box = page.locator(f"#runs tbody td[data-col='{key}']").first.bounding_box()
        assert box and box["width"] > 0 and box["x"] + box["width"] <= 390, key
    assert not page.errors


MARKERS = """() => document.getElementById('charts').data
  .filter((t) => t.mode === 'markers').reduce((n, t) => n + t.x.length, 0)"""


def test_markers_thin_out_at_the_whole_range_and_gaps_break_the_line(page, server):
    detail = run_from_link(
        page, server, "strategy=rsi_reversion&p.period=2&symbols=ADA"
    )
    page.goto(f"{server}{detail}")
    page.wait_for_selector("#charts[data-loaded] .main-svg")
    page.wait_for_function(
        "() => document.getElementById('charts').data.some((t) => t.mode === 'markers')"
    )
    trades = int(page.inner_text("[data-metric='num_trades']").replace(",", ""))
    assert trades > 300
    # Two markers a trade would bury the line: far fewer are drawn.
    assert page.evaluate(MARKERS) < trades

    # The line breaks over the gap (a missing value), and the gap is shaded.
    figure = page.evaluate(
        "(() => { const el = document.getElementById('charts');"
        " return {line: el.data[0], shapes: el.layout.shapes,"
        " equity: el.data.find((t) => t.name === 'Equity')}; })()"
    )
    # Only the gap breaks a line: the equity (each bucket's low and high, at
    # uneven steps) is whole everywhere else.
    for x, y in zip(figure["equity"]["x"], figure["equity"]["y"], strict=True):
        if y is None:
            at = datetime.fromisoformat(x[:19])
            assert GAP[0][:19] <= at.isoformat() <= GAP[1][:19], x
    line = figure["line"]
    assert line["type"] == "scatter"
    stamps = [datetime.fromisoformat(x[:19]) for x in line["x"]]
    gap_from = datetime.fromisoformat(GAP[0][:19])
    gap_to = datetime.fromisoformat(GAP[1][:19])
    nulls = [i for i, y in enumerate(line["y"]) if y is None]
    assert any(gap_from - timedelta(hours=48) <= stamps[i] <= gap_to for i in nulls)
    # No segment joins two points across the gap.
    for a, b, ya, yb in zip(stamps, stamps[1:], line["y"], line["y"][1:], strict=False):
        if a < gap_from and b >= gap_to:
            assert ya is None or yb is None
    shaded = [
        s for s in figure["shapes"]
        if s.get("type") == "rect" and s.get("yref") == "paper"
    ]  # fmt: skip
    assert any(
        datetime.fromisoformat(s["x0"][:19]) <= gap_from + timedelta(hours=1)
        and datetime.fromisoformat(s["x1"][:19]) >= gap_to - timedelta(hours=1)
        for s in shaded
    ), shaded

    # Zoomed to a fortnight, every trade in it has its entry marker again,
    # counted from the server's own trades for that window.
    x = line["x"]
    window = [x[len(x) // 4], x[len(x) // 4 + 40]]
    loaded = page.get_attribute("#charts", "data-loaded")
    page.evaluate(
        "(r) => Plotly.relayout('charts', {'xaxis.range[0]': r[0],"
        " 'xaxis.range[1]': r[1]})",
        window,
    )
    page.wait_for_function(
        "(n) => document.getElementById('charts').dataset.loaded !== n", arg=loaded
    )
    page.wait_for_function(
        "() => document.getElementById('charts').data.some((t) => t.mode === 'markers')"
    )
    entries = page.evaluate(
        "() => document.getElementById('charts').data"
        ".filter((t) => t.mode === 'markers' && t.name.includes('entry'))"
        ".reduce((n, t) => n + t.x.length, 0)"
    )
    request = page.evaluate(
        "JSON.parse(document.getElementById('chart-request').textContent)"
    )
    shown = page.evaluate("document.getElementById('charts').layout.xaxis.range")
    count = page.evaluate(
        """async ([req, range]) => {
          const iso = (s) => `${String(s).slice(0, 19).replace(' ', 'T')}Z`;
          const q = new URLSearchParams({symbol: req.symbol, strategy: req.strategy,
            params: JSON.stringify(req.params ?? {}), start: iso(range[0]),
            end: iso(range[1]), points: '2000'});
          const data = await (await fetch(`${req.price_url}?${q}`)).json();
          const lo = Date.parse(iso(range[0])), hi = Date.parse(iso(range[1]));
          return data.trades.entry_time.filter((t) => t >= lo && t <= hi).length;
        }""",
        [request, shown],
    )
    assert count > 0 and entries >= count
    assert not page.errors


def test_sweep_and_walk_forward_errors_sit_by_their_inputs(page, server):
    page.goto(f"{server}/sweeps/")
    page.wait_for_selector("#connection.ok")
    page.fill("#train-bars", "99999")
    page.click("#wf-button")
    message = page.locator("#train-bars-error")
    message.wait_for()
    text = message.inner_text()
    assert "do not fit" in text and not text.startswith("train_bars")
    assert page.get_attribute("#train-bars", "aria-invalid") == "true"
    # A sentence across the form, not a column of single words.
    box = message.bounding_box()
    assert box["width"] > 200 and box["height"] < 80, box
    assert page.locator("#banner").is_hidden()
    shoot(page, "sweep-errors")
    # The sweep's own fields too: a fee over the maximum, said under the fees.
    page.fill("#train-bars", "2160")
    page.fill("#fee", "0.5")
    page.click("#run-button")
    fee = page.locator("#fee-error")
    fee.wait_for()
    assert fee.bounding_box()["width"] > 200
    assert page.get_attribute("#fee", "aria-invalid") == "true"
    assert page.locator("#train-bars-error").count() == 0  # the old one is gone
    assert not page.errors


def test_sweep_takes_costs_risk_and_interval_keeps_them_in_the_address(page, server):
    page.goto(f"{server}/sweeps/")
    page.wait_for_selector("#connection.ok")
    page.click("#coins-none")
    page.check("#coin-list input[value='BTC']")
    page.select_option("#interval", "1d")
    page.fill("#slippage_bps", "5")
    page.click("#risk summary")
    page.fill("#take_profit_pct", "20")
    # A risk setting as an axis, as the CLI allows.
    page.select_option("#x-param", "stop_loss_pct")
    page.fill("#x-start", "2")
    page.fill("#x-stop", "6")
    page.fill("#x-step", "2")
    page.select_option("#y-param", "fast")
    page.fill("#y-start", "5")
    page.fill("#y-stop", "10")
    page.fill("#y-step", "5")
    page.click("#run-button")
    page.wait_for_selector("#sweep-summary:not([hidden]) a")
    detail = page.get_attribute("#sweep-summary a", "href")
    query = page.evaluate("location.search")
    for part in ("interval=1d", "slippage_bps=5", "take_profit_pct=20",
                 "x=stop_loss_pct%3A2%3A6%3A2", "symbols=BTC"):  # fmt: skip
        assert part in query, (part, query)
    # The address fills the form again (a reload, a shared link).
    page.reload()
    page.wait_for_selector("#connection.ok")
    assert page.input_value("#interval") == "1d"
    assert page.input_value("#slippage_bps") == "5"
    assert page.input_value("#take_profit_pct") == "20"
    assert page.input_value("#x-param") == "stop_loss_pct"
    assert page.input_value("#x-stop") == "6"
    assert page.input_value("#y-param") == "fast"
    checked = page.eval_on_selector_all(
        "#coin-list input:checked", "els => els.map((e) => e.value)"
    )
    assert checked == ["BTC"]
    page.goto(f"{server}{detail}")
    text = page.inner_text("main")
    assert "median_return_pct" not in text
    assert "Median return" in text
    assert "5 bps" in text and "target 20%" in text
    legend = page.locator("#heat-legend")
    assert legend.is_visible()
    assert re.search(r"\d", legend.inner_text())
    shoot(page, "sweep-detail")
    assert not page.errors


def test_compare_and_admin_pages_read_well(page, server):
    # Two losing runs: on the compare page, every best is a loss, in red.
    paths = [
        run_from_link(
            page, server, f"strategy=rsi_reversion&p.period=2&symbols={s}&fee=0.01"
        )  # fmt: skip
        for s in ("BTC,ETH", "SOL,XRP")
    ]
    shoot(page, "run-results")
    ids = [p.strip("/").split("/")[-1] for p in paths]
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{server}/runs/compare/?run={ids[0]}&run={ids[1]}")
    best = page.locator("#compare tr:has(th:text-is('Best')) td span")
    assert best.count() == 2
    for i in range(2):
        assert best.nth(i).inner_text().startswith("\u2212")
        assert best.nth(i).get_attribute("class") == "loss"
    shoot(page, "compare")
    # The admin's run page: settings in words, results inside the window.
    page.goto(
        f"{server}/admin/login/?next=/admin/backtester/backtestrun/{ids[0]}/change/"
    )
    page.fill("#id_username", ADMIN[0])
    page.fill("#id_password", ADMIN[1])
    page.click("input[type=submit]")
    page.wait_for_selector("#results-group")
    text = page.inner_text("#content")
    assert '"strategy"' not in text and "period=2" in text
    assert page.evaluate("document.documentElement.scrollWidth") <= 1440
    shoot(page, "admin-run")
    # The icon every page links is served.
    icon = page.request.get(f"{server}/favicon.ico")
    assert icon.ok and "<svg" in icon.text()
    assert not page.errors


def test_walk_forward_is_kept_and_drawn_again(page, server):
    page.goto(f"{server}/sweeps/?strategy=sma_crossover&x=fast:5:15:5&y=slow:20:40:10"
              "&symbols=BTC,ETH")  # fmt: skip
    page.wait_for_selector("#connection.ok")
    page.fill("#train-bars", "2000")
    page.fill("#test-bars", "1000")
    page.fill("#folds", "4")
    page.click("#wf-button")
    page.wait_for_selector("#wf-summary a")
    folds = page.locator("#wf-table tbody tr").count()
    assert folds >= 1
    summary = page.inner_text("#wf-summary").split(" · ")[1]
    # Leaving and coming back (a reload) draws the stored one again.
    page.reload()
    page.wait_for_selector("#wf-summary a")
    assert page.locator("#wf-table tbody tr").count() == folds
    assert summary in page.inner_text("#wf-summary")
    detail = page.get_attribute("#wf-summary a", "href")
    page.goto(f"{server}/sweeps/walk-forward/")
    assert page.locator(f"#walk-forwards a[href='{detail}']").count() == 1
    page.goto(f"{server}{detail}")
    page.wait_for_selector("#wf-table tbody tr")
    assert page.locator("#wf-table tbody tr").count() == folds
    assert "BTC, ETH" in page.inner_text("main")
    shoot(page, "walk-forward-detail")
    export = page.request.get(f"{server}{detail}export.json").json()
    assert export["walk_forward"]["train_bars"] == 2000
    assert export["walk_forward"]["symbols"] == ["BTC", "ETH"]
    assert len(export["result"]["folds"]) == folds
    assert not page.errors
